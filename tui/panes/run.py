"""Run pane: the open run, starting a validation or a training, and the runs nearby.

Validation runs `engine.validate.run_validation` in a thread worker (torch is
imported there, never at app start) and posts throttled progress messages;
cancel sets a flag the engine polls between batches, and finished chunks
are kept so a rerun resumes. Training runs `bsx train --progress jsonl` as a
subprocess read line by line by an async worker.
"""
from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, DataTable, Input, Label, ProgressBar, Static
from textual.worker import get_current_worker

from tui.panes.base import Pane, RunData, fmt, fmt_ci, kv_table
from tui.widgets.paths import PathSuggester

PROGRESS_INTERVAL = 0.2  # seconds between progress messages from the worker


def run_summary(run: RunData) -> Text:
    """Who, what and how well, in a few lines."""
    info = run.info
    counts = info.get("counts") or {}
    overall = (run.metrics or {}).get("overall") or {}
    integrity = run.integrity or {}
    rows = [
        ("run", f"{run.name}  [{info.get('status', '?')}]"),
        ("folder", str(run.path)),
        ("cohort", f"{(info.get('cohort') or {}).get('path', '—')} ({(info.get('cohort') or {}).get('format', '?')})"),
        ("model", f"{(info.get('model') or {}).get('architecture', {}).get('backbone', '?')} "
                  f"sha {str((info.get('model') or {}).get('sha256', ''))[:12]}"),
        ("cases", f"{counts.get('cases', len(run.predictions))} ({counts.get('flagged', '—')} flagged, "
                  f"{counts.get('errors', '—')} errors)"),
        ("AUC", fmt_ci(overall.get("auc"))),
        ("integrity", f"{fmt(integrity.get('score'), 1)} {integrity.get('band', '')}".strip() if integrity else "—"),
    ]
    return kv_table(rows, key_width=10)


def eta_text(done: int, total: int, elapsed: float) -> str:
    """`120/480 cases  35.2 cases/s  ETA 0:10` from counts and seconds elapsed."""
    rate = done / elapsed if elapsed > 0 else 0.0
    if rate > 0 and total > done:
        left = int((total - done) / rate)
        eta = f"ETA {left // 60}:{left % 60:02d}"
    else:
        eta = "ETA —"
    return f"{done}/{total} cases  {rate:.1f} cases/s  {eta}"


