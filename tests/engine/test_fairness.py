"""Subgroup table vs fairlearn's MetricFrame (an independent implementation) on the same data."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame
from scipy.stats import false_discovery_control, rankdata
from sklearn.metrics import brier_score_loss, precision_score, recall_score, roc_auc_score

from cohorts.errors import BsxError
from engine.fairness import (
    METRICS, benjamini_hochberg, bootstrap_p_value, fairness_summary, subgroup_table,
)


def make_predictions(n: int = 1500, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    site = rng.choice(["A", "B", "C"], n, p=[0.5, 0.3, 0.2])
    sex = rng.choice(["male", "female"], n)
    skin = rng.choice(["I", "II", "III", "IV", "V", "VI"], n)
    truth = (rng.random(n) < 0.3).astype(float)
    # site C is systematically over-confident: a real calibration gap to detect
    logit = 2.5 * truth - 1.2 + rng.normal(0, 1.0, n) + 1.5 * (site == "C")
    p = 1 / (1 + np.exp(-logit))
    # ties in p exercise the half-credit of the Mann-Whitney AUC
    p[: n // 10] = np.round(p[: n // 10], 1)
    return pd.DataFrame({
        "case_id": [f"c{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
        "truth": truth, "p_mean": p, "p_std": rng.random(n) * 0.1, "entropy": rng.random(n),
        "mutual_info": rng.random(n) * 0.05, "pred": (p >= 0.5).astype(int),
        "flagged": rng.random(n) < 0.1, "error": None, "age": rng.uniform(18, 90, n),
        "sex": sex, "site": site, "skin_type": skin, "body_site": rng.choice(["trunk", "head"], n),
    })


def ece(y_true, y_prob, bins: int = 10) -> float:
    y_true, y_prob = np.asarray(y_true, float), np.asarray(y_prob, float)
    idx = np.minimum((y_prob * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        in_bin = idx == b
        if in_bin.any():
            total += in_bin.sum() / len(y_true) * abs(y_true[in_bin].mean() - y_prob[in_bin].mean())
    return total


def _safe(fn):
    def wrapped(y_true, y_prob, **kwargs):
        if len(np.unique(y_true)) < 2:
            return np.nan
        return fn(y_true, y_prob, **kwargs)
    return wrapped


def fairlearn_metrics(threshold: float = 0.5) -> dict:
    hard = lambda p: (np.asarray(p) >= threshold).astype(int)  # noqa: E731
    return {
        "prevalence": lambda y, p: float(np.mean(y)),
        "auc": _safe(roc_auc_score),
        "sensitivity": _safe(lambda y, p: recall_score(y, hard(p), zero_division=np.nan)),
        "specificity": _safe(lambda y, p: recall_score(y, hard(p), pos_label=0, zero_division=np.nan)),
        "ppv": lambda y, p: precision_score(y, hard(p), zero_division=np.nan),
        "ece": ece,
        "brier": lambda y, p: brier_score_loss(y, p),
        "mean_uncertainty": lambda y, p, unc: float(np.mean(unc)),
        "referral_rate": lambda y, p, referred: float(np.mean(referred)),
    }


def fast_metrics(threshold: float = 0.5) -> dict:
    """Plain-numpy versions (validated against sklearn above) so fairlearn's bootstrap loop stays quick."""
    def auc(y, p):
        y = np.asarray(y)
        n_pos = y.sum()
        n_neg = len(y) - n_pos
        if n_pos == 0 or n_neg == 0:
            return np.nan
        return (rankdata(p)[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)

    def rate(num, den):
        return float(num.sum() / den.sum()) if den.sum() else np.nan

    hard = lambda p: np.asarray(p) >= threshold  # noqa: E731
    as_bool = lambda y: np.asarray(y) == 1  # noqa: E731
    return {
        "prevalence": lambda y, p: float(np.mean(y)),
        "auc": auc,
        "sensitivity": lambda y, p: rate(as_bool(y) & hard(p), as_bool(y)),
        "specificity": lambda y, p: rate(~as_bool(y) & ~hard(p), ~as_bool(y)),
        "ppv": lambda y, p: rate(as_bool(y) & hard(p), hard(p)),
        "ece": ece,
        "brier": lambda y, p: float(np.mean((np.asarray(p) - np.asarray(y)) ** 2)),
        "mean_uncertainty": lambda y, p, unc: float(np.mean(unc)),
        "referral_rate": lambda y, p, referred: float(np.mean(referred)),
    }


def metric_frame(df: pd.DataFrame, attribute: str, metrics: dict | None = None, **kwargs) -> MetricFrame:
    metrics = metrics or fairlearn_metrics()
    return MetricFrame(
        metrics=metrics, y_true=df["truth"].astype(int), y_pred=df["p_mean"],
        sensitive_features=df[attribute],
        sample_params={name: params for name, params in
                       {"mean_uncertainty": {"unc": df["entropy"].to_numpy()},
                        "referral_rate": {"referred": df["flagged"].to_numpy()}}.items() if name in metrics},
        **kwargs,
    )


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return make_predictions()


@pytest.fixture(scope="module")
def table(data) -> pd.DataFrame:
    return subgroup_table(data, attributes=("site", "sex", "skin_type"), n_boot=2000, seed=3)


def test_point_values_equal_fairlearn_per_group(data, table):
    for attribute in ("site", "sex", "skin_type"):
        expected = metric_frame(data, attribute).by_group
        rows = table[table["attribute"] == attribute].set_index("group")
        for metric in METRICS:
            np.testing.assert_allclose(rows[metric].loc[expected.index].to_numpy(float),
                                       expected[metric].to_numpy(float), rtol=1e-10, atol=1e-12,
                                       err_msg=f"{attribute}/{metric}")
        assert (rows["n"].loc[expected.index] == data.groupby(attribute).size().loc[expected.index]).all()


def test_overall_row_equals_fairlearn_overall(data, table):
    expected = metric_frame(data, "site").overall
    overall = table[table["attribute"] == "overall"].iloc[0]
    for metric in METRICS:
        assert overall[metric] == pytest.approx(expected[metric], rel=1e-10)


def test_intersection_values_equal_fairlearn_two_feature_frame(data):
    table = subgroup_table(data, attributes=("site", "sex"), n_boot=0)
    frame = MetricFrame(metrics=fairlearn_metrics(), y_true=data["truth"].astype(int), y_pred=data["p_mean"],
                        sensitive_features=data[["site", "sex"]],
                        sample_params={"mean_uncertainty": {"unc": data["entropy"].to_numpy()},
                                       "referral_rate": {"referred": data["flagged"].to_numpy()}})
    rows = table[table["attribute"] == "site x sex"].set_index("group")
    for (site, sex), expected in frame.by_group.iterrows():
        got = rows.loc[f"{site} & {sex}"]
        for metric in METRICS:
            assert got[metric] == pytest.approx(expected[metric], rel=1e-10), (site, sex, metric)


def test_bootstrap_cis_match_fairlearn_within_monte_carlo_tolerance(data, table):
    checked = ("auc", "sensitivity", "ece")  # fairlearn's loop costs ~20 ms a resample per metric
    metrics = {name: fn for name, fn in fast_metrics().items() if name in checked}
    np.testing.assert_allclose(metric_frame(data, "site", metrics).by_group.to_numpy(float),
                               metric_frame(data, "site").by_group[list(checked)].to_numpy(float), rtol=1e-10)
    frame = metric_frame(data, "site", metrics, n_boot=350, ci_quantiles=[0.025, 0.975], random_state=11)
    low, high = frame.by_group_ci
    rows = table[table["attribute"] == "site"].set_index("group").loc[low.index]
    for metric in checked:
        ours_low, ours_high = rows[f"{metric}_ci_low"].to_numpy(float), rows[f"{metric}_ci_high"].to_numpy(float)
        standard_error = (ours_high - ours_low) / 3.92
        assert np.all(standard_error > 0), metric
        tolerance = 0.6 * standard_error  # quantile noise of 2000 + 350 resamples is ~0.16 SE
        np.testing.assert_array_less(np.abs(ours_low - low[metric].to_numpy(float)), tolerance, err_msg=metric)
        np.testing.assert_array_less(np.abs(ours_high - high[metric].to_numpy(float)), tolerance, err_msg=metric)


def test_cluster_bootstrap_keeps_patients_together():
    """With every lesion duplicated under one patient, the CI must be as wide as with one lesion each."""
    single = make_predictions(n=600, seed=5)
    doubled = pd.concat([single, single.assign(case_id=single["case_id"] + "b")], ignore_index=True)
    one = subgroup_table(single, attributes=("sex",), n_boot=800, seed=1, intersections=False)
    two = subgroup_table(doubled, attributes=("sex",), n_boot=800, seed=1, intersections=False)
    width = lambda t: float((t["auc_ci_high"] - t["auc_ci_low"]).iloc[0])  # noqa: E731
    assert width(two) == pytest.approx(width(one), rel=0.15)
    naive = subgroup_table(doubled.assign(patient_id=doubled["case_id"]), attributes=("sex",),
                           n_boot=800, seed=1, intersections=False)
    assert width(naive) < 0.85 * width(one)  # treating duplicates as independent understates uncertainty


def test_benjamini_hochberg_matches_scipy():
    p = np.random.default_rng(0).uniform(0, 0.2, 200)
    p[::7] = np.nan
    finite = np.isfinite(p)
    adjusted = benjamini_hochberg(p)
    np.testing.assert_allclose(adjusted[finite], false_discovery_control(p[finite], method="bh"), rtol=1e-12)
    assert np.isnan(adjusted[~finite]).all()


def test_table_p_bh_is_bh_over_the_whole_table(table):
    p_cols = [c for c in table.columns if "_p_" in c and "_p_bh_" not in c]
    raw = table[p_cols].to_numpy(float).ravel()
    bh = table[[c.replace("_p_", "_p_bh_") for c in p_cols]].to_numpy(float).ravel()
    finite = np.isfinite(raw)
    np.testing.assert_allclose(bh[finite], false_discovery_control(raw[finite]), rtol=1e-12)


def test_bootstrap_p_value_agrees_with_ci():
    rng = np.random.default_rng(0)
    diffs = np.vstack([rng.normal(0.0, 1, 2000), rng.normal(3.0, 1, 2000), rng.normal(-3.0, 1, 2000)])
    p = bootstrap_p_value(diffs)
    assert p[0] > 0.5 and p[1] < 0.01 and p[2] < 0.01


def test_calibration_gap_of_site_c_is_flagged_and_others_are_not(table):
    rows = table[table["attribute"] == "site"].set_index("group")
    assert rows.at["A", "is_reference"] and rows.at["C", "reference_group"] == "A"  # largest group
    assert bool(rows.at["C", "ece_flag_ref"]) and rows.at["C", "ece_diff_ref"] > 0
    assert rows.at["C", "ece_diff_ci_low_ref"] > 0
    assert not rows.at["A", "ece_flag_ref"] and np.isnan(rows.at["A", "ece_p_ref"])
    sex = table[table["attribute"] == "sex"]
    assert not sex["auc_flag_ref"].any()  # no sex effect was simulated
    summary = fairness_summary(table)
    assert any(g["attribute"] == "site" and g["group"] == "C" and g["metric"] == "ece"
               for g in summary["flagged_gaps"])
    assert summary["reference_groups"]["site"] == "A"
    assert summary["worst_groups"]["ece"]["site"]["group"] == "C"
    assert json.loads(json.dumps(summary, allow_nan=False))["settings"]["n_boot"] == 2000


def test_reference_group_is_configurable(data):
    t = subgroup_table(data, attributes=("site",), reference={"site": "C"}, n_boot=50, intersections=False)
    rows = t[t["attribute"] == "site"].set_index("group")
    assert rows.at["C", "is_reference"] and not rows.at["A", "is_reference"]
    assert rows.at["A", "auc_diff_ref"] == pytest.approx(rows.at["A", "auc"] - rows.at["C", "auc"])
    assert rows.at["A", "auc_ratio_ref"] == pytest.approx(rows.at["A", "auc"] / rows.at["C", "auc"])
    with pytest.raises(BsxError, match="'Z' is not a group of 'site'"):
        subgroup_table(data, attributes=("site",), reference={"site": "Z"}, n_boot=10)


def test_small_and_single_class_groups_are_not_estimable(data):
    df = data.copy()
    df.loc[df.index[:20], "site"] = "tiny"
    df.loc[df.index[20:80], "site"] = "benign_only"
    df.loc[df.index[20:80], "truth"] = 0.0
    t = subgroup_table(df, attributes=("site",), n_boot=50, min_size=30, intersections=False)
    rows = t.set_index("group")
    assert rows.at["tiny", "note"].startswith("not estimable: n=20 < min_size=30")
    assert rows.at["benign_only", "note"] == "not estimable: no positive cases"
    for group in ("tiny", "benign_only"):
        assert not rows.at[group, "estimable"]
        values = rows.loc[group, [c for c in t.columns if c.startswith(METRICS)]]
        numeric = values[[c for c in values.index if "flag" not in c]].astype(float)
        assert numeric.isna().all(), group
        assert not values[[c for c in values.index if "flag" in c]].astype(bool).any()
    assert rows.at["tiny", "n"] == 20  # counts stay visible to explain the note


def test_default_attributes_skip_absent_columns_and_derive_age_band(data):
    t = subgroup_table(data.drop(columns=["body_site"]), n_boot=20)
    assert "body_site" not in set(t["attribute"])
    assert t.attrs["settings"]["skipped_attributes"] == ["body_site"]
    bands = t[t["attribute"] == "age_band"]["group"].tolist()
    assert bands == ["0-29", "30-44", "45-59", "60-74", "75-119"]
    assert "sex x skin_type" in set(t["attribute"])


def test_missing_attribute_column_names_it_and_lists_available(data):
    with pytest.raises(BsxError) as info:
        subgroup_table(data, attributes=("site", "ethnicity"))
    assert info.value.column == "ethnicity"
    assert "ethnicity" in str(info.value) and "skin_type" in str(info.value)


def test_attribute_with_one_group_gets_a_note_not_a_comparison(data):
    t = subgroup_table(data.assign(site="A"), attributes=("site", "sex"), n_boot=20)
    row = t[t["attribute"] == "site"].iloc[0]
    assert "only one group" in row["note"] and np.isnan(row["auc_diff_ref"])
    assert row["auc"] == pytest.approx(t[t["attribute"] == "overall"]["auc"].iloc[0])
    assert "site x sex" not in set(t["attribute"])


def test_all_unlabelled_and_errored_rows(data):
    with pytest.raises(BsxError, match="no case has a label"):
        subgroup_table(data.assign(truth=np.nan), attributes=("site",))
    df = data.copy()
    df["error"] = None
    df.loc[df.index[:100], "error"] = "image unreadable"
    df.loc[df.index[100:150], "truth"] = np.nan
    t = subgroup_table(df, attributes=("site",), n_boot=10)
    assert t[t["attribute"] == "overall"]["n"].iloc[0] == len(df) - 150
    assert t.attrs["settings"]["n_error_excluded"] == 100
    assert t.attrs["settings"]["n_unlabelled_excluded"] == 50


def test_seeded_and_csv_round_trip(data, tmp_path):
    a = subgroup_table(data, attributes=("sex",), n_boot=100, seed=7)
    b = subgroup_table(data, attributes=("sex",), n_boot=100, seed=7)
    pd.testing.assert_frame_equal(a, b)
    a.to_csv(tmp_path / "fairness.csv", index=False)
    back = pd.read_csv(tmp_path / "fairness.csv")
    assert list(back.columns) == list(a.columns)
