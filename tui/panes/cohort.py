"""Cohort pane: open a cohort, see its layout, balance, demographics, problems and images.

Loading validates every row, which takes a while on large cohorts, so it
runs in a thread worker and the result comes back as a message.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, DataTable, Input, Select, Static

from tui.panes.base import Pane, RunData, kv_table
from tui.widgets.images import image_widget
from tui.widgets.paths import PathSuggester

MAX_THUMBNAILS = 4
SEVERITIES = [("all problems", "all"), ("errors", "error"), ("warnings", "warning")]


def summary_text(summary: dict[str, Any]) -> Text:
    """The cohort summary as key/value lines."""
    def counts(mapping: dict | None) -> str:
        return ", ".join(f"{k} {v}" for k, v in (mapping or {}).items()) or "—"

    age = summary.get("age") or {}
    age_text = (f"mean {age.get('mean')} ({age.get('min'):.0f}–{age.get('max'):.0f}), {age.get('known')} known"
                if age.get("known") else "unknown")
    problems = summary.get("problems") or {}
    rows = [
        ("format", summary.get("format", "—")),
        ("cases", f"{summary.get('cases', '—')} ({summary.get('usable', '—')} usable, "
                  f"{summary.get('labelled', '—')} labelled)"),
        ("balance", f"malignant {summary.get('malignant', '—')}, benign {summary.get('benign', '—')}"),
        ("patients", summary.get("patients", "—")),
        ("sites", counts(summary.get("sites"))),
        ("sex", counts(summary.get("sex"))),
        ("skin type", counts(summary.get("skin_type"))),
        ("age", age_text),
        ("problems", f"{problems.get('error', 0)} errors, {problems.get('warning', 0)} warnings"),
    ]
    return kv_table(rows, key_width=11)


class CohortPane(Pane):
    """Path input with completion, a browse button, the summary and the problem report."""

    class CohortLoaded(Message):
        def __init__(self, path: Path, summary: dict, problems: list[dict], images: list[Path]) -> None:
            super().__init__()
            self.path, self.summary, self.problems, self.images = path, summary, problems, images

    class CohortFailed(Message):
        def __init__(self, path: Path, error: str) -> None:
            super().__init__()
            self.path, self.error = path, error

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.path: Path | None = None
        self.problems: list[dict] = []

    def compose(self) -> ComposeResult:
        with Horizontal(classes="toolbar"):
            yield Input(placeholder="cohort folder or CSV (Right completes)", id="cohort-path",
                        suggester=PathSuggester())
            yield Button("Load", id="cohort-load", variant="primary")
            yield Button("Browse", id="cohort-browse")
        with VerticalScroll(id="cohort-body"):
            yield Static("No cohort open. Type a path and press Enter, or Browse.", id="cohort-summary",
                         markup=False)
            yield Select(SEVERITIES, value="all", allow_blank=False, id="cohort-severity")
            yield DataTable(id="cohort-problems", cursor_type="row", zebra_stripes=True)
            yield Horizontal(id="cohort-thumbs")

    def on_mount(self) -> None:
        table = self.query_one("#cohort-problems", DataTable)
        table.add_columns("severity", "row", "column", "case", "message")

    # -- loading ---------------------------------------------------------
    def load(self, path: Path) -> None:
        """Validate a cohort in a worker; the pane fills when it is done."""
        self.path = Path(path)
        self.query_one("#cohort-path", Input).value = str(path)
        self.query_one("#cohort-summary", Static).update(Text(f"loading {path} …"))
        self._load_worker(self.path)

    @work(thread=True, exclusive=True, group="cohort")
    def _load_worker(self, path: Path) -> None:
        from cohorts.cohort import load_cohort
        from cohorts.errors import BsxError

        try:
            cohort = load_cohort(path)
            summary = cohort.summary()
            problems = [p.to_dict() for p in cohort.problems]
            images = [Path(p) for p in cohort.cases["image_path"].dropna().head(MAX_THUMBNAILS)]
        except BsxError as exc:
            self.post_message(self.CohortFailed(path, str(exc)))
            return
        except Exception as exc:  # unexpected reader failures become a message, not a crash
            self.post_message(self.CohortFailed(path, f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(self.CohortLoaded(path, summary, problems, images))

    @on(CohortLoaded)
    def _loaded(self, event: CohortLoaded) -> None:
        self.query_one("#cohort-summary", Static).update(summary_text(event.summary))
        self.problems = event.problems
        self._fill_problems()
        self._show_thumbnails(event.images)
        self.notify(f"cohort loaded: {event.summary.get('cases')} cases", markup=False)

    @on(CohortFailed)
    def _failed(self, event: CohortFailed) -> None:
        self.query_one("#cohort-summary", Static).update(Text(f"Could not load {event.path}"))
        self.app.show_error("Cohort could not be loaded", event.error)

    def show_run(self, run: RunData) -> None:
        """A run's cohort as recorded in run.json (no reload: the files may have moved)."""
        cohort = run.info.get("cohort") or {}
        self.path = Path(cohort["path"]) if cohort.get("path") else None
        self.query_one("#cohort-path", Input).value = str(cohort.get("path") or "")
        summary = {"format": cohort.get("format"), "cases": cohort.get("n_cases"),
                   "usable": cohort.get("n_usable"), "labelled": run.info.get("counts", {}).get("labelled", "—"),
                   "problems": cohort.get("problems") or {}}
        frame = run.predictions
        if "malignant" in frame:
            summary["malignant"] = int((frame["malignant"] == 1).sum())
            summary["benign"] = int((frame["malignant"] == 0).sum())
        if "patient_id" in frame:
            summary["patients"] = int(frame["patient_id"].nunique())
        for column in ("site", "sex", "skin_type"):
            if column in frame:
                summary[{"site": "sites"}.get(column, column)] = {
                    str(k): int(v) for k, v in frame[column].value_counts().items()}
        if "age" in frame and frame["age"].notna().any():
            age = frame["age"].dropna()
            summary["age"] = {"known": int(len(age)), "mean": round(float(age.mean()), 1),
                              "min": float(age.min()), "max": float(age.max())}
        self.query_one("#cohort-summary", Static).update(summary_text(summary))
        self.problems = list(cohort.get("problem_list") or [])
        self._fill_problems()
        images = [Path(p) for p in frame.get("image_path", []).dropna().head(MAX_THUMBNAILS)] \
            if "image_path" in frame else []
        self._show_thumbnails(images)

    # -- drawing ---------------------------------------------------------
    def _fill_problems(self) -> None:
        table = self.query_one("#cohort-problems", DataTable)
        table.clear()
        wanted = self.query_one("#cohort-severity", Select).value
        for problem in self.problems:
            if wanted != "all" and problem.get("severity") != wanted:
                continue
            style = "red" if problem.get("severity") == "error" else "yellow"
            table.add_row(Text(str(problem.get("severity")), style=style), Text(str(problem.get("row") or "")),
                          Text(str(problem.get("column") or "")), Text(str(problem.get("case_id") or "")),
                          Text(str(problem.get("message") or "")))

    def _show_thumbnails(self, images: list[Path]) -> None:
        strip = self.query_one("#cohort-thumbs", Horizontal)
        strip.remove_children()
        strip.mount_all([image_widget(p, classes="thumb") for p in images[:MAX_THUMBNAILS]])

    # -- events ----------------------------------------------------------
    @on(Select.Changed, "#cohort-severity")
    def _severity_changed(self) -> None:
        self._fill_problems()

    @on(Input.Submitted, "#cohort-path")
    @on(Button.Pressed, "#cohort-load")
    def _load_typed(self) -> None:
        value = self.query_one("#cohort-path", Input).value.strip()
        if not value:
            self.notify("type a cohort path first", severity="warning")
            return
        self.load(Path(value).expanduser())

    @on(Button.Pressed, "#cohort-browse")
    def _browse(self) -> None:
        self.app.action_open()