class RunPane(Pane):
    """Validation and training forms with live progress; the list of runs next to this one."""

    class Progress(Message):
        def __init__(self, done: int, total: int, elapsed: float) -> None:
            super().__init__()
            self.done, self.total, self.elapsed = done, total, elapsed

    class Stage(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class ValidationDone(Message):
        """status: complete | cancelled | failed."""

        def __init__(self, status: str, path: Path, error: str = "") -> None:
            super().__init__()
            self.status, self.path, self.error = status, path, error

    class TrainEvent(Message):
        def __init__(self, event: dict) -> None:
            super().__init__()
            self.event = event

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._stop = threading.Event()
        self._train_process: asyncio.subprocess.Process | None = None
        self.run: RunData | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="run-body"):
            yield Static("No run open. Start a validation below or open a run folder (o).", id="run-summary",
                         markup=False)
            yield Label("Validate", classes="section")
            yield self._field("cohort", "run-cohort", "cohort folder or CSV")
            yield self._field("checkpoint", "run-checkpoint", "checkpoint folder")
            yield self._field("output", "run-out", "new run folder")
            yield self._field("reference", "run-reference", "optional reference run or cohort")
            with Horizontal(classes="form-row"):
                yield Label("MC samples", classes="form-label")
                yield Input("30", id="run-mc", type="integer", classes="short")
                yield Label("referral", classes="form-label short-label")
                yield Input("0.1", id="run-referral", type="number", classes="short")
            with Horizontal(classes="buttons"):
                yield Button("Validate (v)", id="run-start", variant="primary")
                yield Button("Cancel (c)", id="run-cancel", variant="error", disabled=True)
                yield Button("Train (ctrl+t)", id="train-start")
            yield ProgressBar(id="run-progress", total=None, show_eta=False)
            yield Static("idle", id="run-status", markup=False)
            yield Label("Train", classes="section")
            with Horizontal(classes="form-row"):
                yield Label("epochs", classes="form-label")
                yield Input("5", id="train-epochs", type="integer", classes="short")
                yield Label("backbone", classes="form-label short-label")
                yield Input("efficientnet_b0", id="train-backbone", classes="medium")
            yield self._field("train out", "train-out", "checkpoint folder to write")
            yield Static("", id="train-status", markup=False)
            yield DataTable(id="train-epochs-table", cursor_type="row")
            yield Label("Runs here (Enter opens)", classes="section")
            yield DataTable(id="run-list", cursor_type="row")

    @staticmethod
    def _field(label: str, input_id: str, placeholder: str) -> Horizontal:
        return Horizontal(Label(label, classes="form-label"),
                          Input(id=input_id, placeholder=placeholder, suggester=PathSuggester()),
                          classes="form-row")

    def on_mount(self) -> None:
        self.query_one("#train-epochs-table", DataTable).add_columns(
            "epoch", "train loss", "val loss", "AUC", "ECE", "Brier", "MC H", "best")
        self.query_one("#run-list", DataTable).add_columns("name", "status", "cases", "AUC", "integrity", "path")

    # -- showing runs ----------------------------------------------------
    def show_run(self, run: RunData) -> None:
        self.run = run
        self.query_one("#run-summary", Static).update(run_summary(run))
        cohort = (run.info.get("cohort") or {}).get("path")
        model = (run.info.get("model") or {}).get("path")
        if cohort and not self.query_one("#run-cohort", Input).value:
            self.query_one("#run-cohort", Input).value = cohort
        if model and not self.query_one("#run-checkpoint", Input).value:
            self.query_one("#run-checkpoint", Input).value = model
        self.refresh_runs(run.path.parent)

    def set_cohort(self, path: Path) -> None:
        self.query_one("#run-cohort", Input).value = str(path)

    def refresh_runs(self, folder: Path) -> None:
        """Fill the runs list (`bsx runs list`) for the folder holding the open run."""
        from engine.runs import list_runs

        table = self.query_one("#run-list", DataTable)
        table.clear()
        try:
            runs = list_runs(folder)
        except OSError:
            return
        for entry in runs:
            table.add_row(Text(str(entry.get("name"))), Text(str(entry.get("status"))),
                          Text(fmt(entry.get("cases"))), Text(fmt(entry.get("auc"))),
                          Text(fmt(entry.get("integrity"))), Text(str(entry.get("path"))), key=entry["path"])

    @on(DataTable.RowSelected, "#run-list")
    def _open_listed(self, event: DataTable.RowSelected) -> None:
        self.app.open_run(Path(str(event.row_key.value)))

    # -- validation ------------------------------------------------------
    def validation_config(self):
        """The ValidateConfig from the form; a BsxError names the field to fix."""
        from cohorts.errors import BsxError
        from engine.validate import ValidateConfig

        values = {name: self.query_one(f"#run-{name}", Input).value.strip()
                  for name in ("cohort", "checkpoint", "out", "reference", "mc", "referral")}
        for name, label in (("cohort", "cohort"), ("checkpoint", "checkpoint"), ("out", "output")):
            if not values[name]:
                raise BsxError(f"the {label} field is empty", fix=f"type a {label} path")
        if not Path(values["checkpoint"]).expanduser().exists():
            raise BsxError("checkpoint not found", path=values["checkpoint"], fix="choose a trained checkpoint folder")
        try:
            mc, referral = int(values["mc"] or 30), float(values["referral"] or 0.1)
        except ValueError:
            raise BsxError("MC samples must be a whole number and referral a fraction",
                           fix="e.g. 30 and 0.1") from None
        config = ValidateConfig(cohort=values["cohort"], checkpoint=values["checkpoint"], out=values["out"],
                                mc_samples=mc, referral_rate=referral, reference=values["reference"] or None)
        config.validate()
        return config

    def start_validation(self, config=None) -> None:
        """Start a validation (from the form unless a config is given); errors go to the modal."""
        from cohorts.errors import BsxError

        if self._busy("validate"):
            self.notify("a validation is already running; cancel it first (c)", severity="warning")
            return
        try:
            config = config or self.validation_config()
        except BsxError as exc:
            self.app.show_error("Cannot start validation", str(exc))
            return
        self._stop.clear()
        self.query_one("#run-cancel", Button).disabled = False
        self.query_one("#run-start", Button).disabled = True
        bar = self.query_one("#run-progress", ProgressBar)
        bar.update(total=None, progress=0)
        self.query_one("#run-status", Static).update("starting …")
        self._validate_worker(config)

    def cancel(self) -> None:
        """Cooperative: the engine stops after the current batch and keeps finished chunks."""
        cancelled = False
        if self._busy("validate"):
            self._stop.set()
            self.query_one("#run-status", Static).update("cancelling after this batch …")
            cancelled = True
        if self._train_process is not None and self._train_process.returncode is None:
            self._train_process.terminate()
            self.query_one("#train-status", Static).update("stopping training …")
            cancelled = True
        if not cancelled:
            self.notify("nothing is running", severity="information")

    def _busy(self, group: str) -> bool:
        return any(w.group == group and w.is_running for w in self.app.workers)

    @work(thread=True, exclusive=True, group="validate")
    def _validate_worker(self, config) -> None:
        from cohorts.errors import BsxError
        from engine.validate import Cancelled, run_validation

        worker = get_current_worker()
        started = time.monotonic()
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL or done >= total:
                last[0] = now
                self.post_message(self.Progress(done, total, now - started))

        def should_stop() -> bool:
            return self._stop.is_set() or worker.is_cancelled

        out = Path(config.out)
        try:
            run_validation(config, progress=progress, should_stop=should_stop,
                           stage=lambda text: self.post_message(self.Stage(text)))
        except Cancelled:
            self.post_message(self.ValidationDone("cancelled", out))
        except BsxError as exc:
            self.post_message(self.ValidationDone("failed", out, str(exc)))
        except Exception as exc:  # the worker must report, never take the app down
            self.post_message(self.ValidationDone("failed", out, f"{type(exc).__name__}: {exc}"))
        else:
            self.post_message(self.ValidationDone("complete", out))

    @on(Progress)
    def _progress(self, event: Progress) -> None:
        bar = self.query_one("#run-progress", ProgressBar)
        bar.update(total=max(event.total, 1), progress=event.done)
        self.query_one("#run-status", Static).update(eta_text(event.done, event.total, event.elapsed))

    @on(Stage)
    def _stage(self, event: Stage) -> None:
        self.query_one("#run-status", Static).update(event.text)

    @on(ValidationDone)
    def _validation_done(self, event: ValidationDone) -> None:
        self.query_one("#run-cancel", Button).disabled = self._train_process is None
        self.query_one("#run-start", Button).disabled = False
        status = self.query_one("#run-status", Static)
        if event.status == "complete":
            status.update(f"complete: {event.path}")
            self.notify(f"validation complete: {event.path.name}", markup=False)
        elif event.status == "cancelled":
            status.update("cancelled; finished chunks are kept, start again to resume")
            self.notify("validation cancelled", severity="warning")
        else:
            status.update("failed")
            self.app.show_error("Validation failed", event.error)

    # -- training --------------------------------------------------------
    def train_command(self) -> list[str]:
        """The `bsx train --progress jsonl` command line from the form."""
        from cohorts.errors import BsxError

        cohort = self.query_one("#run-cohort", Input).value.strip()
        out = self.query_one("#train-out", Input).value.strip()
        if not cohort or not out:
            raise BsxError("training needs a cohort and a train out folder", fix="fill both fields")
        epochs = self.query_one("#train-epochs", Input).value.strip() or "5"
        backbone = self.query_one("#train-backbone", Input).value.strip() or "efficientnet_b0"
        return [sys.executable, "-m", "tui.cli", "train", "--cohort", cohort, "--out", out, "--epochs", epochs,
                "--backbone", backbone, "--progress", "jsonl"]

    def start_training(self, extra: list[str] | None = None) -> None:
        from cohorts.errors import BsxError

        if self._train_process is not None and self._train_process.returncode is None:
            self.notify("training is already running; cancel it first (c)", severity="warning")
            return
        try:
            command = self.train_command() + list(extra or [])
        except BsxError as exc:
            self.app.show_error("Cannot start training", str(exc))
            return
        self.query_one("#train-epochs-table", DataTable).clear()
        self.query_one("#train-status", Static).update("starting training …")
        self.query_one("#run-cancel", Button).disabled = False
        self._train_worker(command)

    @work(exclusive=True, group="train")
    async def _train_worker(self, command: list[str]) -> None:
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        self._train_process = process
        stderr_task = asyncio.create_task(process.stderr.read())
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("{"):
                continue
            try:
                self.post_message(self.TrainEvent(json.loads(line)))
            except ValueError:
                continue
        code = await process.wait()
        stderr = (await stderr_task).decode("utf-8", "replace").strip()
        self.post_message(self.TrainEvent({"event": "exit", "code": code, "stderr": stderr[-2000:]}))

    @on(TrainEvent)
    def _train_event(self, message: TrainEvent) -> None:
        event = message.event
        kind = event.get("event")
        status = self.query_one("#train-status", Static)
        if kind == "start":
            status.update(f"training on {event.get('train_cases')} cases, validating on {event.get('val_cases')}")
        elif kind == "step":
            status.update(f"epoch {event.get('epoch')}  step {event.get('step')}/{event.get('steps')}  "
                          f"loss {fmt(event.get('loss'))}  {fmt(event.get('images_per_s'), 1)} img/s")
        elif kind == "epoch":
            self.query_one("#train-epochs-table", DataTable).add_row(
                *[Text(fmt(event.get(key))) for key in ("epoch", "train_loss", "val_loss", "val_auc", "val_ece",
                                                         "val_brier", "val_mc_entropy")],
                Text("yes" if event.get("best") else ""))
        elif kind == "early_stop":
            status.update(f"early stop after epoch {event.get('epoch')}")
        elif kind == "done":
            status.update(f"done: best epoch {event.get('best_epoch')}, checkpoint {event.get('checkpoint')}")
            checkpoint = event.get("checkpoint")
            if checkpoint:
                self.query_one("#run-checkpoint", Input).value = str(checkpoint)
        elif kind == "error":
            self.app.show_error("Training failed", str(event.get("message")))
        elif kind == "exit":
            self._train_process = None
            self.query_one("#run-cancel", Button).disabled = not self._busy("validate")
            if event.get("code") not in (0, None):
                status.update(f"training exited with code {event.get('code')}")
                if event.get("stderr"):
                    self.app.show_error("Training stopped", str(event["stderr"]))
            else:
                self.notify("training finished", markup=False)

    # -- buttons ---------------------------------------------------------
    @on(Button.Pressed, "#run-start")
    def _start_pressed(self) -> None:
        self.start_validation()

    @on(Button.Pressed, "#run-cancel")
    def _cancel_pressed(self) -> None:
        self.cancel()

    @on(Button.Pressed, "#train-start")
    def _train_pressed(self) -> None:
        self.start_training()
