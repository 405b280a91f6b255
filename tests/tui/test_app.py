"""The workstation driven by the Pilot at 80x24 over a real (tiny) run folder."""
from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from tests.conftest import tiny_validate_config
from tui.app import PANES, BsxApp, pane_key
from tui.screens.error import ErrorScreen
from tui.screens.help import HelpScreen
from tui.widgets.cases_table import CasesTable, misclassified_mask
from tui.widgets.images import select_protocol

SIZE = (80, 24)
pytestmark = pytest.mark.asyncio


@pytest.fixture(autouse=True, scope="module")
def _no_terminal_queries():
    select_protocol("halfcell")


def text_of(app: BsxApp, selector: str) -> str:
    """What a Static shows, as plain text (tables and groups included)."""
    widget = app.screen.query_one(selector)
    console = Console(file=io.StringIO(), width=200, record=True, color_system=None)
    console.print(widget.content)
    return console.export_text()


async def test_open_run_and_switch_every_pane(tiny_run: Path) -> None:
    app = BsxApp(tiny_run)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        tabs = app.query_one("#panes")
        assert tabs.active == "run"
        assert tiny_run.name in text_of(app, "#run-summary")
        # all ten pane names fit in the first screen's tab row
        labels = [str(tab.label) for tab in app.query("Tab")]
        assert labels == [label for _, label, _, _ in PANES] and len(labels) == 10
        assert all(tab.region.right <= SIZE[0] and tab.region.width > 0 for tab in app.query("Tab"))
        for number, (pane_id, *_rest) in enumerate(PANES, start=1):
            await pilot.press(pane_key(number))
            await pilot.pause()
            assert tabs.active == pane_id
        assert "cases" in text_of(app, "#cohort-summary")
        assert "48 of 48 cases" in text_of(app, "#cases-status")
        assert "AUC" in text_of(app, "#perf-headline")
        assert app.query_one("#fair-table").row_count >= 2
        assert "verdict" in text_of(app, "#drift-verdict") or "no reference" in text_of(app, "#drift-verdict")
        integrity = text_of(app, "#integrity-score")
        assert "integrity" in integrity and any(b in integrity for b in ("High", "Stable", "Review required"))
        assert app.query_one("#integrity-checks").row_count > 0
        assert app.query_one("#integrity-ledger").row_count > 0
        assert "No reader study attached" in text_of(app, "#readers-study")


async def test_help_screen_lists_action_ids(tiny_run: Path) -> None:
    app = BsxApp(tiny_run)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        help_text = text_of(app, "#help-text")
        for action_id in ("app.pane.cases", "app.open", "app.validate", "cases.sort", "cases.filter_flagged"):
            assert action_id in help_text
        await pilot.press("q")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_sort_filter_and_open_case(tiny_run: Path) -> None:
    app = BsxApp(tiny_run)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.pause()
        table = app.query_one(CasesTable)
        assert app.focused is table
        frame = table.frame
        # move to the p_mean column and sort ascending, then descending
        await pilot.press("right", "right", "s")
        await pilot.pause()
        values = frame["p_mean"].to_numpy()[table.view]
        assert table.sort_key == "p_mean" and not table.descending
        assert np.all(np.diff(values[~np.isnan(values)]) >= 0)
        await pilot.press("s")
        await pilot.pause()
        values = frame["p_mean"].to_numpy()[table.view]
        assert table.descending and np.all(np.diff(values[~np.isnan(values)]) <= 0)
        assert "sorted by p_mean desc" in text_of(app, "#cases-status")

        await pilot.press("f")
        await pilot.pause()
        n_flagged = int(frame["flagged"].sum())
        assert len(table.view) == n_flagged
        assert frame["flagged"].to_numpy()[table.view].all()
        await pilot.press("f", "m")
        await pilot.pause()
        assert len(table.view) == int(misclassified_mask(frame).sum())
        await pilot.press("m")

        wanted = str(frame["case_id"].iloc[5])
        await pilot.press("slash")
        await pilot.press(*wanted)
        await pilot.press("enter")  # submits the search, focus back on the table
        await pilot.pause()
        assert [str(c) for c in frame["case_id"].to_numpy()[table.view]] == [wanted]
        assert app.focused is table
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one("#panes").active == "case"
        assert wanted in text_of(app, "#case-title")
        prediction = text_of(app, "#case-prediction")
        assert "p_mean" in prediction and "entropy" in prediction


async def test_subgroup_filter(tiny_run: Path) -> None:
    app = BsxApp(tiny_run)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        pane = app.query_one("#cases-pane")
        table = app.query_one(CasesTable)
        site = str(table.frame["site"].dropna().iloc[0])
        pane.query_one("#cases-subgroup").value = f"site\x1f{site}"
        await pilot.pause()
        assert len(table.view) == int((table.frame["site"] == site).sum())
        assert (table.frame["site"].to_numpy()[table.view] == site).all()
        await pilot.press("x")
        await pilot.pause()
        assert len(table.view) == len(table.frame)


