"""Shared helpers for benchmarks: timing and the result row every script returns."""
from __future__ import annotations

import time
from typing import Callable


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time of `repeat` calls (least disturbed by a noisy machine)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def row(benchmark: str, figure: str, target: str, ratio: float) -> dict:
    return {"benchmark": benchmark, "figure": figure, "target": target, "ratio": round(float(ratio), 3)}
