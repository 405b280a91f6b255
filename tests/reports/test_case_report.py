"""The case report: image, prediction, MC histogram and uncertainty of one case; bad ids; escaping; CLI."""
from __future__ import annotations

import pandas as pd
import pytest

from cohorts.errors import BsxError
from engine.runfolder import safe_case_filename
from reports.case import render_case_report
from tests.reports.conftest import pdf_text


def _flagged(run) -> pd.Series:
    frame = pd.read_parquet(run / "predictions.parquet")
    return frame[frame["flagged"]].iloc[0]


def test_case_report_content(run_copy):
    row = _flagged(run_copy)
    pdf = render_case_report(run_copy, row["case_id"])
    assert pdf == run_copy / "cases" / f"{safe_case_filename(row['case_id'])}.pdf"
    text = pdf_text(pdf)
    for expected in ("Case report", row["case_id"], "Not a diagnostic device", "MC Dropout probabilities",
                     "Uncertainty", "Reader ratings", "Dermoscopy image", "Grad-CAM overlay"):
        assert expected in text, expected
    assert f"{row['p_mean']:.4f}" in text
    assert f"{row['entropy']:.4f}" in text
    assert f"{row['mutual_info']:.5f}" in text
    assert "Flagged for referral yes" in text


def test_unknown_case_is_a_clear_error(run_copy):
    with pytest.raises(BsxError) as info:
        render_case_report(run_copy, "no-such-case")
    assert "no-such-case" in str(info.value)


def test_case_id_markup_is_escaped(run_copy):
    path = run_copy / "predictions.parquet"
    frame = pd.read_parquet(path)
    hostile = "<b>x&y</b>"
    frame.loc[0, "case_id"] = hostile
    frame.to_parquet(path, index=False)
    pdf = render_case_report(run_copy, hostile, run_copy / "hostile.pdf")
    assert hostile in pdf_text(pdf)


def test_cli_case_report(run_copy, tmp_path):
    from tui.cli import main

    row = _flagged(run_copy)
    out = tmp_path / "case.pdf"
    assert main(["report", str(run_copy), "--case", row["case_id"], "--out", str(out)]) == 0
    assert out.read_bytes().startswith(b"%PDF")
    assert main(["report", str(run_copy), "--case", "missing-id"]) == 2
