"""Obuchowski-Rockette (OR) analysis of reader x modality AUCs, with Hillis' refinements.

Follows Hillis et al. (2005, 2007, 2008) as implemented in OR-DBM MRMC 2.51:
treatment x reader ANOVA of the AUCs, error covariances Cov1 (same reader,
different modality), Cov2 (same modality, different readers), Cov3 (both
different) and Var(error) from the case-resampling covariance matrix, then
three generalisations: random readers and random cases (RRRC, Hillis ddf),
fixed readers (FRRC, chi-square / z) and fixed cases (RRFC, conventional
treatment x reader ANOVA). Cov2 - Cov3 and Cov2 are truncated at zero as
Hillis prescribes; the untruncated estimates are kept for reporting.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05


@dataclass(frozen=True)
class AnovaTable:
    """Treatment x reader ANOVA of the AUCs, plus the reader ANOVA within each modality."""

    ss_t: float
    ss_r: float
    ss_tr: float
    df_t: int
    df_r: int
    df_tr: int
    ms_t: float
    ms_r: float
    ms_tr: float
    ms_r_by_modality: np.ndarray


@dataclass(frozen=True)
class ErrorCovariances:
    """OR error variance and covariances averaged over the matching cells of the covariance matrix."""

    var_error: float
    cov1: float
    cov2: float
    cov3: float
    var_error_by_modality: np.ndarray
    cov2_by_modality: np.ndarray
    var_error_by_reader: np.ndarray
    cov1_by_reader: np.ndarray


@dataclass(frozen=True)
class VarianceComponents:
    """OR variance components (ANOVA estimates; may be negative) and error correlations."""

    var_r: float
    var_tr: float
    cov1: float
    cov2: float
    cov3: float
    var_error: float
    corr1: float
    corr2: float
    corr3: float


@dataclass(frozen=True)
class GlobalTest:
    """Test of equal AUC over all modalities. `statistic` is 'f' or 'chi2'."""

    statistic: str
    value: float
    df_num: float
    df_den: float | None
    p: float
    error_term: float


@dataclass(frozen=True)
class Difference:
    """AUC(a) - AUC(b) averaged over readers, with its test and CI. `statistic` is 't' or 'z'."""

    a: str
    b: str
    estimate: float
    se: float
    statistic: str
    value: float
    df: float | None
    p: float
    ci: tuple[float, float]


@dataclass(frozen=True)
class SingleModality:
    """CI for one modality's reader-averaged AUC, from that modality's data only."""

    modality: str
    auc: float
    se: float
    df: float | None
    ci: tuple[float, float]
    ms_r: float
    var_error: float
    cov2: float


@dataclass(frozen=True)
class SingleReaderDifference:
    """FRRC part (d): one reader's modality difference, from that reader's data only."""

    reader: str
    difference: Difference
    var_error: float
    cov1: float


@dataclass(frozen=True)
class DesignResult:
    """One generalisation (RRRC, FRRC or RRFC): global test, pairwise differences, single-modality CIs."""

    design: str
    global_test: GlobalTest | None
    differences: list[Difference]
    single_modality: list[SingleModality]
    single_reader: list[SingleReaderDifference]


def anova_of_aucs(auc: np.ndarray) -> AnovaTable:
    """Sums of squares of the t x r AUC table; undefined mean squares (zero df) are NaN."""
    t, r = auc.shape
    grand = auc.mean()
    by_t, by_r = auc.mean(axis=1), auc.mean(axis=0)
    ss_t = r * float(((by_t - grand) ** 2).sum())
    ss_r = t * float(((by_r - grand) ** 2).sum())
    ss_tr = float(((auc - by_t[:, None] - by_r[None, :] + grand) ** 2).sum())
    df_t, df_r, df_tr = t - 1, r - 1, (t - 1) * (r - 1)
    ms_r_by_modality = (auc.var(axis=1, ddof=1) if r > 1 else np.full(t, np.nan))
    return AnovaTable(ss_t, ss_r, ss_tr, df_t, df_r, df_tr,
                      _ratio(ss_t, df_t), _ratio(ss_r, df_r), _ratio(ss_tr, df_tr), ms_r_by_modality)


def error_covariances(cov: np.ndarray) -> ErrorCovariances:
    """Average the (t, r, t, r) covariance matrix over the four OR cell types."""
    t, r = cov.shape[:2]
    same_t = np.eye(t, dtype=bool)[:, None, :, None]
    same_r = np.eye(r, dtype=bool)[None, :, None, :]
    shape = cov.shape

    def mean_where(mask: np.ndarray) -> float:
        mask = np.broadcast_to(mask, shape)
        return float(cov[mask].mean()) if mask.any() else float("nan")

    diag = np.einsum("ijij->ij", cov)
    within_t = np.einsum("ijik->ijk", cov)  # [t, r, r]
    within_r = np.einsum("ijkj->jik", cov)  # [r, t, t]
    off_r = ~np.eye(r, dtype=bool)
    off_t = ~np.eye(t, dtype=bool)
    cov2_by_t = within_t[:, off_r].mean(axis=1) if r > 1 else np.full(t, np.nan)
    cov1_by_r = within_r[:, off_t].mean(axis=1) if t > 1 else np.full(r, np.nan)
    return ErrorCovariances(
        var_error=mean_where(same_t & same_r), cov1=mean_where(~same_t & same_r),
        cov2=mean_where(same_t & ~same_r), cov3=mean_where(~same_t & ~same_r),
        var_error_by_modality=diag.mean(axis=1), cov2_by_modality=cov2_by_t,
        var_error_by_reader=diag.mean(axis=0), cov1_by_reader=cov1_by_r)


def variance_components(anova: AnovaTable, err: ErrorCovariances, t: int, r: int) -> VarianceComponents:
    """Method-of-moments OR components from E[MS(R)] and E[MS(T*R)] (Hillis 2005, table I)."""
    cov1 = err.cov1 if t > 1 else 0.0
    cov3 = err.cov3 if t > 1 else 0.0
    var_tr = anova.ms_tr - (err.var_error - cov1 - err.cov2 + cov3) if t > 1 else float("nan")
    var_r = (anova.ms_r - (0.0 if t == 1 else var_tr)
             - (err.var_error - err.cov2 + (t - 1) * (cov1 - cov3))) / t
    def corr(cov: float) -> float:  # undefined when case sampling has no variance (perfect readers)
        return cov / err.var_error if err.var_error > 0 else float("nan")

    return VarianceComponents(var_r, var_tr, err.cov1, err.cov2, err.cov3, err.var_error,
                              corr(err.cov1), corr(err.cov2), corr(err.cov3))


def random_readers_random_cases(auc: np.ndarray, modalities: list[str], anova: AnovaTable,
                                err: ErrorCovariances) -> DesignResult:
    """RRRC: F = MS(T) / [MS(T*R) + r max(Cov2 - Cov3, 0)] with Hillis (2007) ddf."""
    t, r = auc.shape
    single = []
    for i, name in enumerate(modalities):
        term = anova.ms_r_by_modality[i] + r * max(err.cov2_by_modality[i], 0.0)
        df = _hillis_df(term, anova.ms_r_by_modality[i], r - 1)
        single.append(_single(name, auc[i], np.sqrt(term / r), df, anova.ms_r_by_modality[i],
                              err.var_error_by_modality[i], err.cov2_by_modality[i]))
    if t < 2:
        return DesignResult("rrrc", None, [], single, [])
    term = anova.ms_tr + r * max(err.cov2 - err.cov3, 0.0)
    ddf = _hillis_df(term, anova.ms_tr, anova.df_tr)
    test = _f_test(anova.ms_t, term, anova.df_t, ddf)
    diffs = [_t_difference(modalities, a, b, auc, np.sqrt(2.0 / r * term), ddf) for a, b in _pairs(modalities)]
    return DesignResult("rrrc", test, diffs, single, [])


def fixed_readers_random_cases(auc: np.ndarray, modalities: list[str], readers: list[str], anova: AnovaTable,
                               err: ErrorCovariances) -> DesignResult:
    """FRRC: X2 = (t-1) MS(T) / [Var - Cov1 + (r-1) max(Cov2 - Cov3, 0)], z for differences."""
    t, r = auc.shape
    single = []
    for i, name in enumerate(modalities):
        cov2 = err.cov2_by_modality[i] if r > 1 else 0.0
        se = np.sqrt((err.var_error_by_modality[i] + (r - 1) * max(cov2, 0.0)) / r)
        single.append(_single(name, auc[i], se, None, anova.ms_r_by_modality[i],
                              err.var_error_by_modality[i], err.cov2_by_modality[i]))
    if t < 2:
        return DesignResult("frrc", None, [], single, [])
    cov2_minus_cov3 = max(err.cov2 - err.cov3, 0.0) if r > 1 else 0.0
    term = err.var_error - err.cov1 + (r - 1) * cov2_minus_cov3
    chi2 = anova.df_t * anova.ms_t / term if term > 0 else float("nan")  # no case variance: undefined
    p = float(stats.chi2.sf(chi2, anova.df_t)) if term > 0 else float("nan")
    test = GlobalTest("chi2", chi2, anova.df_t, None, p, term)
    diffs = [_z_difference(modalities, a, b, auc, np.sqrt(2.0 / r * term)) for a, b in _pairs(modalities)]
    per_reader = []
    for j, reader in enumerate(readers):
        se = np.sqrt(max(2.0 * (err.var_error_by_reader[j] - err.cov1_by_reader[j]), 0.0))
        for a, b in _pairs(modalities):
            per_reader.append(SingleReaderDifference(
                reader, _z_difference(modalities, a, b, auc[:, [j]], se),
                float(err.var_error_by_reader[j]), float(err.cov1_by_reader[j])))
    return DesignResult("frrc", test, diffs, single, per_reader)


def random_readers_fixed_cases(auc: np.ndarray, modalities: list[str], anova: AnovaTable) -> DesignResult:
    """RRFC: conventional treatment x reader ANOVA, F = MS(T)/MS(T*R) on (t-1, (t-1)(r-1)) df."""
    t, r = auc.shape
    single = [_single(name, auc[i], np.sqrt(anova.ms_r_by_modality[i] / r), float(r - 1),
                      anova.ms_r_by_modality[i], float("nan"), float("nan"))
              for i, name in enumerate(modalities)]
    if t < 2:
        return DesignResult("rrfc", None, [], single, [])
    test = _f_test(anova.ms_t, anova.ms_tr, anova.df_t, float(anova.df_tr))
    se = np.sqrt(2.0 / r * anova.ms_tr)
    diffs = [_t_difference(modalities, a, b, auc, se, float(anova.df_tr)) for a, b in _pairs(modalities)]
    return DesignResult("rrfc", test, diffs, single, [])


def _pairs(modalities: list[str]) -> list[tuple[int, int]]:
    return list(itertools.combinations(range(len(modalities)), 2))


def _ratio(ss: float, df: int) -> float:
    return ss / df if df > 0 else float("nan")


def _hillis_df(term: float, ms: float, df_ms: float) -> float:
    """Satterthwaite-type ddf of an error term built from one mean square (Hillis 2007)."""
    if not np.isfinite(ms) or df_ms <= 0:
        return float("nan")
    if ms == 0:
        return float("inf")
    return float(term ** 2 / (ms ** 2 / df_ms))


def _f_test(ms_t: float, term: float, df_num: float, df_den: float) -> GlobalTest:
    if np.isnan(df_den) or term <= 0:
        return GlobalTest("f", float("nan"), float(df_num), float(df_den), float("nan"), float(term))
    f = ms_t / term
    p = float(stats.chi2.sf(f * df_num, df_num) if np.isinf(df_den) else stats.f.sf(f, df_num, df_den))
    return GlobalTest("f", float(f), float(df_num), float(df_den), p, float(term))


def _t_difference(names: list[str], a: int, b: int, auc: np.ndarray, se: float, df: float) -> Difference:
    est = float(auc[a].mean() - auc[b].mean())
    if np.isnan(df) or not se > 0:
        return Difference(names[a], names[b], est, float(se), "t", float("nan"), float(df), float("nan"),
                          (float("nan"), float("nan")))
    value = est / se
    dist = stats.norm if np.isinf(df) else stats.t(df)
    p = float(2 * dist.sf(abs(value)))
    half = float(dist.ppf(1 - ALPHA / 2) * se)
    return Difference(names[a], names[b], est, float(se), "t", float(value), float(df), p, (est - half, est + half))


def _z_difference(names: list[str], a: int, b: int, auc: np.ndarray, se: float) -> Difference:
    est = float(auc[a].mean() - auc[b].mean())
    value = est / se if se > 0 else float("nan")
    p = float(2 * stats.norm.sf(abs(value))) if np.isfinite(value) else float("nan")
    half = float(stats.norm.ppf(1 - ALPHA / 2) * se)
    return Difference(names[a], names[b], est, float(se), "z", float(value), None, p, (est - half, est + half))


def _single(name: str, aucs: np.ndarray, se: float, df: float | None, ms_r: float, var_error: float,
            cov2: float) -> SingleModality:
    mean = float(np.mean(aucs))
    if df is None:
        half = float(stats.norm.ppf(1 - ALPHA / 2) * se)
    elif np.isnan(df):
        half = float("nan")
    else:
        half = float((stats.norm if np.isinf(df) else stats.t(df)).ppf(1 - ALPHA / 2) * se)
    return SingleModality(name, mean, float(se), None if df is None else float(df),
                          (mean - half, mean + half), float(ms_r), float(var_error), float(cov2))
