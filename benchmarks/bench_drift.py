"""Metadata drift on 1,000,000 rows per feature (one numeric, two categorical),
against a one-second-per-feature budget, and the numeric feature against the
same measures computed the usual way (np.histogram per cohort, scipy's
jensenshannon and wasserstein_distance).

Run: python -m benchmarks.bench_drift
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from engine.drift import metadata_drift

N_ROWS = 1_000_000
BUDGET_PER_FEATURE_S = 1.0


def cohorts(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def one(age_mean: float, female: float) -> pd.DataFrame:
        return pd.DataFrame({
            "age": rng.normal(age_mean, 15, n),
            "sex": rng.choice(["female", "male"], n, p=[female, 1 - female]),
            "site": rng.choice(["A", "B", "C", "D", "E"], n),
        })

    return one(55, 0.5), one(58, 0.6)


def scipy_numeric(ref: np.ndarray, cur: np.ndarray, bins: int = 10) -> tuple[float, float]:
    edges = np.quantile(ref, np.linspace(0, 1, bins + 1))
    edges[0], edges[-1] = min(ref.min(), cur.min()), max(ref.max(), cur.max())
    js = jensenshannon(np.histogram(ref, edges)[0], np.histogram(cur, edges)[0], base=2)
    return float(js), float(stats.wasserstein_distance(ref, cur))


def run(n_rows: int = N_ROWS) -> list[dict]:
    ref, cur = cohorts(n_rows)
    start = time.perf_counter()
    result = metadata_drift(ref, cur)
    t_all = time.perf_counter() - start
    start = time.perf_counter()
    numeric = metadata_drift(ref, cur, columns=["age"])["features"]["age"]
    t_numeric = time.perf_counter() - start
    start = time.perf_counter()
    js, distance = scipy_numeric(ref["age"].to_numpy(), cur["age"].to_numpy())
    t_scipy = time.perf_counter() - start
    if abs(numeric["wasserstein_distance"] - distance) > 1e-9 * distance or abs(numeric["js_distance"] - js) > 1e-12:
        raise AssertionError("drift measures disagree with scipy")
    per_feature = t_all / result["n_features"]
    return [
        {"benchmark": "drift_1m_rows_per_feature",
         "figure": f"metadata_drift on {result['n_features']} features x {n_rows} rows: {t_all:.2f} s "
                   f"({per_feature:.2f} s per feature)",
         "target": f"ratio >= 1 (within {BUDGET_PER_FEATURE_S:g} s per feature)",
         "ratio": BUDGET_PER_FEATURE_S / per_feature},
        {"benchmark": "drift_numeric_1m_vs_scipy",
         "figure": f"numeric feature (JS, PSI, Wasserstein, histograms) {t_numeric:.2f} s vs np.histogram + "
                   f"scipy jensenshannon + wasserstein_distance {t_scipy:.2f} s",
         "target": "ratio >= 1 (no slower than the plain scipy route, which does less)",
         "ratio": t_scipy / t_numeric},
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row['benchmark']:<30} {row['ratio']:8.2f}x  {row['figure']}  [target: {row['target']}]")
