"""What every pane shares: the loaded run and small formatting helpers.

Panes read a run only through `RunData`, which is built from `RunFolder`
and the files in the folder (never engine internals), so the TUI shows
exactly what the reports and the CLI see.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from rich.text import Text
from textual.containers import Container
from textual.widget import Widget

from engine.readers.attach import attached_study
from engine.runfolder import RunFolder

BAND_STYLES = {"High": "bold green", "Stable": "bold yellow", "Review required": "bold red"}


@dataclass
class RunData:
    """One run folder read once; optional artifacts are None when absent or unreadable."""

    folder: RunFolder
    info: dict[str, Any]
    predictions: pd.DataFrame
    metrics: dict[str, Any] | None = None
    fairness: pd.DataFrame | None = None
    drift: dict[str, Any] | None = None
    integrity: dict[str, Any] | None = None
    study_path: Path | None = None  # the attached reader study, if its file exists
    problems: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.folder.path

    @property
    def name(self) -> str:
        return str(self.info.get("name") or self.folder.path.name)

    @classmethod
    def load(cls, path: str | Path) -> "RunData":
        """Read run.json and predictions (required) and every analysis that is there."""
        folder = RunFolder(path)
        info = folder.run_info()
        predictions = folder.predictions()
        data = cls(folder, info, predictions)
        data.metrics = data._optional_json("metrics")
        data.drift = data._optional_json("drift")
        data.integrity = data._optional_json("integrity")
        data.study_path = attached_study(folder.path, info)
        if folder.has("fairness"):
            try:
                data.fairness = folder.fairness()
            except (OSError, ValueError, pd.errors.ParserError) as exc:
                data.problems.append(f"fairness.csv cannot be read ({exc})")
        return data

    def _optional_json(self, artifact: str) -> dict[str, Any] | None:
        if not self.folder.has(artifact):
            return None
        try:
            return json.loads(self.folder.file(artifact).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            self.problems.append(f"{self.folder.file(artifact).name} cannot be read ({exc})")
            return None

    def mc_samples(self, row: int) -> list[float]:
        """The MC probability samples of one case (memory-mapped, so large runs stay cheap)."""
        if not self.folder.has("mc_samples"):
            return []
        try:
            samples = self.folder.load_array("mc_samples")
        except Exception:  # a damaged file only hides the histogram
            return []
        if samples.ndim != 2:
            return []
        # validate writes (cases x T); older runs may be (T x cases).
        if samples.shape[0] == len(self.predictions):
            values = samples[row]
        elif samples.shape[1] == len(self.predictions):
            values = samples[:, row]
        else:
            return []
        return [float(v) for v in values if math.isfinite(float(v))]


def fmt(value: Any, digits: int = 3) -> str:
    """Numbers for humans: missing values as an em dash, floats rounded."""
    if value is None:
        return "—"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "—"
        return f"{value:.{digits}f}"
    return str(value)


def fmt_ci(metric: dict[str, Any] | None, digits: int = 3) -> str:
    """`0.812 (0.771–0.850)` from a {value, ci} metric dict."""
    if not metric or metric.get("value") is None:
        note = (metric or {}).get("note")
        return "n/e" + (f" ({note.split(':')[0]})" if note else "")
    ci = metric.get("ci")
    text = fmt(float(metric["value"]), digits)
    if ci and ci[0] is not None and ci[1] is not None:
        text += f" ({fmt(float(ci[0]), digits)}–{fmt(float(ci[1]), digits)})"
    return text


def kv_table(rows: list[tuple[str, Any]], key_width: int = 18) -> Text:
    """Key/value lines as plain Text (values are untrusted: never parsed as markup)."""
    text = Text()
    width = max([key_width] + [len(key) + 1 for key, _ in rows])  # a long key never runs into its value
    for key, value in rows:
        text.append(f"{key:<{width}}", style="bold")
        text.append(value if isinstance(value, Text) else Text(str(value)))
        text.append("\n")
    text.rstrip()
    return text


class Pane(Container):
    """A pane of the workstation; the app hands it each run it opens."""

    def show_run(self, run: RunData) -> None:
        """Redraw for a newly opened run; the default ignores runs."""

    def focus_target(self) -> Widget | None:
        """The widget that takes the keys when the pane is shown; None leaves them with the app."""
        return None
