"""Validation-report render time for a 25,000-case run, relative to reading the run folder.

The big run is derived from a small real one (BSX_BENCH_RUN, or a tiny run
built here with the test model): predictions rows and MC samples are repeated
under new case ids, and metrics.json / fairness.csv are recomputed on them, so
the report sees a consistent 25k-case folder. The report must stay a few
seconds: it summarises and caps long tables instead of printing every case.

Run: python -m benchmarks.bench_report
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

N_CASES = 25_000
RENDER_BUDGET_S = 5.0
N_BOOT = 100
COPIED = ("run.json", "drift.json", "integrity.json", "ledger.jsonl", "gradcam", "embeddings.npy")


def small_run(workdir: Path) -> Path:
    """A real run folder: synthetic cohorts, the tiny test backbone, one epoch."""
    from cohorts.synth import SynthSpec, write_synthetic
    from engine.train import TrainConfig, Trainer
    from engine.validate import ValidateConfig, run_validation

    write_synthetic(SynthSpec(n=60, seed=1, image_size=48), workdir / "train")
    write_synthetic(SynthSpec(n=60, seed=7, image_size=48, shift="older"), workdir / "external")
    Trainer(TrainConfig(cohort=str(workdir / "train"), out=str(workdir / "model"), epochs=1, batch_size=8,
                        workers=0, mc_samples=2, backbone="test_efficientnet", image_size=32)).run()
    run_validation(ValidateConfig(cohort=str(workdir / "external"), checkpoint=str(workdir / "model"),
                                  out=str(workdir / "small"), mc_samples=8, workers=0, n_boot=50,
                                  reference=str(workdir / "train")))
    return workdir / "small"


def big_run(source: Path, target: Path, n_cases: int = N_CASES) -> Path:
    """Repeat the source run's cases to n_cases and recompute its metrics on them."""
    from engine.analyses import FAIRNESS_ATTRIBUTES
    from engine.fairness import fairness_summary, subgroup_table
    from engine.heterogeneity import site_heterogeneity
    from engine.metrics import compute_metrics
    from engine.runfolder import RunFolder

    target.mkdir(parents=True)
    for name in COPIED:
        path = source / name
        if path.is_dir():
            shutil.copytree(path, target / name)
        elif path.is_file():
            shutil.copy2(path, target / name)
    small = pd.read_parquet(source / "predictions.parquet")
    repeats = -(-n_cases // len(small))
    rows = np.tile(np.arange(len(small)), repeats)[:n_cases]
    copy = np.repeat(np.arange(repeats), len(small))[:n_cases]
    frame = small.iloc[rows].reset_index(drop=True)
    frame["case_id"] = [f"{c}-r{k}" for c, k in zip(frame["case_id"], copy)]
    frame["patient_id"] = [f"{p}-r{k}" for p, k in zip(frame["patient_id"], copy)]
    folder = RunFolder(target)
    folder.write_predictions(frame)
    folder.write_array("mc_samples", np.load(source / "mc_samples.npy")[rows])
    run = folder.run_info()
    metrics = compute_metrics(frame, task=run["task"], class_names=run["class_names"], n_boot=N_BOOT)
    table = subgroup_table(frame, attributes=[a for a in FAIRNESS_ATTRIBUTES if a in frame or a == "age_band"],
                           n_boot=N_BOOT)
    folder.write_fairness(table)
    metrics["fairness"] = fairness_summary(table)
    metrics["heterogeneity"] = site_heterogeneity(frame)
    folder.write_json("metrics", metrics)
    return target


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run() -> list[dict]:
    from reports.rundata import load_run
    from reports.validation import render_validation_report

    with tempfile.TemporaryDirectory(prefix="bsx-bench-report-") as tmp:
        workdir = Path(tmp)
        source = Path(os.environ["BSX_BENCH_RUN"]) if os.environ.get("BSX_BENCH_RUN") else small_run(workdir)
        folder = big_run(source, workdir / "big")
        read_s = timed(lambda: load_run(folder))
        render_s = timed(lambda: render_validation_report(folder), repeat=2)
        pages = _pages(folder / "report.pdf")
    return [
        {"benchmark": f"validation report, {N_CASES:,} cases ({pages} pages)", "figure": f"{render_s:.2f} s render",
         "target": f"<= {RENDER_BUDGET_S:.0f} s", "ratio": render_s / RENDER_BUDGET_S},
        {"benchmark": "render vs reading the run folder", "figure": f"{render_s:.2f} s vs {read_s:.2f} s",
         "target": "render / read", "ratio": render_s / read_s},
    ]


def _pages(pdf: Path) -> int:
    from pypdf import PdfReader

    return len(PdfReader(str(pdf)).pages)


if __name__ == "__main__":
    for row in run():
        print(f"{row['benchmark']:<48} {row['figure']:<24} target {row['target']:<14} ratio {row['ratio']:.2f}")
