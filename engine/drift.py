"""Reference vs current cohort: has the population shifted? (drift.json)

Per metadata feature: Jensen-Shannon distance (base 2, the seed's measure),
PSI, and a test chosen by type and sample size. KS p-values become meaningless
at large n (every trivial shift is "significant"), so past `KS_MAX_N` cases a
numeric feature is judged by the Wasserstein distance in units of the reference
standard deviation instead; categorical features use a chi-square test of
homogeneity, and at large n also need a non-trivial JS distance to be flagged.
p-values are Benjamini-Hochberg corrected across features. Everything is
bincount / searchsorted on whole columns so a million rows take well under a
second per feature. Predictions (p_mean, entropy) get the same treatment, and
backbone embeddings a kernel two-sample test (MMD with permutations) plus a
domain classifier: if a classifier can tell the cohorts apart, they differ.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import optimize, stats

from cohorts.atomic import to_jsonable
from cohorts.errors import BsxError
from engine.fairness import benjamini_hochberg, usable_rows
from engine.metrics import auc_delong
from engine.runfolder import PREDICTION_COLUMNS

KS_MAX_N = 5000
WASSERSTEIN_THRESHOLD = 0.1  # in reference standard deviations
LARGE_N_JS_THRESHOLD = 0.1
PSI_FLOOR = 1e-4  # proportion used for empty bins, so PSI stays finite
MAX_CATEGORIES = 50
DATASET_DRIFT_SHARE = 0.5
DOMAIN_AUC_THRESHOLD = 0.55
NOT_METADATA = frozenset(PREDICTION_COLUMNS) | {"image", "image_path", "path", "file", "lesion_id",
                                                "expected_entropy", "logit", "source_row"}
OTHER = "(other)"


# ----------------------------------------------------------------------------
# Distances on binned counts
# ----------------------------------------------------------------------------
def jensen_shannon_distance(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Base-2 JS distance of two histograms (= scipy.spatial.distance.jensenshannon(p, q, base=2))."""
    p = np.asarray(ref_counts, float) / np.sum(ref_counts)
    q = np.asarray(cur_counts, float) / np.sum(cur_counts)
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum()
    return float(math.sqrt(max(0.0, 0.5 * (kl_p + kl_q))))


def population_stability_index(ref_counts: np.ndarray, cur_counts: np.ndarray, floor: float = PSI_FLOOR) -> float:
    """PSI = sum (cur% - ref%) ln(cur% / ref%), empty bins floored at `floor`."""
    r = np.maximum(np.asarray(ref_counts, float) / np.sum(ref_counts), floor)
    c = np.maximum(np.asarray(cur_counts, float) / np.sum(cur_counts), floor)
    return float(np.sum((c - r) * np.log(c / r)))


def wasserstein_1d(u: np.ndarray, v: np.ndarray) -> float:
    """Earth mover's distance between two samples (= scipy.stats.wasserstein_distance), faster:
    each sample is sorted once and the two sorted runs are merged by a stable (run-detecting) sort."""
    u_sorted, v_sorted = np.sort(u), np.sort(v)
    merged = np.concatenate([u_sorted, v_sorted])
    merged.sort(kind="stable")
    deltas = np.diff(merged)
    u_cdf = np.searchsorted(u_sorted, merged[:-1], side="right") / len(u_sorted)
    v_cdf = np.searchsorted(v_sorted, merged[:-1], side="right") / len(v_sorted)
    return float(np.sum(np.abs(u_cdf - v_cdf) * deltas))


