"""Metrics checked against scikit-learn and straightforward reference implementations."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from cohorts.errors import BsxError
from engine.metrics import (
    MAX_CURVE_POINTS,
    auc_ci,
    auc_delong,
    bootstrap_weights,
    brier_score,
    compute_metrics,
    curve_subsample,
    delong_covariance,
    delong_paired_difference,
    expected_calibration_error,
    proportion,
    reliability_bins,
    resampling_units,
    roc_points,
    sensitivity_at_specificity,
    specificity_at_sensitivity,
    weighted_auc,
    weighted_ece,
    wilson_interval,
)

CLASSES = ["benign", "malignant"]


def scores_with_ties(n: int, seed: int, prevalence: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities rounded to 2 decimals, so ties are common."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prevalence).astype(int)
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0.0, 1.0).round(2)
    return y, p


def pairwise_delong(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong 1988 from its definition: every positive compared with every negative."""
    scores = np.atleast_2d(scores)
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    psi = (pos[:, :, None] > neg[:, None, :]) + 0.5 * (pos[:, :, None] == neg[:, None, :])
    v10 = psi.mean(axis=2)  # per positive
    v01 = psi.mean(axis=1)  # per negative
    m, n = pos.shape[1], neg.shape[1]
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return psi.mean(axis=(1, 2)), cov


def predictions_frame(y: np.ndarray, p: np.ndarray, *, patients: np.ndarray | None = None,
                      seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(y)
    return pd.DataFrame({
        "case_id": [f"case{i}" for i in range(n)],
        "patient_id": [f"pt{i}" for i in (patients if patients is not None else range(n))],
        "truth": np.asarray(y, dtype=float),
        "p_mean": p,
        "p_std": rng.random(n) * 0.2,
        "entropy": rng.random(n),
        "expected_entropy": rng.random(n),
        "mutual_info": rng.random(n),
        "pred": (p >= 0.5).astype(int),
        "flagged": np.zeros(n, dtype=bool),
        "error": [None] * n,
    })


def all_estimates(node):
    """Every {"value", "ci", "method"} object in a metrics.json tree."""
    if isinstance(node, dict):
        if {"value", "ci", "method"} <= node.keys():
            yield node
        for child in node.values():
            yield from all_estimates(child)
    elif isinstance(node, list):
        for child in node:
            yield from all_estimates(child)


# -- AUC / DeLong -------------------------------------------------------------
def test_auc_matches_sklearn_with_ties():
    y, p = scores_with_ties(400, seed=1)
    auc, _ = auc_delong(y, p)
    assert auc == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)


def test_fast_delong_variance_matches_pairwise_reference():
    y, p = scores_with_ties(300, seed=2)
    auc, var = auc_delong(y, p)
    ref_auc, ref_cov = pairwise_delong(y, p)
    assert auc == pytest.approx(ref_auc[0], abs=1e-12)
    assert var == pytest.approx(ref_cov[0, 0], rel=1e-10)


def test_delong_covariance_of_two_predictors_matches_reference():
    y, p1 = scores_with_ties(250, seed=3)
    p2 = np.clip(p1 + np.random.default_rng(4).normal(0, 0.15, p1.size), 0, 1).round(2)
    aucs, cov = delong_covariance(y, np.vstack([p1, p2]))
    ref_aucs, ref_cov = pairwise_delong(y, np.vstack([p1, p2]))
    np.testing.assert_allclose(aucs, ref_aucs, atol=1e-12)
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-10)
    paired = delong_paired_difference(y, p1, p2)
    assert paired.value == pytest.approx(aucs[0] - aucs[1])
    assert paired.ci[0] < paired.value < paired.ci[1]
    assert 0.0 <= paired.details["p_value"] <= 1.0


