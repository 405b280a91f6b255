"""The validation report: every section, the key numbers of metrics.json, absent parts, bad input, escaping."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from cohorts.errors import BsxError
from reports.sections import SECTION_TITLES
from reports.validation import render_validation_report
from tests.reports.conftest import copy_run, pdf_text


@pytest.fixture(scope="module")
def rendered(tiny_run, tmp_path_factory):
    run = copy_run(tiny_run, tmp_path_factory.mktemp("report") / "run")
    pdf = render_validation_report(run)
    return run, pdf, pdf_text(pdf)


def _formatted(entry: dict) -> str:
    """Independent of reports.styles: value [lo, hi] to three decimals."""
    lo, hi = entry["ci"]
    return f"{entry['value']:.3f} [{lo:.3f}, {hi:.3f}]"


def test_default_path_and_pdf(rendered):
    run, pdf, _ = rendered
    assert pdf == run / "report.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")


def test_every_section_title_is_present(rendered):
    _, _, text = rendered
    for title in SECTION_TITLES:
        assert title in text, title
    assert "Contents" in text
    assert "Not a diagnostic device" in text


def test_key_numbers_equal_metrics_json(rendered):
    run, _, text = rendered
    metrics = json.loads((run / "metrics.json").read_text())
    integrity = json.loads((run / "integrity.json").read_text())
    assert _formatted(metrics["overall"]["auc"]) in text
    assert _formatted(metrics["overall"]["sensitivity"]) in text
    assert f"Integrity {integrity['score']:.0f}/100" in text
    assert f"{metrics['n_cases']:,} cases" in text
    confusion = metrics["confusion"]
    sens = metrics["overall"]["sensitivity"]
    assert f"{sens['k']}/{sens['n']}" in text
    assert confusion["tp"] == sens["k"]


def test_page_numbers_on_every_page(rendered):
    from pypdf import PdfReader

    _, pdf, _ = rendered
    pages = PdfReader(str(pdf)).pages
    assert len(pages) > 5
    for number, page in enumerate(pages, start=1):
        assert f"Page {number}" in page.extract_text()


def test_data_appendix_holds_the_tables(rendered):
    run, _, _ = rendered
    data = run / "report_data"
    metrics = json.loads((run / "metrics.json").read_text())
    table = pd.read_csv(data / "metrics.csv")
    auc_row = table[table["Metric"] == "AUC (ROC)"].iloc[0]
    assert float(auc_row["Value"]) == pytest.approx(metrics["overall"]["auc"]["value"], abs=5e-4)
    index = json.loads((data / "tables.json").read_text())
    names = {t["name"] for t in index}
    assert {"summary", "metrics", "demographics", "integrity_checks", "checklist", "traceability"} <= names
    assert all((data / f"{name}.csv").is_file() for name in names)
    assert "roc" in json.loads((data / "charts.json").read_text())


def test_missing_optional_parts_are_named(run_copy):
    for name in ("drift.json", "fairness.csv"):
        (run_copy / name).unlink()
    shutil.rmtree(run_copy / "gradcam", ignore_errors=True)
    text = pdf_text(render_validation_report(run_copy))
    assert "Section not available" in text
    assert "drift.json is not in the run folder" in text
    assert "fairness.csv is not in the run folder" in text
    assert "no Grad-CAM overlays" in text
    for title in SECTION_TITLES:
        assert title in text


@pytest.mark.parametrize("required", ["predictions.parquet", "metrics.json", "run.json"])
def test_missing_required_part_is_a_clear_error(run_copy, required):
    (run_copy / required).unlink()
    with pytest.raises(BsxError) as info:
        render_validation_report(run_copy)
    assert required in str(info.value)
    assert not (run_copy / "report.pdf").exists()


def test_untrusted_case_ids_are_escaped(run_copy):
    path = run_copy / "predictions.parquet"
    frame = pd.read_parquet(path)
    hostile = "<b>x&y</b>"
    first_flagged = frame.index[frame["flagged"]][0]
    frame.loc[first_flagged, "case_id"] = hostile
    frame.to_parquet(path, index=False)
    text = pdf_text(render_validation_report(run_copy))
    assert hostile in text


def test_custom_out_writes_data_beside_it(run_copy, tmp_path):
    out = tmp_path / "elsewhere" / "validation.pdf"
    assert render_validation_report(run_copy, out) == out
    assert out.is_file()
    assert (out.parent / "validation_data" / "summary.csv").is_file()


def test_reader_study_section(run_copy):
    from engine.readers.study import cases_from_run, create_study

    cases = cases_from_run(run_copy)
    with create_study(run_copy / "reader_study.sqlite", cases, readers=["r1", "r2"], phases=("unaided",)) as study:
        for k, row in enumerate(cases.itertuples()):
            for j, reader in enumerate(study.readers):
                study.rate(reader, row.case_id, "unaided", float(40 * row.truth + (k * (j + 3)) % 60))
        expected = study.analyze(drop_incomplete=True).to_json()["mean_auc"]["unaided"]
    text = pdf_text(render_validation_report(run_copy))
    assert "no reader study attached" not in text
    assert "r1" in text and "r2" in text
    assert f"{expected:.3f}" in text


def test_cli_writes_the_report(run_copy, tmp_path):
    from tui.cli import main

    out = tmp_path / "cli.pdf"
    assert main(["report", str(run_copy), "--out", str(out)]) == 0
    assert out.read_bytes().startswith(b"%PDF")
    assert main(["report", str(tmp_path / "missing")]) == 2
