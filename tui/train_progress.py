"""Training progress for the CLI: a rich bar with a per-epoch table, or JSON lines."""
from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from tui.console import err


@contextmanager
def jsonl_printer(min_interval: float = 0.25) -> Iterator[Callable[[dict], None]]:
    """One JSON object per line on stdout; step events throttled (the TUI reads these)."""
    last = [0.0]

    def emit(event: dict) -> None:
        now = time.monotonic()
        if event.get("event") == "step" and now - last[0] < min_interval and event["step"] != event["steps"]:
            return
        last[0] = now
        sys.stdout.write(json.dumps(event, default=float) + "\n")
        sys.stdout.flush()

    yield emit


@contextmanager
def rich_reporter() -> Iterator[Callable[[dict], None]]:
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
               TimeRemainingColumn()]
    with Progress(*columns, console=err) as bar:
        task = bar.add_task("training", total=None, info="")

        def emit(event: dict) -> None:
            kind = event.get("event")
            if kind == "start":
                err.print(f"training on {event['train_cases']} cases, validating on {event['val_cases']}")
            elif kind == "step":
                bar.update(task, description=f"epoch {event['epoch']}", total=event["steps"],
                           completed=event["step"],
                           info=f"loss {event['loss']:.3f}  {event['images_per_s']:.1f} img/s")
            elif kind == "epoch":
                err.print(f"epoch {event['epoch']}: train loss {event['train_loss']:.3f}  val loss "
                          f"{event['val_loss']:.3f}  AUC {event['val_auc']:.3f}  ECE {event['val_ece']:.3f}  "
                          f"Brier {event['val_brier']:.3f}  MC entropy {event['val_mc_entropy']:.3f}"
                          f"{'  (best)' if event.get('best') else ''}")
            elif kind == "early_stop":
                err.print(f"early stop after epoch {event['epoch']} (no improvement for {event['patience']})")

        yield emit
