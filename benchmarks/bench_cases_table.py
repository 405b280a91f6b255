"""First paint and page scroll of 100,000 cases: our virtual CasesTable vs Textual's DataTable.

Both tables get the same frame inside `App.run_test` at 80x24; first paint is
the time from mounting the table to the first completed refresh, page scroll
the time for one PageDown to be processed and painted. Target: the virtual
table paints first at least 20x faster.
"""
from __future__ import annotations

import asyncio
import time

import numpy as np
import pandas as pd
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from tui.widgets.cases_table import DEFAULT_COLUMNS, CasesTable

N_CASES = 100_000
TARGET_RATIO = 20.0


def synthetic_frame(n: int = N_CASES, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    return pd.DataFrame({
        "case_id": [f"BENCH_{i:07d}" for i in range(n)], "truth": rng.integers(0, 2, n).astype(float),
        "p_mean": p, "p_std": rng.random(n) * 0.1, "entropy": rng.random(n) * 0.69,
        "mutual_info": rng.random(n) * 0.05, "flagged": rng.random(n) < 0.1, "error": [None] * n,
        "site": rng.choice(["A", "B", "C"], n), "sex": rng.choice(["male", "female"], n),
        "age": rng.integers(18, 95, n).astype(float), "skin_type": rng.choice(["I", "II", "III", "IV"], n),
    })


class Host(App):
    """An empty app: the table is mounted inside the timed section."""

    def compose(self) -> ComposeResult:
        return iter(())


def _plain_table(frame: pd.DataFrame) -> DataTable:
    table = DataTable()
    keys = [c.key for c in DEFAULT_COLUMNS]
    table.add_columns(*[c.label for c in DEFAULT_COLUMNS])
    table.add_rows(frame[keys].astype(str).itertuples(index=False, name=None))
    return table


async def measure(kind: str, frame: pd.DataFrame) -> dict[str, float]:
    """Seconds for first paint and for one page scroll with the given table kind."""
    app = Host()
    async with app.run_test(size=(80, 24)) as pilot:
        start = time.perf_counter()
        table = CasesTable(frame) if kind == "virtual" else _plain_table(frame)
        await app.mount(table)
        table.focus()
        await pilot.pause()
        first_paint = time.perf_counter() - start
        start = time.perf_counter()
        await pilot.press("pagedown")
        await pilot.pause()
        scroll = time.perf_counter() - start
    return {"first_paint_s": first_paint, "page_scroll_s": scroll}


def run(n: int = N_CASES) -> list[dict]:
    """Benchmark rows for the project's benchmark runner."""
    frame = synthetic_frame(n)
    ours = asyncio.run(measure("virtual", frame))
    plain = asyncio.run(measure("datatable", frame))
    paint_ratio = plain["first_paint_s"] / max(ours["first_paint_s"], 1e-9)
    scroll_ratio = plain["page_scroll_s"] / max(ours["page_scroll_s"], 1e-9)
    return [
        {"benchmark": f"cases table first paint ({n:,} cases)",
         "figure": f"{ours['first_paint_s'] * 1000:.0f} ms vs DataTable {plain['first_paint_s'] * 1000:.0f} ms",
         "target": f">= {TARGET_RATIO:.0f}x faster", "ratio": round(paint_ratio, 1)},
        {"benchmark": f"cases table page scroll ({n:,} cases)",
         "figure": f"{ours['page_scroll_s'] * 1000:.0f} ms vs DataTable {plain['page_scroll_s'] * 1000:.0f} ms",
         "target": "interactive (< 100 ms)", "ratio": round(scroll_ratio, 1)},
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row['benchmark']}: {row['figure']}  ratio {row['ratio']}x  (target {row['target']})")
