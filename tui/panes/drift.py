"""Drift pane: per-feature distances and p-values, reference vs current histograms, verdict."""
from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from tui.panes.base import Pane, RunData, fmt
from tui.widgets.charts import Chart

VERDICT_STYLES = {"no drift": "bold green", "partial drift": "bold yellow", "drift": "bold red"}


def verdict_text(drift: dict[str, Any]) -> Text:
    """Overall verdict, the reference used, and prediction / embedding drift."""
    if drift.get("status") == "no reference":
        return Text(f"no reference: {drift.get('note', 'pass --reference to bsx validate')}", style="dim")
    verdict = str(drift.get("verdict", "unknown"))
    text = Text("verdict ", style="bold")
    text.append(verdict, style=VERDICT_STYLES.get(verdict, "bold"))
    reference = drift.get("reference") or {}
    if reference:
        text.append(f"  vs {reference.get('kind', '')} {reference.get('path', '')}", style="dim")
    for part in ("prediction", "embedding"):
        section = drift.get(part)
        if isinstance(section, dict):
            text.append(f"\n{part} drift: {section.get('verdict', section.get('drift', '?'))}")
            text.append(embedding_figures(section) if part == "embedding" else "")
        else:
            text.append(f"\n{part} drift: not tested", style="dim")
    return text


def embedding_figures(section: dict[str, Any]) -> str:
    """MMD with its permutation p-value and the domain classifier's AUC, as one line."""
    parts = []
    mmd = section.get("mmd") or {}
    if mmd.get("mmd2") is not None:
        parts.append(f"MMD² {fmt(mmd.get('mmd2'), 4)} (p {fmt(mmd.get('p_value'))}, "
                     f"{mmd.get('n_permutations', '?')} permutations)")
    classifier = section.get("domain_classifier") or {}
    if classifier.get("auc") is not None:
        parts.append(f"domain classifier AUC {fmt(classifier.get('auc'))}")
    return ("  " + "; ".join(parts)) if parts else ""


class DriftPane(Pane):
    """Move through the feature table to see that feature's histograms."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.features: dict[str, dict[str, Any]] = {}

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="drift-body"):
            yield Static("No run open.", id="drift-verdict", markup=False)
            yield DataTable(id="drift-table", cursor_type="row", zebra_stripes=True)
            yield Chart("JS distance per feature", id="drift-bars")
            yield Chart("reference vs current", id="drift-hist")

    def on_mount(self) -> None:
        self.query_one("#drift-table", DataTable).add_columns("feature", "test", "stat", "p (BH)", "JS", "PSI",
                                                              "drift")

    def show_run(self, run: RunData) -> None:
        drift = run.drift
        table = self.query_one("#drift-table", DataTable)
        table.clear()
        self.features = {}
        if not drift:
            self.query_one("#drift-verdict", Static).update("drift.json is missing from this run")
            self.query_one("#drift-bars", Chart).clear()
            self.query_one("#drift-hist", Chart).clear()
            return
        self.query_one("#drift-verdict", Static).update(verdict_text(drift))
        self.features = ((drift.get("metadata") or {}).get("features")) or {}
        for name, feature in self.features.items():
            drifted = bool(feature.get("drift"))
            table.add_row(Text(name, style="bold red" if drifted else ""), Text(str(feature.get("test") or "—")),
                          Text(fmt(feature.get("statistic"))), Text(fmt(feature.get("p_value_bh"), 4)),
                          Text(fmt(feature.get("js_distance"))), Text(fmt(feature.get("psi"))),
                          Text("yes" if drifted else "", style="bold red"), key=name)
        self._bars()
        if self.features:
            self.show_feature(next(iter(self.features)))

    def _bars(self) -> None:
        tested = [(n, f["js_distance"]) for n, f in self.features.items() if f.get("js_distance") is not None]
        chart = self.query_one("#drift-bars", Chart)
        if not tested:
            chart.clear()
            return
        names, values = zip(*tested)
        chart.draw(lambda plt: plt.bar([n[:10] for n in names], list(values), orientation="horizontal", width=0.3))

    def show_feature(self, name: str) -> None:
        """Overlaid reference and current histograms (as proportions) for one feature."""
        feature = self.features.get(name) or {}
        histogram = feature.get("histogram") or {}
        chart = self.query_one("#drift-hist", Chart)
        chart.title = f"{name}: reference vs current"
        reference, current = histogram.get("reference") or [], histogram.get("current") or []
        if not reference or not current:
            chart.clear()
            return
        if histogram.get("categories"):
            labels = [str(c)[:8] for c in histogram["categories"]]
        else:
            edges = histogram.get("edges") or list(range(len(reference) + 1))
            labels = [f"{edges[i]:.3g}" for i in range(len(reference))]
        ref_total, cur_total = sum(reference) or 1, sum(current) or 1
        shares = ([r / ref_total for r in reference], [c / cur_total for c in current])
        chart.draw(lambda plt: plt.multiple_bar(labels, list(shares), labels=["reference", "current"]))

    @on(DataTable.RowHighlighted, "#drift-table")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value in self.features:
            self.show_feature(str(event.row_key.value))
