"""The BioSignal-X workstation: composition, bindings and routing only.

Each pane lives in `tui/panes/`; this module wires them into tabs, gives
every action a key and an id (so keys can be remapped through
`App.set_keymap`), and adds the actions to the command palette.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from rich.markup import escape
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, TabbedContent, TabPane

from cohorts.errors import BsxError
from tui.panes.base import Pane, RunData
from tui.panes.case_detail import CaseDetailPane
from tui.panes.cases import CasesPane
from tui.panes.cohort import CohortPane
from tui.panes.drift import DriftPane
from tui.panes.fairness import FairnessPane
from tui.panes.integrity import IntegrityPane
from tui.panes.performance import PerformancePane
from tui.panes.readers import ReadersPane
from tui.panes.reports import ReportsPane
from tui.panes.run import RunPane
from tui.reading import ReadingScreen
from tui.screens.error import ErrorScreen
from tui.screens.help import HelpScreen
from tui.screens.picker import PathPicker
from tui.widgets.cases_table import CasesTable

# (tab id, tab label, pane class, description); order = tab order = keys 1..9, then 0.
PANES = [
    ("cohort", "Cohort", CohortPane, "cohort summary and problems"),
    ("run", "Run", RunPane, "validate, train, runs"),
    ("cases", "Cases", CasesPane, "all cases"),
    ("case", "Case", CaseDetailPane, "one case in detail"),
    ("performance", "Perf", PerformancePane, "performance and calibration"),
    ("fairness", "Fairness", FairnessPane, "subgroups and sites"),
    ("drift", "Drift", DriftPane, "reference vs this cohort"),
    ("integrity", "Integrity", IntegrityPane, "can the run be trusted"),
    ("reports", "Reports", ReportsPane, "PDF exports"),
    ("readers", "Readers", ReadersPane, "reader study progress and MRMC"),
]


def pane_key(number: int) -> str:
    """Keys 1..9, then 0 for the tenth pane."""
    return str(number % 10)


def pane_bindings() -> list[Binding]:
    return [Binding(pane_key(number), f"show_pane('{pane_id}')", label, show=False, id=f"app.pane.{pane_id}")
            for number, (pane_id, label, _, _) in enumerate(PANES, start=1)]


class BsxApp(App[None]):
    """`bsx tui`: opens on a run folder, a cohort, or nothing."""

    TITLE = "BioSignal-X"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        *pane_bindings(),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("f1", "help", "Help", show=False, id="app.help_f1"),
        Binding("o", "open", "Open", id="app.open"),
        Binding("v", "validate", "Validate", show=False, id="app.validate"),
        Binding("c", "cancel", "Cancel", show=False, id="app.cancel"),
        Binding("ctrl+t", "train", "Train", show=False, id="app.train"),
        Binding("p", "export_run", "Run PDF", show=False, id="app.export_run"),
        Binding("e", "export_case", "Case PDF", show=False, id="app.export_case"),
        Binding("t", "toggle_theme", "Theme", show=False, id="app.theme"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(self, target: Path | None = None, image_protocol: str = "auto") -> None:
        super().__init__()
        self.target = Path(target) if target else None
        self.image_protocol = image_protocol
        self.run_data: RunData | None = None

    def compose(self) -> ComposeResult:
        yield Header(icon="")
        with TabbedContent(id="panes"):
            for pane_id, label, pane_class, _ in PANES:
                with TabPane(label, id=pane_id):
                    yield pane_class(id=f"{pane_id}-pane")
        yield Footer()

    def on_mount(self) -> None:
        if self.target is not None:
            self.open_path(self.target)

    # -- routing ---------------------------------------------------------
    def open_path(self, path: Path) -> None:
        """A run folder opens the run; anything else is treated as a cohort."""
        from engine.runfolder import RunFolder

        if RunFolder(path).exists:
            self.open_run(path)
        elif path.exists():
            self.open_cohort(path)
        else:
            self.show_error("Path not found", f"{path} does not exist")

    def open_run(self, path: Path) -> None:
        """Load a run folder and hand it to every pane; errors go to the modal."""
        try:
            run = RunData.load(path)
        except BsxError as exc:
            self.show_error("Run could not be opened", str(exc))
            return
        self.run_data = run
        self.sub_title = run.name
        for pane_id, _, pane_class, _ in PANES:
            pane = self.query_one(f"#{pane_id}-pane", pane_class)
            try:
                pane.show_run(run)
            except Exception as exc:  # one odd artifact must not hide the other panes
                self.notify(f"{pane_id}: {escape(str(exc))}", severity="error", title="pane error")
        for problem in run.problems:
            self.notify(problem, severity="warning", markup=False)
        self.action_show_pane("run")

    def open_cohort(self, path: Path) -> None:
        self.query_one("#cohort-pane", CohortPane).load(path)
        self.query_one("#run-pane", RunPane).set_cohort(path)
        self.action_show_pane("cohort")

    def show_error(self, title: str, message: str) -> None:
        self.push_screen(ErrorScreen(title, message))

    def on_cases_table_case_selected(self, event: CasesTable.CaseSelected) -> None:
        self.show_case(event.case_id)

    def show_case(self, case_id: str) -> None:
        self.query_one("#case-pane", CaseDetailPane).show_case(case_id)
        self.action_show_pane("case")

    def on_run_pane_validation_done(self, event: RunPane.ValidationDone) -> None:
        if event.status == "complete":
            self.open_run(event.path)

    # -- actions ---------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """While a reader reads, the workstation's keys are off: digits score, nothing switches underneath."""
        if isinstance(self.screen, ReadingScreen) and action in WORKSTATION_ACTIONS:
            return False
        return True

    def action_show_pane(self, pane_id: str) -> None:
        self.query_one("#panes", TabbedContent).active = pane_id
        target = self.query_one(f"#{pane_id}-pane", Pane).focus_target()
        if target is not None:
            target.focus()
        else:
            self.set_focus(None)  # keys go to the app until the user tabs into the pane

    def action_help(self) -> None:
        groups = [("Workstation", list(self.BINDINGS)),
                  ("Cases", list(CasesPane.BINDINGS) + list(CasesTable.BINDINGS)),
                  ("Case", list(CaseDetailPane.BINDINGS)),
                  ("Readers", list(ReadersPane.BINDINGS))]
        self.push_screen(HelpScreen(groups))

    def action_open(self) -> None:
        start = self.run_data.path.parent if self.run_data else Path.cwd()

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.open_path(path)

        self.push_screen(PathPicker("Open a run folder or a cohort", start), chosen)

    def action_validate(self) -> None:
        self.action_show_pane("run")
        self.query_one("#run-pane", RunPane).start_validation()

    def action_cancel(self) -> None:
        self.query_one("#run-pane", RunPane).cancel()

    def action_train(self) -> None:
        self.action_show_pane("run")
        self.query_one("#run-pane", RunPane).start_training()

    def action_export_run(self) -> None:
        self.query_one("#reports-pane", ReportsPane).export_run()

    def action_export_case(self) -> None:
        case_id = self.query_one("#case-pane", CaseDetailPane).case_id
        self.query_one("#reports-pane", ReportsPane).export_case(case_id)

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Everything with a key is also in the command palette (ctrl+p)."""
        yield from super().get_system_commands(screen)
        if isinstance(screen, ReadingScreen):
            return
        for number, (pane_id, label, _, description) in enumerate(PANES, start=1):
            yield SystemCommand(f"Go to {label}", f"{description} (key {pane_key(number)})",
                                lambda pane_id=pane_id: self.action_show_pane(pane_id))
        yield SystemCommand("Open run or cohort", "file picker (key o)", self.action_open)
        yield SystemCommand("Start validation", "from the Run form (key v)", self.action_validate)
        yield SystemCommand("Cancel validation or training", "cooperative (key c)", self.action_cancel)
        yield SystemCommand("Start training", "bsx train subprocess (ctrl+t)", self.action_train)
        yield SystemCommand("Export run PDF", "reports (key p)", self.action_export_run)
        yield SystemCommand("Export case PDF", "the open case (key e)", self.action_export_case)
        yield SystemCommand("Toggle light/dark", "theme (key t)", self.action_toggle_theme)
        yield SystemCommand("Refresh reader study", "progress and MRMC (Readers pane, key r)",
                            lambda: self._readers_pane().action_refresh_study())
        yield SystemCommand("Lock reading phase", "the selected row's phase (Readers pane, key l)",
                            lambda: self._readers_pane().action_lock_phase(True))
        yield SystemCommand("Unlock reading phase", "the selected row's phase (Readers pane, key u)",
                            lambda: self._readers_pane().action_lock_phase(False))
        yield SystemCommand("Read as reader", "the selected row's reader (Readers pane, key s)",
                            lambda: self._readers_pane().action_read())
        yield SystemCommand("Show keys", "help screen (key ?)", self.action_help)

    def _readers_pane(self) -> ReadersPane:
        return self.query_one("#readers-pane", ReadersPane)


# Every action of the workstation's own keys and palette; off while the reading screen is up.
WORKSTATION_ACTIONS = frozenset({"show_pane", "help", "open", "validate", "cancel", "train", "export_run",
                                 "export_case", "toggle_theme", "command_palette"})
