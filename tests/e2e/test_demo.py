"""`make demo`'s pipeline, headless: the demo model really learns, and a second run reuses everything."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from tui.demo import main as demo


@pytest.mark.slow
def test_demo_builds_a_useful_model_and_a_complete_run(tmp_path):
    assert demo(["--dir", str(tmp_path), "--no-tui"]) == 0
    history = pd.read_csv(tmp_path / "model" / "metrics.csv")
    assert history["val_auc"].max() > 0.8  # held-out patients, efficientnet_b0 from random init
    run = tmp_path / "runs" / "external"
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and (run / "report.pdf").is_file()
    drift = json.loads((run / "drift.json").read_text())
    assert set(drift["verdicts"]) == {"metadata", "prediction", "embedding"}
    assert "calibration" in json.loads((run / "metrics.json").read_text())
    assert info["reader_study"].endswith("reader_study.sqlite")  # simulated readers, attached to the run
    weights = (tmp_path / "model" / "model.safetensors").stat().st_mtime_ns
    ledger = (run / "ledger.jsonl").read_text()
    assert demo(["--dir", str(tmp_path), "--no-tui"]) == 0
    # Cached model and runs: nothing is retrained or revalidated.
    assert (tmp_path / "model" / "model.safetensors").stat().st_mtime_ns == weights
    assert (run / "ledger.jsonl").read_text() == ledger
