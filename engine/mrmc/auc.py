"""Empirical (trapezoidal / Wilcoxon) AUC, its structural components, jackknife and DeLong covariance.

Everything works on the whole ratings array at once: ranks along the case
axis give the Mann-Whitney counts for every reader x modality in one call,
and leave-one-case-out AUCs follow in closed form from the structural
components (no refitting c times).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata


@dataclass(frozen=True)
class StructuralComponents:
    """DeLong's placements: v10[..., i] for abnormal case i, v01[..., j] for normal case j."""

    auc: np.ndarray
    v10: np.ndarray
    v01: np.ndarray


def structural_components(ratings: np.ndarray, truth: np.ndarray) -> StructuralComponents:
    """Placement values for every leading index of `ratings` (..., cases); ties count one half.

    rank in all cases minus rank within the own class = number of other-class
    cases below (ties half), which is the Mann-Whitney kernel summed.
    """
    ratings = np.asarray(ratings, dtype=float)
    truth = np.asarray(truth).astype(bool)
    abnormal, normal = ratings[..., truth], ratings[..., ~truth]
    n1, n0 = abnormal.shape[-1], normal.shape[-1]
    ranks = rankdata(ratings, axis=-1)
    normals_below = ranks[..., truth] - rankdata(abnormal, axis=-1)
    abnormals_below = ranks[..., ~truth] - rankdata(normal, axis=-1)
    v10 = normals_below / n0
    v01 = 1.0 - abnormals_below / n1
    return StructuralComponents(auc=v10.mean(axis=-1), v10=v10, v01=v01)


def empirical_auc(ratings: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Trapezoidal AUC for every leading index of `ratings` (..., cases)."""
    return structural_components(ratings, truth).auc


def jackknife_aucs(ratings: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """AUC with each case left out in turn: (..., cases), case order as in `ratings`."""
    truth = np.asarray(truth).astype(bool)
    comp = structural_components(ratings, truth)
    n1, n0 = comp.v10.shape[-1], comp.v01.shape[-1]
    total = comp.auc[..., None] * n1 * n0
    out = np.empty(np.shape(ratings), dtype=float)
    out[..., truth] = (total - n0 * comp.v10) / ((n1 - 1) * n0)
    out[..., ~truth] = (total - n1 * comp.v01) / (n1 * (n0 - 1))
    return out


def jackknife_covariance(ratings: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Jackknife covariance of the AUCs over cases: shape (*lead, *lead)."""
    leave_out = jackknife_aucs(ratings, truth)
    lead = leave_out.shape[:-1]
    flat = leave_out.reshape(-1, leave_out.shape[-1])
    c = flat.shape[1]
    centred = flat - flat.mean(axis=1, keepdims=True)
    cov = (c - 1) / c * centred @ centred.T
    return cov.reshape(lead + lead)


def delong_covariance(ratings: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """DeLong (1988) covariance of the AUCs: S10/n1 + S01/n0, shape (*lead, *lead)."""
    comp = structural_components(ratings, truth)
    lead = comp.auc.shape
    v10 = comp.v10.reshape(-1, comp.v10.shape[-1])
    v01 = comp.v01.reshape(-1, comp.v01.shape[-1])
    cov = np.atleast_2d(np.cov(v10, ddof=1)) / v10.shape[1] + np.atleast_2d(np.cov(v01, ddof=1)) / v01.shape[1]
    return cov.reshape(lead + lead)


def jackknife_pseudovalues(ratings: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Normalised DBM pseudovalues (..., cases): their mean over cases equals the AUC (Hillis 2008)."""
    leave_out = jackknife_aucs(ratings, truth)
    c = leave_out.shape[-1]
    auc = empirical_auc(ratings, truth)
    pseudo = c * auc[..., None] - (c - 1) * leave_out
    return pseudo + (auc - pseudo.mean(axis=-1))[..., None]
