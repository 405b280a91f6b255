"""Operating points and inter-reader agreement: what an AUC does not show.

Sensitivity and specificity at a decision threshold (Wilson intervals),
Cohen's kappa for every reader pair, Fleiss' kappa over all readers (both on
categories: the raw ratings when they are a short ordinal scale, else the
decision at the threshold), and the two-way random, absolute-agreement,
single-rater ICC(2,1) of Shrout and Fleiss for the raw ratings.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import stats

MAX_CATEGORIES = 10


@dataclass(frozen=True)
class OperatingPoint:
    reader: str
    modality: str
    threshold: float
    sensitivity: float
    sensitivity_ci: tuple[float, float]
    specificity: float
    specificity_ci: tuple[float, float]
    true_positives: int
    false_negatives: int
    true_negatives: int
    false_positives: int


@dataclass(frozen=True)
class Agreement:
    modality: str
    basis: str
    cohen_kappa: dict[tuple[str, str], float]
    fleiss_kappa: float
    icc: float


def wilson_interval(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval: stays inside [0, 1] and behaves at 0 and n successes."""
    if n == 0:
        return (float("nan"), float("nan"))
    z = stats.norm.ppf(1 - alpha / 2)
    phat = successes / n
    centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


def operating_points(ratings: np.ndarray, truth: np.ndarray, threshold: float,
                     modalities: list[str], readers: list[str]) -> list[OperatingPoint]:
    """A rating at or above `threshold` counts as a positive call."""
    positive = np.asarray(ratings) >= threshold
    truth = np.asarray(truth).astype(bool)
    tp = (positive & truth).sum(axis=-1)
    fn = (~positive & truth).sum(axis=-1)
    tn = (~positive & ~truth).sum(axis=-1)
    fp = (positive & ~truth).sum(axis=-1)
    points = []
    for i, m in enumerate(modalities):
        for j, r in enumerate(readers):
            a, b, c, d = int(tp[i, j]), int(fn[i, j]), int(tn[i, j]), int(fp[i, j])
            points.append(OperatingPoint(r, m, float(threshold), a / (a + b), wilson_interval(a, a + b),
                                         c / (c + d), wilson_interval(c, c + d), a, b, c, d))
    return points


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Unweighted Cohen's kappa of two raters' category labels."""
    a, b = np.asarray(a), np.asarray(b)
    labels, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
    k = labels.size
    ca, cb = codes[: a.size], codes[a.size:]
    table = np.zeros((k, k))
    np.add.at(table, (ca, cb), 1)
    table /= table.sum()
    observed = np.trace(table)
    expected = float(table.sum(axis=1) @ table.sum(axis=0))
    return float((observed - expected) / (1 - expected)) if expected < 1 else float("nan")


def fleiss_kappa(labels: np.ndarray) -> float:
    """Fleiss' kappa of labels (raters, subjects)."""
    labels = np.asarray(labels)
    n_raters = labels.shape[0]
    _, codes = np.unique(labels, return_inverse=True)
    codes = codes.reshape(labels.shape)
    counts = np.stack([(codes == k).sum(axis=0) for k in range(codes.max() + 1)], axis=1)
    p_cat = counts.sum(axis=0) / counts.sum()
    p_subject = ((counts ** 2).sum(axis=1) - n_raters) / (n_raters * (n_raters - 1))
    expected = float((p_cat ** 2).sum())
    return float((p_subject.mean() - expected) / (1 - expected)) if expected < 1 else float("nan")


def icc_absolute_agreement(scores: np.ndarray) -> float:
    """ICC(2,1) of scores (subjects, raters): two-way random effects, absolute agreement."""
    x = np.asarray(scores, dtype=float)
    n, k = x.shape
    grand = x.mean()
    ms_rows = k * ((x.mean(axis=1) - grand) ** 2).sum() / (n - 1)
    ms_cols = n * ((x.mean(axis=0) - grand) ** 2).sum() / (k - 1)
    resid = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + grand
    ms_err = (resid ** 2).sum() / ((n - 1) * (k - 1))
    denom = ms_rows + (k - 1) * ms_err + k * (ms_cols - ms_err) / n
    return float((ms_rows - ms_err) / denom) if denom > 0 else float("nan")


def reader_agreement(ratings: np.ndarray, modalities: list[str], readers: list[str],
                     threshold: float | None = None) -> list[Agreement]:
    """Agreement per modality; needs at least two readers."""
    if len(readers) < 2:
        return []
    result = []
    for i, m in enumerate(modalities):
        x = np.asarray(ratings[i], dtype=float)
        if np.unique(x).size <= MAX_CATEGORIES:
            labels, basis = x, "ratings"
        elif threshold is not None:
            labels, basis = (x >= threshold).astype(int), f"rating >= {threshold:g}"
        else:
            labels, basis = None, "none (continuous ratings; give a threshold for kappa)"
        pairs = {}
        fleiss = float("nan")
        if labels is not None:
            pairs = {(readers[a], readers[b]): cohen_kappa(labels[a], labels[b])
                     for a, b in itertools.combinations(range(len(readers)), 2)}
            fleiss = fleiss_kappa(labels)
        result.append(Agreement(m, basis, pairs, fleiss, icc_absolute_agreement(x.T)))
    return result
