"""Performance & calibration: headline metrics with CIs, ROC, reliability, risk-coverage, confusion."""
from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from tui.panes.base import Pane, RunData, fmt, fmt_ci
from tui.widgets.charts import Chart, downsample

HEADLINE = [("auc", "AUC"), ("sensitivity", "sensitivity"), ("specificity", "specificity"), ("ppv", "PPV"),
            ("npv", "NPV"), ("balanced_accuracy", "bal. accuracy"), ("brier", "Brier"), ("ece", "ECE")]


def headline_table(metrics: dict[str, Any]) -> Table:
    """Metric, value and 95% CI, with the method that produced the CI."""
    table = Table(box=None, padding=(0, 1), show_edge=False, expand=False)
    table.add_column("metric", style="bold")
    table.add_column("value (95% CI)")
    table.add_column("method", style="dim")
    overall = metrics.get("overall") or {}
    for key, label in HEADLINE:
        if key in overall:
            table.add_row(label, fmt_ci(overall[key]), str(overall[key].get("method", "")))
    return table


def confusion_text(confusion: dict[str, Any] | None, class_names: list[str]) -> Text:
    """A 2x2 matrix (binary) or a note for other shapes."""
    if not confusion:
        return Text("confusion matrix: not available", style="dim")
    if {"tp", "fp", "tn", "fn"} <= set(confusion):
        neg, pos = (class_names + ["negative", "positive"])[:2] if len(class_names) >= 2 else ("neg", "pos")
        width = max(len(neg), len(pos), 6)
        text = Text("confusion (rows truth, columns prediction)\n", style="bold")
        text.append(f"{'':>{width}}  {neg:>{width}}  {pos:>{width}}\n")
        text.append(f"{neg:>{width}}  {confusion['tn']:>{width}}  {confusion['fp']:>{width}}\n")
        text.append(f"{pos:>{width}}  {confusion['fn']:>{width}}  {confusion['tp']:>{width}}")
        return text
    matrix = confusion.get("matrix")
    if matrix:
        text = Text("confusion (rows truth, columns prediction)\n", style="bold")
        for label, row in zip(class_names, matrix):
            text.append(f"{label[:10]:>10} " + " ".join(f"{v:>5}" for v in row) + "\n")
        text.rstrip()
        return text
    return Text("confusion matrix: unrecognised shape", style="dim")


def referral_point(selective: dict[str, Any] | None) -> tuple[float, float] | None:
    """(coverage, risk) at the run's referral rate, from the first score's curve."""
    if not selective:
        return None
    rate = float(selective.get("referral_rate") or 0)
    for score in (selective.get("scores") or {}).values():
        curve = score.get("curve") or {}
        coverage, risk = curve.get("coverage") or [], curve.get("risk") or []
        if coverage and risk:
            target = 1 - rate
            best = min(range(len(coverage)), key=lambda i: abs(coverage[i] - target))
            return float(coverage[best]), float(risk[best])
    return None


class PerformancePane(Pane):
    def compose(self) -> ComposeResult:
        with VerticalScroll(id="perf-body"):
            yield Static("No run open.", id="perf-headline", markup=False)
            with Horizontal(classes="chart-row"):
                yield Chart("ROC", id="perf-roc")
                yield Chart("Reliability", id="perf-reliability")
            with Horizontal(classes="chart-row"):
                yield Chart("Risk-coverage", id="perf-risk")
                yield Static("", id="perf-confusion", markup=False)

    def show_run(self, run: RunData) -> None:
        metrics = run.metrics
        if not metrics:
            self.query_one("#perf-headline", Static).update("metrics.json is missing: run `bsx validate` again")
            for chart in self.query(Chart):
                chart.clear()
            return
        header = Text(f"{metrics.get('n_cases', '?')} cases, {metrics.get('n_labelled', '?')} labelled, "
                      f"prevalence {fmt(metrics.get('prevalence'))}, threshold {fmt(metrics.get('threshold'))}\n",
                      style="dim")
        from rich.console import Group

        self.query_one("#perf-headline", Static).update(Group(header, headline_table(metrics)))
        self._roc(metrics.get("roc") or {})
        self._reliability(metrics.get("reliability") or {})
        self._risk(metrics.get("selective"))
        class_names = list(metrics.get("class_names") or run.info.get("class_names") or [])
        self.query_one("#perf-confusion", Static).update(confusion_text(metrics.get("confusion"), class_names))

    def _roc(self, roc: dict[str, Any]) -> None:
        fpr, tpr = roc.get("fpr") or [], roc.get("tpr") or []
        chart = self.query_one("#perf-roc", Chart)
        if not fpr:
            chart.clear()
            return
        x, y = downsample(fpr, tpr)
        chart.draw(lambda plt: (plt.plot(x, y, marker="braille"), plt.plot([0, 1], [0, 1], marker="dot"),
                                plt.xlim(0, 1), plt.ylim(0, 1)))

    def _reliability(self, reliability: dict[str, Any]) -> None:
        bins = reliability.get("equal_width") or reliability.get("equal_mass") or []
        points = [(b["mean_pred"], b["frac_pos"]) for b in bins
                  if b.get("mean_pred") is not None and b.get("frac_pos") is not None]
        chart = self.query_one("#perf-reliability", Chart)
        if not points:
            chart.clear()
            return
        x, y = zip(*points)
        chart.draw(lambda plt: (plt.scatter(list(x), list(y)), plt.plot([0, 1], [0, 1], marker="dot"),
                                plt.xlim(0, 1), plt.ylim(0, 1)))

    def _risk(self, selective: dict[str, Any] | None) -> None:
        chart = self.query_one("#perf-risk", Chart)
        scores = (selective or {}).get("scores") or {}
        curve = next((s.get("curve") for s in scores.values() if s.get("curve")), None)
        if not curve or not curve.get("coverage"):
            chart.clear()
            return
        x, y = downsample(curve["coverage"], curve["risk"])
        point = referral_point(selective)

        def draw(plt) -> None:
            plt.plot(x, y, marker="braille")
            if point:
                plt.scatter([point[0]], [point[1]], marker="x", label="referral")
            plt.xlim(0, 1)

        chart.draw(draw)
