"""DerSimonian-Laird against numbers worked out by hand, and the per-site table."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from cohorts.errors import BsxError
from engine.heterogeneity import dersimonian_laird, site_heterogeneity


def test_dersimonian_laird_matches_hand_computed_example():
    # three studies: y = (0.1, 0.3, 0.5), v = (0.01, 0.02, 0.04)
    y, v = [0.1, 0.3, 0.5], [0.01, 0.02, 0.04]
    # fixed-effect weights 100, 50, 25: sum 175, sum of squares 10000 + 2500 + 625 = 13125
    fixed = (100 * 0.1 + 50 * 0.3 + 25 * 0.5) / 175  # 37.5 / 175 = 0.2142857
    q = 100 * (0.1 - fixed) ** 2 + 50 * (0.3 - fixed) ** 2 + 25 * (0.5 - fixed) ** 2  # 1.306122 + 0.367347 + 2.040816 = 26/7
    c = 175 - 13125 / 175  # 100.0
    tau2 = (q - 2) / c  # (26/7 - 2) / 100 = 0.017142857
    w = [1 / (0.01 + tau2), 1 / (0.02 + tau2), 1 / (0.04 + tau2)]
    mu = sum(wi * yi for wi, yi in zip(w, y)) / sum(w)
    se = math.sqrt(1 / sum(w))
    half_pi = stats.t.ppf(0.975, 1) * math.sqrt(tau2 + se**2)  # t with k - 2 = 1 df: 12.706

    assert fixed == pytest.approx(0.2142857142857143)
    assert q == pytest.approx(26 / 7)
    assert tau2 == pytest.approx(0.12 / 7)
    assert c == pytest.approx(100.0)
    meta = dersimonian_laird(y, v)
    assert meta["fixed"] == pytest.approx(fixed, rel=1e-12)
    assert meta["q"] == pytest.approx(q, rel=1e-12)
    assert meta["q_df"] == 2
    assert meta["tau2"] == pytest.approx(tau2, rel=1e-12)
    assert meta["i2"] == pytest.approx((q - 2) / q, rel=1e-12)
    assert meta["i2"] == pytest.approx(12 / 26, rel=1e-12)
    assert meta["mu"] == pytest.approx(mu, rel=1e-12)
    assert meta["se"] == pytest.approx(se, rel=1e-12)
    assert meta["ci"][0] == pytest.approx(mu - 1.959963984540054 * se, rel=1e-12)
    assert meta["prediction_interval"][0] == pytest.approx(mu - half_pi, rel=1e-12)
    assert meta["prediction_interval"][1] == pytest.approx(mu + half_pi, rel=1e-12)
    assert meta["q_p"] == pytest.approx(math.exp(-q / 2), rel=1e-12)  # chi2 with 2 df


def test_homogeneous_studies_have_zero_tau2_and_equal_fixed_and_random():
    meta = dersimonian_laird([0.2, 0.21, 0.19, 0.2], [0.01, 0.02, 0.01, 0.03])
    assert meta["tau2"] == 0.0 and meta["i2"] == 0.0
    assert meta["mu"] == pytest.approx(meta["fixed"])


def _site_block(site: str, n: int, separation: float, rng: np.random.Generator) -> pd.DataFrame:
    truth = (rng.random(n) < 0.35).astype(float)
    p = 1 / (1 + np.exp(-(separation * (truth - 0.5) + rng.normal(0, 1, n))))
    return pd.DataFrame({"case_id": [f"{site}{i}" for i in range(n)], "truth": truth, "p_mean": p,
                         "site": site, "error": None})


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    blocks = [_site_block(s, 400, 3.0, rng) for s in "ABCDEF"]
    blocks.append(_site_block("G", 400, 0.3, rng))  # the model barely works at site G
    blocks.append(_site_block("tiny", 12, 3.0, rng))
    return pd.concat(blocks, ignore_index=True)


def test_site_outside_prediction_interval_is_flagged(cohort):
    result = site_heterogeneity(cohort, min_size=30)
    assert result["flagged_sites"] == ["G"]
    sites = {row["site"]: row for row in result["sites"]}
    # G inflates tau^2 so much that the full interval covers it; the interval of the other sites does not
    assert sites["G"]["outside_leave_one_out_interval"]
    low_loo, high_loo = sites["G"]["leave_one_out_prediction_interval"]
    assert sites["G"]["auc"] < low_loo < high_loo
    assert not any(sites[s]["outside_leave_one_out_interval"] for s in "ABCDEF")
    low, high = result["prediction_interval"]
    for row in (sites[s] for s in "ABCDEFG"):
        assert row["outside_prediction_interval"] == (not low <= row["auc"] <= high)
    assert result["i2"] > 0.5 and result["tau2"] > 0
    json.dumps(result, allow_nan=False)


def test_site_auc_is_exact_and_pooled_matches_direct_dl(cohort):
    result = site_heterogeneity(cohort, min_size=30, scale="auc")
    sites = {row["site"]: row for row in result["sites"]}
    block = cohort[cohort["site"] == "A"]
    assert sites["A"]["auc"] == pytest.approx(roc_auc_score(block["truth"], block["p_mean"]), rel=1e-12)
    pooled = [sites[s] for s in "ABCDEFG"]
    meta = dersimonian_laird([r["auc"] for r in pooled], [r["variance"] for r in pooled])
    assert result["pooled"]["auc"] == pytest.approx(meta["mu"])
    assert result["k"] == 7 and result["n_sites"] == 8
    assert sum(r["weight_random"] for r in pooled) == pytest.approx(1.0)


def test_small_site_is_not_estimable_and_not_pooled(cohort):
    result = site_heterogeneity(cohort, min_size=30)
    tiny = next(r for r in result["sites"] if r["site"] == "tiny")
    assert not tiny["estimable"] and tiny["auc"] is None
    assert tiny["note"].startswith("not estimable: n=12")


def test_single_site_reports_no_pooling(cohort):
    result = site_heterogeneity(cohort[cohort["site"] == "A"])
    assert result["pooled"] is None and "pooling needs at least 2" in result["note"]


def test_missing_site_column_is_a_user_error(cohort):
    with pytest.raises(BsxError, match="no 'hospital' column"):
        site_heterogeneity(cohort, site_col="hospital")
