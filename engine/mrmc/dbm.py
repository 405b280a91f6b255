"""Dorfman-Berbaum-Metz (DBM) analysis of jackknife pseudovalues, as a cross-check of OR.

With normalised jackknife pseudovalues and jackknife covariances, DBM and OR
give identical RRRC results (Hillis et al. 2005, 2008); the DBM variance
components are also what OR-DBM MRMC prints next to the OR ones.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import stats

from engine.mrmc.auc import jackknife_pseudovalues
from engine.mrmc.obuchowski_rockette import ALPHA, Difference, GlobalTest


@dataclass(frozen=True)
class DbmResult:
    """Mean squares of the modality x reader x case ANOVA of pseudovalues, components, and tests."""

    mean_squares: dict[str, float]
    degrees_of_freedom: dict[str, int]
    var_r: float
    var_c: float
    var_tr: float
    var_tc: float
    var_rc: float
    var_error: float
    rrrc: GlobalTest | None
    frrc: GlobalTest | None
    rrfc: GlobalTest | None
    rrrc_differences: list[Difference]


def pseudovalue_anova(pseudo: np.ndarray) -> tuple[dict[str, float], dict[str, int]]:
    """Mean squares of the fully crossed three-way layout (no replication)."""
    t, r, c = pseudo.shape
    g = pseudo.mean()
    m_t, m_r, m_c = pseudo.mean(axis=(1, 2)), pseudo.mean(axis=(0, 2)), pseudo.mean(axis=(0, 1))
    m_tr, m_tc, m_rc = pseudo.mean(axis=2), pseudo.mean(axis=1), pseudo.mean(axis=0)
    ss = {
        "t": r * c * ((m_t - g) ** 2).sum(),
        "r": t * c * ((m_r - g) ** 2).sum(),
        "c": t * r * ((m_c - g) ** 2).sum(),
        "tr": c * ((m_tr - m_t[:, None] - m_r[None, :] + g) ** 2).sum(),
        "tc": r * ((m_tc - m_t[:, None] - m_c[None, :] + g) ** 2).sum(),
        "rc": t * ((m_rc - m_r[:, None] - m_c[None, :] + g) ** 2).sum(),
        "trc": ((pseudo - m_tr[:, :, None] - m_tc[:, None, :] - m_rc[None, :, :]
                 + m_t[:, None, None] + m_r[None, :, None] + m_c[None, None, :] - g) ** 2).sum(),
    }
    df = {"t": t - 1, "r": r - 1, "c": c - 1, "tr": (t - 1) * (r - 1), "tc": (t - 1) * (c - 1),
          "rc": (r - 1) * (c - 1), "trc": (t - 1) * (r - 1) * (c - 1)}
    ms = {k: float(ss[k] / df[k]) if df[k] > 0 else float("nan") for k in ss}
    return ms, df


def dbm_analysis(ratings: np.ndarray, truth: np.ndarray, modalities: list[str]) -> DbmResult:
    """DBM with Hillis ddf for RRRC; FRRC as F(t-1, (t-1)(c-1)); RRFC as F(t-1, (t-1)(r-1))."""
    pseudo = jackknife_pseudovalues(ratings, truth)
    t, r, c = pseudo.shape
    ms, df = pseudovalue_anova(pseudo)
    var_error = ms["trc"] if t > 1 else ms["rc"]
    var_tr = (ms["tr"] - ms["trc"]) / c
    var_tc = (ms["tc"] - ms["trc"]) / r
    var_rc = (ms["rc"] - ms["trc"]) / t
    var_r = (ms["r"] - ms["rc"] - ms["tr"] + ms["trc"]) / (t * c) if t > 1 else (ms["r"] - ms["rc"]) / c
    var_c = (ms["c"] - ms["rc"] - ms["tc"] + ms["trc"]) / (t * r) if t > 1 else (ms["c"] - ms["rc"]) / r
    rrrc = frrc = rrfc = None
    diffs: list[Difference] = []
    if t > 1:
        term = ms["tr"] + max(ms["tc"] - ms["trc"], 0.0)
        ddf = term ** 2 / (ms["tr"] ** 2 / df["tr"]) if r > 1 and ms["tr"] > 0 else float("nan")
        rrrc = _f(ms["t"], term, df["t"], ddf)
        frrc = _f(ms["t"], ms["tc"], df["t"], float(df["tc"]))
        rrfc = _f(ms["t"], ms["tr"], df["t"], float(df["tr"])) if r > 1 else None
        auc = pseudo.mean(axis=2)
        se = np.sqrt(2.0 / (r * c) * term)
        for a, b in itertools.combinations(range(t), 2):
            est = float(auc[a].mean() - auc[b].mean())
            tval = est / se if se > 0 else float("nan")
            p = float(2 * stats.t.sf(abs(tval), ddf)) if np.isfinite(ddf) and se > 0 else float("nan")
            half = float(stats.t.ppf(1 - ALPHA / 2, ddf) * se) if np.isfinite(ddf) else float("nan")
            diffs.append(Difference(modalities[a], modalities[b], est, float(se), "t", float(tval),
                                    float(ddf), p, (est - half, est + half)))
    return DbmResult(ms, df, float(var_r), float(var_c), float(var_tr), float(var_tc), float(var_rc),
                     float(var_error), rrrc, frrc, rrfc, diffs)


def _f(ms_num: float, ms_den: float, df_num: int, df_den: float) -> GlobalTest:
    if not ms_den > 0 or not np.isfinite(df_den):
        return GlobalTest("f", float("nan"), float(df_num), float(df_den), float("nan"), float(ms_den))
    f = ms_num / ms_den
    return GlobalTest("f", float(f), float(df_num), float(df_den), float(stats.f.sf(f, df_num, df_den)),
                      float(ms_den))
