"""Selective prediction: what the model achieves when it refers its most uncertain cases.

Every score follows one convention, higher = more uncertain, so predictive
entropy, mutual information, the MC standard deviation and the max probability
(used as 1 - max prob) all plug into the same risk-coverage machinery.

Ties in a score are kept together (nobody can refer half of a tie), so curves
are evaluated only where the score changes and never depend on the order in
which tied cases happen to be stored. Without ties the area under the curve is
exactly the usual AURC, the mean risk over coverages 1/n, 2/n, ..., 1.

This module holds the primitives; `engine.metrics` puts them, with confidence
intervals and metrics on the retained cases, into metrics.json.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from cohorts.errors import BsxError

SCORE_NAMES = ("entropy", "mutual_info", "p_std", "max_prob", "expected_entropy")
SCORE_DESCRIPTIONS = {
    "entropy": "predictive entropy of the MC-mean probabilities",
    "mutual_info": "mutual information (epistemic, BALD)",
    "p_std": "standard deviation of the MC samples",
    "max_prob": "1 - probability of the predicted class",
    "expected_entropy": "expected entropy of the MC samples (aleatoric)",
}


def max_prob_uncertainty(probs: np.ndarray) -> np.ndarray:
    """1 - max probability: binary input is P(positive) per case, multiclass an (n, K) matrix."""
    probs = np.asarray(probs, dtype=float)
    top = np.maximum(probs, 1.0 - probs) if probs.ndim == 1 else probs.max(axis=1)
    return 1.0 - top


def uncertainty_scores(
    frame: pd.DataFrame, names: Sequence[str], probs: np.ndarray, *, source: object = None
) -> dict[str, np.ndarray]:
    """The requested scores for the rows of `frame` (higher = more uncertain), checked finite."""
    scores: dict[str, np.ndarray] = {}
    for name in names:
        if name not in SCORE_NAMES:
            raise BsxError(
                f"unknown uncertainty score '{name}'",
                fix=f"choose from {', '.join(SCORE_NAMES)}",
            )
        if name == "max_prob":
            values = max_prob_uncertainty(probs)
        else:
            if name not in frame.columns:
                raise BsxError(
                    f"predictions have no '{name}' column",
                    path=source, column=name,
                    fix="the run is incomplete: rerun `bsx validate` with --overwrite",
                )
            values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise BsxError(
                f"uncertainty score '{name}' is missing or not finite for {bad.size} case(s)",
                path=source, row=int(bad[0]), column=name,
                fix="the run is damaged: rerun `bsx validate` with --overwrite",
            )
        scores[name] = values
    return scores


def referral_threshold(scores: np.ndarray, rate: float) -> float:
    """Score at and above which cases are referred, so that at least `rate` of them are.

    The ceil(rate * n) most uncertain cases are referred; cases tied with the last
    of them are referred too. Rate 0 gives +inf (refer nobody).
    """
    scores = np.asarray(scores, dtype=float).ravel()
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"referral rate must be in [0, 1], got {rate}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("uncertainty scores must be finite")
    n_refer = int(math.ceil(rate * scores.size - 1e-9))
    if n_refer <= 0:
        return math.inf
    return float(np.partition(scores, scores.size - n_refer)[scores.size - n_refer])


def referred(scores: np.ndarray, threshold: float) -> np.ndarray:
    """The referral decision that `referral_threshold` was chosen for (also the `flagged` column)."""
    return np.asarray(scores, dtype=float) >= threshold


@dataclass(frozen=True)
class RiskCoverage:
    """Risk (error rate on retained cases) when retaining cases with score <= threshold."""

    coverage: np.ndarray
    risk: np.ndarray
    threshold: np.ndarray
    aurc: float


def _tie_group_ends(sorted_values: np.ndarray) -> np.ndarray:
    return np.r_[np.flatnonzero(np.diff(sorted_values)), sorted_values.size - 1]


def _weighted_curve(
    weights: np.ndarray, scores: np.ndarray, correct: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coverage and risk per replicate row of case weights, at each distinct score."""
    order = np.argsort(scores, kind="stable")
    ends = _tie_group_ends(scores[order])
    w = np.asarray(weights, dtype=float)[:, order]
    kept = np.cumsum(w, axis=1)[:, ends]
    errors = np.cumsum(w * ~correct[order], axis=1)[:, ends]
    with np.errstate(divide="ignore", invalid="ignore"):
        coverage = kept / kept[:, -1:]
        risk = np.where(kept > 0, errors / kept, 0.0)
    return coverage, risk, scores[order][ends]


def weighted_aurc(weights: np.ndarray, scores: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """AURC per row of case weights (bootstrap replicates): the step integral of risk over coverage."""
    scores, correct = _check(scores, correct)
    coverage, risk, _ = _weighted_curve(np.atleast_2d(weights), scores, correct)
    widths = np.diff(coverage, axis=1, prepend=0.0)
    return (widths * risk).sum(axis=1)


def risk_coverage(scores: np.ndarray, correct: np.ndarray) -> RiskCoverage:
    """The risk-coverage curve from the most certain case to all cases, and its area."""
    scores, correct = _check(scores, correct)
    if scores.size == 0:
        raise ValueError("risk-coverage needs at least one labelled case")
    coverage, risk, threshold = _weighted_curve(np.ones((1, scores.size)), scores, correct)
    aurc = float((np.diff(coverage[0], prepend=0.0) * risk[0]).sum())
    return RiskCoverage(coverage[0], risk[0], threshold, aurc)


def optimal_aurc(correct: np.ndarray) -> float:
    """AURC of an oracle score that refers every error first: the floor for this error rate."""
    correct = np.asarray(correct, dtype=bool).ravel()
    n = correct.size
    if n == 0:
        raise ValueError("optimal AURC needs at least one labelled case")
    n_correct = int(correct.sum())
    retained = np.arange(1, n + 1)
    return float(np.mean(np.maximum(0, retained - n_correct) / retained))


def _check(scores: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=float).ravel()
    correct = np.asarray(correct, dtype=bool).ravel()
    if scores.shape != correct.shape:
        raise ValueError("scores and correct must have the same length")
    if not np.all(np.isfinite(scores)):
        raise ValueError("uncertainty scores must be finite")
    return scores, correct
