"""Integrity pane: the score and band in colour, every check with its evidence, and the ledger."""
from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Label, Static

from tui.panes.base import BAND_STYLES, Pane, RunData, fmt


def band_for(score: float | None) -> str:
    """The documented bands: >= 90 High, 70-89 Stable, < 70 Review required."""
    if score is None:
        return "unknown"
    return "High" if score >= 90 else "Stable" if score >= 70 else "Review required"


def score_text(integrity: dict[str, Any]) -> Text:
    score = integrity.get("score")
    band = integrity.get("band") or band_for(score)
    text = Text("integrity ", style="bold")
    text.append(f"{fmt(score, 1)}  {band}", style=BAND_STYLES.get(band, "bold"))
    text.append(f"   {integrity.get('violations', 0)} violations, {integrity.get('warnings', 0)} warnings",
                style="dim")
    return text


def evidence_text(check: dict[str, Any]) -> Text:
    """The evidence dict as indented JSON, plain text (values come from the data)."""
    text = Text(f"{check.get('id')}: ", style="bold")
    text.append(str(check.get("message", "")) + "\n")
    text.append(json.dumps(check.get("evidence") or {}, indent=1, default=str)[:4000], style="dim")
    return text


class IntegrityPane(Pane):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.checks: dict[str, dict[str, Any]] = {}

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="integrity-body"):
            yield Static("No run open.", id="integrity-score", markup=False)
            yield DataTable(id="integrity-checks", cursor_type="row")
            yield Static("", id="integrity-evidence", markup=False)
            yield Label("Ledger", classes="section")
            yield DataTable(id="integrity-ledger", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one("#integrity-checks", DataTable).add_columns("", "check", "severity", "message")
        self.query_one("#integrity-ledger", DataTable).add_columns("time", "event", "details")

    def show_run(self, run: RunData) -> None:
        integrity = run.integrity
        table = self.query_one("#integrity-checks", DataTable)
        table.clear()
        self.checks = {}
        if not integrity:
            self.query_one("#integrity-score", Static).update("integrity.json is missing: run `bsx integrity`")
        else:
            self.query_one("#integrity-score", Static).update(score_text(integrity))
            checks = sorted(integrity.get("checks") or [], key=lambda c: (bool(c.get("passed")), c.get("severity") != "violation"))
            for check in checks:
                passed = bool(check.get("passed"))
                key = str(check.get("id"))
                self.checks[key] = check
                mark = Text("ok", style="green") if passed else Text(
                    "FAIL" if check.get("severity") == "violation" else "warn",
                    style="bold red" if check.get("severity") == "violation" else "bold yellow")
                table.add_row(mark, Text(key), Text(str(check.get("severity"))), Text(str(check.get("message"))),
                              key=key)
            if checks:
                self.query_one("#integrity-evidence", Static).update(evidence_text(checks[0]))
        ledger = self.query_one("#integrity-ledger", DataTable)
        ledger.clear()
        for entry in run.folder.ledger():
            details = {k: v for k, v in entry.items() if k not in ("time", "event")}
            ledger.add_row(Text(str(entry.get("time", ""))[:19]), Text(str(entry.get("event", ""))),
                           Text(json.dumps(details, default=str)[:120]))

    @on(DataTable.RowHighlighted, "#integrity-checks")
    def _check_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value in self.checks:
            self.query_one("#integrity-evidence", Static).update(evidence_text(self.checks[event.row_key.value]))
