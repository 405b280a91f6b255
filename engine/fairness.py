"""Subgroup fairness: the fairness.csv table and its summary for metrics.json.

One row per (attribute, group), including pairwise intersections such as
"sex x skin_type". Every metric is computed from weighted sums, so the point
estimate and each bootstrap resample go through the same code: a resample is a
column of multiplicity weights, and one weight matrix per chunk of resamples is
reused for every group of every attribute (a sparse matrix product instead of
a Python loop over groups and resamples). Resampling is by patient (cluster
bootstrap) so that several lesions of one patient stay together; group sizes
vary between resamples as they would between real cohorts, and differences
between a group and the overall / reference value are taken within the same
resample, so their CIs account for the overlap.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from cohorts.errors import BsxError

DEFAULT_ATTRIBUTES: tuple[str, ...] = ("site", "sex", "age_band", "skin_type", "body_site")
METRICS: tuple[str, ...] = (
    "prevalence", "auc", "sensitivity", "specificity", "ppv",
    "ece", "brier", "mean_uncertainty", "referral_rate",
)
# Metrics where a lower value is better (the "worst" group has the highest value).
LOWER_IS_BETTER = frozenset({"ece", "brier"})
RATIO_BAND = (0.8, 1.25)
ECE_BINS = 10
OVERALL = "overall"
INTERSECTION_SEP = " x "
GROUP_SEP = " & "

# Row-level additive quantities; every count metric is a ratio of their weighted sums.
_QUANTITIES = ("n", "pos", "pred_pos", "tp", "flagged", "brier", "unc", "unc_n")


@dataclass(frozen=True)
class _Attribute:
    """One grouping of the cases: codes[i] in 0..len(labels)-1, or -1 when missing."""

    name: str
    codes: np.ndarray
    labels: list[str]


@dataclass(frozen=True)
class _Cases:
    """The analysis set as plain arrays."""

    truth: np.ndarray  # 0/1 float
    p: np.ndarray
    predicted: np.ndarray  # 0/1 float at the threshold
    flagged: np.ndarray  # 0/1 float
    uncertainty: np.ndarray  # NaN where absent
    clusters: np.ndarray  # patient codes 0..n_clusters-1
    n_clusters: int


# ----------------------------------------------------------------------------
# Input preparation
# ----------------------------------------------------------------------------
def usable_rows(pred: pd.DataFrame) -> pd.Series:
    """Rows without a per-case error: failed cases carry no prediction worth scoring."""
    if "error" not in pred.columns:
        return pd.Series(True, index=pred.index)
    err = pred["error"]
    return err.isna() | (err.astype(str).str.strip() == "")


def age_band_labels(age_edges: Sequence[float]) -> list[str]:
    """Clinical labels for right-open bands: edges (0, 30, 45) -> "0-29", "30-44"."""
    labels = []
    for lo, hi in zip(age_edges[:-1], age_edges[1:]):
        if float(lo).is_integer() and float(hi).is_integer():
            labels.append(f"{int(lo)}-{int(hi) - 1}")
        else:
            labels.append(f"{lo:g}-<{hi:g}")
    return labels


def add_age_band(frame: pd.DataFrame, age_edges: Sequence[float]) -> pd.Series:
    edges = np.asarray(age_edges, dtype=float)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise BsxError(f"age_edges must be at least two increasing numbers, got {list(age_edges)}",
                       fix="pass e.g. age_edges=(0, 30, 45, 60, 75, 120)")
    age = pd.to_numeric(frame["age"], errors="coerce")
    return pd.cut(age, bins=edges, right=False, labels=age_band_labels(edges))


def _attribute_from_series(name: str, values: pd.Series) -> _Attribute:
    if isinstance(values.dtype, pd.CategoricalDtype):
        cat = values.cat.remove_unused_categories()
        labels = [str(c) for c in cat.cat.categories]
        return _Attribute(name, cat.cat.codes.to_numpy(np.int64), labels)
    text = values.astype("string").str.strip()
    missing = text.isna() | (text == "") | text.str.lower().isin(["nan", "none", "unknown"])
    text = text.mask(missing)
    labels = sorted(text.dropna().unique().tolist())
    lookup = {label: code for code, label in enumerate(labels)}
    codes = text.map(lookup).fillna(-1).astype(np.int64).to_numpy()
    return _Attribute(name, codes, labels)


def _intersection(a: _Attribute, b: _Attribute) -> _Attribute:
    both = (a.codes >= 0) & (b.codes >= 0)
    combined = np.where(both, a.codes * max(len(b.labels), 1) + b.codes, -1)
    observed, codes = np.unique(combined[both], return_inverse=True)
    out = np.full(len(combined), -1, dtype=np.int64)
    out[both] = codes
    labels = [f"{a.labels[c // len(b.labels)]}{GROUP_SEP}{b.labels[c % len(b.labels)]}" for c in observed]
    return _Attribute(f"{a.name}{INTERSECTION_SEP}{b.name}", out, labels)


def _resolve_attributes(frame: pd.DataFrame, attributes: Sequence[str] | None,
                        age_edges: Sequence[float]) -> tuple[list[_Attribute], list[str]]:
    """Explicit attributes must exist; the defaults are used where present (returns the skipped ones)."""
    explicit = attributes is not None
    names = list(DEFAULT_ATTRIBUTES if attributes is None else attributes)
    if isinstance(attributes, str):
        names = [attributes]
    resolved, skipped = [], []
    for name in names:
        if name in frame.columns:
            resolved.append(_attribute_from_series(name, frame[name]))
        elif name == "age_band" and "age" in frame.columns:
            resolved.append(_attribute_from_series(name, add_age_band(frame, age_edges)))
        elif explicit:
            available = ", ".join(map(str, frame.columns))
            raise BsxError(f"subgroup attribute '{name}' is not a column of the predictions "
                           f"(available: {available})", column=name,
                           fix="choose attributes among the available columns (age_band needs 'age')")
        else:
            skipped.append(name)
    return resolved, skipped


def _prepare_cases(frame: pd.DataFrame, threshold: float) -> _Cases:
    p = frame["p_mean"].to_numpy(dtype=float)
    if not np.all(np.isfinite(p)):
        raise BsxError("p_mean has non-finite values on cases without an error", column="p_mean",
                       fix="rerun inference or mark those cases with an error")
    truth = frame["truth"].to_numpy(dtype=float)
    flagged = (frame["flagged"].fillna(False).astype(bool).to_numpy(dtype=float)
               if "flagged" in frame.columns else np.zeros(len(frame)))
    unc_col = "entropy" if "entropy" in frame.columns else ("p_std" if "p_std" in frame.columns else None)
    uncertainty = (pd.to_numeric(frame[unc_col], errors="coerce").to_numpy(dtype=float)
                   if unc_col else np.full(len(frame), np.nan))
    if "patient_id" in frame.columns and frame["patient_id"].notna().all():
        clusters = pd.factorize(frame["patient_id"])[0]
    else:
        clusters = np.arange(len(frame))
    return _Cases(truth, p, (p >= threshold).astype(float), flagged, uncertainty,
                  clusters.astype(np.int64), int(clusters.max()) + 1 if len(clusters) else 0)


# ----------------------------------------------------------------------------
# Weighted metrics for all groups and resamples at once
# ----------------------------------------------------------------------------
def _sum_matrix(attr: _Attribute, cases: _Cases) -> sparse.csr_matrix:
    """Rows (quantity, group) then (group, ECE bin); columns cases; values the per-case quantity."""
    n_groups = len(attr.labels)
    keep = np.flatnonzero(attr.codes >= 0)
    g = attr.codes[keep]
    y, yhat = cases.truth[keep], cases.predicted[keep]
    unc = cases.uncertainty[keep]
    finite_unc = np.isfinite(unc)
    values = {
        "n": np.ones(len(keep)),
        "pos": y,
        "pred_pos": yhat,
        "tp": y * yhat,
        "flagged": cases.flagged[keep],
        "brier": (cases.p[keep] - y) ** 2,
        "unc": np.where(finite_unc, unc, 0.0),
        "unc_n": finite_unc.astype(float),
    }
    rows = [q * n_groups + g for q in range(len(_QUANTITIES))]
    data = [values[name] for name in _QUANTITIES]
    ece_bin = np.minimum((cases.p[keep] * ECE_BINS).astype(np.int64), ECE_BINS - 1)
    rows.append(len(_QUANTITIES) * n_groups + g * ECE_BINS + ece_bin)
    data.append(cases.p[keep] - y)
    cols = np.tile(keep, len(rows))
    shape = ((len(_QUANTITIES) + ECE_BINS) * n_groups, len(cases.p))
    return sparse.csr_matrix((np.concatenate(data), (np.concatenate(rows), cols)), shape=shape)


@dataclass(frozen=True)
class _AucLevels:
    """Cases sorted by (group, p) and collapsed into tie levels, so AUC needs one cumulative sum."""

    pos_neg: sparse.csr_matrix  # (2 * n_levels, n): positive then negative weight per level
    group_starts: np.ndarray  # first level of each group present
    groups_present: np.ndarray
    n_levels: int


def _auc_levels(attr: _Attribute, cases: _Cases) -> _AucLevels:
    keep = np.flatnonzero(attr.codes >= 0)
    order = keep[np.lexsort((cases.p[keep], attr.codes[keep]))]
    g, p = attr.codes[order], cases.p[order]
    new_level = np.ones(len(order), dtype=bool)
    new_level[1:] = (g[1:] != g[:-1]) | (p[1:] != p[:-1])
    level = np.cumsum(new_level) - 1
    n_levels = int(level[-1]) + 1 if len(level) else 0
    is_pos = cases.truth[order] == 1
    rows = np.where(is_pos, level, n_levels + level)
    matrix = sparse.csr_matrix((np.ones(len(order)), (rows, order)), shape=(2 * n_levels, len(cases.p)))
    level_group = np.full(n_levels, -1, dtype=np.int64)
    level_group[level] = g
    groups_present, group_starts = np.unique(level_group, return_index=True)
    return _AucLevels(matrix, group_starts, groups_present, n_levels)


def _weighted_auc(levels: _AucLevels, weights: np.ndarray, n_groups: int) -> np.ndarray:
    """Mann-Whitney AUC per group and resample: sum over positives of the negative weight below (ties 1/2)."""
    out = np.full((n_groups, weights.shape[1]), np.nan)
    if levels.n_levels == 0:
        return out
    both = levels.pos_neg @ weights
    pos, neg = both[: levels.n_levels], both[levels.n_levels:]
    neg_below = np.cumsum(neg, axis=0)
    neg_below -= neg  # exclusive cumulative sum
    concordant = pos * (neg_below + 0.5 * neg)
    starts = levels.group_starts
    per_group = np.add.reduceat(concordant, starts, axis=0)
    pos_total = np.add.reduceat(pos, starts, axis=0)
    neg_total = np.add.reduceat(neg, starts, axis=0)
    per_group -= pos_total * neg_below[starts]  # remove negatives of earlier groups
    with np.errstate(invalid="ignore", divide="ignore"):
        out[levels.groups_present] = per_group / (pos_total * neg_total)
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _metrics_from_sums(sums: np.ndarray, auc: np.ndarray, n_groups: int) -> dict[str, np.ndarray]:
    """sums: (rows of _sum_matrix, resamples) -> metric arrays of shape (groups, resamples)."""
    q = {name: sums[i * n_groups:(i + 1) * n_groups] for i, name in enumerate(_QUANTITIES)}
    ece_resid = sums[len(_QUANTITIES) * n_groups:].reshape(n_groups, ECE_BINS, -1)
    n, pos = q["n"], q["pos"]
    neg = n - pos
    false_pos = q["pred_pos"] - q["tp"]
    return {
        "prevalence": _ratio(pos, n),
        "auc": auc,
        "sensitivity": _ratio(q["tp"], pos),
        "specificity": _ratio(neg - false_pos, neg),
        "ppv": _ratio(q["tp"], q["pred_pos"]),
        "ece": _ratio(np.abs(ece_resid).sum(axis=1), n),
        "brier": _ratio(q["brier"], n),
        "mean_uncertainty": _ratio(q["unc"], q["unc_n"]),
        "referral_rate": _ratio(q["flagged"], n),
        "_n": n, "_pos": pos,
    }


class _GroupMetrics:
    """Precomputed matrices for one attribute; evaluates metrics under any weight matrix."""

    def __init__(self, attr: _Attribute, cases: _Cases) -> None:
        self.attr = attr
        self.n_groups = len(attr.labels)
        self.sum_matrix = _sum_matrix(attr, cases)
        self.levels = _auc_levels(attr, cases)

    def evaluate(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        sums = self.sum_matrix @ weights
        auc = _weighted_auc(self.levels, weights, self.n_groups)
        return _metrics_from_sums(sums, auc, self.n_groups)


def _bootstrap_weight_chunks(cases: _Cases, n_boot: int, seed: int,
                             chunk_cells: int = 4_000_000) -> Iterable[np.ndarray]:
    """Yield (n_cases, chunk) multiplicity matrices; patients are drawn with replacement."""
    rng = np.random.default_rng(seed)
    n_cases = len(cases.p)
    chunk = int(max(1, min(n_boot, chunk_cells // max(n_cases, 1))))
    done = 0
    while done < n_boot:
        size = min(chunk, n_boot - done)
        drawn = rng.integers(0, cases.n_clusters, size=(size, cases.n_clusters))
        offsets = (np.arange(size) * cases.n_clusters)[:, None]
        counts = np.bincount((drawn + offsets).ravel(), minlength=size * cases.n_clusters)
        counts = counts.reshape(size, cases.n_clusters).T.astype(float)
        yield counts[cases.clusters] if cases.n_clusters != n_cases else counts
        done += size


# ----------------------------------------------------------------------------
# Comparisons
# ----------------------------------------------------------------------------
def bootstrap_p_value(diffs: np.ndarray) -> np.ndarray:
    """Two-sided percentile-bootstrap p-value for 'difference = 0' (rows: tests, columns: resamples).

    Consistent with the percentile CI: the (1 - alpha) CI excludes zero iff p < alpha (up to the +1).
    """
    valid = np.isfinite(diffs)
    count = valid.sum(axis=1)
    below = ((diffs <= 0) & valid).sum(axis=1)
    above = ((diffs >= 0) & valid).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = 2.0 * (np.minimum(below, above) + 1.0) / (count + 1.0)
    return np.where(count > 0, np.minimum(p, 1.0), np.nan)


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values (same as scipy.stats.false_discovery_control); NaN stays NaN."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    m = int(finite.sum())
    if m == 0:
        return out
    values = p[finite]
    order = np.argsort(values)
    scaled = values[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    result = np.empty(m)
    result[order] = np.clip(adjusted, 0.0, 1.0)
    out[finite] = result
    return out


def _quantiles(samples: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    if samples.shape[1] == 0:
        nan = np.full(samples.shape[0], np.nan)
        return nan, nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (group absent from every resample)
        low, high = np.nanquantile(samples, [alpha / 2, 1 - alpha / 2], axis=1)
    return low, high


# ----------------------------------------------------------------------------
# The table
# ----------------------------------------------------------------------------
def _not_estimable_reason(n: float, pos: float, min_size: int) -> str:
    if n < min_size:
        return f"not estimable: n={int(n)} < min_size={min_size}"
    if pos == 0:
        return "not estimable: no positive cases"
    if pos == n:
        return "not estimable: no negative cases"
    return ""


def _choose_reference(attr: _Attribute, n: np.ndarray, estimable: np.ndarray,
                      reference: dict[str, str] | None) -> int | None:
    wanted = (reference or {}).get(attr.name)
    if wanted is not None:
        if str(wanted) not in attr.labels:
            raise BsxError(f"reference group '{wanted}' is not a group of '{attr.name}' "
                           f"(groups: {', '.join(attr.labels)})", column=attr.name,
                           fix="name one of the listed groups, or leave the reference out (largest group)")
        code = attr.labels.index(str(wanted))
        if not estimable[code]:
            raise BsxError(f"reference group '{wanted}' of '{attr.name}' is not estimable "
                           f"(n={int(n[code])})", column=attr.name,
                           fix="choose a larger group with both positive and negative cases")
        return code
    candidates = np.flatnonzero(estimable)
    if len(candidates) == 0:
        return None
    return int(candidates[np.argmax(n[candidates])])  # argmax keeps the first of ties (sorted label order)


def _attribute_rows(gm: _GroupMetrics, point: dict[str, np.ndarray], boot: dict[str, np.ndarray],
                    overall_point: dict[str, np.ndarray], overall_boot: dict[str, np.ndarray],
                    reference: dict[str, str] | None, min_size: int, alpha: float) -> pd.DataFrame:
    attr = gm.attr
    n, pos = point["_n"][:, 0], point["_pos"][:, 0]
    reasons = [_not_estimable_reason(n[k], pos[k], min_size) for k in range(gm.n_groups)]
    estimable = np.array([reason == "" for reason in reasons], dtype=bool)
    ref = _choose_reference(attr, n, estimable, reference) if gm.n_groups > 1 else None
    single = gm.n_groups == 1
    single_note = f"only one group in '{attr.name}': no subgroup comparison" if single and attr.name != OVERALL else ""
    notes = [reason or single_note for reason in reasons]
    table: dict[str, Any] = {
        "attribute": attr.name, "group": attr.labels, "n": n.astype(int), "positives": pos.astype(int),
        "negatives": (n - pos).astype(int), "estimable": estimable,
        "is_reference": np.arange(gm.n_groups) == (ref if ref is not None else -1),
        "reference_group": attr.labels[ref] if ref is not None else None, "note": notes,
    }
    mask = np.where(estimable, 1.0, np.nan)[:, None]
    for metric in METRICS:
        value = point[metric][:, 0] * mask[:, 0]
        samples = boot[metric] * mask
        table[metric] = value
        table[f"{metric}_ci_low"], table[f"{metric}_ci_high"] = _quantiles(samples, alpha)
        comparisons = {"overall": (overall_point[metric][0, 0], overall_boot[metric][0])}
        if ref is not None:
            comparisons["ref"] = (value[ref], samples[ref])
        for label in ("overall", "ref"):
            if label not in comparisons or single:
                for suffix in ("diff", "diff_ci_low", "diff_ci_high", "ratio", "p"):
                    table[f"{metric}_{suffix}_{label}"] = np.nan
                continue
            base_value, base_samples = comparisons[label]
            diffs = samples - base_samples[None, :]
            table[f"{metric}_diff_{label}"] = value - base_value
            low, high = _quantiles(diffs, alpha)
            table[f"{metric}_diff_ci_low_{label}"], table[f"{metric}_diff_ci_high_{label}"] = low, high
            with np.errstate(invalid="ignore", divide="ignore"):
                table[f"{metric}_ratio_{label}"] = value / base_value if base_value != 0 else np.nan
            p = bootstrap_p_value(diffs)
            if label == "ref":
                p[ref] = np.nan  # the reference compared with itself is not a test
            table[f"{metric}_p_{label}"] = p
    return pd.DataFrame(table)


def _add_corrections_and_flags(table: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """BH across every p-value in the table, then flags: significant after BH, or
    nominally significant (CI excludes zero) with a ratio outside the 0.8-1.25 band."""
    p_columns = [f"{m}_p_{label}" for m in METRICS for label in ("overall", "ref")]
    adjusted = benjamini_hochberg(table[p_columns].to_numpy(dtype=float).ravel())
    adjusted = adjusted.reshape(len(table), len(p_columns))
    extra: dict[str, np.ndarray] = {}
    for j, column in enumerate(p_columns):
        metric, label = column.rsplit("_p_", 1)
        extra[f"{metric}_p_bh_{label}"] = adjusted[:, j]
        low = table[f"{metric}_diff_ci_low_{label}"].to_numpy(dtype=float)
        high = table[f"{metric}_diff_ci_high_{label}"].to_numpy(dtype=float)
        ratio = table[f"{metric}_ratio_{label}"].to_numpy(dtype=float)
        excludes_zero = (low > 0) | (high < 0)
        outside_band = (ratio < RATIO_BAND[0]) | (ratio > RATIO_BAND[1])
        significant = np.nan_to_num(adjusted[:, j], nan=1.0) < alpha
        extra[f"{metric}_flag_{label}"] = significant | (excludes_zero & outside_band)
    table = pd.concat([table, pd.DataFrame(extra, index=table.index)], axis=1)
    return table[_column_order()]


def _column_order() -> list[str]:
    columns = ["attribute", "group", "n", "positives", "negatives", "estimable",
               "is_reference", "reference_group", "note"]
    for metric in METRICS:
        columns += [metric, f"{metric}_ci_low", f"{metric}_ci_high"]
        for label in ("overall", "ref"):
            columns += [f"{metric}_{suffix}_{label}" for suffix in
                        ("diff", "diff_ci_low", "diff_ci_high", "ratio", "p", "p_bh", "flag")]
    return columns


def subgroup_table(pred: pd.DataFrame, *, attributes: Sequence[str] | None = None,
                   age_edges: Sequence[float] = (0, 30, 45, 60, 75, 120), intersections: bool = True,
                   reference: dict[str, str] | None = None, min_size: int = 30, threshold: float = 0.5,
                   n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """The fairness.csv table (settings in `table.attrs["settings"]`).

    attributes=None uses DEFAULT_ATTRIBUTES that exist in the frame (absent ones are
    listed in the settings); attributes named explicitly must exist (BsxError otherwise).
    Analysed: cases without an error and with a label; a case is predicted positive
    when p_mean >= threshold; uncertainty is `entropy` (else `p_std`).
    """
    for column in ("truth", "p_mean"):
        if column not in pred.columns:
            raise BsxError(f"predictions have no '{column}' column", column=column,
                           fix="use the predictions.parquet written by `bsx validate`")
    usable = pred.loc[usable_rows(pred)]
    labelled = usable.loc[usable["truth"].notna()].reset_index(drop=True)
    if labelled.empty:
        raise BsxError("no case has a label (truth is empty for every usable case): "
                       "subgroup performance cannot be estimated", column="truth",
                       fix="add the ground truth (diagnosis) to the cohort, or skip the fairness analysis")
    truth = labelled["truth"].to_numpy(dtype=float)
    if not np.isin(truth, (0.0, 1.0)).all():
        raise BsxError("truth must be 0 or 1 for the subgroup analysis", column="truth",
                       fix="binarise the labels (malignant = 1)")
    attrs, skipped = _resolve_attributes(labelled, attributes, age_edges)
    cases = _prepare_cases(labelled, threshold)
    overall = _GroupMetrics(_Attribute(OVERALL, np.zeros(len(truth), dtype=np.int64), ["all"]), cases)
    groupings = [overall] + [_GroupMetrics(a, cases) for a in attrs]
    if intersections:
        multi = [a for a in attrs if len(a.labels) > 1]
        groupings += [_GroupMetrics(_intersection(a, b), cases) for a, b in combinations(multi, 2)]
    ones = np.ones((len(truth), 1))
    points = [gm.evaluate(ones) for gm in groupings]
    boot_parts: list[list[dict[str, np.ndarray]]] = [[] for _ in groupings]
    for weights in _bootstrap_weight_chunks(cases, n_boot, seed):
        for parts, gm in zip(boot_parts, groupings):
            parts.append(gm.evaluate(weights))
    boots = [{m: np.concatenate([part[m] for part in parts], axis=1) if parts
              else np.empty((gm.n_groups, 0)) for m in METRICS}
             for parts, gm in zip(boot_parts, groupings)]
    frames = [_attribute_rows(gm, point, boot, points[0], boots[0], reference, min_size, alpha)
              for gm, point, boot in zip(groupings, points, boots)]
    table = _add_corrections_and_flags(pd.concat(frames, ignore_index=True), alpha)
    table.attrs["settings"] = {
        "attributes": [a.name for a in attrs], "skipped_attributes": skipped,
        "intersections": intersections, "age_edges": list(age_edges), "reference": dict(reference or {}),
        "min_size": min_size, "threshold": threshold, "n_boot": n_boot, "seed": seed, "alpha": alpha,
        "ece_bins": ECE_BINS, "ratio_band": list(RATIO_BAND),
        "bootstrap": "percentile, clustered by patient_id" if cases.n_clusters < len(truth)
        else "percentile, case resampling (one case per patient)",
        "flag_rule": "BH-adjusted p < alpha, or difference CI excludes 0 and ratio outside ratio_band",
        "n_analysed": int(len(truth)), "n_unlabelled_excluded": int(len(usable) - len(labelled)),
        "n_error_excluded": int(len(pred) - len(usable)),
    }
    return table


# ----------------------------------------------------------------------------
# Summary for metrics.json
# ----------------------------------------------------------------------------
def _finite(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def fairness_summary(table: pd.DataFrame) -> dict[str, Any]:
    """Flagged gaps, worst group per metric and attribute, reference groups, settings (JSON-ready)."""
    rows = table[table["attribute"] != OVERALL]
    flagged = []
    for metric in METRICS:
        for label in ("ref", "overall"):
            hit = rows[rows[f"{metric}_flag_{label}"].astype(bool)]
            for _, row in hit.iterrows():
                flagged.append({
                    "attribute": row["attribute"], "group": row["group"], "metric": metric,
                    "versus": "reference" if label == "ref" else "overall",
                    "reference_group": row["reference_group"] if label == "ref" else None,
                    "value": _finite(row[metric]), "difference": _finite(row[f"{metric}_diff_{label}"]),
                    "difference_ci": [_finite(row[f"{metric}_diff_ci_low_{label}"]),
                                      _finite(row[f"{metric}_diff_ci_high_{label}"])],
                    "ratio": _finite(row[f"{metric}_ratio_{label}"]),
                    "p_bh": _finite(row[f"{metric}_p_bh_{label}"]),
                })
    worst: dict[str, dict[str, Any]] = {}
    estimable = rows[rows["estimable"].astype(bool)]
    for metric in METRICS:
        if metric == "prevalence":
            continue
        per_attribute = {}
        for attribute, block in estimable.groupby("attribute", sort=False):
            values = block[metric].astype(float)
            if values.notna().sum() < 2:
                continue
            idx = values.idxmax() if metric in LOWER_IS_BETTER else values.idxmin()
            per_attribute[attribute] = {"group": block.at[idx, "group"], "value": _finite(values[idx]),
                                        "n": int(block.at[idx, "n"])}
        worst[metric] = per_attribute
    references = {attr: grp for attr, grp in rows.loc[rows["is_reference"].astype(bool),
                                                     ["attribute", "group"]].itertuples(index=False)}
    overall_row = table[table["attribute"] == OVERALL]
    overall = ({m: {"value": _finite(overall_row[m].iloc[0]),
                    "ci": [_finite(overall_row[f"{m}_ci_low"].iloc[0]), _finite(overall_row[f"{m}_ci_high"].iloc[0])]}
                for m in METRICS} if len(overall_row) else {})
    not_estimable = rows.loc[~rows["estimable"].astype(bool), ["attribute", "group", "note"]]
    return {
        "overall": overall,
        "flagged_gaps": flagged,
        "n_flagged": len(flagged),
        "worst_groups": worst,
        "reference_groups": references,
        "not_estimable": not_estimable.to_dict(orient="records"),
        "settings": dict(table.attrs.get("settings", {})),
    }