async def test_open_cohort(tiny_cohort: Path) -> None:
    app = BsxApp(tiny_cohort)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.query_one("#panes").active == "cohort"
        summary = text_of(app, "#cohort-summary")
        assert "60 (" in summary and "format" in summary
        assert app.query_one("#run-cohort").value == str(tiny_cohort)


async def test_bad_paths_show_a_modal_not_a_crash(tmp_path: Path) -> None:
    broken = tmp_path / "broken_run"
    broken.mkdir()
    (broken / "run.json").write_text("{not json")
    app = BsxApp(broken)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ErrorScreen)
        assert "run.json" in text_of(app, "#error-message")
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, ErrorScreen)
        # a validation with an empty form explains which field is missing
        await pilot.press("v")
        await pilot.pause()
        assert isinstance(app.screen, ErrorScreen)
        assert "cohort field is empty" in text_of(app, "#error-message")


async def test_validation_runs_in_a_worker(tiny_external_cohort: Path, tiny_checkpoint: Path,
                                           tmp_path: Path) -> None:
    out = tmp_path / "tui_run"
    app = BsxApp()
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one("#run-pane")
        config = tiny_validate_config(tiny_external_cohort, tiny_checkpoint, out, mc_samples=2, n_boot=20,
                                      gradcam=False)
        pane.start_validation(config)
        # Checked before yielding to the event loop: a fast run may finish (and disable it) at the next pause.
        assert pane.query_one("#run-cancel").disabled is False
        await app.workers.wait_for_complete()
        await pilot.pause()
        status = str(pane.query_one("#run-status").content)
        assert status.startswith("complete"), status
        assert app.run_data is not None and app.run_data.path == out
        assert pane.query_one("#run-progress").percentage == 1.0
        assert "48 of 48 cases" in text_of(app, "#cases-status")


async def test_cancel_keeps_the_run_resumable(tiny_external_cohort: Path, tiny_checkpoint: Path,
                                              tmp_path: Path) -> None:
    out = tmp_path / "cancelled"
    app = BsxApp()
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one("#run-pane")
        pane._stop.set()  # cancelled before the first batch: the engine must stop at once
        config = tiny_validate_config(tiny_external_cohort, tiny_checkpoint, out, mc_samples=2, n_boot=20)
        pane._validate_worker(config)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "cancelled" in str(pane.query_one("#run-status").content)
        assert app.run_data is None


async def test_training_subprocess_reports_epochs(tiny_cohort: Path, tmp_path: Path) -> None:
    app = BsxApp()
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one("#run-pane")
        pane.query_one("#run-cohort").value = str(tiny_cohort)
        pane.query_one("#train-out").value = str(tmp_path / "ck")
        pane.query_one("#train-epochs").value = "1"
        pane.query_one("#train-backbone").value = "test_efficientnet"
        command = pane.train_command()
        assert command[:3] == [sys.executable, "-m", "tui.cli"] and "--progress" in command
        pane.start_training(["--image-size", "32", "--workers", "0", "--batch-size", "8"])
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert pane.query_one("#train-epochs-table").row_count == 1
        assert pane.query_one("#run-checkpoint").value == str(tmp_path / "ck")
        assert (tmp_path / "ck").is_dir()


async def test_export_run_pdf(tiny_run: Path) -> None:
    pytest.importorskip("reports.validation", reason="reports.validation is not in this build")
    app = BsxApp(tiny_run)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("9", "p")
        await app.workers.wait_for_complete()
        await pilot.pause()
        if isinstance(app.screen, ErrorScreen):
            pytest.fail(text_of(app, "#error-message"))
        written = app.query_one("#reports-pane").written
        assert written and written[0].suffix == ".pdf" and written[0].is_file()


async def test_theme_toggle_and_palette_commands(tiny_run: Path) -> None:
    app = BsxApp(tiny_run)
    async with app.run_test(size=SIZE) as pilot:
        dark = app.current_theme.dark
        await pilot.press("t")
        await pilot.pause()
        assert app.current_theme.dark is not dark
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Go to Cases" in titles and "Start validation" in titles and "Export run PDF" in titles


async def test_large_frame_is_virtual() -> None:
    """100,000 cases: only visible lines are formatted; sort and filter stay fast."""
    rng = np.random.default_rng(0)
    n = 100_000
    frame = pd.DataFrame({"case_id": [f"C{i:06d}" for i in range(n)], "truth": rng.integers(0, 2, n).astype(float),
                          "p_mean": rng.random(n), "pred": rng.integers(0, 2, n), "flagged": rng.random(n) < 0.1,
                          "site": rng.choice(["A", "B", "C"], n)})
    from textual.app import App

    class Host(App):
        def compose(self):
            yield CasesTable(frame)

    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(CasesTable)
        await pilot.pause()
        table.focus()
        await pilot.press("pagedown", "pagedown")
        await pilot.pause()
        assert table.cursor_row == 2 * table.page_height
        assert table.scroll_y > 0
        await pilot.press("end")
        await pilot.pause()
        assert table.current_case_id() == "C099999"
        table.sort_by("p_mean", descending=True)
        assert table.current_case_id() == "C099999"  # the cursor follows its case through a sort
        table.set_filters(flagged=True)
        assert len(table.view) == int(frame["flagged"].sum())
