"""The Readers pane and the Case pane's ratings, over a run whose study was made by `bsx reader create`.

Pilot at 80x24 on a copy of the tiny run: progress per reader and phase,
locking with the pane's keys (checked in the study file itself), the MRMC
summary once the phases are finished (checked against `Study.analyze`),
reading from the pane through the shared reading screen, and a damaged
study reaching the user as a modal.
"""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from engine.readers.study import Study
from tui.app import BsxApp
from tui.cli import main
from tui.panes.readers import ReadersPane
from tui.reading import ReadingScreen
from tui.screens.error import ErrorScreen
from tui.widgets.images import select_protocol

SIZE = (80, 24)
HOSTILE_NOTE = "[bold red]not markup[/bold red]"
pytestmark = pytest.mark.asyncio


@pytest.fixture(autouse=True, scope="module")
def _no_terminal_queries():
    select_protocol("halfcell")


@pytest.fixture
def study_run(tiny_run: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the tiny run with a 12-case, two-reader, 1-5 study attached by the CLI."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    study = tmp_path / "studies" / "study.sqlite"
    assert main(["reader", "create", "--from", str(run), "--out", str(study), "--readers", "ana,ben",
                 "--sample", "12", "--scale", "1-5", "--seed", "4"]) == 0
    return run, study


def text_of(app: BsxApp, selector: str) -> str:
    widget = app.screen.query_one(selector)
    console = Console(file=io.StringIO(), width=200, record=True, color_system=None)
    console.print(widget.content)
    return console.export_text()


def progress_rows(app: BsxApp) -> list[list[str]]:
    table = app.query_one("#readers-progress")
    return [[str(cell) for cell in table.get_row_at(k)] for k in range(table.row_count)]


async def settle(app: BsxApp, pilot) -> None:
    """Let the study worker finish and its messages land."""
    await app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


def score(study: Study, reader: str, case_id: str, phase: str) -> int:
    """Informative but imperfect, different per reader and phase, so the AUCs are neither 0.5 nor 1."""
    (truth,) = study._con.execute("SELECT truth FROM cases WHERE case_id = ?", (case_id,)).fetchone()
    wobble = (sum(map(ord, case_id + reader + phase)) % 3) - 1
    return int(np.clip(2 + 2 * truth + wobble, 1, 5))


def rate(path: Path, reader: str, phase: str, limit: int | None = None, note: str | None = None) -> list[str]:
    rated = []
    with Study(path) as study:
        while (limit is None or len(rated) < limit) and (view := study.next_case(reader, phase)) is not None:
            study.rate(reader, view.case_id, phase, score(study, reader, view.case_id, phase), diagnosis="nevus",
                       management="no biopsy", note=note, seconds=3.0)
            rated.append(view.case_id)
    return rated


async def test_progress_lock_keys_and_analysis(study_run) -> None:
    run, study_path = study_run
    rate(study_path, "ana", "unaided", limit=3)
    app = BsxApp(run)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("0")
        await settle(app, pilot)
        assert app.query_one("#panes").active == "readers"
        assert app.focused is app.query_one("#readers-progress")
        assert all(tab.region.right <= SIZE[0] and tab.region.width > 0 for tab in app.query("Tab"))
        study = text_of(app, "#readers-study")
        assert str(study_path.resolve()) in study
        assert "unaided, aided" in study and "scale 1-5" in study and "12 cases" in study and "2 readers" in study
        assert progress_rows(app) == [["ana", "unaided", "3 of 12", "9", "reading"],
                                      ["ana", "aided", "0 of 12", "3", "not started"],
                                      ["ben", "unaided", "0 of 12", "12", "not started"],
                                      ["ben", "aided", "0 of 12", "0", "not started"]]
        assert "waiting for ana, ben" in " ".join(text_of(app, "#readers-analysis").split())

        await pilot.press("down", "l")  # the highlighted row is ana / aided: lock the aided phase
        await settle(app, pilot)
        with Study(study_path) as s:
            assert {(p.phase, p.locked) for p in s.progress()} == {("unaided", False), ("aided", True)}
        assert [row[4] for row in progress_rows(app)] == ["reading", "locked", "not started", "locked"]
        assert "aided (locked)" in text_of(app, "#readers-study")
        await pilot.press("u")
        await settle(app, pilot)
        with Study(study_path) as s:
            assert not any(p.locked for p in s.progress())

        rate(study_path, "ana", "unaided")
        rate(study_path, "ben", "unaided")
        await pilot.press("r")
        await settle(app, pilot)
        one_phase = " ".join(text_of(app, "#readers-analysis").split())
        assert "Analysed: unaided" in one_phase and "not yet: aided" in one_phase
        assert "no comparison between phases" in one_phase

        rate(study_path, "ana", "aided")
        rate(study_path, "ben", "aided")
        await pilot.press("r")
        await settle(app, pilot)
        with Study(study_path) as s:
            doc = s.analyze().to_json()
        summary = text_of(app, "#readers-analysis")
        assert "Analysed: unaided, aided" in summary and "not yet" not in summary
        for modality in ("unaided", "aided"):
            assert f"{doc['mean_auc'][modality]:.3f}" in summary
            for reader in ("ana", "ben"):
                assert f"{doc['auc'][modality][reader]:.3f}" in summary
        comparison = doc["comparisons"][0]
        assert f"unaided − aided: {comparison['difference']:+.3f}" in summary
        low, high = comparison["rrrc"]["ci"]
        assert f"95% CI {low:+.3f} to {high:+.3f}" in summary and "RRRC" in summary
        assert progress_rows(app)[0][2:] == ["12 of 12", "0", "done"]


async def test_case_pane_shows_every_readers_ratings(study_run) -> None:
    run, study_path = study_run
    rated = rate(study_path, "ana", "unaided", limit=2, note=HOSTILE_NOTE)
    with Study(study_path) as s:
        s.rate("ben", rated[0], "unaided", 5, diagnosis="melanoma", management="biopsy", seconds=7.0)
        in_study = set(s.case_ids())
        unrated = next(c for c in s.case_ids() if c not in rated)
    outside = next(c for c in app_case_ids(run) if c not in in_study)
    app = BsxApp(run)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.show_case(rated[0])
        await pilot.pause()
        ratings = text_of(app, "#case-ratings")
        assert "reader ratings (2)" in ratings
        assert "ana: " in ratings and "ben: 5" in ratings and "melanoma, biopsy, 7 s" in ratings
        assert HOSTILE_NOTE in ratings  # shown as typed, never parsed as markup
        app.show_case(unrated)
        await pilot.pause()
        assert "no ratings yet" in text_of(app, "#case-ratings")
        app.show_case(outside)
        await pilot.pause()
        assert "not in the reader study" in text_of(app, "#case-ratings")


def app_case_ids(run: Path) -> list[str]:
    from engine.runfolder import RunFolder

    return [str(c) for c in RunFolder(run).predictions()["case_id"]]


async def test_run_without_a_study_says_so(tiny_run: Path) -> None:
    app = BsxApp(tiny_run)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("0")
        await pilot.pause()
        assert "No reader study attached" in text_of(app, "#readers-study")
        await pilot.press("l")  # nothing to lock: a warning, not a crash
        await pilot.pause()
        assert app.query_one("#panes").active == "readers"
        app.show_case(app_case_ids(tiny_run)[0])
        await pilot.pause()
        assert "no reader study attached" in text_of(app, "#case-ratings")


async def test_reading_from_the_pane_uses_the_reading_screen(study_run) -> None:
    run, study_path = study_run
    app = BsxApp(run)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("0")
        await settle(app, pilot)
        await pilot.press("down", "down", "s")  # ben / unaided
        await pilot.pause()
        assert isinstance(app.screen, ReadingScreen) and app.screen.reader == "ben"
        await pilot.press("9", "0", "o")  # not on a 1-5 scale, and no workstation key acts underneath
        await pilot.pause()
        assert isinstance(app.screen, ReadingScreen) and app.query_one("#panes").active == "readers"
        assert not any(isinstance(s, ErrorScreen) for s in app.screen_stack)
        await pilot.press("4", "d", "2", "n", "enter")
        await pilot.pause()
        await pilot.press("q")
        await settle(app, pilot)
        assert not isinstance(app.screen, ReadingScreen)
        with Study(study_path) as s:
            assert [(r.phase, r.value) for r in s.ratings_of("ben")] == [("unaided", 4.0)]
        assert progress_rows(app)[2][:3] == ["ben", "unaided", "1 of 12"]


async def test_damaged_study_shows_the_error_modal(study_run) -> None:
    run, study_path = study_run
    study_path.write_bytes(b"SQLite format 3\x00" + b"\x07" * 300)
    app = BsxApp(run)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, ErrorScreen)
        assert "study" in text_of(app, "#error-message")
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("0")
        await pilot.pause()
        assert "cannot be read" in text_of(app, "#readers-study")
        pane = app.query_one("#readers-pane", ReadersPane)
        assert pane.state is None and pane.analysis is None
        app.show_case(app_case_ids(run)[0])
        await pilot.pause()
        assert "cannot be read" in text_of(app, "#case-ratings")
