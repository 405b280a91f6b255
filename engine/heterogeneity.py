"""Inter-site heterogeneity: does the model's AUC hold at every site?

Each site's AUC (DeLong variance) is one study of a random-effects
meta-analysis (DerSimonian-Laird). The prediction interval is the range where
a new site's AUC is expected to fall; a site outside it is flagged, which is
what a reviewer asks ("is one hospital an outlier?"), not only whether the
pooled value is good. An outlying site inflates tau^2 and so widens the very
interval it is judged against; each site is therefore also compared with the
prediction interval of the other sites (leave-one-out, needs 4 sites), and is
flagged when it lies outside either interval. Pooling is on the logit scale by default, where the
sampling distribution of an AUC near 1 is closer to normal; every reported AUC
is back on the 0-1 scale.
"""
from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from cohorts.errors import BsxError
from engine.fairness import usable_rows
from engine.metrics import auc_delong

Scale = Literal["logit", "auc"]


def dersimonian_laird(estimates: Any, variances: Any, alpha: float = 0.05) -> dict[str, Any]:
    """Random-effects pooling of k estimates with known within-study variances.

    Textbook DerSimonian-Laird: Q from fixed-effect weights, tau^2 by the method of
    moments, I^2 = (Q - df) / Q, and the Higgins-Thompson-Spiegelhalter prediction
    interval mu +- t(k-2) * sqrt(tau^2 + se^2) (needs k >= 3).
    """
    y = np.asarray(estimates, dtype=float)
    v = np.asarray(variances, dtype=float)
    if y.shape != v.shape or y.ndim != 1 or len(y) < 2:
        raise ValueError("need at least two estimates with one variance each")
    if np.any(~np.isfinite(y)) or np.any(~(v > 0)):
        raise ValueError("estimates must be finite and variances positive")
    k = len(y)
    w = 1.0 / v
    fixed = float(np.sum(w * y) / np.sum(w))
    q = float(np.sum(w * (y - fixed) ** 2))
    df = k - 1
    c = float(np.sum(w) - np.sum(w**2) / np.sum(w))
    tau2 = max(0.0, (q - df) / c)
    w_random = 1.0 / (v + tau2)
    mu = float(np.sum(w_random * y) / np.sum(w_random))
    se = float(math.sqrt(1.0 / np.sum(w_random)))
    z = stats.norm.ppf(1 - alpha / 2)
    if k >= 3:
        t = stats.t.ppf(1 - alpha / 2, k - 2)
        half = t * math.sqrt(tau2 + se**2)
        prediction = (mu - half, mu + half)
    else:
        prediction = (math.nan, math.nan)
    return {
        "k": k, "mu": mu, "se": se, "ci": (mu - z * se, mu + z * se),
        "z": mu / se, "p": float(2 * stats.norm.sf(abs(mu / se))),
        "fixed": fixed, "fixed_se": float(math.sqrt(1.0 / np.sum(w))),
        "q": q, "q_df": df, "q_p": float(stats.chi2.sf(q, df)),
        "tau2": tau2, "i2": max(0.0, (q - df) / q) if q > 0 else 0.0, "h2": q / df,
        "prediction_interval": prediction,
        "weights_fixed": w / w.sum(), "weights_random": w_random / w_random.sum(),
    }


def _to_scale(auc: float, variance: float, scale: Scale) -> tuple[float, float]:
    if scale == "auc":
        return auc, variance
    # delta method: d logit(a) / da = 1 / (a (1 - a))
    return math.log(auc / (1 - auc)), variance / (auc * (1 - auc)) ** 2


def _from_scale(value: float, scale: Scale) -> float:
    if not math.isfinite(value):
        return math.nan
    if scale == "auc":
        return value
    return 1.0 / (1.0 + math.exp(-value))


def _site_row(site: str, y: np.ndarray, p: np.ndarray, min_size: int, scale: Scale,
              z: float) -> dict[str, Any]:
    n, pos = len(y), int(y.sum())
    row: dict[str, Any] = {"site": site, "n": n, "positives": pos, "negatives": n - pos,
                           "auc": None, "ci": [None, None], "variance": None, "estimable": False,
                           "note": "", "outside_prediction_interval": False,
                           "leave_one_out_prediction_interval": [None, None], "outside_leave_one_out_interval": False,
                           "weight_fixed": None, "weight_random": None}
    if n < min_size:
        row["note"] = f"not estimable: n={n} < min_size={min_size}"
    elif pos < 2 or n - pos < 2:
        row["note"] = f"not estimable: {pos} positive and {n - pos} negative cases (DeLong needs 2 of each)"
    if row["note"]:
        return row
    auc, variance = auc_delong(y, p)
    row.update(auc=auc, variance=variance)
    if not 0.0 < auc < 1.0 or variance <= 0.0:
        row["note"] = f"not pooled: AUC of {auc:g} with zero variance (perfect or inverted separation)"
        return row
    est, var = _to_scale(auc, variance, scale)
    half = z * math.sqrt(var)
    row.update(estimable=True, ci=[_from_scale(est - half, scale) if scale == "logit" else max(0.0, est - half),
                                   _from_scale(est + half, scale) if scale == "logit" else min(1.0, est + half)],
               _est=est, _var=var)
    return row


