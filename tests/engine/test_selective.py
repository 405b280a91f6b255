"""Selective prediction: referral thresholds, risk-coverage curves and AURC."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cohorts.errors import BsxError
from engine.metrics import compute_metrics
from engine.selective import (
    max_prob_uncertainty,
    optimal_aurc,
    referral_threshold,
    referred,
    risk_coverage,
    uncertainty_scores,
    weighted_aurc,
)


def loop_aurc(scores: np.ndarray, correct: np.ndarray) -> float:
    """Geifman & El-Yaniv: mean risk over the k most certain cases, k = 1..n (no ties)."""
    order = np.argsort(scores)
    risks = []
    for k in range(1, len(scores) + 1):
        kept = order[:k]
        risks.append(1.0 - np.mean(correct[kept]))
    return float(np.mean(risks))


def test_aurc_matches_direct_computation_without_ties():
    rng = np.random.default_rng(0)
    scores = rng.random(300)
    correct = rng.random(300) > scores * 0.6
    curve = risk_coverage(scores, correct)
    assert curve.aurc == pytest.approx(loop_aurc(scores, correct), abs=1e-12)
    assert curve.coverage[-1] == 1.0 and curve.risk[-1] == pytest.approx(1 - correct.mean())
    assert np.all(np.diff(curve.coverage) > 0) and np.all(np.diff(curve.threshold) > 0)


def test_tied_scores_do_not_depend_on_storage_order():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 5, 200).astype(float)
    correct = rng.random(200) > 0.3
    shuffled = rng.permutation(200)
    first = risk_coverage(scores, correct)
    second = risk_coverage(scores[shuffled], correct[shuffled])
    assert first.aurc == pytest.approx(second.aurc, abs=1e-15)
    assert first.coverage.size == 5


def test_oracle_score_reaches_optimal_aurc():
    rng = np.random.default_rng(2)
    correct = rng.random(150) > 0.25
    oracle = (~correct).astype(float) + rng.random(150) * 1e-3  # errors ranked most uncertain
    assert risk_coverage(oracle, correct).aurc == pytest.approx(optimal_aurc(correct), abs=1e-12)
    assert optimal_aurc(correct) < risk_coverage(rng.random(150), correct).aurc
    assert optimal_aurc(np.ones(10, dtype=bool)) == 0.0


def test_weighted_aurc_equals_aurc_of_repeated_cases():
    rng = np.random.default_rng(3)
    scores = rng.random(60).round(1)
    correct = rng.random(60) > 0.4
    weights = rng.integers(0, 4, (3, 60)).astype(float)
    for row, value in zip(weights, weighted_aurc(weights, scores, correct)):
        idx = np.repeat(np.arange(60), row.astype(int))
        assert value == pytest.approx(risk_coverage(scores[idx], correct[idx]).aurc, abs=1e-12)


def test_referral_threshold_refers_the_most_uncertain_fraction():
    scores = np.random.default_rng(4).random(1000)
    for rate in (0.05, 0.1, 0.333):
        flagged = referred(scores, referral_threshold(scores, rate))
        assert flagged.sum() == int(np.ceil(rate * 1000 - 1e-9))
        assert scores[flagged].min() > scores[~flagged].max()
    assert not referred(scores, referral_threshold(scores, 0.0)).any()
    assert referred(scores, referral_threshold(scores, 1.0)).all()
    tied = np.array([0.1, 0.5, 0.5, 0.5, 0.9])
    assert referred(tied, referral_threshold(tied, 0.4)).sum() == 4  # ties with the last referred go too
    with pytest.raises(ValueError):
        referral_threshold(scores, 1.5)


def test_max_prob_uncertainty_binary_and_multiclass():
    np.testing.assert_allclose(max_prob_uncertainty(np.array([0.9, 0.2, 0.5])), [0.1, 0.2, 0.5])
    np.testing.assert_allclose(max_prob_uncertainty(np.array([[0.7, 0.2, 0.1], [0.3, 0.3, 0.4]])), [0.3, 0.6])


def test_uncertainty_scores_reject_unknown_and_non_finite():
    frame = pd.DataFrame({"entropy": [0.1, np.nan]})
    with pytest.raises(BsxError, match="unknown"):
        uncertainty_scores(frame, ["confidence"], np.array([0.2, 0.8]))
    with pytest.raises(BsxError) as info:
        uncertainty_scores(frame, ["entropy"], np.array([0.2, 0.8]))
    assert info.value.row == 1 and info.value.column == "entropy"


def test_selective_section_reports_retained_metrics_at_referral_rate():
    rng = np.random.default_rng(5)
    n = 400
    y = rng.random(n) < 0.3
    p = np.clip(rng.normal(0.3 + 0.4 * y, 0.25), 0, 1)
    entropy = -(p * np.log(p + 1e-12) + (1 - p) * np.log(1 - p + 1e-12))
    flagged = rng.random(n) < 0.2
    frame = pd.DataFrame({
        "case_id": [f"c{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
        "truth": y.astype(float), "p_mean": p, "p_std": rng.random(n), "entropy": entropy,
        "expected_entropy": entropy, "mutual_info": rng.random(n), "pred": (p >= 0.5).astype(int),
        "flagged": flagged, "error": [None] * n,
    })
    section = compute_metrics(frame, class_names=["benign", "malignant"], referral_rate=0.2, n_boot=100)["selective"]
    entry = section["scores"]["entropy"]
    refer = entropy >= entry["referral"]["threshold"]
    correct = (p >= 0.5) == y
    assert entry["referral"]["n_referred"] == refer.sum() == 80
    assert entry["referral"]["coverage"] == pytest.approx(0.8)
    assert entry["referral"]["retained"]["accuracy"]["value"] == pytest.approx(correct[~refer].mean())
    assert entry["referral"]["retained"]["sensitivity"]["value"] == pytest.approx(
        np.mean((p >= 0.5)[~refer & y]))
    assert section["all"]["accuracy"]["value"] == pytest.approx(correct.mean())
    assert entry["referral"]["retained"]["accuracy"]["value"] > section["all"]["accuracy"]["value"]
    assert entry["aurc"]["value"] == pytest.approx(risk_coverage(entropy, correct).aurc)
    assert entry["aurc"]["ci"][0] <= entry["aurc"]["ci"][1]
    assert entry["aurc_optimal"] <= entry["aurc"]["value"] <= 1.0
    assert len(entry["curve"]["coverage"]) <= 200
    assert section["flagged"]["n_flagged"] == flagged.sum()
    assert section["flagged"]["retained"]["accuracy"]["value"] == pytest.approx(correct[~flagged].mean())
    assert set(section["scores"]) == {"entropy", "mutual_info", "p_std", "max_prob"}
