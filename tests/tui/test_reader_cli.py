"""`bsx reader ...` in-process: create from a run folder, status, lock, export, analyze (tables and JSON)."""
from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import READER_STUDIES

from engine.readers.study import Study
from tui.cli import main

VANDYKE = READER_STUDIES / "vandyke" / "VanDyke_dataset02.csv"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    n = 20
    pd.DataFrame({
        "case_id": [f"ISIC_{k:03d}" for k in range(n)], "truth": np.arange(n) % 2,
        "p_mean": np.linspace(0.1, 0.9, n), "p_std": 0.05, "flagged": np.arange(n) < 3,
        "image_path": [f"img/{k}.jpg" for k in range(n)], "age": 50, "sex": "f", "site": "a",
        "skin_type": "II", "body_site": "back",
    }).to_parquet(run / "predictions.parquet")
    return run


def test_create_status_lock_export_analyze(run_dir: Path, tmp_path: Path, capsys):
    study_path = tmp_path / "study.sqlite"
    code = main(["reader", "create", "--from", str(run_dir), "--out", str(study_path), "--sample", "10",
                 "--enrich-flagged", "--readers", "ana,ben", "--scale", "1-5", "--seed", "2"])
    assert code == 0
    assert "10 cases (5 malignant, 5 benign)" in " ".join(capsys.readouterr().out.split())
    assert study_path.stat().st_mode & 0o777 == 0o600
    with Study(study_path) as s:
        assert s.settings.scale == "1-5" and s.readers == ["ana", "ben"]
        truth = dict(zip(*zip(*s._con.execute("SELECT case_id, truth FROM cases"))))
        for reader, shift in (("ana", 0), ("ben", 1)):
            for phase in ("unaided", "aided"):
                while (view := s.next_case(reader, phase)) is not None:
                    k = int(view.case_id[-3:])
                    s.rate(reader, view.case_id, phase, 1 + (2 * truth[view.case_id] + (k + shift) % 3))

    assert main(["reader", "status", str(study_path)]) == 0
    status = capsys.readouterr().out
    assert "ana" in status and "aided" in status and "10" in status

    assert main(["reader", "lock", str(study_path), "--phase", "aided"]) == 0
    with Study(study_path) as s:
        assert s.next_case("ana", "aided") is None
    capsys.readouterr()

    csv_out = tmp_path / "ratings.csv"
    assert main(["reader", "export", str(study_path), "--format", "csv", "--out", str(csv_out)]) == 0
    assert "wrote" in capsys.readouterr().out
    frame = pd.read_csv(csv_out)
    assert list(frame.columns) == ["reader", "modality", "case", "truth", "rating"] and len(frame) == 40

    assert main(["reader", "analyze", str(study_path), "--algorithm-reader", "AI", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["modalities"] == ["unaided", "aided"] and doc["readers"] == ["ana", "ben"]
    assert set(doc["auc"]["aided"]) == {"ana", "ben"}
    assert {"rrrc", "frrc", "rrfc"} <= set(doc["comparisons"][0]) and doc["global"]["rrrc"]["df_num"] == 1
    assert {"auc", "mean_reader_auc", "difference", "rrrc", "rrfc"} <= set(doc["algorithm"])

    assert main(["reader", "analyze", "--ratings", str(csv_out)]) == 0
    human = capsys.readouterr().out
    assert "Global test of equal AUC" in human and "RRRC" in human and "not a diagnostic device" in human


def test_create_from_a_run_records_the_study_in_run_json_and_the_ledger(run_dir: Path, tmp_path: Path, capsys):
    from engine.readers.attach import attached_study
    from engine.runfolder import RunFolder

    folder = RunFolder(run_dir)
    folder.write_json("run", {"name": "run", "status": "complete"})
    folder.append_ledger("validate-finished")
    study_path = tmp_path / "elsewhere" / "study.sqlite"
    assert main(["reader", "create", "--from", str(run_dir), "--out", str(study_path), "--readers", "ana,ben"]) == 0
    assert "recorded in" in capsys.readouterr().out
    info = folder.run_info()
    assert info["reader_study"] == str(study_path.resolve()) and info["status"] == "complete"
    entry = folder.ledger()[-1]
    assert entry["event"] == "reader-study-created" and entry["path"] == str(study_path.resolve())
    assert entry["readers"] == ["ana", "ben"] and entry["phases"] == ["unaided", "aided"]
    assert "replaces" not in entry
    assert attached_study(run_dir) == study_path.resolve()

    second = tmp_path / "second.sqlite"
    assert main(["reader", "create", "--from", str(run_dir), "--out", str(second), "--phases", "unaided"]) == 0
    assert folder.ledger()[-1]["replaces"] == str(study_path.resolve())
    second.unlink()  # the recorded file is gone: nothing is attached any more ...
    assert attached_study(run_dir) is None
    beside = run_dir / "reader_study.sqlite"  # ... until a study sits beside the run under the default name
    study_path.rename(beside)
    assert attached_study(run_dir) == beside


def test_create_from_a_bare_predictions_folder_says_it_is_not_recorded(run_dir: Path, tmp_path: Path, capsys):
    assert main(["reader", "create", "--from", str(run_dir), "--out", str(tmp_path / "s.sqlite")]) == 0
    assert "not recorded in a run" in capsys.readouterr().err
    assert not (run_dir / "run.json").exists()


def test_attach_refuses_a_foreign_file_and_leaves_run_json_alone(run_dir: Path, tmp_path: Path):
    from cohorts.errors import BsxError
    from engine.readers.attach import attach_study
    from engine.runfolder import RunFolder

    RunFolder(run_dir).write_json("run", {"name": "run"})
    foreign = tmp_path / "foreign.sqlite"
    foreign.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    with pytest.raises(BsxError):
        attach_study(run_dir, foreign)
    assert RunFolder(run_dir).run_info() == {"name": "run"} and RunFolder(run_dir).ledger() == []


def test_analyze_vandyke_json_matches_published_headline(capsys):
    if not VANDYKE.is_file():
        pytest.skip("shared reader-study data not mounted")
    assert main(["reader", "analyze", "--ratings", str(VANDYKE), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    comp = doc["comparisons"][0]
    assert round(doc["global"]["rrrc"]["f"], 2) == 4.46 and round(doc["global"]["rrrc"]["df_den"], 2) == 15.26
    assert round(comp["rrrc"]["se"], 5) == 0.02075 and round(comp["frrc"]["chi2"], 5) == 5.47595
    assert round(doc["global"]["rrfc"]["p"], 4) == 0.0420


def test_user_errors_exit_2_without_traceback(tmp_path: Path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("reader,modality,case,truth,rating\n1,m,1,0,3\n1,m,2,1,4\n2,m,1,0,2\n")
    assert main(["reader", "analyze", "--ratings", str(bad)]) == 2
    message = capsys.readouterr().err
    assert "incomplete ratings" in message and "Traceback" not in message and "--drop-incomplete" in message
    foreign = tmp_path / "foreign.sqlite"
    foreign.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    assert main(["reader", "status", str(foreign)]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["reader", "analyze"]) == 2
    assert "either a study file or --ratings" in capsys.readouterr().err
    assert main(["reader", "create", "--from", str(tmp_path), "--out", str(tmp_path / "s.sqlite")]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_read_opens_the_reading_pane(monkeypatch, tmp_path: Path):
    calls = []
    fake = types.ModuleType("tui.reading")
    fake.run_reading_app = lambda path, reader, image_protocol=None: calls.append(
        (Path(path), reader, image_protocol)) or 0
    monkeypatch.setitem(sys.modules, "tui.reading", fake)
    assert main(["reader", "read", str(tmp_path / "s.sqlite"), "--reader", "ana", "--image-protocol", "none"]) == 0
    assert calls == [(tmp_path / "s.sqlite", "ana", "none")]


def test_reader_commands_do_not_import_textual():
    import subprocess

    code = ("import sys; from tui.cli import main; "
            f"main(['reader', 'analyze', '--ratings', {str(VANDYKE)!r}, '--json']); "
            "assert 'textual' not in sys.modules, 'textual imported'")
    if not VANDYKE.is_file():
        pytest.skip("shared reader-study data not mounted")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
