"""The headless commands end to end: validate --json, runs list, drift, train --mlflow."""
from __future__ import annotations

import json
import sys
import types


from tui.cli import main


def test_validate_json_and_runs_list(tiny_external_cohort, tiny_checkpoint, tiny_cohort, tmp_path, capsys):
    out = tmp_path / "runs" / "ext"
    code = main(["validate", "--cohort", str(tiny_external_cohort), "--checkpoint", str(tiny_checkpoint),
                 "--out", str(out), "--mc-samples", "3", "--workers", "0", "--n-boot", "30", "--no-gradcam",
                 "--reference", str(tiny_cohort), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    metrics = json.loads(captured.out)
    assert metrics["overall"]["auc"]["method"] == "delong" and metrics["n_cases"] == 48
    assert main(["runs", "list", str(tmp_path / "runs"), "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in runs] == ["ext"] and runs[0]["status"] == "complete"


def test_validate_pdf_writes_the_report(tiny_external_cohort, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["validate", "--cohort", str(tiny_external_cohort), "--checkpoint", str(tiny_checkpoint),
                 "--out", str(out), "--mc-samples", "2", "--workers", "0", "--n-boot", "20", "--no-gradcam", "--pdf"])
    assert code == 0, capsys.readouterr().err
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF") and (out / "report_data").is_dir()


def test_validate_usage_errors_exit_2_without_traceback(tiny_external_cohort, tmp_path, capsys):
    code = main(["validate", "--cohort", str(tiny_external_cohort), "--checkpoint", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "not found" in err and "Traceback" not in err


def test_drift_between_two_cohorts(tiny_cohort, tiny_external_cohort, tmp_path, capsys):
    out = tmp_path / "drift.json"
    assert main(["drift", "--ref", str(tiny_cohort), "--cur", str(tiny_external_cohort), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert "age" in report["metadata"]["features"] and "source_row" not in report["metadata"]["features"]
    assert report["metadata"]["features"]["age"]["drift"]  # the external cohort is the "older" shift
    assert "Drift" in capsys.readouterr().out


def test_train_mlflow_logs_params_metrics_and_checkpoint(tiny_cohort, tmp_path, monkeypatch):
    calls: dict[str, list] = {"params": [], "metrics": [], "artifacts": [], "end": []}
    fake = types.SimpleNamespace(
        set_tracking_uri=lambda uri: None, start_run=lambda run_name: None,
        log_params=lambda params: calls["params"].append(params),
        log_metrics=lambda metrics, step: calls["metrics"].append((step, metrics)),
        log_artifact=lambda path: calls["artifacts"].append(path), end_run=lambda status: calls["end"].append(status))
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    code = main(["train", "--cohort", str(tiny_cohort), "--out", str(tmp_path / "ck"), "--epochs", "1",
                 "--image-size", "32", "--backbone", "test_efficientnet", "--batch-size", "8", "--workers", "0",
                 "--mlflow", "--progress", "jsonl"])
    assert code == 0
    assert calls["params"][0]["backbone"] == "test_efficientnet"
    assert calls["metrics"][0][0] == 1 and "val_auc" in calls["metrics"][0][1]
    assert any(path.endswith("model.safetensors") for path in calls["artifacts"]) and calls["end"] == ["FINISHED"]


def test_train_mlflow_missing_is_a_clear_error(tiny_cohort, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow raises ImportError
    code = main(["train", "--cohort", str(tiny_cohort), "--out", str(tmp_path / "ck"), "--mlflow"])
    err = capsys.readouterr().err
    assert code == 2 and "biosignal-x[mlflow]" in err and "Traceback" not in err


def test_subgroup_settings_reach_the_fairness_table(tiny_external_cohort, tiny_checkpoint, tmp_path, capsys):
    import pandas as pd

    out = tmp_path / "run"
    code = main(["validate", "--cohort", str(tiny_external_cohort), "--checkpoint", str(tiny_checkpoint),
                 "--out", str(out), "--mc-samples", "2", "--workers", "0", "--n-boot", "20", "--no-gradcam",
                 "--reference-group", "sex=female", "--age-edges", "0,50,120", "--min-subgroup-size", "5"])
    assert code == 0, capsys.readouterr().err
    table = pd.read_csv(out / "fairness.csv")
    sex = table[table["attribute"] == "sex"]
    assert set(sex.loc[sex["is_reference"], "group"]) == {"female"}
    assert set(table.loc[table["attribute"] == "age_band", "group"]) <= {"0-49", "50-119"}
    assert main(["validate", "--cohort", str(tiny_external_cohort), "--checkpoint", str(tiny_checkpoint),
                 "--out", str(tmp_path / "bad"), "--age-edges", "60,20"]) == 2
