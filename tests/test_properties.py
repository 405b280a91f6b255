"""Property-based fuzzing: the CSV reader and load_cohort raise nothing but BsxError on any generic CSV,
and the metric functions never raise on finite input and stay within their mathematical bounds."""
from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cohorts.cohort import load_cohort
from cohorts.csvfile import read_table
from cohorts.errors import BsxError
from engine import metrics
from tests.corpus.make_corpus import GENERIC_HEADER

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CELL = st.one_of(
    st.sampled_from(["", "NaN", "nan", "None", "unknown", "1", "0", "-3", "1e308", "True", "melanoma", "nevus",
                     "M", "f", "IV", "4.0", "images/a.jpg", "../x.jpg", "/etc/passwd", "a,b", '"q"', "\t", " "]),
    st.text(max_size=12),
)
HEADER = st.lists(st.sampled_from(GENERIC_HEADER + ["malignant", "notes", "", "Image_Path", "case_id"]),
                  min_size=0, max_size=13)


@st.composite
def csv_bytes(draw) -> bytes:
    """A generic-ish CSV: a header drawn from real and junk column names, rows of hostile cells."""
    header = draw(st.one_of(st.just(list(GENERIC_HEADER)), HEADER))
    width = max(len(header), 1)
    rows = draw(st.lists(st.lists(CELL, min_size=0, max_size=width + 2), max_size=6))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    lines = [delimiter.join(header)] + [delimiter.join(row) for row in rows]
    text = draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.booleans()):
        data += draw(st.binary(max_size=20))
    return data


def _write(data: bytes) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="bsx-fuzz-"))
    (folder / "images").mkdir()
    (folder / "images" / "a.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    path = folder / "cohort.csv"
    path.write_bytes(data)
    return path


@FUZZ
@given(data=csv_bytes())
def test_read_table_raises_only_bsx_error(data: bytes):
    problems: list = []
    try:
        frame = read_table(_write(data), ["image_path"], problems)
    except BsxError as exc:
        assert str(exc)
        return
    assert len(frame) > 0 and "image_path" in frame.columns
    assert all(p.severity in ("error", "warning") for p in problems)


@FUZZ
@given(data=csv_bytes(), images=st.booleans())
def test_load_cohort_raises_only_bsx_error(data: bytes, images: bool):
    path = _write(data)
    before = sorted(p.name for p in path.parent.rglob("*"))
    try:
        cohort = load_cohort(path, layout="generic", images=images)
    except BsxError as exc:
        assert str(exc)
        return
    finally:
        assert sorted(p.name for p in path.parent.rglob("*")) == before
    assert len(cohort.usable_cases) <= len(cohort.cases)
    assert cohort.summary()["cases"] == len(cohort.cases)
    for problem in cohort.problems:
        assert problem.file and problem.severity in ("error", "warning")


# ------------------------------------------------------------------ metrics
FINITE = st.floats(allow_nan=False, allow_infinity=False, width=64)
PROB = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def labelled_scores(draw, scores=FINITE, min_each: int = 2):
    n = draw(st.integers(max(1, 2 * min_each), 40))
    y = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    assume(sum(y) >= min_each and n - sum(y) >= min_each)
    p = draw(st.lists(scores, min_size=n, max_size=n))
    return np.array(y), np.array(p)


def _in_unit(x: float) -> bool:
    return 0.0 - 1e-12 <= x <= 1.0 + 1e-12


@FUZZ
@given(data=labelled_scores())
def test_auc_and_delong_ci_within_bounds(data):
    y, p = data
    auc, var = metrics.auc_delong(y, p)
    assert _in_unit(auc) and var >= -1e-12 and math.isfinite(var)
    estimate = metrics.auc_ci(y, p)
    lo, hi = estimate.ci
    assert 0.0 <= lo <= estimate.value + 1e-12 and estimate.value - 1e-12 <= hi <= 1.0
    flipped, _ = metrics.auc_delong(y, -p)
    assert flipped == pytest.approx(1.0 - auc, abs=1e-9)


@FUZZ
@given(data=labelled_scores(), other=st.lists(FINITE, min_size=40, max_size=40))
def test_paired_delong_difference_within_bounds(data, other):
    y, p = data
    estimate = metrics.delong_paired_difference(y, p, np.array(other[: len(y)]))
    assert -1.0 - 1e-12 <= estimate.value <= 1.0 + 1e-12
    lo, hi = estimate.ci
    assert lo <= estimate.value + 1e-12 <= hi + 2e-12
    p_value = estimate.details["p_value"]
    assert p_value is None or 0.0 <= p_value <= 1.0


@FUZZ
@given(data=labelled_scores(min_each=1), target=PROB)
def test_roc_and_operating_points_within_bounds(data, target):
    y, p = data
    fpr, tpr, thresholds = metrics.roc_points(y, p)
    assert fpr[0] == tpr[0] == 0.0 and fpr[-1] == tpr[-1] == 1.0
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    sens, _ = metrics.sensitivity_at_specificity(y, p, target)
    spec, _ = metrics.specificity_at_sensitivity(y, p, target)
    assert _in_unit(sens) and _in_unit(spec)


@FUZZ
@given(n=st.integers(0, 10**6), data=st.data(), alpha=st.floats(1e-6, 0.999))
def test_wilson_interval_contains_estimate(n, data, alpha):
    k = data.draw(st.integers(0, n))
    estimate = metrics.proportion(k, n, alpha)
    if n == 0:
        assert estimate.value is None
        return
    lo, hi = estimate.ci
    assert 0.0 <= lo <= k / n + 1e-12 and k / n - 1e-12 <= hi <= 1.0


@FUZZ
@given(data=labelled_scores(scores=PROB, min_each=0), bins=st.integers(1, 30),
       strategy=st.sampled_from(["equal_width", "equal_mass"]))
def test_calibration_metrics_within_bounds(data, bins, strategy):
    y, p = data
    assert _in_unit(metrics.brier_score(p, y))
    assert _in_unit(metrics.expected_calibration_error(p, y, bins, strategy))
    table = metrics.reliability_bins(p, y, bins, strategy)
    assert sum(row["n"] for row in table) == len(y)
    for row in table:
        for key in ("mean_pred", "frac_pos"):
            assert row[key] is None or _in_unit(row[key])


@FUZZ
@given(probs=st.lists(st.lists(PROB, min_size=3, max_size=3), min_size=1, max_size=20), data=st.data())
def test_multiclass_brier_within_bounds(probs, data):
    p = np.array(probs)
    p = np.where(p.sum(1, keepdims=True) > 0, p / np.maximum(p.sum(1, keepdims=True), 1e-300), 1 / 3)
    labels = data.draw(st.lists(st.integers(0, 2), min_size=len(p), max_size=len(p)))
    assert 0.0 <= metrics.brier_score(p, labels) <= 2.0 + 1e-9