def test_auc_ci_is_normal_and_clipped():
    y, p = scores_with_ties(200, seed=5)
    estimate = auc_ci(y, p)
    auc, var = auc_delong(y, p)
    half = 1.959963984540054 * math.sqrt(var)
    assert estimate.ci == pytest.approx((auc - half, auc + half))
    perfect = auc_ci([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    assert perfect.value == 1.0 and perfect.ci == (1.0, 1.0)


def test_auc_not_estimable_with_one_class_or_too_few_cases():
    assert auc_ci([1, 1, 1], [0.2, 0.5, 0.9]).value is None
    assert "one class" in auc_ci([0, 0, 0], [0.2, 0.5, 0.9]).note
    assert "too few" in auc_ci([0, 0, 1], [0.2, 0.5, 0.9]).note


# -- Wilson --------------------------------------------------------------------
def test_wilson_published_example():
    # Newcombe (1998), Stat Med 17:857, example: 81/263 -> Wilson 0.2553 to 0.3662.
    lo, hi = wilson_interval(81, 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)


def test_wilson_hand_formula_vectorised_and_edges():
    k, n = np.array([0, 3, 10, 50]), np.array([10, 10, 10, 80])
    z = 1.6448536269514722  # alpha = 0.10
    phat = k / n
    centre = (k + z * z / 2) / (n + z * z)
    half = z * np.sqrt(n) / (n + z * z) * np.sqrt(phat * (1 - phat) + z * z / (4 * n))
    lo, hi = wilson_interval(k, n, alpha=0.10)
    np.testing.assert_allclose(lo, np.clip(centre - half, 0, 1), atol=1e-12)
    np.testing.assert_allclose(hi, np.clip(centre + half, 0, 1), atol=1e-12)
    assert lo[0] == 0.0 and hi[2] == 1.0
    assert proportion(0, 0).value is None
    with pytest.raises(ValueError):
        wilson_interval(5, 4)


# -- ROC and operating points ---------------------------------------------------
def test_roc_points_equal_sklearn_without_dropping():
    y, p = scores_with_ties(500, seed=6)
    fpr, tpr, thresholds = roc_points(y, p)
    sk_fpr, sk_tpr, sk_thr = skm.roc_curve(y, p, drop_intermediate=False)
    np.testing.assert_array_equal(fpr, sk_fpr)
    np.testing.assert_array_equal(tpr, sk_tpr)
    np.testing.assert_array_equal(thresholds[1:], sk_thr[1:])
    assert thresholds[0] == np.inf


def test_operating_points_match_brute_force_threshold_search():
    y, p = scores_with_ties(300, seed=7)
    candidates = np.r_[np.inf, np.unique(p)]
    sens = np.array([np.mean(p[y == 1] >= t) for t in candidates])
    spec = np.array([np.mean(p[y == 0] < t) for t in candidates])
    value, threshold = sensitivity_at_specificity(y, p, 0.9)
    assert value == pytest.approx(sens[spec >= 0.9].max())
    assert np.mean(p[y == 0] < threshold) >= 0.9
    value, threshold = specificity_at_sensitivity(y, p, 0.8)
    assert value == pytest.approx(spec[sens >= 0.8].max())
    assert np.mean(p[y == 1] >= threshold) >= 0.8


def test_curve_subsample_keeps_ends_and_area():
    y, p = scores_with_ties(3000, seed=8)
    fpr, tpr, _ = roc_points(y, p + np.random.default_rng(0).normal(0, 1e-4, p.size))
    keep = curve_subsample(fpr, tpr)
    assert len(keep) <= MAX_CURVE_POINTS < fpr.size
    assert (fpr[keep][0], tpr[keep][0], fpr[keep][-1], tpr[keep][-1]) == (0, 0, 1, 1)
    assert np.trapezoid(tpr[keep], fpr[keep]) == pytest.approx(np.trapezoid(tpr, fpr), abs=0.01)


# -- Calibration ----------------------------------------------------------------
def loop_ece(p: np.ndarray, y: np.ndarray, bins: int, strategy: str) -> float:
    n = len(p)
    members: list[list[int]] = [[] for _ in range(bins)]
    if strategy == "equal_width":
        edges = np.linspace(0, 1, bins + 1)
        for i in range(n):
            for b in range(bins):
                if edges[b] <= p[i] < edges[b + 1] or (b == bins - 1 and p[i] == 1.0):
                    members[b].append(i)
                    break
    else:
        for rank, i in enumerate(np.argsort(p, kind="stable")):
            members[rank * bins // n].append(int(i))
    total = 0.0
    for idx in members:
        if idx:
            total += len(idx) / n * abs(np.mean(p[idx]) - np.mean(y[idx]))
    return total


@pytest.mark.parametrize("strategy", ["equal_width", "equal_mass"])
def test_ece_matches_direct_loop(strategy):
    y, p = scores_with_ties(700, seed=9)
    p[:5] = [0.0, 1.0, 1 / 15, 2 / 15, 0.5]
    assert expected_calibration_error(p, y, 15, strategy) == pytest.approx(loop_ece(p, y, 15, strategy), abs=1e-12)
    assert expected_calibration_error(p, y, 7, strategy) == pytest.approx(loop_ece(p, y, 7, strategy), abs=1e-12)


def test_reliability_bins_match_counts_and_means():
    y, p = scores_with_ties(500, seed=10)
    rows = reliability_bins(p, y, 10, "equal_width")
    assert sum(r["n"] for r in rows) == 500
    edges = np.linspace(0, 1, 11)  # the documented bin edges, as floats
    inside = (p >= edges[3]) & (p < edges[4])
    row = rows[3]
    assert (row["lo"], row["hi"], row["n"]) == (pytest.approx(0.3), pytest.approx(0.4), inside.sum())
    assert row["mean_pred"] == pytest.approx(p[inside].mean())
    assert row["frac_pos"] == pytest.approx(y[inside].mean())
    mass = reliability_bins(p, y, 10, "equal_mass")
    assert [r["n"] for r in mass] == [50] * 10
    assert all(r["lo"] <= r["hi"] for r in mass)


def test_brier_matches_sklearn():
    y, p = scores_with_ties(300, seed=11)
    assert brier_score(p, y) == pytest.approx(skm.brier_score_loss(y, p))
    probs = np.random.default_rng(0).dirichlet([1, 1, 1], size=50)
    labels = np.random.default_rng(1).integers(0, 3, 50)
    expected = np.mean([np.sum((probs[i] - np.eye(3)[labels[i]]) ** 2) for i in range(50)])
    assert brier_score(probs, labels) == pytest.approx(expected)


# -- Bootstrap --------------------------------------------------------------------
def test_cluster_bootstrap_draws_patients_not_images():
    patients = np.repeat(np.arange(40), np.random.default_rng(0).integers(1, 6, 40))
    weights = bootstrap_weights(patients, n_boot=300, seed=1)
    assert weights.shape == (300, patients.size)
    units = resampling_units(patients)
    assert units.kind == "patient" and units.n_units == 40
    for pid in range(40):
        cols = weights[:, patients == pid]
        assert np.all(cols == cols[:, :1]), "images of one patient must share a draw count"
    first_image = np.r_[0, np.flatnonzero(np.diff(patients)) + 1]
    np.testing.assert_array_equal(weights[:, first_image].sum(axis=1), 40)
    assert not np.all(weights.sum(axis=1) == patients.size), "image counts vary when patients are drawn"


def test_bootstrap_without_repeated_patients_resamples_cases_and_is_seeded():
    ids = [f"p{i}" for i in range(30)]
    weights = bootstrap_weights(ids, n_boot=50, seed=3)
    assert resampling_units(ids).kind == "case"
    np.testing.assert_array_equal(weights.sum(axis=1), 30)
    np.testing.assert_array_equal(weights, bootstrap_weights(ids, n_boot=50, seed=3))
    assert not np.array_equal(weights, bootstrap_weights(ids, n_boot=50, seed=4))
    missing = resampling_units(["a", None, "a", "", None])
    assert missing.n_units == 4 and missing.kind == "patient"


def test_weighted_statistics_equal_metrics_on_explicitly_resampled_data():
    y, p = scores_with_ties(200, seed=12)
    weights = bootstrap_weights(None, n_boot=5, seed=0, n_cases=200)
    aucs = weighted_auc(weights, y, p)
    eces = weighted_ece(weights, p, y, 15, "equal_mass")
    for row, auc, ece in zip(weights, aucs, eces):
        idx = np.repeat(np.arange(200), row.astype(int))
        assert auc == pytest.approx(skm.roc_auc_score(y[idx], p[idx]), abs=1e-12)
        assert ece == pytest.approx(loop_ece(p[idx], y[idx], 15, "equal_mass"), abs=1e-12)


# -- metrics.json ---------------------------------------------------------------------
def test_binary_metrics_json_shape_and_values():
    y, p = scores_with_ties(600, seed=13)
    frame = predictions_frame(y, p, patients=np.arange(600) // 3)
    frame.loc[[5, 9], "error"] = ["decode failed", "decode failed"]
    frame.loc[[5, 9], "p_mean"] = np.nan
    result = compute_metrics(frame, class_names=CLASSES, n_boot=200, seed=0)
    json.dumps(result, allow_nan=False)
    ok = np.ones(600, dtype=bool)
    ok[[5, 9]] = False
    y_ok, p_ok = y[ok], p[ok]
    assert (result["n_cases"], result["n_errors"], result["n_labelled"]) == (600, 2, 598)
    assert result["n_positive"] == y_ok.sum()
    overall = result["overall"]
    assert overall["auc"]["value"] == pytest.approx(skm.roc_auc_score(y_ok, p_ok))
    assert overall["auc"]["method"] == "delong"
    assert overall["brier"]["value"] == pytest.approx(skm.brier_score_loss(y_ok, p_ok))
    assert overall["sensitivity"]["value"] == pytest.approx(skm.recall_score(y_ok, p_ok >= 0.5))
    assert overall["ppv"]["value"] == pytest.approx(skm.precision_score(y_ok, p_ok >= 0.5))
    assert overall["balanced_accuracy"]["value"] == pytest.approx(skm.balanced_accuracy_score(y_ok, p_ok >= 0.5))
    assert overall["ece"]["strategy"] == "equal_width" and overall["ece"]["bins"] == 15
    assert overall["ece_equal_mass"]["strategy"] == "equal_mass"
    assert overall["sens_at_spec"]["at"] == 0.9
    assert result["bootstrap"]["unit"] == "patient" and overall["brier"]["unit"] == "patient"
    for estimate in (overall["brier"], overall["ece"], overall["sens_at_spec"], overall["balanced_accuracy"]):
        assert estimate["ci"][0] <= estimate["ci"][1]
    tn, fp, fn, tp = skm.confusion_matrix(y_ok, p_ok >= 0.5).ravel()
    assert result["confusion"] == {"tp": tp, "fp": fp, "tn": tn, "fn": fn}
    assert result["roc"]["fpr"][0] == 0 and result["roc"]["tpr"][-1] == 1
    assert len(result["roc"]["fpr"]) <= MAX_CURVE_POINTS
    assert sum(b["n"] for b in result["reliability"]["equal_width"]) == 598


def test_bootstrap_ci_is_reproducible_and_seed_dependent():
    y, p = scores_with_ties(300, seed=14)
    frame = predictions_frame(y, p)
    first = compute_metrics(frame, class_names=CLASSES, n_boot=100, seed=1)
    again = compute_metrics(frame, class_names=CLASSES, n_boot=100, seed=1)
    other = compute_metrics(frame, class_names=CLASSES, n_boot=100, seed=2)
    assert first["overall"]["brier"]["ci"] == again["overall"]["brier"]["ci"]
    assert first["overall"]["brier"]["ci"] != other["overall"]["brier"]["ci"]


def test_unlabelled_cohort_is_not_estimable_everywhere():
    _, p = scores_with_ties(100, seed=15)
    frame = predictions_frame(np.full(100, np.nan), p)
    result = compute_metrics(frame, class_names=CLASSES, n_boot=50)
    json.dumps(result, allow_nan=False)
    assert result["n_labelled"] == 0 and result["prevalence"] is None
    for name, estimate in result["overall"].items():
        assert estimate["value"] is None and estimate["ci"] is None, name
        assert estimate["note"].startswith("not estimable"), name
    assert result["roc"]["fpr"] == [] and result["confusion"]["tp"] is None
    entropy = result["selective"]["scores"]["entropy"]
    assert entropy["aurc"]["value"] is None and entropy["referral"]["n_referred"] == 10


def test_one_class_cohort_reports_only_what_it_can():
    p = np.linspace(0.05, 0.95, 40)
    result = compute_metrics(predictions_frame(np.zeros(40), p), class_names=CLASSES, n_boot=50)
    overall = result["overall"]
    assert overall["auc"]["value"] is None and "one class" in overall["auc"]["note"]
    assert overall["sensitivity"]["value"] is None
    assert overall["specificity"]["value"] == pytest.approx(np.mean(p < 0.5))
    assert overall["sens_at_spec"]["value"] is None
    assert overall["brier"]["value"] == pytest.approx(np.mean(p ** 2))


def test_bad_predictions_raise_bsx_error_naming_the_problem():
    y, p = scores_with_ties(20, seed=16)
    frame = predictions_frame(y, p)
    frame.loc[3, "p_mean"] = 1.5
    with pytest.raises(BsxError) as info:
        compute_metrics(frame, class_names=CLASSES, n_boot=0)
    assert info.value.column == "p_mean" and info.value.row == 3
    frame = predictions_frame(y, p)
    frame.loc[4, "truth"] = 2.0
    with pytest.raises(BsxError, match="truth"):
        compute_metrics(frame, class_names=CLASSES, n_boot=0)
    frame = predictions_frame(y, p)
    frame["truth"] = frame["truth"].astype(object)
    frame.loc[2, "truth"] = "melanoma"  # a class name is not silently read as unlabelled
    with pytest.raises(BsxError, match="not a number"):
        compute_metrics(frame, class_names=CLASSES, n_boot=0)
    with pytest.raises(BsxError, match="entropy"):
        compute_metrics(predictions_frame(y, p).drop(columns="entropy"), class_names=CLASSES, n_boot=0)


def multiclass_frame(n: int, k: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k)) + 1.5 * np.eye(k)[truth]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    frame = predictions_frame(np.zeros(n), probs.max(axis=1), seed=seed)
    frame["truth"] = truth.astype(float)
    frame["pred"] = probs.argmax(axis=1)
    for c in range(k):
        frame[f"prob_c{c}"] = probs[:, c]
    return frame, truth, probs


def test_multiclass_metrics_match_sklearn():
    frame, truth, probs = multiclass_frame(500, 3, seed=17)
    names = ["c0", "c1", "c2"]
    result = compute_metrics(frame, task="multiclass", class_names=names, n_boot=100)
    json.dumps(result, allow_nan=False)
    pred = probs.argmax(axis=1)
    per_class = [skm.roc_auc_score(truth == c, probs[:, c]) for c in range(3)]
    for c, name in enumerate(names):
        assert result["per_class"][name]["auc"]["value"] == pytest.approx(per_class[c])
        assert result["per_class"][name]["auc"]["ci"] is not None
        assert result["per_class"][name]["sensitivity"]["value"] == pytest.approx(np.mean(pred[truth == c] == c))
    overall = result["overall"]
    assert overall["auc"]["value"] == pytest.approx(skm.roc_auc_score(truth, probs, multi_class="ovr",
                                                                      average="macro"))
    assert overall["auc"]["ci"][0] < overall["auc"]["value"] < overall["auc"]["ci"][1]
    assert overall["accuracy"]["value"] == pytest.approx(skm.accuracy_score(truth, pred))
    assert overall["balanced_accuracy"]["value"] == pytest.approx(skm.balanced_accuracy_score(truth, pred))
    assert result["confusion"]["matrix"] == skm.confusion_matrix(truth, pred).tolist()
    assert overall["brier"]["value"] == pytest.approx(brier_score(probs, truth))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, 1), st.floats(0, 1), st.integers(0, 5),
                       st.floats(0, 1e6, allow_subnormal=False)), min_size=1, max_size=40),
)
def test_metrics_stay_in_bounds_for_any_finite_input(rows):
    y = np.array([r[0] for r in rows], dtype=float)
    p = np.array([r[1] for r in rows])
    frame = predictions_frame(y, p, patients=np.array([r[2] for r in rows]))
    frame["entropy"] = [r[3] for r in rows]
    result = compute_metrics(frame, class_names=CLASSES, n_boot=30, seed=0)
    json.dumps(result, allow_nan=False)
    for estimate in all_estimates(result):
        if estimate["value"] is not None and estimate["method"] != "delong_paired":
            assert 0.0 <= estimate["value"] <= 1.0
        if estimate["ci"] is not None:
            assert 0.0 <= estimate["ci"][0] <= estimate["ci"][1] <= 1.0
        if estimate["value"] is None:
            assert estimate["note"].startswith("not estimable")
