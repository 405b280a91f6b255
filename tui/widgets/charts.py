"""Charts via textual-plotext, with long series thinned before plotting.

Terminal charts have at most a few hundred columns; plotting 100,000 points
only costs time, so every series goes through `downsample` first.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from textual_plotext import PlotextPlot

MAX_POINTS = 400


def downsample(xs: Sequence[float], ys: Sequence[float], limit: int = MAX_POINTS) -> tuple[list[float], list[float]]:
    """Keep `limit` evenly spaced points, always including the first and the last."""
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    if len(x) <= limit:
        return x.tolist(), y.tolist()
    keep = np.unique(np.linspace(0, len(x) - 1, limit).round().astype(int))
    return x[keep].tolist(), y[keep].tolist()


class Chart(PlotextPlot):
    """A plot redrawn by a function of plotext's `plt`; keeps the function for theme changes."""

    DEFAULT_CSS = "Chart { height: 12; min-height: 8; }"

    def __init__(self, title: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.title = title
        self._draw: Callable | None = None

    def draw(self, function: Callable) -> None:
        """Clear and redraw with `function(plt)`."""
        self._draw = function
        plt = self.plt
        plt.clear_figure()
        if self.title:
            plt.title(self.title)
        function(plt)
        self.refresh()

    def clear(self) -> None:
        self._draw = None
        self.plt.clear_figure()
        self.refresh()
