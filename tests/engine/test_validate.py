"""Validation runs: the run folder contract, resume, unlabelled cohorts, refusals."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from cohorts.errors import BsxError
from engine.runfolder import PREDICTION_COLUMNS, RunFolder
from engine.validate import Cancelled, ValidateConfig, run_validation
from tests.conftest import validate_tiny


def test_run_folder_has_every_artifact(tiny_run):
    folder = RunFolder(tiny_run)
    for artifact in ("run", "predictions", "mc_samples", "embeddings", "metrics", "fairness", "drift",
                     "integrity", "ledger"):
        assert folder.has(artifact), artifact
    predictions = folder.predictions()
    assert set(PREDICTION_COLUMNS) <= set(predictions.columns)
    assert {"age", "sex", "site", "skin_type", "body_site", "image_path"} <= set(predictions.columns)
    run = folder.run_info()
    assert run["status"] == "complete" and run["model"]["sha256"] and run["cohort"]["fingerprint"]
    assert set(run["artifacts"]) >= {"predictions.parquet", "metrics.json"}
    samples = folder.load_array("mc_samples")
    assert samples.shape == (len(predictions), run["config"]["mc_samples"])
    ok = predictions["error"].isna()
    assert np.allclose(np.nanmean(samples[ok.to_numpy()], axis=1), predictions.loc[ok, "p_mean"], atol=1e-5)
    assert predictions["flagged"].sum() == run["referral"]["flagged"]
    events = [entry["event"] for entry in folder.ledger()]
    assert events[0] == "validate-start" and events[-1] == "validate-end"


def test_per_case_json_matches_predictions(tiny_run):
    folder = RunFolder(tiny_run)
    row = folder.predictions().iloc[0]
    case = json.loads(folder.case_json_path(row["case_id"]).read_text())
    assert case["case_id"] == row["case_id"] and case["p_mean"] == pytest.approx(row["p_mean"])
    assert len(case["mc_samples"]) == folder.run_info()["config"]["mc_samples"]


def test_metrics_json_has_cis(tiny_run):
    metrics = RunFolder(tiny_run).read_json("metrics")
    auc = metrics["overall"]["auc"]
    assert auc["method"] == "delong" and (auc["value"] is None or auc["ci"][0] <= auc["value"] <= auc["ci"][1])


def test_interrupted_run_resumes_identically(tiny_external_cohort, tiny_checkpoint, tmp_path):
    straight = validate_tiny(tiny_external_cohort, tiny_checkpoint, tmp_path / "straight", gradcam=False)
    calls = []

    def stop_after_first_chunk():
        calls.append(1)
        return len(calls) > 3  # a few batches in: the first chunk (16 cases, 2 batches) is saved

    config = ValidateConfig(cohort=str(tiny_external_cohort), checkpoint=str(tiny_checkpoint),
                            out=str(tmp_path / "resumed"), mc_samples=4, workers=0, n_boot=50, batch_size=8,
                            chunk_size=16, gradcam=False)
    with pytest.raises(Cancelled):
        run_validation(config, should_stop=stop_after_first_chunk)
    assert RunFolder(tmp_path / "resumed").run_info()["status"] == "interrupted"
    assert len(list((tmp_path / "resumed" / ".partial").glob("*.npz"))) >= 1
    resumed = run_validation(config)
    a, b = straight.predictions(), resumed.predictions()
    pd.testing.assert_frame_equal(a, b)
    assert np.array_equal(straight.load_array("mc_samples"), resumed.load_array("mc_samples"), equal_nan=True)
    assert straight.read_json("metrics") == resumed.read_json("metrics")


def test_unlabelled_cohort_gives_predictions_and_not_estimable_metrics(tiny_external_cohort, tiny_checkpoint,
                                                                       tmp_path):
    cohort = tmp_path / "unlabelled"
    shutil.copytree(tiny_external_cohort, cohort)
    frame = pd.read_csv(cohort / "cohort.csv")
    frame["diagnosis"] = ""
    frame.to_csv(cohort / "cohort.csv", index=False)
    folder = validate_tiny(cohort, tiny_checkpoint, tmp_path / "run", gradcam=False)
    predictions = folder.predictions()
    assert predictions["truth"].isna().all() and predictions["p_mean"].notna().all()
    auc = folder.read_json("metrics")["overall"]["auc"]
    assert auc["value"] is None and "not estimable" in auc["note"]


def test_case_errors_are_recorded_and_the_rest_processed(tiny_external_cohort, tiny_checkpoint, tmp_path):
    cohort = tmp_path / "broken"
    shutil.copytree(tiny_external_cohort, cohort)
    victim = sorted((cohort / "images").iterdir())[0]
    victim.write_bytes(b"not a jpeg")
    folder = validate_tiny(cohort, tiny_checkpoint, tmp_path / "run", gradcam=False)
    predictions = folder.predictions()
    errors = predictions[predictions["error"].notna()]
    assert len(errors) == 1 and errors["p_mean"].isna().all()
    assert predictions["p_mean"].notna().sum() == len(predictions) - 1


def test_a_different_run_is_refused_without_overwrite(tiny_run, tiny_cohort, tiny_checkpoint, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out)
    with pytest.raises(BsxError, match="different run"):
        validate_tiny(tiny_cohort, tiny_checkpoint, out, gradcam=False)
    folder = validate_tiny(tiny_cohort, tiny_checkpoint, out, gradcam=False, overwrite=True)
    assert folder.run_info()["cohort"]["path"] == str(tiny_cohort.resolve())


def test_checkpoint_schema_mismatch_is_spelled_out(tiny_external_cohort, tiny_checkpoint, tmp_path):
    checkpoint = tmp_path / "ck"
    shutil.copytree(tiny_checkpoint, checkpoint)
    sidecar = json.loads((checkpoint / "model.json").read_text())
    sidecar["metadata_encoder"]["categorical"].append("smoking")
    sidecar["metadata_encoder"]["vocab"]["smoking"] = ["no", "yes"]
    sidecar["architecture"]["meta_dim"] += 4
    (checkpoint / "model.json").write_text(json.dumps(sidecar))
    with pytest.raises(BsxError):
        validate_tiny(tiny_external_cohort, checkpoint, tmp_path / "run")


def test_temperature_scaling_on_a_calibration_cohort(tiny_external_cohort, tiny_checkpoint, tiny_cohort, tmp_path):
    folder = validate_tiny(tiny_external_cohort, tiny_checkpoint, tmp_path / "run", gradcam=False,
                           calibration=str(tiny_cohort))
    calibration = folder.read_json("metrics")["calibration"]
    assert calibration["temperature"] > 0 and calibration["fitted_on"] > 0
    assert set(calibration["before"]) >= {"ece", "brier", "nll"} and set(calibration["after"]) >= {"ece", "brier"}
    assert calibration["after"]["nll"] <= calibration["before"]["nll"] + 1e-9 or calibration.get("evaluated_on")
    assert folder.read_json("integrity")["score"] >= 70


def test_recalibration_is_refused_when_integrity_is_low(tiny_external_cohort, tiny_checkpoint, tiny_cohort,
                                                        tmp_path, monkeypatch):
    import engine.integrity

    real = engine.integrity.compute_integrity
    monkeypatch.setattr(engine.integrity, "compute_integrity",
                        lambda folder, sidecar: {**real(folder, sidecar), "score": 55.0, "band": "Review required"})
    with pytest.raises(BsxError, match="recalibration refused"):
        validate_tiny(tiny_external_cohort, tiny_checkpoint, tmp_path / "run", gradcam=False,
                      calibration=str(tiny_cohort))


def test_multiclass_model_end_to_end(tiny_cohort, tiny_external_cohort, tmp_path):
    from tests.conftest import train_tiny

    train_tiny(tiny_cohort, tmp_path / "ck", target="multiclass")
    folder = validate_tiny(tiny_external_cohort, tmp_path / "ck", tmp_path / "run", gradcam=False)
    run = folder.run_info()
    predictions = folder.predictions()
    prob_columns = [f"prob_{name}" for name in run["class_names"]]
    assert len(run["class_names"]) > 2 and set(prob_columns) <= set(predictions.columns)
    assert np.allclose(predictions[prob_columns].sum(axis=1), 1.0, atol=1e-5)
    assert np.allclose(predictions[prob_columns].max(axis=1), predictions["p_mean"], atol=1e-6)
    metrics = folder.read_json("metrics")
    assert metrics["task"] == "multiclass" and set(metrics["per_class"]) <= set(run["class_names"])
    assert folder.has("fairness")  # subgroups analysed on the malignant-vs-benign view of the classes


def test_rerunning_a_finished_run_reuses_its_predictions(tiny_external_cohort, tiny_checkpoint, tmp_path,
                                                         monkeypatch):
    import engine.validate

    first = validate_tiny(tiny_external_cohort, tiny_checkpoint, tmp_path / "run", gradcam=False)
    before = first.predictions()

    def no_inference(*args, **kwargs):
        raise AssertionError("inference ran again on a finished run")

    monkeypatch.setattr(engine.validate, "mc_predict", no_inference)
    again = validate_tiny(tiny_external_cohort, tiny_checkpoint, tmp_path / "run", gradcam=False, referral_rate=0.25)
    after = again.predictions()
    pd.testing.assert_frame_equal(before.drop(columns="flagged"), after.drop(columns="flagged"))
    assert after["flagged"].sum() > before["flagged"].sum()
    assert again.run_info()["referral"]["rate"] == 0.25 and again.run_info()["status"] == "complete"
    assert "validate-reuse" in [entry["event"] for entry in again.ledger()]
