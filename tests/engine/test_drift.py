"""Drift measures against scipy and direct formulas; MMD power and size; report shape."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from cohorts.errors import BsxError
from engine.drift import (
    chi_square_homogeneity, domain_classifier_auc, drift_report, embedding_drift, feature_drift,
    jensen_shannon_distance, metadata_drift, population_stability_index, prediction_drift, wasserstein_1d,
)


def cohort(n: int, seed: int, age_shift: float = 0.0, female_share: float = 0.5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(55 + age_shift, 15, n)
    age[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame({
        "case_id": [f"c{i}" for i in range(n)],
        "age": age,
        "sex": rng.choice(["female", "male"], n, p=[female_share, 1 - female_share]),
        "site": rng.choice(["A", "B", "C"], n),
        "p_mean": rng.beta(2, 5, n), "entropy": rng.random(n), "error": None,
    })


def test_js_distance_matches_scipy_base_2():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p, q = rng.integers(0, 50, 12), rng.integers(0, 50, 12)
        q[3] = 0  # empty bins are allowed
        assert jensen_shannon_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-12)
    assert jensen_shannon_distance([5, 0], [0, 5]) == pytest.approx(1.0)


def test_reported_js_uses_the_recorded_histogram():
    ref, cur = cohort(3000, 1), cohort(2000, 2, age_shift=8)
    feature = feature_drift(ref["age"], cur["age"], bins=10)
    hist = feature["histogram"]
    assert feature["js_distance"] == pytest.approx(jensenshannon(hist["reference"], hist["current"], base=2))
    np.testing.assert_array_equal(hist["reference"], np.histogram(ref["age"].dropna(), bins=hist["edges"])[0])
    np.testing.assert_array_equal(hist["current"], np.histogram(cur["age"].dropna(), bins=hist["edges"])[0])
    assert hist["reference"].sum() == ref["age"].notna().sum()


def test_psi_matches_direct_formula():
    ref, cur = np.array([100, 200, 300, 0]), np.array([150, 150, 250, 50])
    r = np.array([100, 200, 300, 1e-4 * 600]) / 600
    r[3] = 1e-4
    c = cur / cur.sum()
    expected = sum((ci - ri) * np.log(ci / ri) for ci, ri in zip(c, r))
    assert population_stability_index(ref, cur) == pytest.approx(expected, rel=1e-12)
    assert population_stability_index(ref, ref) == 0.0


def test_ks_matches_scipy_at_small_n():
    ref, cur = cohort(800, 3), cohort(600, 4, age_shift=5)
    feature = feature_drift(ref["age"], cur["age"])
    expected = stats.ks_2samp(ref["age"].dropna(), cur["age"].dropna())
    assert feature["test"] == "ks"
    assert feature["statistic"] == pytest.approx(expected.statistic)
    assert feature["p_value"] == pytest.approx(expected.pvalue)


def test_chi_square_matches_scipy():
    ref, cur = np.array([120, 80, 30]), np.array([90, 100, 10])
    statistic, df, p = chi_square_homogeneity(ref, cur)
    expected = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert statistic == pytest.approx(expected.statistic) and df == expected.dof
    assert p == pytest.approx(expected.pvalue)
    feature = feature_drift(pd.Series(["a"] * 120 + ["b"] * 80 + ["c"] * 30),
                            pd.Series(["a"] * 90 + ["b"] * 100 + ["c"] * 10))
    assert feature["test"] == "chi_square" and feature["statistic"] == pytest.approx(expected.statistic)
    assert feature["histogram"]["categories"] == ["a", "b", "c"]


def test_wasserstein_used_at_large_n_and_matches_scipy():
    rng = np.random.default_rng(5)
    ref, cur = rng.normal(0, 2, 20_000), rng.normal(0.5, 2, 7_000)
    assert wasserstein_1d(ref, cur) == pytest.approx(stats.wasserstein_distance(ref, cur), rel=1e-10)
    ties = np.round(ref), np.round(cur)
    assert wasserstein_1d(*ties) == pytest.approx(stats.wasserstein_distance(*ties), rel=1e-10)
    feature = feature_drift(pd.Series(ref), pd.Series(cur))
    assert feature["test"] == "wasserstein"
    assert feature["statistic"] == pytest.approx(stats.wasserstein_distance(ref, cur) / ref.std())


def test_metadata_drift_flags_the_shifted_features_only():
    ref, cur = cohort(3000, 1), cohort(2500, 2, age_shift=6, female_share=0.7)
    result = metadata_drift(ref, cur)
    features = result["features"]
    assert set(features) == {"age", "sex", "site"}  # ids, predictions and errors are not metadata
    assert features["age"]["drift"] and features["sex"]["drift"] and not features["site"]["drift"]
    p = np.array([features[c]["p_value"] for c in ("age", "sex", "site")])
    bh = np.array([features[c]["p_value_bh"] for c in ("age", "sex", "site")])
    np.testing.assert_allclose(bh, stats.false_discovery_control(p), rtol=1e-12)
    assert result["drift_share"] == pytest.approx(2 / 3) and result["verdict"] == "drift"
    assert features["age"]["missing_rate_reference"] == pytest.approx(ref["age"].isna().mean())


def test_identical_cohorts_show_no_drift():
    result = metadata_drift(cohort(2000, 1), cohort(2000, 1))
    assert result["n_drifted"] == 0 and result["verdict"] == "no drift"
    assert all(f["js_distance"] == 0.0 and f["psi"] == 0.0 for f in result["features"].values())


def test_no_common_columns_is_a_user_error():
    with pytest.raises(BsxError, match="no metadata column in common") as info:
        metadata_drift(pd.DataFrame({"age": [1.0]}), pd.DataFrame({"years": [1.0]}))
    assert "years" in str(info.value)
    with pytest.raises(BsxError, match="'bmi' is not in the reference"):
        metadata_drift(cohort(50, 1), cohort(50, 2), columns=["bmi"])


def test_column_empty_in_one_cohort_is_reported_not_tested():
    ref, cur = cohort(500, 1), cohort(500, 2)
    cur["age"] = np.nan
    feature = metadata_drift(ref, cur)["features"]["age"]
    assert feature["test"] is None and not feature["drift"] and "no values in the current" in feature["note"]
    assert feature["missing_rate_current"] == 1.0


def test_prediction_drift_uses_probability_bins():
    ref, cur = cohort(2000, 1), cohort(2000, 2)
    cur["p_mean"] = np.clip(cur["p_mean"] + 0.2, 0, 1)
    result = prediction_drift(ref, cur)
    assert result["features"]["p_mean"]["drift"] and not result["features"]["entropy"]["drift"]
    np.testing.assert_allclose(result["features"]["p_mean"]["histogram"]["edges"], np.linspace(0, 1, 11))


def test_mmd_detects_a_shifted_embedding_and_not_an_identical_distribution():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(300, 32))
    same = rng.normal(size=(300, 32))
    shifted = rng.normal(size=(300, 32)) + np.r_[np.full(4, 0.5), np.zeros(28)]
    assert embedding_drift(ref, same, n_perm=200, seed=1)["mmd"]["p_value"] > 0.05
    drifted = embedding_drift(ref, shifted, n_perm=200, seed=1)
    assert drifted["mmd"]["p_value"] < 0.01 and drifted["verdict"] == "drift"


def test_domain_classifier_auc_separates_shifted_cohorts():
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(400, 64))
    assert domain_classifier_auc(ref, rng.normal(size=(400, 64)))["auc"] < 0.58
    shifted = rng.normal(size=(400, 64)) + np.r_[1.0, np.zeros(63)]
    result = domain_classifier_auc(ref, shifted)
    assert result["auc"] > 0.7 and result["ci"][0] > 0.5


def test_drift_report_is_json_without_nan():
    ref, cur = cohort(600, 1), cohort(600, 2, age_shift=10)
    rng = np.random.default_rng(3)
    report = drift_report(ref, cur, ref_pred=ref, cur_pred=cur,
                          ref_emb=rng.normal(size=(100, 8)), cur_emb=rng.normal(size=(120, 8)))
    text = json.dumps(report, allow_nan=False)
    back = json.loads(text)
    assert back["verdicts"]["metadata"] in {"drift", "partial drift"}
    assert set(back) >= {"verdict", "metadata", "prediction", "embedding"}
    assert back["metadata"]["features"]["sex"]["p_value_bh"] is not None
    assert drift_report(ref, cur)["embedding"] is None
