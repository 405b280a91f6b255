"""`bsx integrity` and `bsx explain` in-process on a real (tiny) run folder."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from engine.runfolder import RunFolder
from tui.cli import main


@pytest.fixture
def run_dir(tiny_run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(tiny_run, target)
    return target


def run_json(args: list[str], capsys) -> tuple[int, dict]:
    code = main(args + ["--json"])
    return code, json.loads(capsys.readouterr().out)


def check(result: dict, check_id: str) -> dict:
    return next(c for c in result["checks"] if c["id"] == check_id)


def test_json_output_writes_integrity_json_and_gates(run_dir: Path, capsys):
    code, result = run_json(["integrity", str(run_dir)], capsys)
    assert json.loads((run_dir / "integrity.json").read_text()) == result
    assert code == (0 if result["score"] >= 70 else 1)
    assert check(result, "artifacts.hashes")["passed"]
    assert check(result, "artifacts.hashes")["evidence"]["hashes_recorded"] is True
    assert check(result, "coherence.metadata_encoder")["evidence"]["checkable"] is True
    assert check(result, "leakage.training_overlap")["passed"]
    assert RunFolder(run_dir).ledger()[-1]["event"] == "integrity"
    score = result["score"]
    assert main(["integrity", str(run_dir), "--fail-under", str(score), "--json"]) == 0
    assert main(["integrity", str(run_dir), "--fail-under", str(min(score + 0.5, 100.0)), "--json"]) == \
        (0 if score == 100.0 else 1)


def test_table_output_shows_score_band_and_checks(run_dir: Path, capsys):
    code = main(["integrity", str(run_dir), "--fail-under", "0"])
    text = " ".join(capsys.readouterr().out.split())
    result = json.loads((run_dir / "integrity.json").read_text())
    assert code == 0
    assert f"Integrity score {result['score']:g} ({result['band']})" in text
    for item in result["checks"]:
        assert item["id"] in text
    assert "gate passed" in text


def test_tampered_predictions_and_leaked_patients_are_caught(run_dir: Path, tiny_cohort: Path, capsys):
    folder = RunFolder(run_dir)
    predictions = folder.predictions()
    training_patients = pd.read_csv(tiny_cohort / "cohort.csv")["patient_id"].astype(str).tolist()[:3]
    predictions.loc[:2, "patient_id"] = training_patients
    folder.write_predictions(predictions)
    code, result = run_json(["integrity", str(run_dir)], capsys)
    assert not check(result, "artifacts.hashes")["passed"]
    assert check(result, "artifacts.hashes")["evidence"]["mismatched"] == ["predictions.parquet"]
    leakage = check(result, "leakage.training_overlap")
    assert not leakage["passed"] and leakage["evidence"]["overlap"]["patient_id"] == len(set(training_patients))
    assert result["violations"] >= 2
    assert code == (0 if result["score"] >= 70 else 1)


def test_moved_checkpoint_makes_coherence_not_checkable(run_dir: Path, capsys):
    info = json.loads((run_dir / "run.json").read_text())
    info["model"]["path"] = str(run_dir / "no-such-checkpoint")
    RunFolder(run_dir).write_json("run", info)
    code = main(["integrity", str(run_dir), "--fail-under", "0"])
    captured = capsys.readouterr()
    assert code == 0 and "not checkable" in captured.err
    result = json.loads((run_dir / "integrity.json").read_text())
    assert check(result, "coherence.preprocessing")["evidence"] == {"checkable": False}


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "missing", "run folder not found"),
    (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "no run.json"),
])
def test_bad_run_folder_exits_2(tmp_path: Path, capsys, make, message):
    assert main(["integrity", str(make(tmp_path))]) == 2
    assert message in capsys.readouterr().err


def test_fail_under_out_of_range_exits_2(run_dir: Path, capsys):
    assert main(["integrity", str(run_dir), "--fail-under", "150"]) == 2
    assert "--fail-under" in capsys.readouterr().err


def test_explain_command_writes_overlay(run_dir: Path, capsys):
    predictions = RunFolder(run_dir).predictions()
    case_id = str(predictions.loc[predictions["error"].isna(), "case_id"].iloc[0])
    assert main(["explain", str(run_dir), "--case", case_id, "--method", "gradcam++"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "deletion faithfulness" in text and "stability over 8 MC dropout samples" in text
    assert str(RunFolder(run_dir).gradcam_path(case_id)) in text
    assert RunFolder(run_dir).gradcam_path(case_id).is_file()
    assert main(["explain", str(run_dir), "--case", "nope"]) == 2
    assert "not in this run" in capsys.readouterr().err
