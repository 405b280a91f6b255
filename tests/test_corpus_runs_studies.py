"""Damaged run folders and study files: exit 2 with a message naming the file (or a documented
'unreadable' listing), no traceback, the damaged input left as it was."""
from __future__ import annotations

import pytest

from tests.corpus.make_corpus import CorpusCase, corpus_params, fake_run, real_study, run_case
from tui.cli import main

CASES = corpus_params(("run", "study"))


@pytest.mark.parametrize("case", CASES)
def test_damaged_run_or_study(case: CorpusCase):
    assert run_case(case) == []


def test_intact_inputs_are_accepted(tmp_path, capsys):
    """Control: the same commands succeed on undamaged files, so the failures above come from the damage."""
    run = fake_run(tmp_path / "runs" / "r1")
    assert main(["runs", "list", str(tmp_path / "runs"), "--json"]) == 0
    assert '"complete"' in capsys.readouterr().out
    assert main(["reader", "create", "--from", str(run), "--out", str(tmp_path / "s.sqlite")]) == 0
    study = real_study(tmp_path / "study.sqlite")
    assert main(["reader", "status", str(study)]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_study_and_run_files_are_owner_only(tmp_path):
    run = fake_run(tmp_path / "run")
    study = real_study(tmp_path / "study.sqlite")
    for path in [run, *run.iterdir(), study]:
        assert path.stat().st_mode & 0o077 == 0, path
