"""Integrity score: the formula, the bands, and every check firing on a deliberately broken run.

The run folder here is built by hand (no model) so each test breaks exactly
one thing and can assert that exactly the matching check fails.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest

from cohorts.atomic import atomic_write_text
from engine.integrity import (
    compute_integrity, hash_identifier, integrity_band, integrity_gate, integrity_score,
)
from engine.runfolder import RunFolder, sha256_file

N_CASES, T = 40, 4
ENCODER = {"numeric": ["age"], "categorical": ["sex", "site"], "means": {"age": 52.0}, "stds": {"age": 14.0},
           "vocab": {"sex": ["female", "male"], "site": ["A", "B"]}}
PREPROCESSING = {"image_size": 32, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
ARCHITECTURE = {"backbone": "test_efficientnet", "meta_dim": 5, "n_outputs": 1}
WEIGHTS_SHA = "a" * 64
HASHED_ARTIFACTS = ["predictions.parquet", "mc_samples.npy", "embeddings.npy", "metrics.json", "fairness.csv",
                    "drift.json"]


def short_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def predictions_frame() -> pd.DataFrame:
    k = np.arange(N_CASES)
    p = np.linspace(0.05, 0.95, N_CASES)
    return pd.DataFrame({
        "case_id": [f"C{i:03d}" for i in k], "patient_id": [f"P{i // 2:03d}" for i in k],
        "truth": (k % 2).astype(float), "p_mean": p, "p_std": 0.05, "entropy": 0.5,
        "expected_entropy": 0.4, "mutual_info": 0.1, "pred": (p >= 0.5).astype(int), "flagged": k < 4,
        "error": pd.Series([None] * N_CASES, dtype=object), "lesion_id": [f"L{i:03d}" for i in k],
        "image_path": [f"/images/{i}.jpg" for i in k], "age": 40.0 + k, "sex": np.where(k % 2, "male", "female"),
        "site": np.where(k % 3, "A", "B"), "body_site": "back", "skin_type": "II",
    })


def write_predictions(folder: RunFolder, frame: pd.DataFrame) -> None:
    """Write predictions and the matching mc_samples, as validate would (before hashing)."""
    folder.write_predictions(frame)
    width = json.loads(folder.file("run").read_text())["config"]["mc_samples"] if folder.exists else T
    samples = np.repeat(frame["p_mean"].to_numpy(dtype=np.float32)[:, None], width, axis=1)
    folder.write_array("mc_samples", samples)


def record_hashes(folder: RunFolder) -> None:
    run = folder.run_info()
    run["artifacts"] = {name: sha256_file(folder.path / name) for name in HASHED_ARTIFACTS
                        if (folder.path / name).is_file()}
    folder.write_json("run", run)


def update_run(folder: RunFolder, change: Callable[[dict], None]) -> None:
    run = folder.run_info()
    change(run)
    folder.write_json("run", run)


def write_drift(folder: RunFolder, verdict: str, drifted: list[str]) -> None:
    folder.write_json("drift", {"verdict": verdict, "verdicts": {"metadata": verdict},
                                "metadata": {"drifted_features": drifted}})


@pytest.fixture
def run_folder(tmp_path: Path) -> RunFolder:
    folder = RunFolder(tmp_path / "run").ensure()
    folder.write_json("run", {
        "status": "complete", "task": "binary", "class_names": ["benign", "malignant"],
        "config": {"mc_samples": T, "error_tolerance": 0.05},
        "model": {"path": str(tmp_path / "model"), "sha256": WEIGHTS_SHA, "architecture": ARCHITECTURE,
                  "preprocessing": PREPROCESSING, "metadata_encoder": ENCODER},
        "unseen_categories": {"sex": 0, "site": 0},
    })
    write_predictions(folder, predictions_frame())
    folder.write_array("embeddings", np.zeros((N_CASES, 8), dtype=np.float32))
    folder.write_json("metrics", {"overall": {"auc": {"value": 0.8}}})
    folder.write_fairness(pd.DataFrame({"attribute": ["overall", "site", "site"], "group": ["all", "A", "B"],
                                        "n": [40, 26, 14], "estimable": [True, True, True],
                                        "note": ["", "", ""]}))
    write_drift(folder, "no drift", [])
    folder.append_ledger("validate-start")
    folder.append_ledger("validate-end")
    record_hashes(folder)
    return folder


@pytest.fixture
def sidecar() -> dict:
    return {"task": "binary", "class_names": ["benign", "malignant"], "architecture": dict(ARCHITECTURE),
            "preprocessing": json.loads(json.dumps(PREPROCESSING)), "weights_sha256": WEIGHTS_SHA,
            "metadata_encoder": json.loads(json.dumps(ENCODER)),
            "training_patient_ids": {"patient_id": sorted(short_hash(f"TRAIN-P{i}") for i in range(30)),
                                     "lesion_id": sorted(short_hash(f"TRAIN-L{i}") for i in range(30)),
                                     "case_id": sorted(short_hash(f"TRAIN-C{i}") for i in range(30))}}


def failed(result: dict) -> set[str]:
    return {c["id"] for c in result["checks"] if not c["passed"]}


def check(result: dict, check_id: str) -> dict:
    return next(c for c in result["checks"] if c["id"] == check_id)


# -- formula and bands -------------------------------------------------------------
@pytest.mark.parametrize("violations, warnings, score", [
    (0, 0, 100.0), (1, 0, 85.0), (0, 1, 97.5), (2, 3, 62.5), (0, 4, 90.0), (6, 3, 2.5), (7, 0, 0.0),
    (10, 10, 0.0),
])
def test_score_formula_clamps_to_0_100(violations, warnings, score):
    assert integrity_score(violations, warnings) == score


@pytest.mark.parametrize("score, band", [
    (100, "High"), (90, "High"), (89.99, "Stable"), (87.5, "Stable"), (70, "Stable"),
    (69.99, "Review required"), (0, "Review required"),
])
def test_bands(score, band):
    assert integrity_band(score) == band


def test_gate():
    assert integrity_gate({"score": 70.0}, 70)
    assert not integrity_gate({"score": 67.5}, 70)
    assert integrity_gate({"score": 67.5}, 60)
    assert not integrity_gate({}, 0)


def test_hash_identifier_matches_training_side():
    assert hash_identifier("P001") == hashlib.sha256(b"P001").hexdigest()[:16]


# -- a clean run --------------------------------------------------------------------
def test_clean_run_scores_100_and_lists_every_check(run_folder, sidecar):
    result = compute_integrity(run_folder, sidecar)
    assert set(result) == {"score", "band", "violations", "warnings", "checks"}
    assert (result["score"], result["band"], result["violations"], result["warnings"]) == (100.0, "High", 0, 0)
    assert failed(result) == set()
    ids = [c["id"] for c in result["checks"]]
    assert len(ids) == len(set(ids)) == 19
    for item in result["checks"]:
        assert set(item) == {"id", "severity", "passed", "message", "evidence"}
        assert item["severity"] in {"violation", "warning"} and isinstance(item["evidence"], dict)
    assert check(result, "artifacts.hashes")["evidence"]["hashes_recorded"] is True
    json.dumps(result, allow_nan=False)


def test_without_recorded_hashes_only_presence_is_checked(run_folder, sidecar):
    update_run(run_folder, lambda run: run.pop("artifacts"))
    result = compute_integrity(run_folder, sidecar)
    hashes = check(result, "artifacts.hashes")
    assert hashes["passed"] and hashes["evidence"]["hashes_recorded"] is False
    assert "presence" in hashes["message"]


def test_without_sidecar_coherence_and_leakage_are_not_checkable(run_folder, sidecar):
    sidecar["metadata_encoder"]["vocab"]["sex"] = ["x"]  # would fail if it were looked at
    result = compute_integrity(run_folder, None)
    for check_id in ("coherence.model", "coherence.metadata_encoder", "coherence.preprocessing",
                     "leakage.training_overlap"):
        item = check(result, check_id)
        assert item["passed"] and item["evidence"]["checkable"] is False
        assert item["message"].startswith("not checkable")
    assert result["score"] == 100.0


# -- every violation ---------------------------------------------------------------
def tamper_predictions(folder: RunFolder, sidecar: dict) -> None:
    frame = folder.predictions()
    frame.loc[3, "p_mean"] = 0.5  # a plausible edit after the hashes were recorded
    folder.write_predictions(frame)


def remove_embeddings(folder: RunFolder, sidecar: dict) -> None:
    folder.file("embeddings").unlink()


def remove_run_json(folder: RunFolder, sidecar: dict) -> None:
    folder.file("run").unlink()


def ledger_goes_back_in_time(folder: RunFolder, sidecar: dict) -> None:
    earlier = (datetime.now(timezone.utc) - timedelta(days=1)).isoformat()
    with open(folder.file("ledger"), "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"time": earlier, "event": "forged"}) + "\n")
    folder.append_ledger("after-forgery")


def rehashed(change: Callable[[pd.DataFrame], None]) -> Callable[[RunFolder, dict], None]:
    """Change the predictions before the hashes are recorded: only the data check should fail."""
    def mutate(folder: RunFolder, sidecar: dict) -> None:
        frame = folder.predictions()
        change(frame)
        write_predictions(folder, frame)
        record_hashes(folder)
    return mutate


def set_value(column: str, row: int, value) -> Callable[[pd.DataFrame], None]:
    def change(frame: pd.DataFrame) -> None:
        frame.loc[row, column] = value
    return change


def many_errors(frame: pd.DataFrame) -> None:
    for row in (1, 2, 3):  # 3/40 = 7.5% > 5%
        frame.loc[row, "error"] = "image could not be decoded"
        frame.loc[row, "p_mean"] = np.nan


def sidecar_change(change: Callable[[dict], None]) -> Callable[[RunFolder, dict], None]:
    def mutate(folder: RunFolder, sidecar: dict) -> None:
        change(sidecar)
    return mutate


def one_mc_sample(folder: RunFolder, sidecar: dict) -> None:
    update_run(folder, lambda run: run["config"].update(mc_samples=1))
    write_predictions(folder, folder.predictions())  # width 1, so only the uncertainty check fails
    record_hashes(folder)


def wrong_mc_width(folder: RunFolder, sidecar: dict) -> None:
    folder.write_array("mc_samples", np.full((N_CASES, T - 1), 0.5, dtype=np.float32))
    record_hashes(folder)


def leak_patients(folder: RunFolder, sidecar: dict) -> None:
    sidecar["training_patient_ids"]["patient_id"] += [short_hash("P000"), short_hash("P007")]
    sidecar["training_patient_ids"]["lesion_id"] += [short_hash("L005")]


VIOLATIONS = {
    "tampered file after hashing": (tamper_predictions, {"artifacts.hashes"}),
    "required artifact missing": (remove_embeddings, {"artifacts.present", "artifacts.hashes"}),
    "non-monotonic ledger": (ledger_goes_back_in_time, {"ledger.monotonic"}),
    "NaN probability": (rehashed(set_value("p_mean", 5, np.nan)), {"data.missing_predictions"}),
    "probability above 1": (rehashed(set_value("p_mean", 5, 1.2)), {"data.probabilities"}),
    "negative probability": (rehashed(set_value("p_mean", 6, -0.1)), {"data.probabilities"}),
    "infinite probability": (rehashed(set_value("p_mean", 7, np.inf)), {"data.probabilities"}),
    "duplicate case id": (rehashed(set_value("case_id", 9, "C008")), {"data.duplicate_ids"}),
    "error rate above tolerance": (rehashed(many_errors), {"data.error_rate"}),
    "metadata schema mismatch": (sidecar_change(lambda s: s["metadata_encoder"].update(categorical=["sex"])),
                                 {"coherence.metadata_encoder"}),
    "vocabulary mismatch": (sidecar_change(lambda s: s["metadata_encoder"]["vocab"].update(site=["A", "B", "C"])),
                            {"coherence.metadata_encoder"}),
    "image size mismatch": (sidecar_change(lambda s: s["preprocessing"].update(image_size=224)),
                            {"coherence.preprocessing"}),
    "normalisation mismatch": (sidecar_change(lambda s: s["preprocessing"].update(mean=[0.5, 0.5, 0.5])),
                               {"coherence.preprocessing"}),
    "other weights": (sidecar_change(lambda s: s.update(weights_sha256="b" * 64)), {"coherence.model"}),
    "one MC sample with uncertainty": (one_mc_sample, {"coherence.mc_uncertainty"}),
    "mc_samples width": (wrong_mc_width, {"coherence.mc_samples_shape"}),
    "leakage": (leak_patients, {"leakage.training_overlap"}),
}


@pytest.mark.parametrize("mutate, expected", VIOLATIONS.values(), ids=VIOLATIONS.keys())
def test_each_violation_fires_alone(run_folder, sidecar, mutate, expected):
    mutate(run_folder, sidecar)
    result = compute_integrity(run_folder, sidecar)
    assert failed(result) == expected
    assert all(check(result, c)["severity"] == "violation" for c in expected)
    assert result["violations"] == len(expected) and result["warnings"] == 0
    assert result["score"] == 100 - 15 * len(expected)


def test_missing_run_json_is_a_violation_not_a_crash(run_folder, sidecar):
    remove_run_json(run_folder, sidecar)
    result = compute_integrity(run_folder, sidecar)
    present = check(result, "artifacts.present")
    assert not present["passed"] and "run.json" in present["evidence"]["missing"]
    assert result["score"] < 70 and result["band"] == "Review required"


def test_missing_predictions_fail_the_data_checks(run_folder, sidecar):
    run_folder.file("predictions").unlink()
    result = compute_integrity(run_folder, sidecar)
    for check_id in ("data.probabilities", "data.duplicate_ids", "data.missing_predictions", "data.error_rate"):
        assert not check(result, check_id)["passed"]
        assert check(result, check_id)["evidence"]["checkable"] is False


def test_errored_cases_need_no_prediction(run_folder, sidecar):
    update_run(run_folder, lambda run: run["config"].update(error_tolerance=0.1))
    rehashed(many_errors)(run_folder, sidecar)
    result = compute_integrity(run_folder, sidecar)
    assert failed(result) == set()
    assert check(result, "data.error_rate")["evidence"]["errors"] == 3


def test_leakage_evidence_names_the_overlap(run_folder, sidecar):
    leak_patients(run_folder, sidecar)
    evidence = check(compute_integrity(run_folder, sidecar), "leakage.training_overlap")["evidence"]
    assert evidence["overlap"] == {"patient_id": 2, "lesion_id": 1}
    assert evidence["examples"]["patient_id"] == ["P000", "P007"]


def test_ledger_evidence_names_the_line(run_folder, sidecar):
    ledger_goes_back_in_time(run_folder, sidecar)
    evidence = check(compute_integrity(run_folder, sidecar), "ledger.monotonic")["evidence"]
    assert evidence["out_of_order_lines"] == [3]


# -- every warning -----------------------------------------------------------------
def thin_subgroup(folder: RunFolder, sidecar: dict) -> None:
    table = folder.fairness()
    table["note"] = ["", "", "not estimable: n=14 < min_size=30"]
    table["estimable"] = [True, True, False]
    folder.write_fairness(table)
    record_hashes(folder)


def no_field(column: str) -> Callable[[pd.DataFrame], None]:
    def change(frame: pd.DataFrame) -> None:
        frame[column] = None
    return change


def rare_positives(frame: pd.DataFrame) -> None:
    frame["truth"] = 0.0
    frame.loc[0, "truth"] = 1.0  # 1/40 = 2.5%


def unlabelled(frame: pd.DataFrame) -> None:
    frame.loc[[4, 5], "truth"] = np.nan


def drifted(folder: RunFolder, sidecar: dict) -> None:
    write_drift(folder, "partial drift", ["age"])
    record_hashes(folder)


def unseen(folder: RunFolder, sidecar: dict) -> None:
    update_run(folder, lambda run: run["unseen_categories"].update(site=3))


WARNINGS = {
    "subgroup below minimum size": (thin_subgroup, "subgroups.min_size"),
    "no skin type": (rehashed(no_field("skin_type")), "fields.optional"),
    "no site": (rehashed(no_field("site")), "fields.optional"),
    "extreme prevalence": (rehashed(rare_positives), "labels.prevalence"),
    "unlabelled cases": (rehashed(unlabelled), "labels.unlabelled"),
    "drift flagged": (drifted, "drift.flagged"),
    "unseen categories": (unseen, "metadata.unseen_categories"),
}


@pytest.mark.parametrize("mutate, expected", WARNINGS.values(), ids=WARNINGS.keys())
def test_each_warning_fires_alone(run_folder, sidecar, mutate, expected):
    mutate(run_folder, sidecar)
    result = compute_integrity(run_folder, sidecar)
    assert failed(result) == {expected}
    assert check(result, expected)["severity"] == "warning"
    assert (result["violations"], result["warnings"], result["score"]) == (0, 1, 97.5)


def test_drift_evidence_and_no_reference(run_folder, sidecar):
    drifted(run_folder, sidecar)
    item = check(compute_integrity(run_folder, sidecar), "drift.flagged")
    assert item["evidence"]["drifted"] == ["age"] and "age" in item["message"]
    run_folder.write_json("drift", {"status": "no reference", "note": "no reference given"})
    record_hashes(run_folder)
    item = check(compute_integrity(run_folder, sidecar), "drift.flagged")
    assert item["passed"] and item["evidence"]["checkable"] is False


def test_violations_and_warnings_add_up(run_folder, sidecar):
    leak_patients(run_folder, sidecar)
    drifted(run_folder, sidecar)
    unseen(run_folder, sidecar)
    ledger_goes_back_in_time(run_folder, sidecar)
    result = compute_integrity(run_folder, sidecar)
    assert (result["violations"], result["warnings"]) == (2, 2)
    assert result["score"] == 65.0 and result["band"] == "Review required"
    assert not integrity_gate(result, 70)


def test_unreadable_ledger_line_fails(run_folder, sidecar):
    with open(run_folder.file("ledger"), "a", encoding="utf-8") as handle:
        handle.write("{not json\n")
    item = check(compute_integrity(run_folder, sidecar), "ledger.monotonic")
    assert not item["passed"] and item["evidence"]["unreadable_lines"] == [3]


def test_damaged_predictions_are_reported_unreadable(run_folder, sidecar):
    atomic_write_text(run_folder.file("predictions"), "not parquet")
    present = check(compute_integrity(run_folder, sidecar), "artifacts.present")
    assert not present["passed"] and "predictions.parquet" in present["evidence"]["unreadable"]
