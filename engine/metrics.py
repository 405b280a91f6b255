"""Performance metrics with honest confidence intervals, and the metrics.json builder.

Every figure a clinician reads carries its uncertainty and the method behind
it, and a figure the data cannot support says "not estimable" instead of
showing a number. Closed forms are used where they exist (fast DeLong for AUC,
Wilson for proportions); everything else uses a seeded bootstrap that resamples
patients, not images, because images of one patient are not independent.

The bootstrap is vectorised: a replicate is a row of case weights (how often
each case was drawn), so each statistic is one matrix operation over a block
of replicates instead of a Python loop over resampled data frames.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from cohorts.atomic import to_jsonable
from cohorts.errors import BsxError
from engine import selective

DEFAULT_BINS = 15
MAX_CURVE_POINTS = 200
DEFAULT_UNCERTAINTY_SCORES = ("entropy", "mutual_info", "p_std", "max_prob")
BIN_STRATEGIES = ("equal_width", "equal_mass")
MIN_VALID_REPLICATE_FRACTION = 0.5
BOOTSTRAP_BLOCK_ELEMENTS = 2_000_000  # replicate rows x cases held at once (16 MB of float64)
_EPS = 1e-12


# ---------------------------------------------------------------------------
# Reported figures
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    """One reported figure: a value, its CI and the method (value None = not estimable)."""

    value: float | None
    ci: tuple[float, float] | None
    method: str
    note: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        value = _finite_or_none(self.value)
        ci = None
        if self.ci is not None and value is not None:
            lo, hi = _finite_or_none(self.ci[0]), _finite_or_none(self.ci[1])
            ci = None if lo is None or hi is None else [lo, hi]
        out: dict[str, Any] = {"value": value, "ci": ci, "method": self.method, **self.details}
        note = self.note
        if value is None and note is None:
            note = "not estimable: undefined on these data"
        if note:
            out["note"] = note
        return out


def not_estimable(method: str, reason: str, **details: Any) -> Estimate:
    return Estimate(None, None, method, note=f"not estimable: {reason}", details=details)


def _finite_or_none(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _z(alpha: float) -> float:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return float(stats.norm.ppf(1.0 - alpha / 2.0))


def _binary_labels(y: Any) -> np.ndarray:
    y = np.asarray(y, dtype=float).ravel()
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("binary labels must be 0 or 1")
    return y.astype(bool)


def _finite_scores(p: Any, n: int) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    if p.shape[-1] != n:
        raise ValueError(f"expected {n} scores per row, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("scores must be finite")
    return p


# ---------------------------------------------------------------------------
# AUC: fast DeLong
# ---------------------------------------------------------------------------
def delong_covariance(y: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of k score vectors on the same cases and their DeLong covariance (k x k).

    Fast DeLong (Sun & Xu 2014): the structural components come from midranks,
    so the cost is three sorts, O(n log n), instead of comparing every positive
    with every negative.
    """
    positive = _binary_labels(y)
    scores = np.atleast_2d(_finite_scores(scores, positive.size))
    m, n = int(positive.sum()), int((~positive).sum())
    if m < 2 or n < 2:
        raise ValueError("DeLong needs at least 2 positive and 2 negative cases")
    pos, neg = scores[:, positive], scores[:, ~positive]
    rank_pos = stats.rankdata(pos, axis=1)
    rank_neg = stats.rankdata(neg, axis=1)
    rank_all = stats.rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    aucs = (rank_all[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    v_pos = (rank_all[:, :m] - rank_pos) / n  # per positive: share of negatives scored below it
    v_neg = 1.0 - (rank_all[:, m:] - rank_neg) / m  # per negative: share of positives scored above it
    cov = np.atleast_2d(np.cov(v_pos)) / m + np.atleast_2d(np.cov(v_neg)) / n
    return aucs, cov


def auc_delong(y: Any, p: Any) -> tuple[float, float]:
    """AUC and its DeLong variance."""
    aucs, cov = delong_covariance(y, p)
    return float(aucs[0]), float(cov[0, 0])


def _auc_not_estimable_reason(y: Any) -> str | None:
    positive = _binary_labels(y)
    m, n = int(positive.sum()), int((~positive).sum())
    if m == 0 or n == 0:
        return "only one class among the labelled cases (AUC needs positives and negatives)"
    if m < 2 or n < 2:
        return f"too few cases for DeLong ({m} positive, {n} negative; needs 2 of each)"
    return None


def auc_ci(y: Any, p: Any, alpha: float = 0.05) -> Estimate:
    """AUC with a normal DeLong CI on the AUC scale, clipped to [0, 1]."""
    reason = _auc_not_estimable_reason(y)
    if reason:
        return not_estimable("delong", reason)
    auc, var = auc_delong(y, p)
    half = _z(alpha) * math.sqrt(max(var, 0.0))
    return Estimate(auc, (max(0.0, auc - half), min(1.0, auc + half)), "delong")


def delong_paired_difference(y: Any, p1: Any, p2: Any, alpha: float = 0.05) -> Estimate:
    """AUC(p1) - AUC(p2) on the same cases, with DeLong CI, z and two-sided p-value."""
    reason = _auc_not_estimable_reason(y)
    if reason:
        return not_estimable("delong_paired", reason)
    aucs, cov = delong_covariance(y, np.vstack([np.asarray(p1, float), np.asarray(p2, float)]))
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    if var <= 0.0:
        return Estimate(diff, (diff, diff), "delong_paired", details={"z": None, "p_value": None})
    se = math.sqrt(var)
    z = diff / se
    half = _z(alpha) * se
    return Estimate(diff, (diff - half, diff + half), "delong_paired",
                    details={"z": z, "p_value": float(2.0 * stats.norm.sf(abs(z)))})


# ---------------------------------------------------------------------------
# Proportions: Wilson
# ---------------------------------------------------------------------------
def wilson_interval(k: Any, n: Any, alpha: float = 0.05) -> tuple[Any, Any]:
    """Wilson score interval for k successes in n trials (vectorised; NaN where n == 0).

    Wilson rather than Wald: it stays inside [0, 1] and keeps its coverage at
    proportions near 0 or 1, where sensitivities of good models live.
    """
    k_arr, n_arr = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    if np.any(k_arr < 0) or np.any(k_arr > n_arr):
        raise ValueError("need 0 <= k <= n")
    z = _z(alpha)
    z2 = z * z
    with np.errstate(divide="ignore", invalid="ignore"):
        phat = k_arr / n_arr
        denom = 1.0 + z2 / n_arr
        centre = (phat + z2 / (2.0 * n_arr)) / denom
        half = z * np.sqrt(phat * (1.0 - phat) / n_arr + z2 / (4.0 * n_arr * n_arr)) / denom
    empty = n_arr <= 0
    lo = np.where(empty, np.nan, np.clip(centre - half, 0.0, 1.0))
    hi = np.where(empty, np.nan, np.clip(centre + half, 0.0, 1.0))
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def proportion(k: int, n: int, alpha: float = 0.05, *, empty_reason: str = "empty denominator") -> Estimate:
    """k / n with its Wilson CI, keeping k and n so a report can show '81/263'."""
    k, n = int(k), int(n)
    if n == 0:
        return not_estimable("wilson", empty_reason, k=k, n=n)
    lo, hi = wilson_interval(k, n, alpha)
    return Estimate(k / n, (lo, hi), "wilson", details={"k": k, "n": n})


# ---------------------------------------------------------------------------
# ROC curve and operating points
# ---------------------------------------------------------------------------
def _tie_group_ends(sorted_values: np.ndarray) -> np.ndarray:
    return np.r_[np.flatnonzero(np.diff(sorted_values)), sorted_values.size - 1]


def roc_points(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) at every distinct score, like sklearn's roc_curve(drop_intermediate=False).

    A case is called positive when p >= threshold. thresholds[0] is +inf (nobody
    called positive), so the curve starts at (0, 0) and ends at (1, 1).
    """
    positive = _binary_labels(y)
    p = _finite_scores(p, positive.size).ravel()
    if positive.all() or not positive.any():
        raise ValueError("a ROC curve needs positive and negative cases")
    order = np.argsort(-p, kind="stable")
    ends = _tie_group_ends(p[order])
    tps = np.cumsum(positive[order])[ends]
    fps = (ends + 1) - tps
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    return fpr, tpr, np.r_[np.inf, p[order][ends]]


def weighted_roc(weights: np.ndarray, y: Any, p: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, valid) per row of case weights; rows without both classes are not valid."""
    positive = _binary_labels(y)
    p = _finite_scores(p, positive.size).ravel()
    w_all = np.atleast_2d(np.asarray(weights, dtype=float))
    order = np.argsort(-p, kind="stable")
    ends = _tie_group_ends(p[order])
    w = w_all[:, order]
    tp = np.cumsum(w * positive[order], axis=1)[:, ends]
    fp = np.cumsum(w * ~positive[order], axis=1)[:, ends]
    valid = (tp[:, -1] > 0) & (fp[:, -1] > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = tp / tp[:, -1:]
        fpr = fp / fp[:, -1:]
    zeros = np.zeros((w.shape[0], 1))
    return np.hstack([zeros, fpr]), np.hstack([zeros, tpr]), valid


def _best_sensitivity_index(fpr: np.ndarray, tpr: np.ndarray, specificity: float) -> np.ndarray:
    allowed = fpr <= (1.0 - specificity) + _EPS
    return np.argmax(np.where(allowed, tpr, -np.inf), axis=-1)


def _best_specificity_index(fpr: np.ndarray, tpr: np.ndarray, sensitivity: float) -> np.ndarray:
    reached = tpr >= sensitivity - _EPS
    return np.argmin(np.where(reached, fpr, np.inf), axis=-1)


def sensitivity_at_specificity(y: Any, p: Any, specificity: float = 0.9) -> tuple[float, float]:
    """Highest sensitivity with specificity >= target, and the threshold that gives it."""
    fpr, tpr, thresholds = roc_points(y, p)
    i = int(_best_sensitivity_index(fpr, tpr, specificity))
    return float(tpr[i]), float(thresholds[i])


def specificity_at_sensitivity(y: Any, p: Any, sensitivity: float = 0.9) -> tuple[float, float]:
    """Highest specificity with sensitivity >= target, and the threshold that gives it."""
    fpr, tpr, thresholds = roc_points(y, p)
    i = int(_best_specificity_index(fpr, tpr, sensitivity))
    return float(1.0 - fpr[i]), float(thresholds[i])


def _rows_sens_at_spec(fpr: np.ndarray, tpr: np.ndarray, valid: np.ndarray, target: float) -> np.ndarray:
    best = np.take_along_axis(tpr, _best_sensitivity_index(fpr, tpr, target)[:, None], axis=1)[:, 0]
    return np.where(valid, best, np.nan)


def _rows_spec_at_sens(fpr: np.ndarray, tpr: np.ndarray, valid: np.ndarray, target: float) -> np.ndarray:
    best = np.take_along_axis(fpr, _best_specificity_index(fpr, tpr, target)[:, None], axis=1)[:, 0]
    return np.where(valid, 1.0 - best, np.nan)


def weighted_auc(weights: np.ndarray, y: Any, p: Any) -> np.ndarray:
    """AUC (ties count half) per row of case weights; NaN for rows without both classes."""
    positive = _binary_labels(y)
    p = _finite_scores(p, positive.size).ravel()
    w_all = np.atleast_2d(np.asarray(weights, dtype=float))
    order = np.argsort(p, kind="stable")
    sorted_p = p[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_p)) + 1]
    stops = np.r_[starts[1:], sorted_p.size]
    group = np.repeat(np.arange(starts.size), stops - starts)
    w = w_all[:, order]
    pos = positive[order]
    neg_cum = np.hstack([np.zeros((w.shape[0], 1)), np.cumsum(w * ~pos, axis=1)])
    below = neg_cum[:, starts]
    tied = neg_cum[:, stops] - below
    credit = (below + 0.5 * tied)[:, group]
    n_pos = (w * pos).sum(axis=1)
    n_neg = neg_cum[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (w * pos * credit).sum(axis=1) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def curve_subsample(x: np.ndarray, y: np.ndarray, max_points: int = MAX_CURVE_POINTS) -> np.ndarray:
    """Indices of at most `max_points` points evenly spaced along the curve's length.

    Spacing by (L1) arc length keeps steep steps and long flat runs alike, and the
    first and last points are always kept, so a downsampled ROC still spans (0,0)-(1,1).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size <= max_points:
        return np.arange(x.size)
    length = np.r_[0.0, np.cumsum(np.abs(np.diff(x)) + np.abs(np.diff(y)))]
    targets = np.linspace(0.0, length[-1], max_points)
    picked = np.unique(np.clip(np.searchsorted(length, targets, side="left"), 0, x.size - 1))
    picked[0], picked[-1] = 0, x.size - 1
    return np.unique(picked)


# ---------------------------------------------------------------------------
# Calibration: Brier, ECE, reliability bins
# ---------------------------------------------------------------------------
def brier_score(probs: Any, labels: Any) -> float:
    """Mean squared error of the probabilities; multiclass sums over classes (range 0-2)."""
    probs = np.asarray(probs, dtype=float)
    if probs.ndim == 1:
        return float(np.mean((probs - _binary_labels(labels)) ** 2))
    onehot = np.eye(probs.shape[1])[np.asarray(labels, dtype=int)]
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))


def top_label(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, correct) of the predicted class: what multiclass calibration is measured on."""
    probs = np.asarray(probs, dtype=float)
    return probs.max(axis=1), probs.argmax(axis=1) == np.asarray(labels, dtype=int)


def equal_width_bin(p: np.ndarray, bins: int) -> np.ndarray:
    """Bin of each probability: [k/bins, (k+1)/bins), the last bin closed at 1."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    return np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)


def _binned_sums(
    weights: np.ndarray, p: np.ndarray, outcome: np.ndarray, bins: int, strategy: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per replicate row and bin: weighted count, sum of probabilities, sum of outcomes.

    Equal-mass bins are re-cut in every replicate, exactly as on the resampled
    data: the cases sorted by p fill positions 0..N-1 (a case of weight c fills
    c positions) and position i falls in bin floor(i * bins / N).
    """
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    outcome = np.asarray(outcome, dtype=float)
    if strategy == "equal_width":
        onehot = np.zeros((p.size, bins))
        onehot[np.arange(p.size), equal_width_bin(p, bins)] = 1.0
        return w @ onehot, w @ (onehot * p[:, None]), w @ (onehot * outcome[:, None])
    if strategy != "equal_mass":
        raise ValueError(f"unknown binning strategy '{strategy}'")
    order = np.argsort(p, kind="stable")
    return _equal_mass_sums(w[:, order], p[order], outcome[order], bins)


def _equal_mass_sums(ws: np.ndarray, p: np.ndarray, outcome: np.ndarray,
                     bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin sums from cumulative sums read at the bin boundaries (cases sorted by p).

    A case may straddle a boundary when its weight is above 1; its positions are
    split between the two bins, as the copies would be in the resampled data.
    """
    n_rows, n = ws.shape
    ends = np.cumsum(ws, axis=1)
    total = ends[:, -1:]
    bounds = np.ceil(np.arange(bins + 1) * total / bins)  # first position of each bin, and N
    # One searchsorted for every row: offset each row so the flattened ends stay sorted.
    offset = (np.arange(n_rows) * (float(total.max()) + 1.0))[:, None]
    before = np.searchsorted((ends + offset).ravel(), (bounds + offset).ravel(), side="right")
    before = before.reshape(n_rows, bins + 1) - (np.arange(n_rows) * n)[:, None]  # cases wholly before
    rows = np.arange(n_rows)[:, None]
    prev = np.maximum(before - 1, 0)
    has_prev = before > 0
    inside = np.minimum(before, n - 1)  # the case holding the boundary position
    partial = bounds - np.where(has_prev, ends[rows, prev], 0.0)

    def cumulative_at_bounds(values: np.ndarray) -> np.ndarray:
        cum = np.cumsum(ws * values, axis=1)
        return np.where(has_prev, cum[rows, prev], 0.0) + partial * values[inside]

    at_p, at_y = cumulative_at_bounds(p), cumulative_at_bounds(outcome)
    return np.diff(bounds, axis=1), np.diff(at_p, axis=1), np.diff(at_y, axis=1)


def weighted_ece(weights: np.ndarray, p: Any, outcome: Any, bins: int = DEFAULT_BINS,
                 strategy: str = "equal_width") -> np.ndarray:
    """ECE per row of case weights: sum over bins of |sum p - sum outcome| / total weight."""
    p = np.asarray(p, dtype=float).ravel()
    count, sum_p, sum_y = _binned_sums(weights, p, np.asarray(outcome, dtype=float).ravel(), bins, strategy)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(sum_p - sum_y).sum(axis=1) / count.sum(axis=1)


def expected_calibration_error(p: Any, outcome: Any, bins: int = DEFAULT_BINS,
                               strategy: str = "equal_width") -> float:
    """ECE of probabilities p against 0/1 outcomes (binary: P(positive) vs truth)."""
    p = np.asarray(p, dtype=float).ravel()
    return float(weighted_ece(np.ones((1, p.size)), p, outcome, bins, strategy)[0])


def reliability_bins(p: Any, outcome: Any, bins: int = DEFAULT_BINS,
                     strategy: str = "equal_width") -> list[dict[str, Any]]:
    """Reliability-diagram bins: lo, hi, n, mean_pred, frac_pos (None in empty bins).

    Equal-width bins report their edges; equal-mass bins the lowest and highest
    probability they hold.
    """
    p = np.asarray(p, dtype=float).ravel()
    outcome = np.asarray(outcome, dtype=float).ravel()
    count, sum_p, sum_y = (a[0] for a in _binned_sums(np.ones((1, p.size)), p, outcome, bins, strategy))
    if strategy == "equal_width":
        edges = np.linspace(0.0, 1.0, bins + 1)
        lows, highs = edges[:-1], edges[1:]
    else:
        sorted_p = np.sort(p, kind="stable")
        bin_of_sorted = (np.arange(p.size) * bins) // max(p.size, 1)
        first = np.searchsorted(bin_of_sorted, np.arange(bins), side="left")
        last = np.searchsorted(bin_of_sorted, np.arange(bins), side="right") - 1
        lows = np.where(count > 0, sorted_p[np.clip(first, 0, p.size - 1)], np.nan)
        highs = np.where(count > 0, sorted_p[np.clip(last, 0, p.size - 1)], np.nan)
    rows = []
    for b in range(bins):
        n_b = int(count[b])
        rows.append({
            "lo": _finite_or_none(lows[b]),
            "hi": _finite_or_none(highs[b]),
            "n": n_b,
            "mean_pred": float(sum_p[b] / n_b) if n_b else None,
            "frac_pos": float(sum_y[b] / n_b) if n_b else None,
        })
    return rows


# ---------------------------------------------------------------------------
# Bootstrap (cluster bootstrap at patient level)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ResamplingUnits:
    """Which cases are drawn together: patients when any patient has several images, else cases."""

    codes: np.ndarray  # unit index of each case
    n_units: int
    kind: str  # "patient" or "case"


def resampling_units(patient_ids: Sequence[Any] | None, n_cases: int | None = None) -> ResamplingUnits:
    """Group cases by patient id; a case without a patient id is its own unit."""
    if patient_ids is None:
        if n_cases is None:
            raise ValueError("give patient_ids or n_cases")
        return ResamplingUnits(np.arange(n_cases), n_cases, "case")
    ids = pd.Series(list(patient_ids), dtype=object)
    missing = ids.isna() | (ids.astype(str).str.strip() == "")
    keys = ids.astype(str).where(~missing, "\x00case:" + pd.Series(np.arange(ids.size)).astype(str))
    codes, uniques = pd.factorize(keys)
    kind = "patient" if len(uniques) < ids.size else "case"
    return ResamplingUnits(np.asarray(codes, dtype=np.int64), len(uniques), kind)


def iter_bootstrap_weights(units: ResamplingUnits, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Blocks of replicate weights (rows = replicates, columns = cases).

    Each replicate draws n_units units with replacement (an index matrix per
    block); every case of a unit drawn c times gets weight c, so a patient's
    images always enter or leave a replicate together.
    """
    rng = np.random.default_rng(seed)
    n_cases = units.codes.size
    block = max(1, BOOTSTRAP_BLOCK_ELEMENTS // max(n_cases, units.n_units, 1))
    done = 0
    while done < n_boot:
        rows = min(block, n_boot - done)
        draws = rng.integers(0, units.n_units, size=(rows, units.n_units))
        flat = (draws + (np.arange(rows) * units.n_units)[:, None]).ravel()
        counts = np.bincount(flat, minlength=rows * units.n_units).reshape(rows, units.n_units)
        yield counts[:, units.codes].astype(float)
        done += rows


def bootstrap_weights(patient_ids: Sequence[Any] | None, n_boot: int, seed: int = 0,
                      n_cases: int | None = None) -> np.ndarray:
    """All replicate weights at once (n_boot x n_cases); for small data and tests."""
    units = resampling_units(patient_ids, n_cases)
    blocks = list(iter_bootstrap_weights(units, n_boot, seed))
    return np.vstack(blocks) if blocks else np.zeros((0, units.codes.size))


def bootstrap_replicates(
    units: ResamplingUnits,
    statistic: Callable[[np.ndarray], dict[str, np.ndarray]],
    n_boot: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Evaluate a vectorised statistic (weights block -> {name: values per row}) on every replicate."""
    collected: dict[str, list[np.ndarray]] = {}
    for block in iter_bootstrap_weights(units, n_boot, seed):
        for name, values in statistic(block).items():
            collected.setdefault(name, []).append(np.asarray(values, dtype=float))
    return {name: np.concatenate(parts) for name, parts in collected.items()}


def percentile_interval(replicates: np.ndarray, alpha: float = 0.05) -> tuple[float, float] | None:
    """Percentile CI over the defined replicates; None when too few are defined."""
    valid = replicates[np.isfinite(replicates)]
    if valid.size < max(2, MIN_VALID_REPLICATE_FRACTION * replicates.size):
        return None
    lo, hi = np.quantile(valid, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


# ---------------------------------------------------------------------------
# metrics.json
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Settings:
    task: str
    class_names: list[str]
    threshold: float | None
    referral_rate: float
    n_boot: int
    seed: int
    bins: int
    sensitivity_target: float
    specificity_target: float
    alpha: float


@dataclass
class _Cohort:
    """Error-free cases of a run, checked; `labelled` marks those with a truth."""

    n_cases: int
    n_errors: int
    truth: np.ndarray  # float, NaN where unlabelled
    probs: np.ndarray  # binary: P(positive) per case; multiclass: (n, K)
    patient_ids: list[Any] | None
    scores: dict[str, np.ndarray]
    flagged: np.ndarray | None
    logits: np.ndarray | None  # dropout-off model logits, when the run stored them

    @property
    def labelled(self) -> np.ndarray:
        return np.isfinite(self.truth)


@dataclass
class _Labelled:
    """What every performance figure is computed on: labelled, error-free cases."""

    truth: np.ndarray  # int
    probs: np.ndarray
    units: ResamplingUnits
    scores: dict[str, np.ndarray]
    logits: np.ndarray | None

    @property
    def n(self) -> int:
        return int(self.truth.size)


def compute_metrics(
    predictions: pd.DataFrame,
    *,
    task: str = "binary",
    class_names: list[str],
    threshold: float = 0.5,
    referral_rate: float = 0.1,
    uncertainty_scores: Sequence[str] = DEFAULT_UNCERTAINTY_SCORES,
    n_boot: int = 1000,
    seed: int = 0,
    temperature: dict[str, Any] | None = None,
    bins: int = DEFAULT_BINS,
    sensitivity_target: float = 0.9,
    specificity_target: float = 0.9,
    alpha: float = 0.05,
    source: Any = None,
) -> dict[str, Any]:
    """The content of metrics.json for one run's predictions (JSON-ready: no NaN, no numpy).

    Binary decisions are p_mean >= threshold; multiclass decisions are the argmax
    of the prob_<class> columns. `source` (the predictions file) only names the
    file in error messages.
    """
    settings = _settings(task, class_names, threshold, referral_rate, n_boot, seed, bins,
                         sensitivity_target, specificity_target, alpha)
    cohort = _prepare(predictions, settings, uncertainty_scores, source)
    labelled = _labelled(cohort)
    result: dict[str, Any] = {
        "task": settings.task,
        "class_names": settings.class_names,
        "threshold": settings.threshold,
        "decision": "p_mean >= threshold" if settings.task == "binary" else "argmax of class probabilities",
        "ci_level": 1.0 - settings.alpha,
        "n_cases": cohort.n_cases,
        "n_errors": cohort.n_errors,
        "n_labelled": labelled.n,
    }
    correct = _correct(labelled, settings)
    replicates, bootstrap_note = _run_bootstrap(labelled, correct, settings)
    result["bootstrap"] = {
        "n_boot": settings.n_boot, "seed": settings.seed, "unit": labelled.units.kind,
        "n_units": labelled.units.n_units, "method": "percentile",
        **({"note": bootstrap_note} if bootstrap_note else {}),
    }
    boot = _BootstrapLookup(replicates, settings.alpha, labelled.units.kind, bootstrap_note)
    if settings.task == "binary":
        result.update(_binary_sections(cohort, labelled, settings, boot))
    else:
        result.update(_multiclass_sections(labelled, settings, boot))
    result["selective"] = _selective_section(cohort, labelled, correct, settings, boot)
    if temperature is not None:
        result["calibration"] = _calibration_section(labelled, temperature, settings)
    return to_jsonable(result)


def _settings(task: str, class_names: list[str], threshold: float, referral_rate: float, n_boot: int,
              seed: int, bins: int, sensitivity_target: float, specificity_target: float,
              alpha: float) -> _Settings:
    if task not in ("binary", "multiclass"):
        raise BsxError(f"unknown task '{task}'", fix="use 'binary' or 'multiclass'")
    names = [str(c) for c in class_names]
    if task == "binary" and len(names) != 2:
        raise BsxError(f"a binary task needs 2 class names, got {len(names)}",
                       fix="give [negative, positive], e.g. ['benign', 'malignant']")
    if task == "multiclass" and len(names) < 2:
        raise BsxError("a multiclass task needs at least 2 class names", fix="list every class in order")
    if task == "binary" and not 0.0 <= threshold <= 1.0:
        raise BsxError(f"threshold {threshold} is outside [0, 1]", fix="give a probability threshold")
    if not 0.0 <= referral_rate < 1.0:
        raise BsxError(f"referral rate {referral_rate} is outside [0, 1)", fix="e.g. --referral-rate 0.1")
    if n_boot < 0 or bins < 1:
        raise BsxError("n_boot must be >= 0 and bins >= 1", fix="e.g. n_boot=1000, bins=15")
    for target in (sensitivity_target, specificity_target):
        if not 0.0 < target <= 1.0:
            raise BsxError(f"operating-point target {target} is outside (0, 1]", fix="e.g. 0.9")
    _z(alpha)
    return _Settings(task, names, float(threshold) if task == "binary" else None, float(referral_rate),
                     int(n_boot), int(seed), int(bins), float(sensitivity_target),
                     float(specificity_target), float(alpha))


def _error_mask(frame: pd.DataFrame) -> np.ndarray:
    if "error" not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    error = frame["error"]
    present = error.notna().to_numpy()
    text = error.astype(object).where(error.notna(), "").astype(str).str.strip()
    return present & (text != "").to_numpy()


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], source: Any) -> None:
    for column in columns:
        if column not in frame.columns:
            raise BsxError(f"predictions have no '{column}' column", path=source, column=column,
                           fix="the run is incomplete: rerun `bsx validate` with --overwrite")


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)


def _reject_rows(bad: np.ndarray, frame_rows: np.ndarray, frame: pd.DataFrame, message: str,
                 column: str, fix: str, source: Any) -> None:
    if bad.any():
        first = int(frame_rows[np.flatnonzero(bad)[0]])
        case = frame["case_id"].iloc[first] if "case_id" in frame.columns else first
        raise BsxError(f"{message} for {int(bad.sum())} case(s), first case '{case}'",
                       path=source, row=first, column=column, fix=fix)


def _prepare(frame: pd.DataFrame, settings: _Settings, score_names: Sequence[str], source: Any) -> _Cohort:
    prob_columns = [f"prob_{c}" for c in settings.class_names]
    needed = ["case_id", "truth"] + (["p_mean"] if settings.task == "binary" else prob_columns)
    _require_columns(frame, needed, source)
    errors = _error_mask(frame)
    ok_rows = np.flatnonzero(~errors)
    ok = frame.iloc[ok_rows].reset_index(drop=True)
    damaged = "the run is damaged: rerun `bsx validate` with --overwrite"

    truth = _numeric(ok, "truth")
    _reject_rows(ok["truth"].notna().to_numpy() & np.isnan(truth), ok_rows, frame,
                 "truth is not a number (a class index, or empty when unlabelled)", "truth",
                 "store class indices in truth; leave it empty for unlabelled cases", source)
    if settings.task == "binary":
        probs = _numeric(ok, "p_mean")
        _reject_rows(~np.isfinite(probs) | (probs < 0) | (probs > 1), ok_rows, frame,
                     "p_mean is missing or outside [0, 1]", "p_mean", damaged, source)
        bad_truth = np.isfinite(truth) & (truth != 0) & (truth != 1)
        truth_fix = "binary truth must be 0, 1 or empty (unlabelled)"
    else:
        probs = np.column_stack([_numeric(ok, c) for c in prob_columns]) if len(ok) else \
            np.zeros((0, len(prob_columns)))
        bad_prob = ~np.isfinite(probs).all(axis=1) | (probs < 0).any(axis=1) | (probs > 1).any(axis=1) \
            | (np.abs(probs.sum(axis=1) - 1.0) > 1e-3)
        _reject_rows(bad_prob, ok_rows, frame, "class probabilities are missing, outside [0, 1] or do not sum to 1",
                     prob_columns[0], damaged, source)
        k = len(settings.class_names)
        bad_truth = np.isfinite(truth) & ((truth != np.round(truth)) | (truth < 0) | (truth >= k))
        truth_fix = f"multiclass truth must be a class index 0..{k - 1} or empty (unlabelled)"
    _reject_rows(bad_truth, ok_rows, frame, "truth is not a valid label", "truth", truth_fix, source)

    scores = selective.uncertainty_scores(ok, list(score_names), probs, source=source)
    flagged = None
    if "flagged" in ok.columns and ok["flagged"].notna().all():
        flagged = ok["flagged"].astype(bool).to_numpy()
    patient_ids = ok["patient_id"].tolist() if "patient_id" in ok.columns else None
    return _Cohort(len(frame), int(errors.sum()), truth, probs, patient_ids, scores, flagged,
                   _stored_logits(ok, ok_rows, frame, settings, source))


def _stored_logits(ok: pd.DataFrame, ok_rows: np.ndarray, frame: pd.DataFrame, settings: _Settings,
                   source: Any) -> np.ndarray | None:
    """The `logit` (binary) or `logit_<class>` columns, which temperature scaling is fitted on."""
    columns = ["logit"] if settings.task == "binary" else [f"logit_{c}" for c in settings.class_names]
    if not all(column in ok.columns for column in columns):
        return None
    logits = np.column_stack([_numeric(ok, column) for column in columns]) if len(ok) else \
        np.zeros((0, len(columns)))
    _reject_rows(~np.isfinite(logits).all(axis=1), ok_rows, frame, "model logits are missing or not finite",
                 columns[0], "the run is damaged: rerun `bsx validate` with --overwrite", source)
    return logits[:, 0] if settings.task == "binary" else logits


def _labelled(cohort: _Cohort) -> _Labelled:
    mask = cohort.labelled
    ids = None if cohort.patient_ids is None else [pid for pid, keep in zip(cohort.patient_ids, mask) if keep]
    return _Labelled(
        truth=cohort.truth[mask].astype(int),
        probs=cohort.probs[mask],
        units=resampling_units(ids, int(mask.sum())),
        scores={name: values[mask] for name, values in cohort.scores.items()},
        logits=None if cohort.logits is None else cohort.logits[mask],
    )


def _decisions(probs: np.ndarray, settings: _Settings) -> np.ndarray:
    if settings.task == "binary":
        return (probs >= settings.threshold).astype(int)
    return probs.argmax(axis=1) if probs.size else np.zeros(0, dtype=int)


def _correct(labelled: _Labelled, settings: _Settings) -> np.ndarray:
    return _decisions(labelled.probs, settings) == labelled.truth


class _BootstrapLookup:
    """Turns a point estimate plus its replicates into an Estimate."""

    def __init__(self, replicates: dict[str, np.ndarray], alpha: float, unit: str, note: str | None) -> None:
        self.replicates, self.alpha, self.unit, self.note = replicates, alpha, unit, note

    def estimate(self, name: str, value: float | None, reason: str, **details: Any) -> Estimate:
        if value is None or not math.isfinite(float(value)):
            return not_estimable("bootstrap", reason, **details)
        replicates = self.replicates.get(name)
        if replicates is None:
            why = self.note or "no bootstrap replicates for this figure"
            return Estimate(value, None, "bootstrap", note=f"ci not estimable: {why}", details=details)
        ci = percentile_interval(replicates, self.alpha)
        defined = int(np.isfinite(replicates).sum())
        info = {**details, "n_boot": defined, "unit": self.unit}
        if ci is None:
            return Estimate(value, None, "bootstrap", details=info,
                            note=f"ci not estimable: only {defined} of {replicates.size} replicates defined")
        return Estimate(value, ci, "bootstrap", details=info)


def _run_bootstrap(labelled: _Labelled, correct: np.ndarray,
                   settings: _Settings) -> tuple[dict[str, np.ndarray], str | None]:
    if settings.n_boot == 0:
        return {}, "bootstrap disabled (n_boot = 0)"
    if labelled.units.n_units < 2:
        return {}, f"needs at least 2 labelled {labelled.units.kind}s, got {labelled.units.n_units}"
    if settings.task == "binary":
        task_statistic = _binary_statistic(labelled, settings)
    else:
        task_statistic = _multiclass_statistic(labelled, settings)

    def statistic(weights: np.ndarray) -> dict[str, np.ndarray]:
        out = task_statistic(weights)
        for name, scores in labelled.scores.items():
            out[f"aurc:{name}"] = selective.weighted_aurc(weights, scores, correct)
        return out

    return bootstrap_replicates(labelled.units, statistic, settings.n_boot, settings.seed), None


def _calibration_statistics(weights: np.ndarray, p: np.ndarray, outcome: np.ndarray, squared_error: np.ndarray,
                            bins: int) -> dict[str, np.ndarray]:
    return {
        "brier": weights @ squared_error / weights.sum(axis=1),
        "ece": weighted_ece(weights, p, outcome, bins, "equal_width"),
        "ece_equal_mass": weighted_ece(weights, p, outcome, bins, "equal_mass"),
    }


def _binary_statistic(labelled: _Labelled, settings: _Settings) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    y = labelled.truth.astype(bool)
    p = labelled.probs
    called = p >= settings.threshold
    cells = np.column_stack([y & called, ~y & called, ~y & ~called, y & ~called]).astype(float)

    def statistic(weights: np.ndarray) -> dict[str, np.ndarray]:
        out = _calibration_statistics(weights, p, y, (p - y) ** 2, settings.bins)
        tp, fp, tn, fn = (weights @ cells).T
        with np.errstate(divide="ignore", invalid="ignore"):
            out["balanced_accuracy"] = (tp / (tp + fn) + tn / (tn + fp)) / 2.0
        fpr, tpr, valid = weighted_roc(weights, y, p)
        out["sens_at_spec"] = _rows_sens_at_spec(fpr, tpr, valid, settings.specificity_target)
        out["spec_at_sens"] = _rows_spec_at_sens(fpr, tpr, valid, settings.sensitivity_target)
        return out

    return statistic


def _no_labels_reason(labelled: _Labelled) -> str | None:
    return "no labelled cases (unlabelled cohort)" if labelled.n == 0 else None


def _roc_json(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    fpr, tpr, thresholds = roc_points(y, p)
    keep = curve_subsample(fpr, tpr)
    return {
        "fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist(),
        "thresholds": [None if not math.isfinite(t) else float(t) for t in thresholds[keep]],
        "n_points_full": int(fpr.size),
        "thresholds_note": "a case is positive when p >= threshold; null = above every score",
    }


def _empty_curve(reason: str) -> dict[str, Any]:
    return {"fpr": [], "tpr": [], "thresholds": [], "note": f"not estimable: {reason}"}


def _reliability_json(p: np.ndarray, outcome: np.ndarray, settings: _Settings, reason: str | None) -> dict[str, Any]:
    if reason:
        return {"equal_width": [], "equal_mass": [], "bins": settings.bins, "note": f"not estimable: {reason}"}
    return {strategy: reliability_bins(p, outcome, settings.bins, strategy) for strategy in BIN_STRATEGIES} | {
        "bins": settings.bins}


def _calibration_estimates(boot: _BootstrapLookup, p: np.ndarray, outcome: np.ndarray, brier: float | None,
                           settings: _Settings, reason: str | None, **brier_details: Any) -> dict[str, Estimate]:
    reason = reason or ""
    has_data = not reason
    return {
        "brier": boot.estimate("brier", brier, reason, **brier_details),
        "ece": boot.estimate("ece", expected_calibration_error(p, outcome, settings.bins) if has_data else None,
                             reason, bins=settings.bins, strategy="equal_width"),
        "ece_equal_mass": boot.estimate(
            "ece_equal_mass",
            expected_calibration_error(p, outcome, settings.bins, "equal_mass") if has_data else None,
            reason, bins=settings.bins, strategy="equal_mass"),
    }


def _binary_sections(cohort: _Cohort, labelled: _Labelled, settings: _Settings,
                     boot: _BootstrapLookup) -> dict[str, Any]:
    y = labelled.truth.astype(bool)
    p = labelled.probs
    called = p >= settings.threshold
    tp, fp = int(np.sum(y & called)), int(np.sum(~y & called))
    tn, fn = int(np.sum(~y & ~called)), int(np.sum(y & ~called))
    n_pos, n_neg = tp + fn, tn + fp
    no_labels = _no_labels_reason(labelled)
    one_class = no_labels or (
        None if n_pos and n_neg else "only one class among the labelled cases (needs positives and negatives)")
    alpha = settings.alpha

    overall: dict[str, Estimate] = {
        "auc": auc_ci(y, p, alpha) if not no_labels else not_estimable("delong", no_labels),
        "sensitivity": proportion(tp, n_pos, alpha, empty_reason=no_labels or "no positive labelled cases"),
        "specificity": proportion(tn, n_neg, alpha, empty_reason=no_labels or "no negative labelled cases"),
        "ppv": proportion(tp, tp + fp, alpha,
                          empty_reason=no_labels or "no labelled case is called positive at the threshold"),
        "npv": proportion(tn, tn + fn, alpha,
                          empty_reason=no_labels or "no labelled case is called negative at the threshold"),
        "accuracy": proportion(tp + tn, labelled.n, alpha, empty_reason=no_labels or "no labelled cases"),
        "balanced_accuracy": boot.estimate(
            "balanced_accuracy", None if one_class else (tp / n_pos + tn / n_neg) / 2.0, one_class or ""),
    }
    overall |= _calibration_estimates(boot, p, y, None if no_labels else brier_score(p, y), settings, no_labels)
    if one_class:
        overall["sens_at_spec"] = not_estimable("bootstrap", one_class, at=settings.specificity_target)
        overall["spec_at_sens"] = not_estimable("bootstrap", one_class, at=settings.sensitivity_target)
    else:
        sens, sens_threshold = sensitivity_at_specificity(y, p, settings.specificity_target)
        spec, spec_threshold = specificity_at_sensitivity(y, p, settings.sensitivity_target)
        overall["sens_at_spec"] = boot.estimate("sens_at_spec", sens, "", at=settings.specificity_target,
                                                threshold=_finite_or_none(sens_threshold))
        overall["spec_at_sens"] = boot.estimate("spec_at_sens", spec, "", at=settings.sensitivity_target,
                                                threshold=_finite_or_none(spec_threshold))
    confusion: dict[str, Any] = {"tp": tp, "fp": fp, "tn": tn, "fn": fn}
    if no_labels:
        confusion = {key: None for key in confusion} | {"note": f"not estimable: {no_labels}"}
    return {
        "n_positive": n_pos if not no_labels else None,
        "prevalence": n_pos / labelled.n if labelled.n else None,
        "n_predicted_positive": int(np.sum(cohort.probs >= settings.threshold)),
        "overall": {name: estimate.to_dict() for name, estimate in overall.items()},
        "roc": _roc_json(y, p) if not one_class else _empty_curve(one_class),
        "reliability": _reliability_json(p, y, settings, no_labels),
        "confusion": confusion,
    }


def _confusion_matrix(weights: np.ndarray, cell_onehot: np.ndarray, k: int) -> np.ndarray:
    return (weights @ cell_onehot).reshape(weights.shape[0], k, k)


def _per_class_rates(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recall and specificity per class from confusion matrices (rows truth, columns predicted)."""
    diag = np.diagonal(matrix, axis1=-2, axis2=-1)
    rows, cols = matrix.sum(axis=-1), matrix.sum(axis=-2)
    total = matrix.sum(axis=(-2, -1))[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        return diag / rows, (total - rows - cols + diag) / (total - rows)


def _multiclass_statistic(labelled: _Labelled, settings: _Settings) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    k = len(settings.class_names)
    probs, truth = labelled.probs, labelled.truth
    pred = probs.argmax(axis=1)
    onehot_truth = np.eye(k)[truth]
    cells = np.eye(k * k)[truth * k + pred]
    confidence, correct = top_label(probs, truth)
    present = np.bincount(truth, minlength=k) > 0
    auc_classes = [c for c in range(k) if _auc_not_estimable_reason(truth == c) is None]

    def statistic(weights: np.ndarray) -> dict[str, np.ndarray]:
        out = _calibration_statistics(weights, confidence, correct,
                                      np.sum((probs - onehot_truth) ** 2, axis=1), settings.bins)
        recall, specificity = _per_class_rates(_confusion_matrix(weights, cells, k))
        out["balanced_accuracy"] = recall[:, present].mean(axis=1)
        out["specificity_macro"] = specificity[:, present].mean(axis=1)
        if auc_classes:
            out["auc_macro"] = np.mean([weighted_auc(weights, truth == c, probs[:, c]) for c in auc_classes], axis=0)
        return out

    return statistic


def _multiclass_sections(labelled: _Labelled, settings: _Settings, boot: _BootstrapLookup) -> dict[str, Any]:
    names, k, alpha = settings.class_names, len(settings.class_names), settings.alpha
    truth, probs = labelled.truth, labelled.probs
    pred = _decisions(probs, settings)
    no_labels = _no_labels_reason(labelled)
    matrix = np.zeros((k, k), dtype=int)
    np.add.at(matrix, (truth, pred), 1)
    support = matrix.sum(axis=1)
    called = matrix.sum(axis=0)
    per_class: dict[str, Any] = {}
    auc_values = {}
    for c, name in enumerate(names):
        y_c = truth == c
        auc = auc_ci(y_c, probs[:, c], alpha) if not no_labels else not_estimable("delong", no_labels)
        if auc.value is not None:
            auc_values[name] = auc.value
        tp = int(matrix[c, c])
        negatives = labelled.n - int(support[c])
        tn = negatives - (int(called[c]) - tp)
        one_class = _auc_not_estimable_reason(y_c) if not no_labels else no_labels
        per_class[name] = {
            "n_positive": int(support[c]),
            "auc": auc.to_dict(),
            "sensitivity": proportion(tp, support[c], alpha, empty_reason=no_labels or f"no labelled '{name}' cases")
            .to_dict(),
            "specificity": proportion(tn, negatives, alpha, empty_reason=no_labels or f"no labelled non-'{name}' cases")
            .to_dict(),
            "ppv": proportion(tp, called[c], alpha, empty_reason=no_labels or f"no labelled case predicted '{name}'")
            .to_dict(),
            "roc": _roc_json(y_c, probs[:, c]) if labelled.n and 0 < support[c] < labelled.n
            else _empty_curve(one_class or "needs positives and negatives"),
        }
    missing_auc = [name for name in names if name not in auc_values]
    macro_note = {"classes": list(auc_values), "excluded": missing_auc} if missing_auc and auc_values else {}
    present = support > 0
    recall = matrix.diagonal()[present] / support[present] if not no_labels else None
    negatives = labelled.n - support
    spec = (negatives - (called - matrix.diagonal()))[present] / negatives[present] \
        if not no_labels and np.all(negatives[present] > 0) else None
    confidence, correct = top_label(probs, truth) if labelled.n else (np.zeros(0), np.zeros(0, dtype=bool))
    overall: dict[str, Estimate] = {
        "auc": boot.estimate("auc_macro", float(np.mean(list(auc_values.values()))) if auc_values else None,
                             no_labels or "no class has a DeLong-estimable one-vs-rest AUC",
                             average="macro_ovr", **macro_note),
        "accuracy": proportion(int(matrix.trace()), labelled.n, alpha, empty_reason=no_labels or "no labelled cases"),
        "balanced_accuracy": boot.estimate("balanced_accuracy", None if recall is None else float(recall.mean()),
                                           no_labels or ""),
        "specificity_macro": boot.estimate("specificity_macro", None if spec is None else float(spec.mean()),
                                           no_labels or "only one class among the labelled cases"),
    }
    overall |= _calibration_estimates(boot, confidence, correct,
                                      None if no_labels else brier_score(probs, truth), settings, no_labels,
                                      form="multiclass_sum")
    for key in ("ece", "ece_equal_mass"):
        overall[key].details["of"] = "top_label"
    confusion: dict[str, Any] = {"labels": names, "matrix": matrix.tolist(), "rows": "truth", "columns": "predicted"}
    if no_labels:
        confusion |= {"matrix": None, "note": f"not estimable: {no_labels}"}
    return {
        "n_positive": None,
        "class_counts": {name: int(support[c]) for c, name in enumerate(names)},
        "prevalence": {name: (int(support[c]) / labelled.n if labelled.n else None) for c, name in enumerate(names)},
        "overall": {name: estimate.to_dict() for name, estimate in overall.items()},
        "roc": {name: per_class[name]["roc"] for name in names},
        "reliability": _reliability_json(confidence, correct, settings, no_labels) | {"of": "top_label"},
        "confusion": confusion,
        "per_class": per_class,
    }


def _retained_metrics(labelled: _Labelled, keep: np.ndarray, settings: _Settings) -> dict[str, Any]:
    """Headline metrics on the cases the model keeps (keep is over labelled cases)."""
    truth, probs = labelled.truth[keep], labelled.probs[keep]
    alpha = settings.alpha
    empty = "no labelled cases retained" if labelled.n else "no labelled cases (unlabelled cohort)"
    pred = _decisions(probs, settings)
    out: dict[str, Any] = {
        "n": int(truth.size),
        "accuracy": proportion(int(np.sum(pred == truth)), truth.size, alpha, empty_reason=empty).to_dict(),
    }
    if settings.task == "binary":
        y = truth.astype(bool)
        called = pred.astype(bool)
        out["auc"] = (auc_ci(y, probs, alpha) if truth.size else not_estimable("delong", empty)).to_dict()
        no_positive = empty if not truth.size else "no positive cases retained"
        no_negative = empty if not truth.size else "no negative cases retained"
        out["sensitivity"] = proportion(int(np.sum(y & called)), int(y.sum()), alpha,
                                        empty_reason=no_positive).to_dict()
        out["specificity"] = proportion(int(np.sum(~y & ~called)), int((~y).sum()), alpha,
                                        empty_reason=no_negative).to_dict()
    else:
        if truth.size:
            recall = [np.mean(pred[truth == c] == c) for c in np.unique(truth)]
            out["balanced_accuracy"] = Estimate(float(np.mean(recall)), None, "point").to_dict()
        else:
            out["balanced_accuracy"] = not_estimable("point", empty).to_dict()
    return out


def _selective_section(cohort: _Cohort, labelled: _Labelled, correct: np.ndarray, settings: _Settings,
                       boot: _BootstrapLookup) -> dict[str, Any]:
    no_labels = _no_labels_reason(labelled)
    everything = np.ones(labelled.n, dtype=bool)
    labelled_mask = cohort.labelled
    section: dict[str, Any] = {
        "referral_rate": settings.referral_rate,
        "risk": "error rate on retained labelled cases",
        "all": _retained_metrics(labelled, everything, settings),
        "scores": {},
    }
    for name, scores in cohort.scores.items():
        threshold = selective.referral_threshold(scores, settings.referral_rate)
        refer = selective.referred(scores, threshold)
        entry: dict[str, Any] = {
            "description": selective.SCORE_DESCRIPTIONS[name],
            "direction": "higher = more uncertain",
        }
        if no_labels:
            entry |= {"aurc": not_estimable("bootstrap", no_labels).to_dict(), "aurc_optimal": None,
                      "aurc_random": None, "curve": {"coverage": [], "risk": [], "threshold": [],
                                                     "note": f"not estimable: {no_labels}"}}
        else:
            curve = selective.risk_coverage(labelled.scores[name], correct)
            keep = curve_subsample(curve.coverage, curve.risk)
            entry |= {
                "aurc": boot.estimate(f"aurc:{name}", curve.aurc, "").to_dict(),
                "aurc_optimal": selective.optimal_aurc(correct),
                "aurc_random": float(1.0 - correct.mean()),
                "curve": {"coverage": curve.coverage[keep].tolist(), "risk": curve.risk[keep].tolist(),
                          "threshold": curve.threshold[keep].tolist(), "n_points_full": int(curve.coverage.size)},
            }
        entry["referral"] = {
            "threshold": _finite_or_none(threshold),
            "n_referred": int(refer.sum()),
            "coverage": float(1.0 - refer.mean()) if refer.size else None,
            "retained": _retained_metrics(labelled, ~refer[labelled_mask], settings),
        }
        section["scores"][name] = entry
    if cohort.flagged is not None:
        section["flagged"] = {
            "n_flagged": int(cohort.flagged.sum()),
            "coverage": float(1.0 - cohort.flagged.mean()) if cohort.flagged.size else None,
            "retained": _retained_metrics(labelled, ~cohort.flagged[labelled_mask], settings),
        }
    return section


def _calibration_section(labelled: _Labelled, temperature: dict[str, Any], settings: _Settings) -> dict[str, Any]:
    # Imported here: engine.calibration builds on this module's ECE and Brier score.
    from engine.calibration import logits_from_probabilities, temperature_report

    value = temperature.get("temperature") if isinstance(temperature, dict) else None
    try:
        t = float(value)
    except (TypeError, ValueError):
        t = float("nan")
    if not (math.isfinite(t) and t > 0):
        raise BsxError(f"temperature {value!r} is not a positive number",
                       fix="refit with `bsx calibrate`, or remove the stored calibration")
    fitted_on = temperature.get("fitted_on")
    if labelled.n == 0:
        return {"temperature": t, "fitted_on": fitted_on, "evaluated_on": 0, "before": None, "after": None,
                "note": "not estimable: no labelled cases (unlabelled cohort)"}
    if labelled.logits is not None:
        logits, applied_to = labelled.logits, "stored model logits (dropout off)"
    else:
        logits, applied_to = logits_from_probabilities(labelled.probs), "log of the MC-mean probabilities"
    report = temperature_report(logits, labelled.truth, t, fitted_on=fitted_on, bins=settings.bins)
    return report | {"evaluated_on": labelled.n, "applied_to": applied_to}
