"""Subgroup table with 1,000 bootstrap resamples over 4 attributes on 100,000 cases,
against fairlearn's MetricFrame(n_boot=...) computing the same nine metrics.

fairlearn's bootstrap is a Python loop (resample the frame, group, call each
metric), so its time is linear in n_boot: it is measured at N_BOOT_FAIRLEARN
resamples (plus the no-bootstrap base) and extrapolated to 1,000, which keeps
this script within about two minutes. Ours runs the full 1,000.

Run: python -m benchmarks.bench_fairness
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from engine.fairness import ECE_BINS, METRICS, subgroup_table

N_CASES = 100_000
N_BOOT = 1000
N_BOOT_FAIRLEARN = 2  # each fairlearn resample takes seconds at 100k cases
ATTRIBUTES = ("site", "sex", "age_band", "skin_type")
TARGET_RATIO = 5.0


def synthetic_predictions(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth = (rng.random(n) < 0.25).astype(float)
    p = 1 / (1 + np.exp(-(2.5 * truth - 1.3 + rng.normal(0, 1.0, n))))
    age = rng.uniform(18, 95, n)
    return pd.DataFrame({
        "case_id": [f"c{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
        "truth": truth, "p_mean": p, "entropy": rng.random(n), "flagged": rng.random(n) < 0.1, "error": None,
        "site": rng.choice(["A", "B", "C", "D"], n), "sex": rng.choice(["female", "male"], n),
        "age": age, "age_band": pd.cut(age, [0, 30, 45, 60, 75, 120], right=False).astype(str),
        "skin_type": rng.choice(["I", "II", "III", "IV", "V", "VI"], n),
    })


def _ece(y, p) -> float:
    y, p = np.asarray(y, float), np.asarray(p, float)
    idx = np.minimum((p * ECE_BINS).astype(int), ECE_BINS - 1)
    resid = np.bincount(idx, weights=p - y, minlength=ECE_BINS)
    return float(np.abs(resid).sum() / len(y))


def fairlearn_metrics(threshold: float = 0.5) -> dict:
    """The metrics as a fairlearn user would write them (scikit-learn where it has them)."""
    from sklearn.metrics import brier_score_loss, precision_score, recall_score, roc_auc_score

    def hard(p):
        return (np.asarray(p) >= threshold).astype(int)

    def both_classes(fn):
        return lambda y, p, **kw: fn(y, p, **kw) if len(np.unique(y)) == 2 else np.nan

    return {
        "prevalence": lambda y, p: float(np.mean(y)),
        "auc": both_classes(roc_auc_score),
        "sensitivity": both_classes(lambda y, p: recall_score(y, hard(p))),
        "specificity": both_classes(lambda y, p: recall_score(y, hard(p), pos_label=0)),
        "ppv": lambda y, p: precision_score(y, hard(p), zero_division=np.nan),
        "ece": _ece,
        "brier": brier_score_loss,
        "mean_uncertainty": lambda y, p, unc: float(np.mean(unc)),
        "referral_rate": lambda y, p, referred: float(np.mean(referred)),
    }


def fairlearn_frames(frame: pd.DataFrame, n_boot: int | None) -> list:
    from fairlearn.metrics import MetricFrame

    params = {"mean_uncertainty": {"unc": frame["entropy"].to_numpy()},
              "referral_rate": {"referred": frame["flagged"].to_numpy()}}
    kwargs = {"n_boot": n_boot, "ci_quantiles": [0.025, 0.975], "random_state": 0} if n_boot else {}
    return [MetricFrame(metrics=fairlearn_metrics(), y_true=frame["truth"].astype(int), y_pred=frame["p_mean"],
                        sensitive_features=frame[attribute], sample_params=params, **kwargs)
            for attribute in ATTRIBUTES]


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def run(n_cases: int = N_CASES, n_boot: int = N_BOOT) -> list[dict]:
    frame = synthetic_predictions(n_cases)
    table, t_ours = _timed(lambda: subgroup_table(frame, attributes=ATTRIBUTES, n_boot=n_boot,
                                                  intersections=False))
    frames, t_base = _timed(lambda: fairlearn_frames(frame, None))
    _, t_boot = _timed(lambda: fairlearn_frames(frame, N_BOOT_FAIRLEARN))
    per_resample = max(t_boot - t_base, 0.0) / N_BOOT_FAIRLEARN
    t_fairlearn = t_base + n_boot * per_resample
    for attribute, metric_frame in zip(ATTRIBUTES, frames):  # same numbers, or the timing means nothing
        ours = table[table["attribute"] == attribute].set_index("group").loc[metric_frame.by_group.index]
        if not np.allclose(ours[list(METRICS)].to_numpy(float), metric_frame.by_group[list(METRICS)].to_numpy(float),
                           rtol=1e-9, equal_nan=True):
            raise AssertionError(f"subgroup_table disagrees with fairlearn on '{attribute}'")
    return [
        {"benchmark": "fairness_100k_1000_boot_vs_fairlearn",
         "figure": f"subgroup_table {t_ours:.1f} s vs fairlearn MetricFrame {t_fairlearn:.0f} s "
                   f"({per_resample:.2f} s/resample measured on {N_BOOT_FAIRLEARN}, extrapolated to {n_boot}); "
                   f"{len(ATTRIBUTES)} attributes, 9 metrics, {n_cases} cases",
         "target": f"ratio >= {TARGET_RATIO:g} (at least {TARGET_RATIO:g}x quicker than fairlearn)",
         "ratio": t_fairlearn / t_ours},
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row['benchmark']:<45} {row['ratio']:8.2f}x  {row['figure']}  [target: {row['target']}]")
