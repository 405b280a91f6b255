"""Fairness pane: the subgroup table per attribute, a forest chart of AUCs, site heterogeneity."""
from __future__ import annotations

import math
from typing import Any

import pandas as pd
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Select, Static

from tui.panes.base import Pane, RunData, fmt
from tui.widgets.charts import Chart

METRICS = ("auc", "sensitivity", "specificity", "ece")


def ci_cell(row: pd.Series, metric: str) -> Text:
    """`0.81 (0.75–0.86)`, red when flagged against the reference group, yellow against overall."""
    value = row.get(metric)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Text("n/e", style="dim")
    low, high = row.get(f"{metric}_ci_low"), row.get(f"{metric}_ci_high")
    text = f"{value:.2f}"
    if low is not None and high is not None and not (pd.isna(low) or pd.isna(high)):
        text += f" ({low:.2f}–{high:.2f})"
    style = ""
    if bool(row.get(f"{metric}_flag_ref")) is True:
        style = "bold red"
    elif bool(row.get(f"{metric}_flag_overall")) is True:
        style = "yellow"
    return Text(text, style=style)


def heterogeneity_text(heterogeneity: dict[str, Any] | None) -> Text:
    """Pooled AUC, I², tau² and which sites fall outside the prediction interval."""
    if not heterogeneity or not heterogeneity.get("sites"):
        note = (heterogeneity or {}).get("note") or "not computed"
        return Text(f"inter-site heterogeneity: {note}", style="dim")
    pooled = heterogeneity.get("pooled") or {}
    ci = pooled.get("ci") or [None, None]
    text = Text("inter-site heterogeneity ", style="bold")
    text.append(f"({heterogeneity.get('method', '')})\n", style="dim")
    text.append(f"pooled AUC {fmt(pooled.get('auc'))} ({fmt(ci[0])}–{fmt(ci[1])})  I² {fmt(heterogeneity.get('i2'), 2)}"
                f"  tau² {fmt(heterogeneity.get('tau2'), 4)}  Q p {fmt(heterogeneity.get('q_p'))}\n")
    flagged = heterogeneity.get("flagged_sites") or []
    text.append(f"sites outside the prediction interval: {', '.join(map(str, flagged)) or 'none'}",
                style="bold red" if flagged else "green")
    return text


class FairnessPane(Pane):
    """Choose an attribute; red cells differ from the reference group, yellow from overall."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.table_data: pd.DataFrame | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="fair-body"):
            yield Select([], prompt="attribute", id="fair-attribute", allow_blank=True)
            yield Static("No run open.", id="fair-reference", markup=False)
            yield DataTable(id="fair-table", cursor_type="row", zebra_stripes=True)
            yield Chart("Subgroup AUC (95% CI)", id="fair-forest")
            yield Static("", id="fair-heterogeneity", markup=False)

    def on_mount(self) -> None:
        self.query_one("#fair-table", DataTable).add_columns("group", "n", "pos", *METRICS, "note")

    def show_run(self, run: RunData) -> None:
        self.table_data = run.fairness
        self.query_one("#fair-heterogeneity", Static).update(
            heterogeneity_text((run.metrics or {}).get("heterogeneity")))
        select = self.query_one("#fair-attribute", Select)
        if self.table_data is None or self.table_data.empty:
            select.set_options([])
            self.query_one("#fair-reference", Static).update("fairness.csv is missing from this run")
            self.query_one("#fair-table", DataTable).clear()
            self.query_one("#fair-forest", Chart).clear()
            return
        attributes = [a for a in self.table_data["attribute"].dropna().unique() if a != "overall"]
        select.set_options([(str(a), str(a)) for a in attributes])
        if attributes:
            select.value = str(attributes[0])
            self.show_attribute(str(attributes[0]))

    def show_attribute(self, attribute: str) -> None:
        """Fill the table and the forest chart for one attribute (plus the overall row)."""
        if self.table_data is None:
            return
        frame = self.table_data
        rows = pd.concat([frame[frame["attribute"] == "overall"], frame[frame["attribute"] == attribute]])
        reference = rows["reference_group"].dropna()
        self.query_one("#fair-reference", Static).update(
            Text(f"{attribute}: reference group {reference.iloc[0] if len(reference) else '—'}; "
                 "red = differs from the reference, yellow = differs from overall (BH-corrected)"))
        table = self.query_one("#fair-table", DataTable)
        table.clear()
        for _, row in rows.iterrows():
            group = str(row.get("group")) if row["attribute"] != "overall" else "overall"
            label = Text(group + (" (ref)" if bool(row.get("is_reference")) else ""),
                         style="bold" if bool(row.get("is_reference")) else "")
            note = row.get("note")
            table.add_row(label, Text(fmt(row.get("n"))), Text(fmt(row.get("positives"))),
                          *[ci_cell(row, metric) for metric in METRICS],
                          Text("" if pd.isna(note) else str(note), style="dim"))
        self._forest(rows)

    def _forest(self, rows: pd.DataFrame) -> None:
        estimable = rows[rows["auc"].notna()]
        chart = self.query_one("#fair-forest", Chart)
        if estimable.empty:
            chart.clear()
            return
        labels = [("overall" if r["attribute"] == "overall" else str(r["group"]))[:12] for _, r in estimable.iterrows()]
        values = estimable["auc"].astype(float).tolist()
        lows = estimable["auc_ci_low"].astype(float).fillna(estimable["auc"]).tolist()
        highs = estimable["auc_ci_high"].astype(float).fillna(estimable["auc"]).tolist()

        def draw(plt) -> None:
            positions = list(range(1, len(values) + 1))
            for y, low, high in zip(positions, lows, highs):
                plt.plot([low, high], [y, y], marker="hd")
            plt.scatter(values, positions, marker="o")
            plt.yticks(positions, labels)
            plt.xlim(min(lows + [0.5]) - 0.02, max(highs + [1.0]) + 0.01)

        chart.draw(draw)

    @on(Select.Changed, "#fair-attribute")
    def _attribute_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.show_attribute(event.value)
