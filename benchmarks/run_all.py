"""`make bench`: every benchmark under benchmarks/ in one run, one table of ratios."""
from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path

from rich.console import Console
from rich.table import Table


def benchmark_modules() -> list[str]:
    here = Path(__file__).parent
    names = sorted(p.stem for p in here.glob("bench_*.py")) + (["robustness"] if (here / "robustness.py").exists()
                                                              else [])
    return [f"benchmarks.{name}" for name in names]


def main(selected: list[str] | None = None) -> int:
    table = Table(title="BioSignal-X benchmarks (ratios: higher is better; this machine is noisy)")
    for column in ("benchmark", "figure", "target", "ratio"):
        table.add_column(column, overflow="fold")
    failures = 0
    for name in benchmark_modules():
        if selected and not any(s in name for s in selected):
            continue
        started = time.perf_counter()
        try:
            rows = importlib.import_module(name).run()
        except Exception:  # one broken benchmark must not hide the others
            failures += 1
            table.add_row(name, "failed", "", traceback.format_exc(limit=1).strip().splitlines()[-1])
            continue
        for result in rows:
            table.add_row(result["benchmark"], str(result["figure"]), str(result["target"]), f"{result['ratio']:g}")
        print(f"{name}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    Console().print(table)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
