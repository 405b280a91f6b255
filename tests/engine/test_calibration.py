"""Temperature scaling: recovers a known temperature; reports calibration before and after."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special
from sklearn.metrics import log_loss

from cohorts.errors import BsxError
from engine.calibration import (
    apply_temperature,
    fit_calibration,
    fit_temperature,
    logits_from_probabilities,
    negative_log_likelihood,
    temperature_report,
)
from engine.metrics import compute_metrics


def overconfident_binary(n: int, true_temperature: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from calibrated logits; the model reports them multiplied by T (over-confident)."""
    rng = np.random.default_rng(seed)
    calibrated = rng.normal(0.0, 1.5, n)
    labels = (rng.random(n) < special.expit(calibrated)).astype(int)
    return calibrated * true_temperature, labels


def overconfident_multiclass(n: int, k: int, true_temperature: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    calibrated = rng.normal(0.0, 1.2, (n, k))
    probs = special.softmax(calibrated, axis=1)
    labels = (rng.random((n, 1)) > np.cumsum(probs, axis=1)).sum(axis=1)
    return calibrated * true_temperature, labels


def test_recovers_known_temperature_binary():
    logits, labels = overconfident_binary(20000, 2.5, seed=0)
    assert fit_temperature(logits, labels) == pytest.approx(2.5, rel=0.06)


def test_recovers_known_temperature_multiclass():
    logits, labels = overconfident_multiclass(20000, 4, 1.8, seed=1)
    assert fit_temperature(logits, labels) == pytest.approx(1.8, rel=0.06)


def test_fit_improves_calibration_and_nll():
    logits, labels = overconfident_binary(5000, 3.0, seed=2)
    report = fit_calibration(logits, labels)
    assert report["fitted_on"] == 5000 and not report["at_bound"]
    assert report["after"]["nll"] < report["before"]["nll"]
    assert report["after"]["ece"] < report["before"]["ece"]
    assert report["after"]["brier"] < report["before"]["brier"]


def test_nll_matches_sklearn_log_loss():
    logits, labels = overconfident_multiclass(500, 3, 2.0, seed=3)
    probs = apply_temperature(logits, 1.7)
    assert negative_log_likelihood(logits, labels, 1.7) == pytest.approx(log_loss(labels, probs, labels=[0, 1, 2]))
    logits, labels = overconfident_binary(500, 2.0, seed=4)
    assert negative_log_likelihood(logits, labels, 2.0) == pytest.approx(
        log_loss(labels, apply_temperature(logits, 2.0)))


def test_probabilities_round_trip_at_temperature_one():
    p = np.array([0.01, 0.3, 0.5, 0.99])
    np.testing.assert_allclose(apply_temperature(logits_from_probabilities(p), 1.0), p, rtol=1e-9)
    probs = np.array([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]])
    np.testing.assert_allclose(apply_temperature(logits_from_probabilities(probs), 1.0), probs, rtol=1e-9)
    assert np.all(apply_temperature(logits_from_probabilities(probs), 3.0).argmax(axis=1) == probs.argmax(axis=1))


def test_refuses_unusable_calibration_sets():
    with pytest.raises(BsxError, match="one class"):
        fit_temperature(np.array([1.0, 2.0, 3.0]), np.array([1, 1, 1]))
    with pytest.raises(BsxError, match="finite"):
        fit_temperature(np.array([1.0, np.inf]), np.array([0, 1]))
    with pytest.raises(BsxError, match="class indices"):
        fit_temperature(np.zeros((3, 2)), np.array([0, 1, 2]))


def test_compute_metrics_reports_before_and_after_on_the_cohort():
    logits, labels = overconfident_binary(800, 2.0, seed=5)
    p = special.expit(logits)
    n = labels.size
    frame = pd.DataFrame({
        "case_id": [f"c{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
        "truth": labels.astype(float), "p_mean": p, "p_std": 0.0, "entropy": 0.0, "expected_entropy": 0.0,
        "mutual_info": 0.0, "pred": (p >= 0.5).astype(int), "flagged": False, "error": None,
    })
    result = compute_metrics(frame, class_names=["benign", "malignant"], n_boot=0,
                             temperature={"temperature": 2.0, "fitted_on": 300})
    calibration = result["calibration"]
    assert calibration["temperature"] == 2.0 and calibration["fitted_on"] == 300
    assert calibration["evaluated_on"] == n
    expected = temperature_report(logits_from_probabilities(p), labels, 2.0)
    assert calibration["after"]["ece"] == pytest.approx(expected["after"]["ece"])
    assert calibration["after"]["nll"] < calibration["before"]["nll"]
    assert calibration["before"]["brier"] == pytest.approx(result["overall"]["brier"]["value"])
    assert calibration["applied_to"] == "log of the MC-mean probabilities"

    frame["logit"] = logits / 1.3  # stored dropout-off logits differ from logit(p_mean): they must be used
    stored = compute_metrics(frame, class_names=["benign", "malignant"], n_boot=0,
                             temperature={"temperature": 2.0, "fitted_on": 300})["calibration"]
    assert stored["applied_to"] == "stored model logits (dropout off)"
    assert stored["after"]["nll"] == pytest.approx(temperature_report(logits / 1.3, labels, 2.0)["after"]["nll"])
    with pytest.raises(BsxError, match="temperature"):
        compute_metrics(frame, class_names=["benign", "malignant"], n_boot=0, temperature={"temperature": -1})
