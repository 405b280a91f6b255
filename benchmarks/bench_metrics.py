"""DeLong AUC with variance: the fast midrank algorithm against an O(n^2) pairwise
reference and against scikit-learn's roc_auc_score (AUC only), on 20,000 cases;
plus the whole metrics.json (1,000 patient-level bootstrap replicates) against
a time budget.

Run: python -m benchmarks.bench_metrics
"""
from __future__ import annotations


import numpy as np
import pandas as pd

from benchmarks.common import best_of
from engine.metrics import auc_delong, compute_metrics

N_CASES = 20_000
METRICS_BUDGET_S = 15.0


def pairwise_delong(y: np.ndarray, p: np.ndarray, block: int = 256) -> tuple[float, float]:
    """DeLong from its definition, comparing every positive with every negative (in blocks)."""
    pos, neg = p[y == 1], p[y == 0]
    v_pos = np.empty(pos.size)
    neg_sum = np.zeros(neg.size)
    for start in range(0, pos.size, block):
        chunk = pos[start:start + block, None]
        psi = (chunk > neg[None, :]) + 0.5 * (chunk == neg[None, :])
        v_pos[start:start + block] = psi.mean(axis=1)
        neg_sum += psi.sum(axis=0)
    v_neg = neg_sum / pos.size
    return float(v_pos.mean()), float(v_pos.var(ddof=1) / pos.size + v_neg.var(ddof=1) / neg.size)


def synthetic_cohort(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    p = np.clip(rng.normal(0.3 + 0.35 * y, 0.2), 0.0, 1.0).round(4)  # rounded: realistic ties
    return y, p


def synthetic_predictions(y: np.ndarray, p: np.ndarray, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = y.size
    return pd.DataFrame({
        "case_id": [f"c{i}" for i in range(n)], "patient_id": [f"p{i // 2}" for i in range(n)],
        "truth": y.astype(float), "p_mean": p, "p_std": rng.random(n) * 0.1, "entropy": rng.random(n),
        "expected_entropy": rng.random(n), "mutual_info": rng.random(n), "pred": (p >= 0.5).astype(int),
        "flagged": False, "error": None,
    })


def run(n_cases: int = N_CASES) -> list[dict]:
    from sklearn.metrics import roc_auc_score

    y, p = synthetic_cohort(n_cases)
    fast_auc, fast_var = auc_delong(y, p)
    ref_auc, ref_var = pairwise_delong(y, p)
    if abs(fast_auc - ref_auc) > 1e-12 or abs(fast_var - ref_var) > 1e-9 * ref_var:
        raise AssertionError("fast DeLong disagrees with the pairwise reference")
    t_fast = best_of(lambda: auc_delong(y, p), repeat=7)
    t_ref = best_of(lambda: pairwise_delong(y, p), repeat=1)
    t_sklearn = best_of(lambda: roc_auc_score(y, p), repeat=7)
    frame = synthetic_predictions(y, p)
    t_metrics = best_of(lambda: compute_metrics(frame, class_names=["benign", "malignant"], n_boot=1000),
                          repeat=1)
    return [
        {"benchmark": "delong_fast_vs_pairwise",
         "figure": f"fast DeLong {t_fast * 1e3:.1f} ms vs O(n^2) reference {t_ref * 1e3:.0f} ms, {n_cases} cases",
         "target": "ratio >= 20 (fast is at least 20x quicker)", "ratio": t_ref / t_fast},
        {"benchmark": "delong_fast_vs_sklearn_auc",
         "figure": f"fast DeLong (AUC + variance) {t_fast * 1e3:.1f} ms vs sklearn roc_auc_score "
                   f"(AUC only) {t_sklearn * 1e3:.1f} ms",
         "target": "ratio >= 0.5 (AUC with variance within 2x of sklearn's AUC alone)", "ratio": t_sklearn / t_fast},
        {"benchmark": "metrics_json_20k_1000_boot",
         "figure": f"compute_metrics with 1000 patient-level bootstrap replicates {t_metrics:.1f} s",
         "target": f"ratio >= 1 (within a {METRICS_BUDGET_S:.0f} s budget)", "ratio": METRICS_BUDGET_S / t_metrics},
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row['benchmark']:<30} {row['ratio']:8.2f}x  {row['figure']}  [target: {row['target']}]")
