"""Reports pane: export the run PDF and case PDFs in a worker; lists what was written where."""
from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, Static

from tui.panes.base import Pane, RunData


class ReportsPane(Pane):
    """`p` exports the run report, `e` the case in the Case pane (or the id typed here)."""

    class Exported(Message):
        def __init__(self, kind: str, path: Path | None, error: str = "") -> None:
            super().__init__()
            self.kind, self.path, self.error = kind, path, error

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.run: RunData | None = None
        self.written: list[Path] = []

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="reports-body"):
            yield Static("No run open.", id="reports-run", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Run PDF (p)", id="reports-run-pdf", variant="primary")
                yield Button("Case PDF (e)", id="reports-case-pdf")
            with Horizontal(classes="form-row"):
                yield Label("case id", classes="form-label")
                yield Input(id="reports-case-id", placeholder="case to export (default: the open case)")
            yield Label("Written", classes="section")
            yield Static("nothing exported yet", id="reports-written", markup=False)

    def show_run(self, run: RunData) -> None:
        self.run = run
        self.query_one("#reports-run", Static).update(Text(f"run {run.name}: reports go to {run.path}"))

    def export_run(self) -> None:
        if self._need_run():
            self.notify("rendering the run report …", markup=False)
            self._export_worker("run", None)

    def export_case(self, case_id: str | None) -> None:
        typed = self.query_one("#reports-case-id", Input).value.strip()
        case_id = typed or case_id
        if not case_id:
            self.notify("open a case (Cases, Enter) or type a case id", severity="warning")
            return
        if self._need_run():
            self.notify(f"rendering case {case_id} …", markup=False)
            self._export_worker("case", case_id)

    def _need_run(self) -> bool:
        if self.run is None:
            self.notify("open a run first (o)", severity="warning")
            return False
        return True

    @work(thread=True, group="reports")
    def _export_worker(self, kind: str, case_id: str | None) -> None:
        try:
            if kind == "run":
                from reports.validation import render_validation_report

                path = render_validation_report(self.run.path)
            else:
                from reports.case import render_case_report

                path = render_case_report(self.run.path, case_id)
        except ModuleNotFoundError as exc:
            self.post_message(self.Exported(kind, None, f"the reports module is not installed ({exc.name})"))
        except Exception as exc:  # BsxError and rendering failures alike become a message
            self.post_message(self.Exported(kind, None, str(exc) or type(exc).__name__))
        else:
            self.post_message(self.Exported(kind, Path(path)))

    @on(Exported)
    def _exported(self, event: Exported) -> None:
        if event.path is None:
            self.app.show_error(f"{event.kind.title()} report failed", event.error)
            return
        self.written.append(event.path)
        self.query_one("#reports-written", Static).update(Text("\n".join(str(p) for p in self.written)))
        self.notify(f"wrote {event.path}", markup=False)

    @on(Button.Pressed, "#reports-run-pdf")
    def _run_pressed(self) -> None:
        self.export_run()

    @on(Button.Pressed, "#reports-case-pdf")
    def _case_pressed(self) -> None:
        self.app.action_export_case()
