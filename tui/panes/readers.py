"""Readers pane: the run's reader study for its administrator.

Shows the attached study, each reader's progress per phase, and, once every
reader has finished a phase, the MRMC analysis of the phases everyone has
finished. The study is read and analysed in a thread worker with its own
connection (SQLite connections stay in their thread); the pane only draws
what the worker posts back. Locking a phase is one short write, done at once
so the table shows the new state. Reading as a reader pushes the same
`ReadingScreen` that `bsx reader read` runs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Label, Static

from cohorts.errors import BsxError
from engine.readers.study import PhaseProgress, Study
from tui.panes.base import Pane, RunData, fmt, kv_table
from tui.reading import ReadingScreen
from tui.widgets.images import current_protocol

NO_STUDY = ("No reader study attached to this run.\n"
            "Create one: bsx reader create --from RUN_DIR --out study.sqlite --readers ana,ben")
DESIGN_NOTE = "RRRC: random readers and random cases (Obuchowski-Rockette, Hillis df)"


@dataclass(frozen=True)
class StudyState:
    """What the pane shows of a study, read in one go by the worker."""

    path: Path
    phases: list[str]
    locked: list[str]
    scale: str
    washout_days: float
    n_cases: int
    readers: list[str]
    progress: list[PhaseProgress]

    @classmethod
    def read(cls, study: Study) -> "StudyState":
        return cls(study.path, study.phases, study.locked_phases(), study.settings.scale,
                   study.settings.washout_days, len(study.case_ids()), study.readers, study.progress())

    def finished(self, reader: str) -> list[str]:
        return [p.phase for p in self.progress if p.reader_id == reader and p.total and p.rated >= p.total]

    def finished_by_all(self) -> list[str]:
        """Phases every reader has finished: the ones the analysis can use."""
        return [phase for phase in self.phases if self.readers and all(phase in self.finished(r) for r in self.readers)]

    def waiting_for(self) -> list[str]:
        """Readers who have not finished any phase yet (the analysis waits for them)."""
        return [r for r in self.readers if not self.finished(r)]


def study_text(state: StudyState) -> Text:
    """The study in two lines (80x24 leaves little room): path; phases with lock state, scale, size."""
    phases = Text()
    for k, phase in enumerate(state.phases):
        if k:
            phases.append(", ")
        phases.append(phase)
        if phase in state.locked:
            phases.append(" (locked)", style="bold yellow")
    washout = f" · washout {state.washout_days:g} d" if state.washout_days else ""
    readers = f"{len(state.readers)} readers" if state.readers else "no readers yet"
    phases.append(f"  ·  scale {state.scale}{washout}  ·  {state.n_cases} cases  ·  {readers}", style="dim")
    return kv_table([("study", str(state.path)), ("phases", phases)], key_width=7)


def progress_cells(row: PhaseProgress) -> tuple[Text, ...]:
    """One table row: reader, phase, n of N, open now, state."""
    done = row.total and row.rated >= row.total
    state = (Text("locked", style="bold yellow") if row.locked else
             Text("done", style="green") if done else Text("reading" if row.rated else "not started"))
    return (Text(row.reader_id), Text(row.phase), Text(f"{row.rated} of {row.total}"), Text(str(row.open_now)),
            state)


def waiting_text(state: StudyState) -> Text:
    if not state.readers:
        return Text("No readers yet: the analysis needs ratings.", style="dim")
    return Text("The MRMC analysis appears when every reader has finished at least one phase; waiting for "
                + ", ".join(state.waiting_for()) + ".", style="dim")


def _p(value: Any) -> str:
    if value is None or not math.isfinite(float(value)):
        return "—"
    return "p < 0.001" if float(value) < 0.001 else f"p = {float(value):.3f}"


def _signed(value: Any) -> str:
    return "—" if value is None or not math.isfinite(float(value)) else f"{float(value):+.3f}"


def analysis_text(doc: dict[str, Any], state: StudyState) -> Text:
    """The MRMC summary: AUC per reader and phase, mean AUC, and the RRRC test of each phase difference."""
    modalities, readers = doc["modalities"], doc["readers"]
    pending = [p for p in state.phases if p not in modalities]
    text = Text(f"Analysed: {', '.join(modalities)}", style="bold")
    if pending:
        text.append(f"  (not yet: {', '.join(pending)}, still being read)", style="dim")
    text.append(f"\n{doc['n_normal']} benign / {doc['n_abnormal']} malignant cases, "
                f"{doc['covariance']} covariance\n\n", style="dim")
    width = max([6] + [len(r) for r in readers]) + 2
    column = max([8] + [len(m) + 2 for m in modalities])
    text.append(f"{'AUC':<{width}}" + "".join(f"{m:>{column}}" for m in modalities) + "\n", style="bold")
    for reader in readers:
        text.append(f"{reader:<{width}}")
        text.append("".join(f"{fmt(doc['auc'][m].get(reader)):>{column}}" for m in modalities) + "\n")
    text.append(f"{'mean':<{width}}", style="bold")
    text.append("".join(f"{fmt(doc['mean_auc'][m]):>{column}}" for m in modalities) + "\n", style="bold")
    for comparison in doc["comparisons"]:
        rrrc = comparison["rrrc"]
        low, high = rrrc["ci"]
        text.append(f"\n{comparison['a']} − {comparison['b']}: ", style="bold")
        text.append(f"{_signed(comparison['difference'])}, 95% CI {_signed(low)} to {_signed(high)}, "
                    f"{_p(rrrc['p'])} (RRRC, df {fmt(rrrc.get('df'), 1)})")
    if doc["comparisons"]:
        text.append(f"\n{DESIGN_NOTE}", style="dim")
    elif len(modalities) == 1:
        text.append("\nOne phase analysed: no comparison between phases yet.", style="dim")
    for warning in doc.get("warnings", [])[:3]:
        text.append(f"\nnote: {warning}", style="yellow")
    return text


class ReadersPane(Pane):
    """`l`/`u` lock and unlock the selected row's phase, `r` refreshes, `s` or Enter reads as its reader."""

    BINDINGS = [
        Binding("l", "lock_phase(True)", "Lock", id="readers.lock_phase"),
        Binding("u", "lock_phase(False)", "Unlock", id="readers.unlock_phase"),
        Binding("r", "refresh_study", "Refresh", id="readers.refresh"),
        Binding("s", "read", "Read as", id="readers.read"),
    ]

    class Loaded(Message):
        def __init__(self, generation: int, state: StudyState) -> None:
            super().__init__()
            self.generation, self.state = generation, state

    class Analysed(Message):
        def __init__(self, generation: int, doc: dict[str, Any] | None, problem: str = "") -> None:
            super().__init__()
            self.generation, self.doc, self.problem = generation, doc, problem

    class Failed(Message):
        def __init__(self, generation: int, error: str) -> None:
            super().__init__()
            self.generation, self.error = generation, error

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.study_path: Path | None = None
        self.state: StudyState | None = None
        self.analysis: dict[str, Any] | None = None
        self._rows: list[tuple[str, str]] = []
        self._generation = 0

    def compose(self) -> ComposeResult:
        yield Static("No run open.", id="readers-study", markup=False)
        yield Label("Progress: l lock, u unlock the row's phase; s or Enter reads as its reader",
                    classes="section", markup=False)
        yield DataTable(id="readers-progress", cursor_type="row", zebra_stripes=True)
        yield Label("Analysis (Tab, then arrows, to scroll)", classes="section", markup=False)
        with VerticalScroll(id="readers-analysis-box"):
            yield Static("", id="readers-analysis", markup=False)

    def on_mount(self) -> None:
        self.table.add_columns("reader", "phase", "rated", "open now", "state")

    @property
    def table(self) -> DataTable:
        return self.query_one("#readers-progress", DataTable)

    def focus_target(self) -> DataTable:
        return self.table

    # -- loading ---------------------------------------------------------
    def show_run(self, run: RunData) -> None:
        self.study_path = run.study_path
        self.state = None
        self.analysis = None
        self._fill_table([])
        self.query_one("#readers-analysis", Static).update("")
        if self.study_path is None:
            self._generation += 1  # anything still in flight is for another run
            self.query_one("#readers-study", Static).update(Text(NO_STUDY))
            return
        self.query_one("#readers-study", Static).update(Text(f"reading {self.study_path} …", style="dim"))
        self.refresh_study()

    def refresh_study(self) -> None:
        """Re-read progress (and re-run the analysis) in a worker; older results are dropped when they arrive."""
        if self.study_path is None:
            return
        self._generation += 1
        self._load_worker(self.study_path, self._generation)

    @work(thread=True, group="readers")
    def _load_worker(self, path: Path, generation: int) -> None:
        try:
            with Study(path) as study:
                state = StudyState.read(study)
                self.post_message(self.Loaded(generation, state))
                self.post_message(self._analyse(study, state, generation))
        except BsxError as exc:
            self.post_message(self.Failed(generation, str(exc)))
        except Exception as exc:  # a damaged file must reach the user as a message, never kill the app
            self.post_message(self.Failed(generation, f"{type(exc).__name__}: {exc}"))

    def _analyse(self, study: Study, state: StudyState, generation: int) -> Analysed:
        """Runs in the worker thread: MRMC over the phases every reader has finished."""
        phases = state.finished_by_all()
        if not state.readers or state.waiting_for() or not phases:
            return self.Analysed(generation, None)
        try:
            return self.Analysed(generation, study.analyze(phases=phases).to_json())
        except BsxError as exc:
            return self.Analysed(generation, None, exc.message)

    @on(Loaded)
    def _loaded(self, event: Loaded) -> None:
        if event.generation != self._generation:
            return
        self.state = event.state
        self.query_one("#readers-study", Static).update(study_text(event.state))
        self._fill_table(event.state.progress)
        if event.state.readers and not event.state.waiting_for():
            self.query_one("#readers-analysis", Static).update(Text("analysing …", style="dim"))
        else:
            self.query_one("#readers-analysis", Static).update(waiting_text(event.state))

    @on(Analysed)
    def _analysed(self, event: Analysed) -> None:
        if event.generation != self._generation or self.state is None:
            return
        self.analysis = event.doc
        widget = self.query_one("#readers-analysis", Static)
        if event.doc is not None:
            widget.update(analysis_text(event.doc, self.state))
        elif event.problem:
            widget.update(Text(f"The analysis is not possible yet: {event.problem}", style="yellow"))
        else:
            widget.update(waiting_text(self.state))

    @on(Failed)
    def _failed(self, event: Failed) -> None:
        if event.generation != self._generation:
            return
        self.query_one("#readers-study", Static).update(Text(f"The reader study cannot be read: {event.error}",
                                                             style="red"))
        self.app.show_error("Reader study could not be opened", event.error)

    def _fill_table(self, progress: list[PhaseProgress]) -> None:
        table = self.table
        row = table.cursor_row
        table.clear()
        self._rows = [(p.reader_id, p.phase) for p in progress]
        for p in progress:
            table.add_row(*progress_cells(p))
        if self._rows:
            table.move_cursor(row=min(max(row, 0), len(self._rows) - 1))

    # -- actions ---------------------------------------------------------
    def _selected(self) -> tuple[str, str] | None:
        """(reader, phase) of the highlighted row; tells the user why when there is none."""
        if self.study_path is None:
            self.notify("no reader study attached to this run", severity="warning")
            return None
        row = self.table.cursor_row
        if not self._rows or not 0 <= row < len(self._rows):
            self.notify("no reader rows yet: add readers with `bsx reader create --readers`", severity="warning")
            return None
        return self._rows[row]

    def action_lock_phase(self, locked: bool) -> None:
        """Admin: lock or unlock the highlighted row's phase for every reader (one short write)."""
        selected = self._selected()
        if selected is None:
            return
        phase = selected[1]
        try:
            with Study(self.study_path) as study:
                study.set_phase_locked(phase, locked)
        except BsxError as exc:
            self.app.show_error("Phase lock not changed", str(exc))
            return
        self.notify(f"phase {phase} {'locked' if locked else 'unlocked'}", markup=False)
        self.refresh_study()

    def action_refresh_study(self) -> None:
        if self.study_path is None:
            self.notify("no reader study attached to this run", severity="warning")
            return
        self.refresh_study()

    def action_read(self) -> None:
        """Open the reading screen for the highlighted row's reader; progress refreshes when it closes."""
        selected = self._selected()
        if selected is None:
            return
        try:
            study = Study(self.study_path)
        except BsxError as exc:
            self.app.show_error("Reader study could not be opened", str(exc))
            return

        def closed(_: None) -> None:
            study.close()
            self.refresh_study()

        self.app.push_screen(ReadingScreen(study, selected[0], current_protocol()), closed)

    @on(DataTable.RowSelected, "#readers-progress")
    def _row_selected(self) -> None:
        self.action_read()
