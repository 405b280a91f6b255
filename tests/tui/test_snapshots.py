"""SVG snapshots of the layout at 80x24 (pytest-textual-snapshot).

Only deterministic content is shown: the empty workstation, the help screen,
and the Cases pane over a fixed synthetic frame (no temp paths, no clock).
Update with `pytest tests/tui/test_snapshots.py --snapshot-update`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.runfolder import RunFolder
from tui.app import BsxApp
from tui.panes.base import RunData
from tui.widgets.images import select_protocol

SIZE = (80, 24)


@pytest.fixture(autouse=True, scope="module")
def _no_terminal_queries():
    select_protocol("halfcell")


def fixed_run() -> RunData:
    rng = np.random.default_rng(42)
    n = 200
    frame = pd.DataFrame({
        "case_id": [f"SNAP_{i:04d}" for i in range(n)], "truth": rng.integers(0, 2, n).astype(float),
        "p_mean": rng.random(n).round(3), "p_std": (rng.random(n) * 0.1).round(3),
        "entropy": (rng.random(n) * 0.69).round(3), "mutual_info": (rng.random(n) * 0.05).round(3),
        "pred": rng.integers(0, 2, n), "flagged": rng.random(n) < 0.1, "error": [None] * n,
        "site": rng.choice(["A", "B", "C"], n), "sex": rng.choice(["male", "female"], n),
        "age": rng.integers(18, 95, n).astype(float), "skin_type": rng.choice(["I", "II", "III"], n)})
    return RunData(RunFolder(Path("snapshot-run")), {"name": "snapshot-run"}, frame)


def test_empty_workstation(snap_compare) -> None:
    assert snap_compare(BsxApp(), terminal_size=SIZE)


def test_help_screen(snap_compare) -> None:
    assert snap_compare(BsxApp(), terminal_size=SIZE, press=["question_mark"])


def test_cases_pane_sorted_and_filtered(snap_compare) -> None:
    async def open_cases(pilot) -> None:
        pilot.app.query_one("#cases-pane").show_run(fixed_run())
        await pilot.press("3", "right", "right", "s", "s", "f")
        await pilot.pause()

    assert snap_compare(BsxApp(), terminal_size=SIZE, run_before=open_cases)
