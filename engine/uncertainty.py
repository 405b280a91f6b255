"""Uncertainty from MC Dropout samples (natural log throughout).

predictive entropy  H[E_t p_t]          total uncertainty
expected entropy    E_t H[p_t]          aleatoric
mutual information  H[E p] - E H[p]     epistemic (BALD)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = 1e-12


def _entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    return -(p * np.log(np.clip(p, EPS, 1.0))).sum(axis=axis)


def as_class_probs(samples: np.ndarray) -> np.ndarray:
    """(T, N) binary P(positive) -> (T, N, 2); (T, N, K) passes through."""
    if samples.ndim == 2:
        return np.stack([1.0 - samples, samples], axis=-1)
    return samples


@dataclass
class McSummary:
    p_mean: np.ndarray            # (N, K) mean class probabilities
    pred: np.ndarray              # (N,) argmax class
    p_std: np.ndarray             # (N,) std of the reported probability over samples
    entropy: np.ndarray           # (N,)
    expected_entropy: np.ndarray  # (N,)
    mutual_info: np.ndarray       # (N,)
    reported: np.ndarray          # (T, N) samples of the reported probability (positive / predicted class)


def summarise(samples: np.ndarray) -> McSummary:
    """Summarise (T, N) binary or (T, N, K) multiclass probability samples."""
    probs = as_class_probs(np.asarray(samples, dtype=np.float64))
    mean = probs.mean(axis=0)
    entropy = _entropy(mean)
    expected = _entropy(probs).mean(axis=0)
    binary = np.asarray(samples).ndim == 2
    pred = (mean[:, 1] >= 0.5).astype(int) if binary else mean.argmax(axis=1)
    column = np.ones_like(pred) if binary else pred
    reported = probs[:, np.arange(probs.shape[1]), column]
    return McSummary(mean, pred, reported.std(axis=0), entropy, expected,
                     np.clip(entropy - expected, 0.0, None), reported)
