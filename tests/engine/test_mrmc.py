"""MRMC statistics: every number of the Iowa OR-DBM MRMC 2.51 Van Dyke output, then internal consistency
on FedRoc (5 modalities), Franken (truncated Cov2 - Cov3) and CadLroc (algorithm vs readers).

The expected numbers are parsed from the program's own output file, each compared at the precision it
is printed with.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from tests.conftest import READER_STUDIES
from sklearn.metrics import cohen_kappa_score, roc_auc_score

from cohorts.errors import BsxError
from engine.mrmc import (
    MrmcData, analyze_mrmc, cohen_kappa, delong_covariance, empirical_auc, fleiss_kappa,
    icc_absolute_agreement, jackknife_aucs, wilson_interval,
)
from engine.readers.interchange import from_mrmc_data, read_ratings, to_mrmc_data

DATA = READER_STUDIES
VANDYKE = DATA / "vandyke"
EXPECTED = VANDYKE / "expected_ORDBM-MRMC-2.51_VanDyke_trap_jackknife.txt"
NUM = r"(-?\d*\.\d+|-?\d+)"

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="shared reader-study data not mounted")


def close_to_printed(value: float, printed: str) -> bool:
    """True when `value` rounds to the printed number at its printed precision."""
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return abs(value - float(printed)) <= 0.5 * 10 ** -decimals + 1e-12


def check(value: float, printed: str, what: str) -> None:
    assert close_to_printed(value, printed), f"{what}: computed {value!r}, OR-DBM MRMC printed {printed}"


@pytest.fixture(scope="module")
def expected() -> dict[str, str]:
    """Sections of the reference output, split at their headers."""
    text = EXPECTED.read_text()
    parts = re.split(r"\*{5}\s+(.+?)\s+\*{5}", text)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


@pytest.fixture(scope="module")
def vandyke():
    data = to_mrmc_data(read_ratings(VANDYKE / "VanDyke_dataset02.csv"))
    return data, analyze_mrmc(data)


def rows(section: str, pattern: str) -> list[tuple[str, ...]]:
    found = re.findall(pattern, section, flags=re.MULTILINE)
    assert found, f"pattern {pattern!r} not found in the reference output"
    return found


def test_vandyke_estimates(expected, vandyke):
    _, result = vandyke
    sec = expected["Estimates"]
    auc_rows = rows(sec, r"^\s+(\d)\s+(0\.\d{8})\s+(0\.\d{8})\s*$")
    assert len(auc_rows) == 5
    for reader, a1, a2 in auc_rows:
        j = int(reader) - 1
        check(result.auc[0, j], a1, f"AUC reader {reader} treatment 1")
        check(result.auc[1, j], a2, f"AUC reader {reader} treatment 2")
    means = rows(sec.split("TREATMENT AUC MEANS")[1], r"^\s+(\d)\s+(0\.\d{8})\s*$")
    for t, m in means:
        check(result.mean_auc[int(t) - 1], m, f"mean AUC treatment {t}")
    (diff,) = rows(sec, rf"1 - 2\s+{NUM}")
    check(result.rrrc.differences[0].estimate, diff, "difference")


def test_vandyke_anova(expected, vandyke):
    _, result = vandyke
    sec, reader_sec = expected["ANOVA Tables (OR analysis of reader AUCs)"].split("READER ANOVAs")
    a = result.anova
    for source, (ss, df, ms) in zip(("T", "R", "T*R"), ((a.ss_t, a.df_t, a.ms_t), (a.ss_r, a.df_r, a.ms_r),
                                                        (a.ss_tr, a.df_tr, a.ms_tr))):
        (row,) = rows(sec, rf"^\s+{re.escape(source)}\s+{NUM}\s+{NUM}\s+{NUM}\s*$")
        check(ss, row[0], f"SS {source}")
        check(df, row[1], f"df {source}")
        check(ms, row[2], f"MS {source}")
    ((df, ms1, ms2),) = rows(reader_sec, rf"^\s+R\s+(\d)\s+{NUM}\s+{NUM}\s*$")
    check(a.ms_r_by_modality[0], ms1, "MS(R) treatment 1")
    check(a.ms_r_by_modality[1], ms2, "MS(R) treatment 2")


def test_vandyke_variance_components(expected, vandyke):
    _, result = vandyke
    sec = expected["Variance component and error-covariance estimates"]
    or_part, dbm_part = sec.split("Corresponding DBM")
    vc = result.components
    for label, value in (("Var(R)", vc.var_r), ("Var(T*R)", vc.var_tr), ("Var(Error)", vc.var_error)):
        (printed,) = rows(or_part, rf"^\s*{re.escape(label)}\s+{NUM}\s*$")
        check(value, printed, f"OR {label}")
    for k, (cov, corr) in enumerate(((vc.cov1, vc.corr1), (vc.cov2, vc.corr2), (vc.cov3, vc.corr3)), start=1):
        ((p_cov, p_corr),) = rows(or_part, rf"^\s*COV{k}\s+{NUM}\s+{NUM}\s*$")
        check(cov, p_cov, f"Cov{k}")
        check(corr, p_corr, f"correlation {k}")
    dbm = result.dbm
    for label, value in (("Var(R)", dbm.var_r), ("Var(C)", dbm.var_c), ("Var(T*R)", dbm.var_tr),
                         ("Var(T*C)", dbm.var_tc), ("Var(R*C)", dbm.var_rc),
                         ("Var(T*R*C) + Var(Error)", dbm.var_error)):
        (printed,) = rows(dbm_part, rf"^\s*{re.escape(label)}\s+{NUM}\s*$")
        check(value, printed, f"DBM {label}")


def _difference_row(section: str) -> tuple[str, ...]:
    (row,) = rows(section, rf"^\s+1 - 2\s+{NUM}\s+{NUM}\s+(?:{NUM}\s+)?{NUM}\s+{NUM}\s+\(\s*{NUM}\s*,\s*{NUM}\)")
    return row


def test_vandyke_random_readers_random_cases(expected, vandyke):
    _, result = vandyke
    sec = expected["Analysis 1 (OR Analysis): Random Readers and Random Cases"]
    test = result.rrrc.global_test
    ((df_num, ms_t, f, p),) = rows(sec, rf"^\s+Treatment\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}\s*$")
    check(test.df_num, df_num, "df num")
    check(result.anova.ms_t, ms_t, "MS(T)")
    check(test.value, f, "F")
    check(test.p, p, "p")
    ((ddf, term),) = rows(sec, rf"^\s+Error term\s+{NUM}\s+{NUM}\s*$")
    check(test.df_den, ddf, "ddf")
    check(test.error_term, term, "error term")
    d = result.rrrc.differences[0]
    diff, se, df, t, pd_, lo, hi = _difference_row(sec)
    for value, printed, what in ((d.estimate, diff, "difference"), (d.se, se, "SE"), (d.df, df, "df"),
                                 (d.value, t, "t"), (d.p, pd_, "p"), (d.ci[0], lo, "CI low"), (d.ci[1], hi, "CI high")):
        check(value, printed, f"RRRC difference {what}")
    single = rows(sec, rf"^\s+(\d)\s+{NUM}\s+{NUM}\s+{NUM}\s+\({NUM}\s*,\s*{NUM}\)\s+{NUM}\s*$")
    assert len(single) == 2
    for t_id, auc, se, df, lo, hi, cov2 in single:
        s = result.rrrc.single_modality[int(t_id) - 1]
        for value, printed, what in ((s.auc, auc, "AUC"), (s.se, se, "SE"), (s.df, df, "df"), (s.ci[0], lo, "CI low"),
                                     (s.ci[1], hi, "CI high"), (s.cov2, cov2, "Cov2")):
            check(value, printed, f"RRRC single treatment {t_id} {what}")


def test_vandyke_fixed_readers_random_cases(expected, vandyke):
    _, result = vandyke
    sec = expected["Analysis 2 (OR Analysis): Fixed Readers and Random Cases"]
    test = result.frrc.global_test
    ((x2, df, p),) = rows(sec, rf"^\s+{NUM}\s+(\d)\s+{NUM}\s*$")
    check(test.value, x2, "X2")
    check(test.df_num, df, "df")
    check(test.p, p, "p")
    d = result.frrc.differences[0]
    diff, se, no_df, z, pz, lo, hi = _difference_row(sec.split("c) Single")[0])
    assert no_df == ""  # z test: OR-DBM prints no df
    for value, printed, what in ((d.estimate, diff, "difference"), (d.se, se, "SE"), (d.value, z, "z"),
                                 (d.p, pz, "p"), (d.ci[0], lo, "CI low"), (d.ci[1], hi, "CI high")):
        check(value, printed, f"FRRC difference {what}")
    part_c = sec.split("c) Single")[1].split("d) Single")[0]
    single = rows(part_c, rf"^\s+(\d)\s+{NUM}\s+{NUM}\s+\({NUM}\s*,\s*{NUM}\)\s*$")
    for t_id, auc, se, lo, hi in single:
        s = result.frrc.single_modality[int(t_id) - 1]
        for value, printed, what in ((s.auc, auc, "AUC"), (s.se, se, "SE"), (s.ci[0], lo, "CI low"),
                                     (s.ci[1], hi, "CI high")):
            check(value, printed, f"FRRC single treatment {t_id} {what}")
    var_cov = rows(part_c, rf"^\s+(\d)\s+{NUM}\s+{NUM}\s*$")
    assert len(var_cov) == 2
    for t_id, var, cov2 in var_cov:
        s = result.frrc.single_modality[int(t_id) - 1]
        check(s.var_error, var, f"Var(Error) treatment {t_id}")
        check(s.cov2, cov2, f"Cov2 treatment {t_id}")
    part_d = sec.split("d) Single")[1]
    per_reader = rows(part_d, rf"^\s+(\d)\s+1 - 2\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}\s+\(\s*{NUM}\s*,\s*{NUM}\)")
    assert len(per_reader) == 5
    for reader, diff, se, z, p, lo, hi in per_reader:
        sr = result.frrc.single_reader[int(reader) - 1].difference
        for value, printed, what in ((sr.estimate, diff, "difference"), (sr.se, se, "SE"), (sr.value, z, "z"),
                                     (sr.p, p, "p"), (sr.ci[0], lo, "CI low"), (sr.ci[1], hi, "CI high")):
            check(value, printed, f"FRRC reader {reader} {what}")
    var_cov1 = rows(part_d, rf"^\s+(\d)\s+{NUM}\s+{NUM}\s*$")
    assert len(var_cov1) == 5
    for reader, var, cov1 in var_cov1:
        sr = result.frrc.single_reader[int(reader) - 1]
        check(sr.var_error, var, f"Var(Error) reader {reader}")
        check(sr.cov1, cov1, f"Cov1 reader {reader}")


def test_vandyke_random_readers_fixed_cases(expected, vandyke):
    _, result = vandyke
    sec = expected["Analysis 3 (OR Analysis): Random Readers and Fixed Cases"]
    test = result.rrfc.global_test
    ((df_num, ms_t, f, p),) = rows(sec, rf"^\s+Treatment\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}\s*$")
    check(test.df_num, df_num, "df num")
    check(test.value, f, "F")
    check(test.p, p, "p")
    ((df_den, ms_tr),) = rows(sec, rf"^\s+T\*R\s+{NUM}\s+{NUM}\s*$")
    check(test.df_den, df_den, "ddf")
    check(test.error_term, ms_tr, "MS(T*R)")
    d = result.rrfc.differences[0]
    diff, se, df, t, p2, lo, hi = _difference_row(sec)
    for value, printed, what in ((d.estimate, diff, "difference"), (d.se, se, "SE"), (d.df, df, "df"),
                                 (d.value, t, "t"), (d.p, p2, "p"), (d.ci[0], lo, "CI low"), (d.ci[1], hi, "CI high")):
        check(value, printed, f"RRFC difference {what}")
    single = rows(sec, rf"^\s+(\d)\s+{NUM}\s+{NUM}\s+{NUM}\s+{NUM}\s+\({NUM}\s*,\s*{NUM}\)\s*$")
    assert len(single) == 2
    for t_id, auc, ms_r, se, df, lo, hi in single:
        s = result.rrfc.single_modality[int(t_id) - 1]
        for value, printed, what in ((s.auc, auc, "AUC"), (s.ms_r, ms_r, "MS(R)"), (s.se, se, "SE"), (s.df, df, "df"),
                                     (s.ci[0], lo, "CI low"), (s.ci[1], hi, "CI high")):
            check(value, printed, f"RRFC single treatment {t_id} {what}")


def test_close_to_printed_can_fail():
    assert close_to_printed(0.0517, "0.0517")
    assert not close_to_printed(0.0518, "0.0517")
    assert not close_to_printed(15.27, "15.26")


@pytest.mark.parametrize("name", ["VanDyke_dataset02.imrmc", "VanDyke_dataset02.lrc"])
def test_all_three_formats_give_the_same_analysis(vandyke, name):
    _, reference = vandyke
    result = analyze_mrmc(to_mrmc_data(read_ratings(VANDYKE / name)))
    np.testing.assert_allclose(result.auc, reference.auc, rtol=0, atol=1e-12)
    assert result.rrrc.global_test.value == pytest.approx(reference.rrrc.global_test.value, rel=1e-12)


# ---------------------------------------------------------------- building blocks against independent code

def test_auc_and_jackknife_match_sklearn_recomputation(vandyke):
    data, _ = vandyke
    auc = empirical_auc(data.ratings, data.truth)
    assert auc[1, 3] == pytest.approx(roc_auc_score(data.truth, data.ratings[1, 3]))
    leave_out = jackknife_aucs(data.ratings, data.truth)
    for k in (0, 50, 80, 113):
        keep = np.arange(len(data.truth)) != k
        assert leave_out[0, 2, k] == pytest.approx(roc_auc_score(data.truth[keep], data.ratings[0, 2, keep]))


def test_delong_covariance_matches_explicit_kernel():
    rng = np.random.default_rng(3)
    truth = np.r_[np.zeros(15, int), np.ones(12, int)]
    ratings = np.round(rng.normal(size=(2, 27)) + truth, 1)
    x1, x0 = ratings[:, truth == 1], ratings[:, truth == 0]
    psi = (x1[:, :, None] > x0[:, None, :]) + 0.5 * (x1[:, :, None] == x0[:, None, :])
    v10, v01 = psi.mean(axis=2), psi.mean(axis=1)
    explicit = np.cov(v10) / 12 + np.cov(v01) / 15
    np.testing.assert_allclose(delong_covariance(ratings, truth), explicit, rtol=1e-12)


def test_delong_option_runs_and_differs_from_jackknife(vandyke):
    data, jack = vandyke
    delong = analyze_mrmc(data, covariance="delong")
    np.testing.assert_allclose(delong.auc, jack.auc)
    assert delong.covariances.var_error != pytest.approx(jack.covariances.var_error, rel=1e-6)
    assert delong.covariances.var_error == pytest.approx(jack.covariances.var_error, rel=0.1)
    assert delong.dbm is None


# ---------------------------------------------------------------- internal consistency on the other studies

def load(name: str) -> MrmcData:
    files = {"fedroc": "fedroc/FedRoc_long.csv", "franken": "franken/Franken_MRMCaov.csv",
             "cadlroc": "cadlroc/CadLroc_as_ROC_long.csv"}
    return to_mrmc_data(read_ratings(DATA / files[name]))


@pytest.mark.parametrize("name", ["vandyke", "fedroc", "franken"])
def test_dbm_and_or_agree_for_random_readers_and_cases(name, vandyke):
    data = vandyke[0] if name == "vandyke" else load(name)
    result = analyze_mrmc(data)
    or_test, dbm_test = result.rrrc.global_test, result.dbm.rrrc
    assert dbm_test.value == pytest.approx(or_test.value, rel=1e-9)
    assert dbm_test.df_den == pytest.approx(or_test.df_den, rel=1e-9)
    assert dbm_test.p == pytest.approx(or_test.p, rel=1e-9)
    assert result.dbm.var_r == pytest.approx(result.components.var_r, rel=1e-9)
    assert result.dbm.var_tr == pytest.approx(result.components.var_tr, rel=1e-9)
    for o, d in zip(result.rrrc.differences, result.dbm.rrrc_differences):
        assert d.se == pytest.approx(o.se, rel=1e-9)
        assert d.ci == pytest.approx(o.ci, rel=1e-9)
    # fixed cases: DBM's MS(T)/MS(TR) on pseudovalues is OR's RRFC F
    assert result.dbm.rrfc.value == pytest.approx(result.rrfc.global_test.value, rel=1e-9)


def test_fedroc_five_modalities_all_pairs():
    data = load("fedroc")
    assert data.ratings.shape == (5, 4, 200)
    result = analyze_mrmc(data)
    assert len(result.rrrc.differences) == 10
    assert result.rrrc.global_test.df_num == 4
    doc = result.to_json()
    assert len(doc["comparisons"]) == 10
    pair = doc["comparisons"][0]
    assert {"a", "b", "difference", "rrrc", "frrc", "rrfc"} <= set(pair)
    assert {"t", "df", "p", "se", "ci"} <= set(pair["rrrc"]) and "chi2" in pair["frrc"]
    assert {"f", "df_num", "df_den", "p"} <= set(doc["global"]["rrrc"]) and "chi2" in doc["global"]["frrc"]
    for d in result.rrrc.differences:
        i, j = data.modalities.index(d.a), data.modalities.index(d.b)
        assert d.estimate == pytest.approx(result.mean_auc[i] - result.mean_auc[j])
        assert d.ci[0] < d.estimate < d.ci[1]


def test_franken_truncates_negative_cov2_minus_cov3():
    result = analyze_mrmc(load("franken"))
    cov = result.covariances
    assert cov.cov2 - cov.cov3 < 0, "Franken is the dataset with a negative Cov2 - Cov3 estimate"
    test = result.rrrc.global_test
    assert test.error_term == pytest.approx(result.anova.ms_tr)  # r * max(Cov2 - Cov3, 0) = 0
    assert test.df_den == pytest.approx(result.anova.df_tr)  # Hillis ddf collapses to (t-1)(r-1)


@pytest.mark.parametrize("name", ["fedroc", "franken"])
def test_invariant_to_relabelling_readers_and_cases(name):
    data = load(name)
    base = analyze_mrmc(data).to_json()
    frame = from_mrmc_data(data)
    rng = np.random.default_rng(7)
    reader_map = dict(zip(data.readers, [f"R{k}" for k in rng.permutation(len(data.readers))]))
    case_map = dict(zip(data.cases, [f"case-{k}" for k in rng.permutation(len(data.cases))]))
    shuffled = frame.assign(reader=frame["reader"].map(reader_map), case=frame["case"].map(case_map))
    shuffled = shuffled.sample(frac=1.0, random_state=11).reset_index(drop=True)
    moved = analyze_mrmc(to_mrmc_data(shuffled)).to_json()
    for m in data.modalities:
        for r in data.readers:
            assert moved["auc"][m][reader_map[r]] == pytest.approx(base["auc"][m][r], abs=1e-12)
    moved_pairs = {(c["a"], c["b"]): c for c in moved["comparisons"]}
    for a in base["comparisons"]:
        # row order decides modality order, so a pair may come back as b - a: sign flips, nothing else
        flipped = (a["a"], a["b"]) not in moved_pairs
        b = moved_pairs[(a["b"], a["a"]) if flipped else (a["a"], a["b"])]
        sign = -1.0 if flipped else 1.0
        assert b["difference"] == pytest.approx(sign * a["difference"], rel=1e-9)
        for design in ("rrrc", "frrc", "rrfc"):
            assert b[design]["p"] == pytest.approx(a[design]["p"], rel=1e-9)
            assert b[design]["se"] == pytest.approx(a[design]["se"], rel=1e-9)
            ci = sorted(sign * x for x in a[design]["ci"])
            assert b[design]["ci"] == pytest.approx(ci, rel=1e-9)
    for design in ("rrrc", "frrc", "rrfc"):
        assert moved["global"][design]["p"] == pytest.approx(base["global"][design]["p"], rel=1e-9)


def test_algorithm_vs_readers_on_cad_dataset():
    data = load("cadlroc")
    result = analyze_mrmc(data, algorithm_reader="1")
    assert result.readers == [str(k) for k in range(2, 11)]
    (alg,) = result.algorithm
    assert alg.auc == pytest.approx(roc_auc_score(data.truth, data.ratings[0, 0]))
    assert alg.mean_reader_auc == pytest.approx(result.mean_auc[0])
    assert alg.difference == pytest.approx(alg.auc - alg.mean_reader_auc)
    # RRFC is a one-sample t test of the per-reader differences over readers
    diffs = alg.auc - alg.reader_auc
    from scipy import stats
    ttest = stats.ttest_1samp(diffs, 0.0)
    assert alg.rrfc.p == pytest.approx(ttest.pvalue, rel=1e-9)
    assert alg.rrfc.df == 8
    # RRRC adds case variability: never a smaller SE than fixed cases, Hillis df at least r - 1
    assert alg.rrrc.se >= alg.rrfc.se
    assert alg.rrrc.df >= 8
    assert alg.rrrc.ci[0] < alg.difference < alg.rrrc.ci[1]
    doc = result.to_json()["algorithm"]
    assert {"auc", "mean_reader_auc", "difference", "rrrc", "rrfc"} <= set(doc)


def test_algorithm_vs_readers_equals_or_single_modality_on_differences():
    """1T-RRRC analysed by hand: OR single-treatment CI of D_j = A - R_j with jackknife covariance."""
    data = load("cadlroc")
    alg = analyze_mrmc(data, algorithm_reader="1").algorithm[0]
    leave_out = jackknife_aucs(data.ratings[0], data.truth)
    d_leave_out = leave_out[0][None, :] - leave_out[1:]
    c = d_leave_out.shape[1]
    cov = (c - 1) * np.cov(d_leave_out, ddof=0)  # (c-1)/c * sum of cross-products
    r = cov.shape[0]
    cov2 = cov[~np.eye(r, dtype=bool)].mean()
    ms_r = np.var(alg.auc - alg.reader_auc, ddof=1)
    se = np.sqrt((ms_r + r * max(cov2, 0)) / r)
    assert alg.rrrc.se == pytest.approx(se, rel=1e-9)


def test_one_reader_and_one_modality_follow_the_method(vandyke):
    data, _ = vandyke
    one_reader = analyze_mrmc(data.select(readers=["2"]))
    assert one_reader.rrrc.global_test is None and one_reader.rrfc.global_test is None
    assert one_reader.frrc.global_test is not None and np.isfinite(one_reader.frrc.global_test.p)
    d = one_reader.frrc.differences[0]
    single_reader = analyze_mrmc(data).frrc.single_reader[2].difference
    assert d.se == pytest.approx(single_reader.se) and d.p == pytest.approx(single_reader.p)
    assert any("one reader" in w for w in one_reader.warnings)
    one_modality = analyze_mrmc(data.select(modalities=["1"]))
    assert one_modality.rrrc.differences == [] and one_modality.to_json()["global"] is None
    s = one_modality.rrrc.single_modality[0]
    assert s.ci[0] < s.auc < s.ci[1]


def test_constant_reader_is_reported_not_hidden(vandyke):
    data, _ = vandyke
    ratings = data.ratings.copy()
    ratings[0, 1] = 3.0
    result = analyze_mrmc(MrmcData(ratings, data.truth, data.modalities, data.readers, data.cases))
    assert result.auc[0, 1] == 0.5
    assert any("reader 1" in w and "same rating" in w for w in result.warnings)


def test_data_validation_refuses_what_cannot_be_analysed():
    ratings = np.ones((1, 2, 4))
    with pytest.raises(BsxError, match="all 4 cases are normal"):
        MrmcData(ratings, np.zeros(4), ["m"], ["a", "b"], list("wxyz"))
    with pytest.raises(BsxError, match="missing"):
        MrmcData(np.where(np.arange(4) == 1, np.nan, 1.0)[None, None].repeat(2, 1), np.array([0, 0, 1, 1]),
                 ["m"], ["a", "b"], list("wxyz"))
    with pytest.raises(BsxError, match="unknown covariance"):
        analyze_mrmc(MrmcData(np.arange(8.0).reshape(1, 2, 4), np.array([0, 0, 1, 1]), ["m"], ["a", "b"],
                              list("wxyz")), covariance="bootstrap")


# ---------------------------------------------------------------- operating points and agreement

def test_operating_points_and_wilson():
    result = analyze_mrmc(load("franken"), threshold=3)
    point = result.operating_points[0]
    assert point.true_positives + point.false_negatives == result.to_json()["n_abnormal"]
    assert point.sensitivity == pytest.approx(point.true_positives / (point.true_positives + point.false_negatives))
    lo, hi = wilson_interval(point.true_positives, point.true_positives + point.false_negatives)
    assert lo < point.sensitivity < hi
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0, abs=1e-12)
    # textbook value: 8/10 -> (0.4902, 0.9433)
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)


def test_kappa_and_icc_against_independent_formulas():
    rng = np.random.default_rng(5)
    a = rng.integers(1, 6, 80)
    b = np.where(rng.random(80) < 0.6, a, rng.integers(1, 6, 80))
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    # Fleiss (1971) worked example as a table of counts -> expand to labels
    counts = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                       [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
    labels = np.stack([np.repeat(np.arange(5), row) for row in counts], axis=1)
    assert fleiss_kappa(labels) == pytest.approx(0.210, abs=1e-3)
    # Shrout & Fleiss (1979) table: ICC(2,1) = 0.29
    sf = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
    assert icc_absolute_agreement(sf) == pytest.approx(0.29, abs=5e-3)


def test_perfect_separation_leaves_tests_undefined_and_says_so():
    truth = np.r_[0, 0, 0, 1, 1, 1]
    ratings = np.array([[1, 2, 3, 7, 8, 9], [1, 3, 2, 9, 8, 7]], float)[None].repeat(2, axis=0)
    result = analyze_mrmc(MrmcData(ratings, truth, ["a", "b"], ["x", "y"], list("123456")))
    assert np.all(result.auc == 1.0)
    assert np.isnan(result.frrc.global_test.p) and np.isnan(result.rrrc.global_test.p)
    assert any("no case-sampling variance" in w for w in result.warnings)
    assert result.to_json()["global"]["rrrc"]["p"] is None
