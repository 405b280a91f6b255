"""Vector charts drawn with reportlab.graphics: ROC, reliability, risk-coverage,
histograms, forest plot and bar charts.

One small `Axes` helper draws every frame, tick and label, so all charts share
fonts, sizes and colours, and each chart function is only its data marks.
Curves arrive already downsampled (metrics.json keeps at most a few hundred
points), so drawing cost does not grow with the cohort.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from reportlab.graphics.shapes import Circle, Drawing, Group, Line, PolyLine, Polygon, Rect, String
from reportlab.lib import colors

from reports.styles import FLAG, FONT, FONT_BOLD, INK, MUTED, RULE, SERIES

TICK_FONT, LABEL_FONT, TITLE_FONT = 6.5, 7.5, 8.5


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 x 10^k) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(target, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-6:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _tick_text(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:g}"


class Axes:
    """A plot area inside a Drawing, with data-to-point mapping and labelled axes."""

    def __init__(self, width: float, height: float, x_range: tuple[float, float], y_range: tuple[float, float], *,
                 x_label: str, y_label: str, title: str = "", left: float = 38, bottom: float = 30,
                 right: float = 10, top: float = 18, x_ticks: Sequence[float] | None = None,
                 y_ticks: Sequence[float] | None = None, y_tick_labels: Sequence[str] | None = None) -> None:
        self.drawing = Drawing(width, height)
        self.x0, self.y0 = left, bottom
        self.w, self.h = width - left - right, height - bottom - top
        self.xr, self.yr = x_range, _widen(y_range)
        self.xr = _widen(x_range)
        d = self.drawing
        d.add(Rect(self.x0, self.y0, self.w, self.h, fillColor=colors.white, strokeColor=RULE, strokeWidth=0.5))
        for t in (x_ticks if x_ticks is not None else nice_ticks(*self.xr)):
            x = self.x(t)
            d.add(Line(x, self.y0, x, self.y0 + self.h, strokeColor=RULE, strokeWidth=0.25))
            d.add(String(x, self.y0 - 9, _tick_text(t), fontName=FONT, fontSize=TICK_FONT, fillColor=MUTED,
                         textAnchor="middle"))
        ticks = list(y_ticks if y_ticks is not None else nice_ticks(*self.yr))
        labels = list(y_tick_labels) if y_tick_labels is not None else [_tick_text(t) for t in ticks]
        for t, text in zip(ticks, labels):
            y = self.y(t)
            if y_tick_labels is None:
                d.add(Line(self.x0, y, self.x0 + self.w, y, strokeColor=RULE, strokeWidth=0.25))
            d.add(String(self.x0 - 3, y - 2.2, text, fontName=FONT, fontSize=TICK_FONT, fillColor=MUTED,
                         textAnchor="end"))
        d.add(String(self.x0 + self.w / 2, 6, x_label, fontName=FONT, fontSize=LABEL_FONT, fillColor=INK,
                     textAnchor="middle"))
        if y_label:
            label = String(0, 0, y_label, fontName=FONT, fontSize=LABEL_FONT, fillColor=INK, textAnchor="middle")
            d.add(Group(label, transform=(0, 1, -1, 0, 9, self.y0 + self.h / 2)))
        if title:
            d.add(String(self.x0, self.y0 + self.h + 6, title, fontName=FONT_BOLD, fontSize=TITLE_FONT,
                         fillColor=INK))

    def x(self, value: float) -> float:
        lo, hi = self.xr
        return self.x0 + (float(value) - lo) / (hi - lo) * self.w

    def y(self, value: float) -> float:
        lo, hi = self.yr
        return self.y0 + (float(value) - lo) / (hi - lo) * self.h

    def line(self, xs: Sequence[float], ys: Sequence[float], color=SERIES[0], width: float = 1.2,
             dash: Sequence[float] | None = None) -> None:
        points = [c for x, y in zip(xs, ys) if _ok(x) and _ok(y) for c in (self.x(x), self.y(y))]
        if len(points) >= 4:
            self.drawing.add(PolyLine(points, strokeColor=color, strokeWidth=width, strokeDashArray=dash))

    def dot(self, x: float, y: float, color=SERIES[0], radius: float = 2.0) -> None:
        if _ok(x) and _ok(y):
            self.drawing.add(Circle(self.x(x), self.y(y), radius, fillColor=color, strokeColor=colors.white,
                                    strokeWidth=0.4))

    def vline(self, x: float, color=MUTED, dash: Sequence[float] = (2, 2), label: str = "") -> None:
        if _ok(x) and self.xr[0] <= x <= self.xr[1]:
            self.drawing.add(Line(self.x(x), self.y0, self.x(x), self.y0 + self.h, strokeColor=color,
                                  strokeWidth=0.8, strokeDashArray=list(dash)))
            if label:
                self.text(self.x(x) + 2, self.y0 + self.h - 8, label, color=color)

    def text(self, x: float, y: float, text: str, color=INK, size: float = TICK_FONT, anchor: str = "start") -> None:
        self.drawing.add(String(x, y, text, fontName=FONT, fontSize=size, fillColor=color, textAnchor=anchor))

    def legend(self, entries: Sequence[tuple[str, object]], corner: str = "lower right") -> None:
        """Small swatches inside the plot area (upper/lower, left/right)."""
        if corner == "above":
            x = self.x0 + self.w
            for text, color in reversed(entries):
                x -= 4.2 * len(text) * TICK_FONT / 6.5 + 16
                self.drawing.add(Rect(x, self.y0 + self.h + 6, 8, 4, fillColor=color, strokeColor=None))
                self.text(x + 11, self.y0 + self.h + 5.5, text)
            return
        line_h = 9
        x = self.x0 + (self.w - 100 if "right" in corner else 6)
        y = self.y0 + (6 + line_h * (len(entries) - 1) if "lower" in corner else self.h - 10)
        for k, (text, color) in enumerate(entries):
            yy = y - k * line_h
            self.drawing.add(Rect(x, yy, 8, 4, fillColor=color, strokeColor=None))
            self.text(x + 11, yy - 0.5, text)


def _ok(value: object) -> bool:
    return value is not None and isinstance(value, (int, float, np.floating)) and math.isfinite(float(value))


def _widen(bounds: tuple[float, float]) -> tuple[float, float]:
    lo, hi = float(bounds[0]), float(bounds[1])
    if not math.isfinite(lo) or not math.isfinite(hi):
        return 0.0, 1.0
    if hi <= lo:
        return lo - 0.5, hi + 0.5
    return lo, hi


# ---------------------------------------------------------------------------
# Charts
# ---------------------------------------------------------------------------
def roc_chart(fpr: Sequence[float], tpr: Sequence[float], *, width: float, height: float, label: str,
              operating_point: tuple[float, float] | None = None) -> Drawing:
    """ROC curve with the chance diagonal and the operating point at the decision threshold."""
    ax = Axes(width, height, (0, 1), (0, 1), x_label="1 − specificity (false-positive rate)",
              y_label="Sensitivity (true-positive rate)", title="ROC curve")
    ax.line([0, 1], [0, 1], color=MUTED, width=0.6, dash=[2, 2])
    ax.line(fpr, tpr, color=SERIES[0], width=1.4)
    entries: list[tuple[str, object]] = [(label, SERIES[0])]
    if operating_point is not None:
        ax.dot(*operating_point, color=SERIES[1], radius=2.6)
        entries.append(("operating point", SERIES[1]))
    ax.legend(entries)
    return ax.drawing


def reliability_chart(bins: Sequence[dict], *, width: float, height: float, title: str = "Reliability diagram",
                      x_label: str = "Mean predicted probability") -> Drawing:
    """Observed frequency against mean predicted probability per bin; dot area shows the bin size."""
    ax = Axes(width, height, (0, 1), (0, 1), x_label=x_label, y_label="Observed frequency of the event",
              title=title)
    ax.line([0, 1], [0, 1], color=MUTED, width=0.6, dash=[2, 2])
    filled = [b for b in bins if b.get("n") and b.get("mean_pred") is not None]
    ax.line([b["mean_pred"] for b in filled], [b["frac_pos"] for b in filled], color=SERIES[0], width=1.0)
    largest = max((b["n"] for b in filled), default=1)
    for b in filled:
        ax.dot(b["mean_pred"], b["frac_pos"], radius=1.2 + 2.8 * math.sqrt(b["n"] / largest))
    ax.legend([("perfect calibration", MUTED), ("bins (area ~ cases)", SERIES[0])], corner="upper left")
    return ax.drawing


def risk_coverage_chart(curves: dict[str, tuple[Sequence[float], Sequence[float]]], *, width: float, height: float,
                        referral_coverage: float | None = None) -> Drawing:
    """Error rate on the retained cases as the most uncertain ones are referred, per uncertainty score."""
    top = max((max((r for r in risk if _ok(r)), default=0) for _, risk in curves.values()), default=1)
    ax = Axes(width, height, (0, 1), (0, max(top * 1.1, 0.05)), x_label="Coverage (fraction of cases retained)",
              y_label="Risk (error rate on retained cases)", title="Risk-coverage")
    entries = []
    for k, (name, (coverage, risk)) in enumerate(curves.items()):
        color = SERIES[k % len(SERIES)]
        ax.line(coverage, risk, color=color, width=1.1)
        entries.append((name, color))
    if referral_coverage is not None:
        ax.vline(referral_coverage, color=FLAG, label="referral point")
    ax.legend(entries, corner="upper left")
    return ax.drawing


def histogram_chart(series: dict[str, np.ndarray], *, width: float, height: float, x_label: str, title: str,
                    bins: int = 20, x_range: tuple[float, float] | None = None, marker: float | None = None,
                    marker_label: str = "") -> Drawing:
    """Overlaid step histograms (counts) of one or more series on shared bins."""
    values = [np.asarray(v, float)[np.isfinite(np.asarray(v, float))] for v in series.values()]
    pooled = np.concatenate(values) if values else np.zeros(0)
    lo, hi = x_range if x_range else ((float(pooled.min()), float(pooled.max())) if pooled.size else (0.0, 1.0))
    lo, hi = _widen((lo, hi))
    edges = np.linspace(lo, hi, bins + 1)
    counts = [np.histogram(v, bins=edges)[0] for v in values]
    top = max((int(c.max()) for c in counts if c.size), default=1) or 1
    ax = Axes(width, height, (lo, hi), (0, top * 1.1), x_label=x_label, y_label="Cases", title=title)
    entries = []
    for k, (name, c) in enumerate(zip(series, counts)):
        color = SERIES[k % len(SERIES)]
        for left, right, n in zip(edges[:-1], edges[1:], c):
            if n:
                ax.drawing.add(Rect(ax.x(left), ax.y(0), ax.x(right) - ax.x(left), ax.y(n) - ax.y(0),
                                    fillColor=colors.Color(color.red, color.green, color.blue, alpha=0.45),
                                    strokeColor=color, strokeWidth=0.4))
        entries.append((f"{name} (n={len(values[k]):,})", color))
    if marker is not None:
        ax.vline(marker, color=FLAG, label=marker_label)
    ax.legend(entries, corner="above")
    return ax.drawing


def forest_plot(rows: Sequence[dict], *, width: float, reference: float | None, x_label: str,
                title: str, row_height: float = 11) -> Drawing:
    """One row per group: point estimate with CI whiskers; flagged rows in red; reference line."""
    lows = [r["lo"] for r in rows if _ok(r.get("lo"))] + [r["value"] for r in rows if _ok(r.get("value"))]
    highs = [r["hi"] for r in rows if _ok(r.get("hi"))] + [r["value"] for r in rows if _ok(r.get("value"))]
    lo = min(lows + ([reference] if _ok(reference) else []), default=0.0)
    hi = max(highs + ([reference] if _ok(reference) else []), default=1.0)
    pad = (hi - lo) * 0.05 or 0.05
    height = 48 + row_height * max(len(rows), 1)
    label_width = min(150, max(60, 4.2 * max((len(r["label"]) for r in rows), default=10)))
    n = len(rows)
    ax = Axes(width, height, (lo - pad, hi + pad), (0, max(n, 1)), x_label=x_label, y_label="", title=title,
              left=label_width, y_ticks=[n - k - 0.5 for k in range(n)],
              y_tick_labels=[r["label"] for r in rows])
    if _ok(reference):
        ax.vline(reference, color=MUTED)
    for k, row in enumerate(rows):
        y = n - k - 0.5
        color = FLAG if row.get("flagged") else SERIES[0]
        if _ok(row.get("lo")) and _ok(row.get("hi")):
            ax.drawing.add(Line(ax.x(row["lo"]), ax.y(y), ax.x(row["hi"]), ax.y(y), strokeColor=color,
                                strokeWidth=0.9))
        if _ok(row.get("value")):
            size = 2.4
            cx, cy = ax.x(row["value"]), ax.y(y)
            ax.drawing.add(Polygon([cx - size, cy, cx, cy + size, cx + size, cy, cx, cy - size],
                                   fillColor=color, strokeColor=None))
    return ax.drawing


def bar_chart(labels: Sequence[str], values: Sequence[float], *, width: float, x_label: str, title: str,
              flagged: Sequence[bool] | None = None, threshold: float | None = None, threshold_label: str = "",
              row_height: float = 12) -> Drawing:
    """Horizontal bars (one per label), flagged bars in red, optional threshold line."""
    n = len(labels)
    finite_values = [v for v in values if _ok(v)]
    hi = max(finite_values + ([threshold] if _ok(threshold) else []), default=1.0) * 1.1 or 1.0
    label_width = min(150, max(60, 4.2 * max((len(s) for s in labels), default=10)))
    ax = Axes(width, 48 + row_height * max(n, 1), (0, hi), (0, max(n, 1)), x_label=x_label, y_label="",
              title=title, left=label_width, y_ticks=[n - k - 0.5 for k in range(n)], y_tick_labels=list(labels))
    for k, value in enumerate(values):
        if not _ok(value):
            continue
        y = n - k - 0.5
        color = FLAG if flagged and flagged[k] else SERIES[0]
        ax.drawing.add(Rect(ax.x(0), ax.y(y - 0.32), ax.x(value) - ax.x(0), ax.y(y + 0.32) - ax.y(y - 0.32),
                            fillColor=color, strokeColor=None))
    if _ok(threshold):
        ax.vline(threshold, color=FLAG, label=threshold_label)
    return ax.drawing


def paired_bars(categories: Sequence[str], reference: Sequence[float], current: Sequence[float], *, width: float,
                height: float, x_label: str, title: str) -> Drawing:
    """Reference vs current proportions per bin or category (drift of one feature)."""
    n = max(len(categories), 1)
    top = max(list(reference) + list(current) + [0.01]) * 1.15
    ax = Axes(width, height, (0, n), (0, top), x_label=x_label, y_label="Proportion of cases", title=title,
              x_ticks=[])
    step = ax.w / n
    for k, (name, r, c) in enumerate(zip(categories, reference, current)):
        x = ax.x0 + k * step
        for j, (value, color) in enumerate(((r, SERIES[5]), (c, SERIES[1]))):
            ax.drawing.add(Rect(x + step * (0.12 + 0.38 * j), ax.y(0), step * 0.36, ax.y(value) - ax.y(0),
                                fillColor=color, strokeColor=None))
        if n <= 16:
            ax.text(x + step / 2, ax.y0 - 9, name[:10], color=MUTED, anchor="middle")
    ax.legend([("reference", SERIES[5]), ("this cohort", SERIES[1])], corner="upper right")
    return ax.drawing


def confusion_chart(matrix: Sequence[Sequence[int]], labels: Sequence[str], *, size: float) -> Drawing:
    """Confusion matrix as shaded cells (rows truth, columns predicted) with counts."""
    k = len(labels)
    margin = 58
    d = Drawing(size, size)
    cell = (size - margin - 8) / max(k, 1)
    total_max = max((max(row) for row in matrix), default=1) or 1
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            shade = 0.12 + 0.78 * (value / total_max)
            fill = colors.Color(0.12 + (1 - shade) * 0.85, 0.37 + (1 - shade) * 0.6, 0.6 + (1 - shade) * 0.4)
            x, y = margin + j * cell, size - 22 - (i + 1) * cell
            d.add(Rect(x, y, cell, cell, fillColor=fill, strokeColor=colors.white, strokeWidth=1))
            d.add(String(x + cell / 2, y + cell / 2 - 3, f"{int(value):,}", fontName=FONT_BOLD, fontSize=9,
                         fillColor=colors.white if shade > 0.5 else INK, textAnchor="middle"))
    for j, name in enumerate(labels):
        d.add(String(margin + (j + 0.5) * cell, size - 18, str(name)[:14], fontName=FONT, fontSize=TICK_FONT,
                     fillColor=MUTED, textAnchor="middle"))
        d.add(String(margin - 3, size - 22 - (j + 0.5) * cell - 2, str(name)[:14], fontName=FONT,
                     fontSize=TICK_FONT, fillColor=MUTED, textAnchor="end"))
    d.add(String(margin + k * cell / 2, size - 8, "Predicted", fontName=FONT_BOLD, fontSize=LABEL_FONT,
                 fillColor=INK, textAnchor="middle"))
    d.add(String(2, size - 22 - k * cell - 10, "rows: truth", fontName=FONT_BOLD, fontSize=LABEL_FONT,
                 fillColor=INK))
    return d