def _leave_one_out_intervals(rows: list[dict[str, Any]], alpha: float) -> list[tuple[float, float]]:
    """Prediction interval of the other sites, for each site (NaN when fewer than 3 others)."""
    est = np.array([r["_est"] for r in rows])
    var = np.array([r["_var"] for r in rows])
    intervals = []
    for i in range(len(rows)):
        others = np.arange(len(rows)) != i
        if others.sum() < 3:
            intervals.append((math.nan, math.nan))
            continue
        intervals.append(dersimonian_laird(est[others], var[others], alpha)["prediction_interval"])
    return intervals


def site_heterogeneity(pred: pd.DataFrame, site_col: str = "site", min_size: int = 30,
                       alpha: float = 0.05, scale: Scale = "logit") -> dict[str, Any]:
    """Per-site AUC (DeLong CI) and the DerSimonian-Laird pooled AUC; JSON-ready (NaN -> None)."""
    if site_col not in pred.columns:
        raise BsxError(f"predictions have no '{site_col}' column (available: {', '.join(map(str, pred.columns))})",
                       column=site_col, fix="name the column that holds the acquisition site")
    if scale not in ("logit", "auc"):
        raise ValueError(f"scale must be 'logit' or 'auc', got {scale!r}")
    frame = pred.loc[usable_rows(pred) & pred["truth"].notna() & pred[site_col].notna()]
    if frame.empty:
        raise BsxError("no labelled case with a site: inter-site heterogeneity cannot be estimated",
                       column="truth", fix="add ground truth and the site column to the cohort")
    z = float(stats.norm.ppf(1 - alpha / 2))
    rows = [_site_row(str(site), block["truth"].to_numpy(float), block["p_mean"].to_numpy(float),
                      min_size, scale, z)
            for site, block in frame.groupby(frame[site_col].astype(str), sort=True)]
    pooled_rows = [r for r in rows if r["estimable"]]
    result: dict[str, Any] = {
        "method": "DerSimonian-Laird random effects on DeLong variances",
        "scale": scale, "alpha": alpha, "min_size": min_size, "site_column": site_col,
        "n_sites": len(rows), "k": len(pooled_rows), "sites": rows,
        "pooled": None, "fixed_effect": None, "q": None, "q_df": None, "q_p": None,
        "i2": None, "h2": None, "tau2": None, "prediction_interval": [None, None],
        "flagged_sites": [], "note": "",
    }
    if len(pooled_rows) < 2:
        result["note"] = f"{len(pooled_rows)} estimable site(s): pooling needs at least 2"
    else:
        meta = dersimonian_laird([r["_est"] for r in pooled_rows], [r["_var"] for r in pooled_rows], alpha)
        back = lambda v: _from_scale(v, scale)  # noqa: E731
        low_pi, high_pi = meta["prediction_interval"]
        loo = _leave_one_out_intervals(pooled_rows, alpha)
        for row, wf, wr, (low_loo, high_loo) in zip(pooled_rows, meta["weights_fixed"], meta["weights_random"], loo):
            row.update(weight_fixed=float(wf), weight_random=float(wr))
            row["outside_prediction_interval"] = bool(math.isfinite(low_pi) and not low_pi <= row["_est"] <= high_pi)
            row["leave_one_out_prediction_interval"] = [_from_scale(low_loo, scale), _from_scale(high_loo, scale)]
            row["outside_leave_one_out_interval"] = bool(math.isfinite(low_loo)
                                                         and not low_loo <= row["_est"] <= high_loo)
        fixed_half = z * meta["fixed_se"]
        result.update(
            pooled={"auc": back(meta["mu"]), "ci": [back(meta["ci"][0]), back(meta["ci"][1])],
                    "se_on_scale": meta["se"], "z": meta["z"], "p": meta["p"]},
            fixed_effect={"auc": back(meta["fixed"]),
                          "ci": [back(meta["fixed"] - fixed_half), back(meta["fixed"] + fixed_half)]},
            q=meta["q"], q_df=meta["q_df"], q_p=meta["q_p"], i2=meta["i2"], h2=meta["h2"], tau2=meta["tau2"],
            prediction_interval=[back(low_pi), back(high_pi)],
            flagged_sites=[r["site"] for r in pooled_rows
                           if r["outside_prediction_interval"] or r["outside_leave_one_out_interval"]],
        )
        if meta["k"] < 3:
            result["note"] = "2 estimable sites: no prediction interval (needs 3)"
    for row in rows:
        row.pop("_est", None)
        row.pop("_var", None)
    return _json_ready(result)


def _json_ready(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj
