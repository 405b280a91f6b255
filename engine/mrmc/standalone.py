"""Stand-alone algorithm vs readers (Hillis 2012 single-treatment approach, as RJafroc StCadVsRad).

The algorithm reads every case once and has no reader variability, so the
outcome per reader is D_j = AUC(algorithm) - AUC(reader j), and the mean of
the D_j is analysed as a single-treatment OR study: with jackknife (or
DeLong) covariance of the D_j for random cases (RRRC), as a one-sample t
test over readers for fixed cases (RRFC), and with z for fixed readers.
Positive differences mean the algorithm beats the readers' average.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from engine.mrmc.auc import delong_covariance, empirical_auc, jackknife_covariance
from engine.mrmc.obuchowski_rockette import ALPHA


@dataclass(frozen=True)
class OneSampleTest:
    """Test of mean D = 0 with its CI. `statistic` is 't' or 'z'."""

    statistic: str
    value: float
    df: float | None
    p: float
    se: float
    ci: tuple[float, float]


@dataclass(frozen=True)
class AlgorithmComparison:
    """Algorithm AUC against each reader's and the readers' average AUC in one modality."""

    modality: str
    algorithm: str
    readers: list[str]
    auc: float
    reader_auc: np.ndarray
    mean_reader_auc: float
    difference: float
    ms_r: float
    var_error: float
    cov2: float
    rrrc: OneSampleTest | None
    frrc: OneSampleTest
    rrfc: OneSampleTest | None


def algorithm_vs_readers(algorithm: np.ndarray, readers: np.ndarray, truth: np.ndarray, *,
                         modality: str, algorithm_name: str, reader_names: list[str],
                         covariance: str = "jackknife") -> AlgorithmComparison:
    """`algorithm` (cases,), `readers` (readers, cases) ratings of the same cases."""
    stacked = np.vstack([np.asarray(algorithm, float)[None, :], np.asarray(readers, float)])
    auc = empirical_auc(stacked, truth)
    cov_all = (delong_covariance if covariance == "delong" else jackknife_covariance)(stacked, truth)
    r = stacked.shape[0] - 1
    # D_j = A - R_j  =>  Cov(D_j, D_k) = V_AA - V_Aj - V_Ak + V_jk
    cov_d = cov_all[0, 0] - cov_all[0, 1:][None, :] - cov_all[1:, 0][:, None] + cov_all[1:, 1:]
    diffs = auc[0] - auc[1:]
    mean_d = float(diffs.mean())
    var_error = float(np.diag(cov_d).mean())
    cov2 = float(cov_d[~np.eye(r, dtype=bool)].mean()) if r > 1 else float("nan")
    ms_r = float(diffs.var(ddof=1)) if r > 1 else float("nan")
    rrrc = rrfc = None
    if r > 1:
        term = ms_r + r * max(cov2, 0.0)
        df = term ** 2 / (ms_r ** 2 / (r - 1)) if ms_r > 0 else float("inf")
        rrrc = _one_sample(mean_d, np.sqrt(term / r), df)
        rrfc = _one_sample(mean_d, np.sqrt(ms_r / r), float(r - 1))
    frrc = _one_sample(mean_d, np.sqrt((var_error + (r - 1) * max(cov2 if r > 1 else 0.0, 0.0)) / r), None)
    return AlgorithmComparison(modality, algorithm_name, list(reader_names), float(auc[0]), auc[1:],
                               float(auc[1:].mean()), mean_d, ms_r, var_error, cov2, rrrc, frrc, rrfc)


def _one_sample(estimate: float, se: float, df: float | None) -> OneSampleTest:
    dist = stats.norm if df is None or np.isinf(df) else stats.t(df)
    value = estimate / se if se > 0 else float("nan")
    p = float(2 * dist.sf(abs(value))) if np.isfinite(value) else float("nan")
    half = float(dist.ppf(1 - ALPHA / 2) * se)
    return OneSampleTest("z" if df is None else "t", float(value), None if df is None else float(df),
                         p, float(se), (estimate - half, estimate + half))