def chi_square_homogeneity(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, int, float]:
    """Pearson chi-square on the 2 x K table (no continuity correction): statistic, df, p."""
    table = np.vstack([ref_counts, cur_counts]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    df = table.shape[1] - 1
    return statistic, df, float(stats.chi2.sf(statistic, df)) if df > 0 else math.nan


# ----------------------------------------------------------------------------
# One feature
# ----------------------------------------------------------------------------
def _numeric_edges(ref: np.ndarray, cur: np.ndarray, bins: int) -> np.ndarray:
    """Equal-frequency bins of the reference (the PSI convention), stretched to cover both cohorts."""
    inner = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    low, high = min(ref.min(), cur.min()), max(ref.max(), cur.max())
    inner = inner[(inner > low) & (inner < high)]
    return np.concatenate([[low], inner, [high]])


def _bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin; bins are right-open except the last (like np.histogram), via searchsorted."""
    index = np.searchsorted(edges[1:-1], values, side="right")
    return np.bincount(index, minlength=len(edges) - 1)


def _numeric_feature(ref: np.ndarray, cur: np.ndarray, bins: int,
                     fixed_edges: np.ndarray | None = None) -> dict[str, Any]:
    edges = fixed_edges if fixed_edges is not None else _numeric_edges(ref, cur, bins)
    ref_counts, cur_counts = _bin_counts(ref, edges), _bin_counts(cur, edges)
    out: dict[str, Any] = {
        "type": "numeric",
        "binning": "fixed edges" if fixed_edges is not None else f"reference quantiles ({bins} bins requested)",
        "histogram": {"edges": edges, "reference": ref_counts, "current": cur_counts},
        "js_distance": jensen_shannon_distance(ref_counts, cur_counts),
        "psi": population_stability_index(ref_counts, cur_counts),
        "reference_mean": float(ref.mean()), "current_mean": float(cur.mean()),
    }
    if min(len(ref), len(cur)) <= KS_MAX_N:
        result = stats.ks_2samp(ref, cur)
        out.update(test="ks", statistic=float(result.statistic), p_value=float(result.pvalue))
    else:
        scale = float(ref.std())
        distance = wasserstein_1d(ref, cur)
        normalised = distance / scale if scale > 0 else (0.0 if distance == 0 else math.inf)
        out.update(test="wasserstein", statistic=normalised, wasserstein_distance=distance,
                   reference_std=scale, threshold=WASSERSTEIN_THRESHOLD, p_value=math.nan)
    return out


def _categorical_counts(ref: pd.Series, cur: pd.Series) -> tuple[list[str], np.ndarray, np.ndarray]:
    ref_counts, cur_counts = _value_counts(ref), _value_counts(cur)
    both = ref_counts.add(cur_counts, fill_value=0).sort_values(ascending=False, kind="stable")
    categories = both.index.tolist()
    if len(categories) > MAX_CATEGORIES:
        keep = categories[: MAX_CATEGORIES - 1]
        ref_counts = _lump(ref_counts, keep)
        cur_counts = _lump(cur_counts, keep)
        categories = keep + [OTHER]
    r = ref_counts.reindex(categories, fill_value=0).to_numpy(np.int64)
    c = cur_counts.reindex(categories, fill_value=0).to_numpy(np.int64)
    return [str(x) for x in categories], r, c


def _value_counts(values: pd.Series) -> pd.Series:
    """Counts keyed by the text of each value (counting first: str() on a million rows is slow)."""
    counts = values.value_counts(sort=False)
    counts.index = counts.index.map(str)
    return counts.groupby(level=0).sum()


def _lump(counts: pd.Series, keep: list[str]) -> pd.Series:
    kept = counts.reindex(keep, fill_value=0)
    return pd.concat([kept, pd.Series({OTHER: counts.drop(keep, errors="ignore").sum()})])


def _categorical_feature(ref: pd.Series, cur: pd.Series) -> dict[str, Any]:
    categories, ref_counts, cur_counts = _categorical_counts(ref, cur)
    statistic, df, p = chi_square_homogeneity(ref_counts, cur_counts)
    return {
        "type": "categorical", "binning": f"categories (at most {MAX_CATEGORIES}, rest lumped as '{OTHER}')",
        "histogram": {"categories": categories, "reference": ref_counts, "current": cur_counts},
        "js_distance": jensen_shannon_distance(ref_counts, cur_counts),
        "psi": population_stability_index(ref_counts, cur_counts),
        "test": "chi_square", "statistic": statistic, "df": df, "p_value": p,
    }


def _is_numeric(ref: pd.Series, cur: pd.Series) -> bool:
    return all(pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) for s in (ref, cur))


def _drift_flag(feature: dict[str, Any], alpha: float) -> tuple[bool, str]:
    if feature["test"] == "wasserstein":
        return bool(feature["statistic"] > WASSERSTEIN_THRESHOLD), \
            f"Wasserstein / reference std > {WASSERSTEIN_THRESHOLD}"
    significant = feature["p_value_bh"] is not None and feature["p_value_bh"] < alpha
    if feature["test"] == "chi_square" and min(feature["n_reference"], feature["n_current"]) > KS_MAX_N:
        return bool(significant and feature["js_distance"] >= LARGE_N_JS_THRESHOLD), \
            f"BH p < {alpha} and JS distance >= {LARGE_N_JS_THRESHOLD} (large samples)"
    return bool(significant), f"BH p < {alpha}"


def feature_drift(ref: pd.Series, cur: pd.Series, bins: int = 10,
                  fixed_edges: np.ndarray | None = None) -> dict[str, Any]:
    """Distances, test and histograms for one column (p-value not yet corrected)."""
    ref_missing, cur_missing = ref.isna(), cur.isna()
    base: dict[str, Any] = {
        "n_reference": int((~ref_missing).sum()), "n_current": int((~cur_missing).sum()),
        "missing_rate_reference": float(ref_missing.mean()) if len(ref) else math.nan,
        "missing_rate_current": float(cur_missing.mean()) if len(cur) else math.nan,
    }
    if base["n_reference"] == 0 or base["n_current"] == 0:
        empty = "reference" if base["n_reference"] == 0 else "current"
        return {**base, "type": None, "test": None, "p_value": math.nan, "note": f"no values in the {empty} cohort"}
    ref_values, cur_values = ref[~ref_missing], cur[~cur_missing]
    if _is_numeric(ref, cur):
        detail = _numeric_feature(ref_values.to_numpy(float), cur_values.to_numpy(float), bins, fixed_edges)
    else:
        detail = _categorical_feature(ref_values, cur_values)
    return {**base, **detail, "note": ""}


def _default_columns(ref: pd.DataFrame, cur: pd.DataFrame) -> list[str]:
    return [c for c in ref.columns if c in cur.columns and c not in NOT_METADATA
            and not str(c).startswith(("prob_", "logit_"))
            and (ref[c].notna().any() or cur[c].notna().any())]  # a column empty in both says nothing


def _correct_and_flag(features: dict[str, dict[str, Any]], alpha: float) -> None:
    names = list(features)
    adjusted = benjamini_hochberg(np.array([features[n]["p_value"] for n in names], dtype=float))
    for name, p_bh in zip(names, adjusted):
        feature = features[name]
        feature["p_value_bh"] = float(p_bh) if np.isfinite(p_bh) else None
        if feature["test"] is None:
            feature["drift"], feature["flag_rule"] = False, "not tested"
        else:
            feature["drift"], feature["flag_rule"] = _drift_flag(feature, alpha)


def _verdict(n_drifted: int, n_tested: int) -> str:
    if n_tested == 0:
        return "not tested"
    if n_drifted / n_tested >= DATASET_DRIFT_SHARE:
        return "drift"
    return "partial drift" if n_drifted else "no drift"


def metadata_drift(ref: pd.DataFrame, cur: pd.DataFrame, columns: Sequence[str] | None = None,
                   bins: int = 10, alpha: float = 0.05) -> dict[str, Any]:
    """Per-feature drift between two cohorts; columns=None uses every common metadata column."""
    if columns is None:
        columns = _default_columns(ref, cur)
        if not columns:
            raise BsxError(
                "the reference and current cohorts have no metadata column in common "
                f"(reference: {', '.join(map(str, ref.columns)) or 'none'}; "
                f"current: {', '.join(map(str, cur.columns)) or 'none'})",
                fix="compare cohorts in the same format (map the columns with the cohort importer first)")
    for column in columns:
        for name, frame in (("reference", ref), ("current", cur)):
            if column not in frame.columns:
                raise BsxError(f"column '{column}' is not in the {name} cohort "
                               f"(available: {', '.join(map(str, frame.columns))})", column=column,
                               fix="choose columns present in both cohorts")
    features = {str(c): feature_drift(ref[c], cur[c], bins) for c in columns}
    _correct_and_flag(features, alpha)
    tested = [f for f in features.values() if f["test"] is not None]
    drifted = [name for name, f in features.items() if f["drift"]]
    return {
        "features": features,
        "n_features": len(features), "n_tested": len(tested), "n_drifted": len(drifted),
        "drifted_features": drifted,
        "drift_share": len(drifted) / len(tested) if tested else math.nan,
        "verdict": _verdict(len(drifted), len(tested)),
        "settings": {"bins": bins, "alpha": alpha, "ks_max_n": KS_MAX_N,
                     "wasserstein_threshold_std": WASSERSTEIN_THRESHOLD,
                     "large_n_js_threshold": LARGE_N_JS_THRESHOLD, "psi_floor": PSI_FLOOR,
                     "js_base": 2, "dataset_drift_share": DATASET_DRIFT_SHARE,
                     "correction": "benjamini-hochberg across features"},
    }


# ----------------------------------------------------------------------------
# Predictions
# ----------------------------------------------------------------------------
def prediction_drift(ref_pred: pd.DataFrame, cur_pred: pd.DataFrame, bins: int = 10,
                     alpha: float = 0.05) -> dict[str, Any]:
    """Drift of p_mean (fixed 0-1 bins, so the histogram reads as a probability axis) and of entropy."""
    ref_ok, cur_ok = ref_pred.loc[usable_rows(ref_pred)], cur_pred.loc[usable_rows(cur_pred)]
    features: dict[str, dict[str, Any]] = {}
    for column in ("p_mean", "entropy"):
        if column in ref_ok.columns and column in cur_ok.columns:
            edges = np.linspace(0.0, 1.0, bins + 1) if column == "p_mean" else None
            features[column] = feature_drift(pd.to_numeric(ref_ok[column], errors="coerce"),
                                             pd.to_numeric(cur_ok[column], errors="coerce"), bins, edges)
    if not features:
        raise BsxError("neither p_mean nor entropy is in both prediction tables",
                       fix="compare two run folders written by `bsx validate`")
    _correct_and_flag(features, alpha)
    drifted = [name for name, f in features.items() if f["drift"]]
    return {"features": features, "drifted_features": drifted,
            "verdict": "drift" if drifted else "no drift"}


# ----------------------------------------------------------------------------
# Embeddings
# ----------------------------------------------------------------------------
def _subsample(x: np.ndarray, max_n: int, rng: np.random.Generator) -> np.ndarray:
    if len(x) <= max_n:
        return x
    return x[np.sort(rng.choice(len(x), size=max_n, replace=False))]


def _squared_distances(x: np.ndarray) -> np.ndarray:
    sq = np.einsum("ij,ij->i", x, x)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    np.maximum(d2, 0.0, out=d2)
    np.fill_diagonal(d2, 0.0)
    return d2


def _unbiased_mmd2(kernel: np.ndarray, in_first: np.ndarray) -> np.ndarray:
    """Unbiased MMD^2 for each column of the 0/1 membership matrix (cases x permutations)."""
    a = in_first.astype(float)
    b = 1.0 - a
    m, n = a.sum(axis=0), b.sum(axis=0)
    ka = kernel @ a
    kb = kernel.sum(axis=1, keepdims=True) - ka
    diag = np.diag(kernel)[:, None]
    xx = ((a * ka).sum(axis=0) - (a * diag).sum(axis=0)) / (m * (m - 1))
    yy = ((b * kb).sum(axis=0) - (b * diag).sum(axis=0)) / (n * (n - 1))
    xy = (a * kb).sum(axis=0) / (m * n)
    return xx + yy - 2.0 * xy


def mmd_test(ref_emb: np.ndarray, cur_emb: np.ndarray, n_perm: int = 200,
             rng: np.random.Generator | None = None) -> dict[str, Any]:
    """RBF-kernel MMD with the median-heuristic bandwidth and a permutation p-value."""
    rng = rng or np.random.default_rng(0)
    pooled = np.vstack([ref_emb, cur_emb]).astype(float)
    d2 = _squared_distances(pooled)
    upper = d2[np.triu_indices(len(pooled), k=1)]
    median = float(np.median(upper[upper > 0])) if np.any(upper > 0) else 1.0
    kernel = np.exp(-d2 / median)  # exp(-d^2 / (2 sigma^2)) with sigma^2 = median(d^2) / 2
    labels = np.zeros(len(pooled), dtype=bool)
    labels[: len(ref_emb)] = True
    observed = float(_unbiased_mmd2(kernel, labels[:, None])[0])
    permuted = np.column_stack([rng.permutation(labels) for _ in range(n_perm)]) if n_perm else \
        np.zeros((len(pooled), 0), bool)
    null = _unbiased_mmd2(kernel, permuted) if n_perm else np.empty(0)
    p = (1.0 + np.sum(null >= observed)) / (1.0 + n_perm)
    return {"mmd2": observed, "p_value": float(p), "n_permutations": n_perm,
            "bandwidth_sigma": math.sqrt(median / 2.0), "kernel": "rbf, median heuristic"}


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """L2-penalised logistic regression by L-BFGS (weights with intercept last)."""
    design = np.hstack([x, np.ones((len(x), 1))])

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = design @ w
        value = np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * np.dot(w[:-1], w[:-1])
        grad = design.T @ (1.0 / (1.0 + np.exp(-z)) - y)
        grad[:-1] += l2 * w[:-1]
        return float(value), grad

    return optimize.minimize(loss, np.zeros(design.shape[1]), jac=True, method="L-BFGS-B").x


def domain_classifier_auc(ref_emb: np.ndarray, cur_emb: np.ndarray, folds: int = 5, max_components: int = 50,
                          l2: float = 1.0, rng: np.random.Generator | None = None) -> dict[str, Any]:
    """Cross-validated AUC of a classifier telling current from reference (0.5 = indistinguishable).

    Embeddings are reduced to their leading principal components (fitted without
    labels, so no leakage) and standardised within each training fold.
    """
    rng = rng or np.random.default_rng(0)
    x = np.vstack([ref_emb, cur_emb]).astype(float)
    y = np.concatenate([np.zeros(len(ref_emb)), np.ones(len(cur_emb))])
    centred = x - x.mean(axis=0)
    components = min(max_components, x.shape[1], len(x) - 1)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    x = centred @ vt[:components].T
    fold_of = rng.permutation(len(x)) % folds
    scores = np.empty(len(x))
    for k in range(folds):
        train, test = fold_of != k, fold_of == k
        mean, std = x[train].mean(axis=0), x[train].std(axis=0)
        std[std == 0] = 1.0
        w = _fit_logistic((x[train] - mean) / std, y[train], l2)
        scores[test] = np.hstack([(x[test] - mean) / std, np.ones((test.sum(), 1))]) @ w
    auc, variance = auc_delong(y, scores)
    half = 1.959963984540054 * math.sqrt(max(variance, 0.0))
    return {"auc": auc, "ci": [max(0.0, auc - half), min(1.0, auc + half)], "folds": folds,
            "components": components, "model": "L2 logistic regression on principal components",
            "threshold": DOMAIN_AUC_THRESHOLD}


def embedding_drift(ref_emb: np.ndarray, cur_emb: np.ndarray, n_perm: int = 200, max_n: int = 2000,
                    seed: int = 0, alpha: float = 0.05) -> dict[str, Any]:
    """Image drift on backbone embeddings: MMD permutation test and domain-classifier AUC."""
    ref_emb, cur_emb = np.asarray(ref_emb, float), np.asarray(cur_emb, float)
    if ref_emb.ndim != 2 or cur_emb.ndim != 2 or ref_emb.shape[1] != cur_emb.shape[1]:
        raise BsxError(f"embeddings must be two matrices of the same width (got {ref_emb.shape} and "
                       f"{cur_emb.shape})", fix="compare runs of the same backbone")
    if min(len(ref_emb), len(cur_emb)) < 10:
        raise BsxError("embedding drift needs at least 10 cases in each cohort",
                       fix="run more cases, or skip embedding drift")
    rng = np.random.default_rng(seed)
    ref_s, cur_s = _subsample(ref_emb, max_n, rng), _subsample(cur_emb, max_n, rng)
    mmd = mmd_test(ref_s, cur_s, n_perm, rng)
    classifier = domain_classifier_auc(ref_s, cur_s, rng=rng)
    mmd["drift"] = bool(mmd["p_value"] < alpha)
    classifier["drift"] = bool(classifier["auc"] >= DOMAIN_AUC_THRESHOLD and classifier["ci"][0] > 0.5)
    return {"n_reference": len(ref_emb), "n_current": len(cur_emb), "n_used": [len(ref_s), len(cur_s)],
            "mmd": mmd, "domain_classifier": classifier,
            "verdict": "drift" if mmd["drift"] or classifier["drift"] else "no drift",
            "settings": {"n_perm": n_perm, "max_n": max_n, "seed": seed, "alpha": alpha}}


# ----------------------------------------------------------------------------
# drift.json
# ----------------------------------------------------------------------------
def drift_report(ref: pd.DataFrame, cur: pd.DataFrame, *, ref_pred: pd.DataFrame | None = None,
                 cur_pred: pd.DataFrame | None = None, ref_emb: np.ndarray | None = None,
                 cur_emb: np.ndarray | None = None, columns: Sequence[str] | None = None, bins: int = 10,
                 alpha: float = 0.05, seed: int = 0) -> dict[str, Any]:
    """The drift.json content: metadata always, predictions and embeddings when both sides have them."""
    metadata = metadata_drift(ref, cur, columns=columns, bins=bins, alpha=alpha)
    prediction = (prediction_drift(ref_pred, cur_pred, bins=bins, alpha=alpha)
                  if ref_pred is not None and cur_pred is not None else None)
    embedding = (embedding_drift(ref_emb, cur_emb, seed=seed, alpha=alpha)
                 if ref_emb is not None and cur_emb is not None else None)
    parts = {"metadata": metadata["verdict"]}
    if prediction is not None:
        parts["prediction"] = prediction["verdict"]
    if embedding is not None:
        parts["embedding"] = embedding["verdict"]
    overall = "drift" if "drift" in parts.values() else (
        "partial drift" if "partial drift" in parts.values() else "no drift")
    report = {"verdict": overall, "verdicts": parts, "metadata": metadata,
              "prediction": prediction, "embedding": embedding,
              "reference_rows": len(ref), "current_rows": len(cur)}
    return to_jsonable(report)
