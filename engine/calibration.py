"""Temperature scaling: one scalar that softens (T > 1) or sharpens (T < 1) a model's probabilities.

Why temperature scaling: it has one parameter, so a few hundred labelled
calibration cases fit it without overfitting, and it never changes which
class is predicted (nor, for binary tasks, the AUC). It is fitted by
minimising the negative log-likelihood on a labelled calibration cohort.

A temperature is fitted and applied on the same kind of logits: the run stores
the dropout-off model logits (`logit`, `logit_<class>` columns), and runs without
them fall back to `logits_from_probabilities` (log-odds of p_mean for binary
runs, log class probabilities for multiclass runs).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import optimize, special

from cohorts.errors import BsxError
from engine.metrics import DEFAULT_BINS, brier_score, expected_calibration_error, top_label

DEFAULT_BOUNDS = (0.05, 20.0)
_PROB_EPS = 1e-7


def logits_from_probabilities(probs: Any, eps: float = _PROB_EPS) -> np.ndarray:
    """Binary: log-odds of P(positive); multiclass (n, K): log probabilities (softmax-invariant)."""
    probs = np.clip(np.asarray(probs, dtype=float), eps, 1.0 - eps)
    return special.logit(probs) if probs.ndim == 1 else np.log(probs)


def apply_temperature(logits: Any, temperature: float) -> np.ndarray:
    """Probabilities after dividing the logits by the temperature (binary: P(positive))."""
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature}")
    scaled = np.asarray(logits, dtype=float) / temperature
    return special.expit(scaled) if scaled.ndim == 1 else special.softmax(scaled, axis=1)


def negative_log_likelihood(logits: Any, labels: Any, temperature: float = 1.0) -> float:
    """Mean NLL of the labels under the tempered logits, computed stably from logits."""
    scaled = np.asarray(logits, dtype=float) / temperature
    labels = np.asarray(labels)
    if scaled.ndim == 1:
        return float(np.mean(np.logaddexp(0.0, scaled) - labels * scaled))
    picked = scaled[np.arange(scaled.shape[0]), labels.astype(int)]
    return float(np.mean(special.logsumexp(scaled, axis=1) - picked))


def _checked(logits: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    logits = np.asarray(logits, dtype=float)
    labels = np.asarray(labels, dtype=float).ravel()
    fix = "use a labelled calibration cohort with finite model outputs"
    if logits.ndim not in (1, 2) or logits.shape[0] != labels.size:
        raise BsxError(f"calibration logits {logits.shape} do not match {labels.size} labels", fix=fix)
    if not np.all(np.isfinite(logits)):
        raise BsxError("calibration logits are not all finite", fix=fix)
    n_classes = 2 if logits.ndim == 1 else logits.shape[1]
    if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)) \
            or np.any(labels < 0) or np.any(labels >= n_classes):
        raise BsxError(f"calibration labels must be class indices 0..{n_classes - 1}", fix=fix)
    if np.unique(labels).size < 2:
        raise BsxError("the calibration set has labelled cases of only one class",
                       fix="a temperature needs cases of at least two classes: use a larger calibration cohort")
    return logits, labels.astype(int)


def fit_temperature(logits: Any, labels: Any, bounds: tuple[float, float] = DEFAULT_BOUNDS) -> float:
    """Temperature minimising the NLL, searched on log T within bounds (bounded Brent)."""
    logits, labels = _checked(logits, labels)
    result = optimize.minimize_scalar(
        lambda log_t: negative_log_likelihood(logits, labels, math.exp(log_t)),
        bounds=(math.log(bounds[0]), math.log(bounds[1])),
        method="bounded",
        options={"xatol": 1e-6},
    )
    return float(math.exp(result.x))


def _calibration_figures(probs: np.ndarray, labels: np.ndarray, logits: np.ndarray, temperature: float,
                         bins: int) -> dict[str, float]:
    confidence, outcome = (probs, labels) if probs.ndim == 1 else top_label(probs, labels)
    return {
        "ece": expected_calibration_error(confidence, outcome, bins),
        "brier": brier_score(probs, labels),
        "nll": negative_log_likelihood(logits, labels, temperature),
    }


def temperature_report(logits: Any, labels: Any, temperature: float, *, fitted_on: int | None = None,
                       bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """ECE (equal-width, top-label for multiclass), Brier and NLL before and after scaling."""
    logits, labels = _checked(logits, labels)
    return {
        "temperature": float(temperature),
        "fitted_on": fitted_on,
        "bins": bins,
        "before": _calibration_figures(apply_temperature(logits, 1.0), labels, logits, 1.0, bins),
        "after": _calibration_figures(apply_temperature(logits, temperature), labels, logits, temperature, bins),
    }


def fit_calibration(logits: Any, labels: Any, *, bounds: tuple[float, float] = DEFAULT_BOUNDS,
                    bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """Fit a temperature and report calibration on the fitting set; store the result with the run."""
    logits, labels = _checked(logits, labels)
    temperature = fit_temperature(logits, labels, bounds)
    at_bound = any(math.isclose(temperature, b, rel_tol=1e-3) for b in bounds)
    report = temperature_report(logits, labels, temperature, fitted_on=int(labels.size), bins=bins)
    return report | {"bounds": list(bounds), "at_bound": at_bound}
