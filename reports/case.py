"""The case report: one case on one or two pages, for a clinician reviewing it.

Image and Grad-CAM overlay side by side, the metadata, the prediction with its
MC Dropout distribution and uncertainty measures, where the case sits in the
cohort's uncertainty, and the reader ratings when a study rated it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Spacer, Table, TableStyle

from cohorts.errors import BsxError
from engine.runfolder import safe_case_filename
from reports import charts
from reports.document import render_pdf
from reports.images import image_flowable
from reports.rundata import RunData, load_run
from reports.sections import Context, absent_note, figure, heading, now_text, para, side_by_side
from reports.styles import FRAME_WIDTH, NOT_FOR_DIAGNOSIS, count, esc, finite, num, pct
from reports.tables import TableBook, key_value_table

IMAGE_SIZE = 70 * mm
COLUMN = FRAME_WIDTH / 2 - 3 * mm
METADATA = ("patient_id", "lesion_id", "age", "sex", "site", "body_site", "skin_type", "diagnosis", "image_path")
MEASURES = (("p_std", "SD of MC probabilities", 4), ("entropy", "Predictive entropy (nats)", 4),
            ("expected_entropy", "Expected entropy, aleatoric (nats)", 4),
            ("mutual_info", "Mutual information, epistemic (nats)", 5))


def render_case_report(run_dir: Path, case_id: str, out: Path | None = None) -> Path:
    """Render one case of `run_dir` to `out` (default `<run>/cases/<safe id>.pdf`)."""
    data = load_run(run_dir)
    position, row = find_case(data, case_id)
    out = Path(out) if out is not None else data.folder.cases_dir / f"{safe_case_filename(case_id)}.pdf"
    ctx = Context(data, TableBook(), now_text())
    story = case_story(ctx, position, row)
    render_pdf(story, out, title=f"Case report: {case_id}",
               header=f"BioSignal-X case report · run {data.name} · case {case_id}", with_toc=False)
    return out


def find_case(data: RunData, case_id: str) -> tuple[int, pd.Series]:
    ids = data.predictions["case_id"].astype(str)
    hits = np.flatnonzero(ids.to_numpy() == str(case_id))
    if hits.size == 0:
        raise BsxError(f"case '{case_id}' is not in this run ({count(len(ids))} cases)",
                       path=data.folder.file("predictions"),
                       fix="give a case_id from predictions.parquet (the case_id column of predictions.parquet, or the TUI case table)")
    return int(hits[0]), data.predictions.iloc[int(hits[0])]


def case_story(ctx: Context, position: int, row: pd.Series) -> list[Flowable]:
    data = ctx.data
    case_id = str(row["case_id"])
    story: list[Flowable] = [para(f"Case report: {esc(case_id)}", "title"),
                             para(f"Run <b>{esc(data.name)}</b> · generated {esc(ctx.generated)}", "subtitle"),
                             para(NOT_FOR_DIAGNOSIS, "notice"), _images(ctx, case_id, row)]
    story += [Spacer(1, 3 * mm), side_by_side(_prediction_table(ctx, row), _metadata_table(ctx, row))]
    story += _uncertainty(ctx, position, row)
    story += _ratings(ctx, case_id)
    return story


def _images(ctx: Context, case_id: str, row: pd.Series) -> Table:
    overlay_path = ctx.data.folder.gradcam_path(case_id)
    overlay = (image_flowable(overlay_path, IMAGE_SIZE) if overlay_path.is_file()
               else para("No Grad-CAM overlay for this case (run <i>bsx explain</i> on it).", "center"))
    cells = [[image_flowable(row.get("image_path"), IMAGE_SIZE), overlay],
             [para("Dermoscopy image", "center"), para("Grad-CAM overlay", "center")]]
    table = Table(cells, colWidths=[FRAME_WIDTH / 2] * 2, hAlign="LEFT")
    table.setStyle(TableStyle([("ALIGN", (0, 0), (-1, -1), "CENTER"), ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    return table


def _label(ctx: Context, value: Any) -> str:
    number = finite(value)
    names = ctx.metrics.get("class_names") or []
    if number is None:
        return "–"
    return str(names[int(number)]) if 0 <= int(number) < len(names) else num(number, 0)


def _prediction_table(ctx: Context, row: pd.Series) -> Flowable:
    m = ctx.metrics
    error = row.get("error")
    if isinstance(error, str) and error.strip():
        return absent_note(f"no prediction: {error}")
    pairs = [("Probability (MC mean)", num(row.get("p_mean"), 4)), ("Predicted class", _label(ctx, row.get("pred"))),
             ("Decision rule", f"{m.get('decision', '–')} (threshold {num(m.get('threshold'))})"
              if m.get("task") == "binary" else m.get("decision", "–")),
             ("Truth", _label(ctx, row.get("truth"))),
             ("Flagged for referral", "yes" if bool(row.get("flagged")) else "no")]
    return key_value_table(ctx.book, "prediction", "Prediction", pairs, total_width=COLUMN)


def _metadata_table(ctx: Context, row: pd.Series) -> Flowable:
    pairs = [(column, "–" if pd.isna(row.get(column)) else row.get(column)) for column in METADATA if column in row]
    return key_value_table(ctx.book, "metadata", "Metadata", pairs, total_width=COLUMN)


def _uncertainty(ctx: Context, position: int, row: pd.Series) -> list[Flowable]:
    data = ctx.data
    story: list[Flowable] = [heading("Uncertainty", 2)]
    samples = _samples(data, position, str(row["case_id"]))
    ok = data.predictions[data.ok]
    rows = []
    for column, label, digits in MEASURES:
        value = finite(row.get(column))
        cohort = pd.to_numeric(ok.get(column, pd.Series(dtype=float)), errors="coerce").dropna()
        rank = pct((cohort < value).mean()) if value is not None and len(cohort) else "–"
        rows.append([label, num(value, digits), rank])
    table = ctx.book.table("uncertainty", "Uncertainty measures", ["Measure", "Value", "Cohort percentile"], rows,
                           widths=[2.2, 0.8, 1], total_width=COLUMN)
    if samples is None or samples.size == 0:
        return story + [table, absent_note("no MC samples stored for this case (mc_samples.npy missing or case "
                                           "failed)")]
    referral = data.run.get("referral") or {}
    histogram = figure(charts.histogram_chart({"MC samples": samples}, width=COLUMN, height=60 * mm,
                                              x_label="Sampled probability", title="MC Dropout probabilities",
                                              bins=20, x_range=(0, 1), marker=finite(ctx.metrics.get("threshold")),
                                              marker_label="threshold"),
                       f"{samples.size} stochastic forward passes; mean {num(samples.mean(), 4)}, "
                       f"2.5–97.5% range {num(np.percentile(samples, 2.5), 3)}–{num(np.percentile(samples, 97.5), 3)}.")
    note = para(f"Referral rule: the {pct(referral.get('rate'))} most uncertain cases by "
                f"<b>{esc(referral.get('score', '–'))}</b> (threshold {num(referral.get('threshold'), 4)}).", "small")
    return story + [side_by_side(histogram, _stack([table, note]))]


def _stack(flowables: list[Flowable]) -> Table:
    table = Table([[f] for f in flowables], colWidths=[COLUMN], hAlign="LEFT")
    table.setStyle(TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 0)]))
    return table


def _samples(data: RunData, position: int, case_id: str) -> np.ndarray | None:
    """This case's MC samples: a row of mc_samples.npy, else the per-case JSON."""
    array = data.mc_samples()
    if array is not None and position < array.shape[0]:
        values = np.asarray(array[position], dtype=float)
        return values[np.isfinite(values)]
    path = data.folder.case_json_path(case_id)
    if path.is_file():
        try:
            values = json.loads(path.read_text(encoding="utf-8")).get("mc_samples") or []
        except (OSError, ValueError):
            return None
        return np.asarray([v for v in values if finite(v) is not None], dtype=float)
    return None


def _ratings(ctx: Context, case_id: str) -> list[Flowable]:
    study = ctx.data.study
    story: list[Flowable] = [heading("Reader ratings", 2)]
    if study is None:
        return story + [para(esc(ctx.data.absent.get("reader study", "no reader study")), "small")]
    ratings = study.ratings
    mine = ratings[ratings["case_id"].astype(str) == case_id] if len(ratings) else ratings
    if mine.empty:
        return story + [para(f"No reader rated this case in study {esc(study.path.name)}.", "small")]
    rows = [[r.reader_id, r.phase, num(r.value, 1), r.diagnosis or "–", r.management or "–",
             num(r.seconds, 0), r.rated_at] for r in mine.itertuples()]
    return story + [para(f"Study {esc(study.path.name)}, scale {esc(study.scale)}.", "small"),
                    ctx.book.table("ratings", "Reader ratings", ["Reader", "Phase", "Rating", "Diagnosis",
                                                                 "Management", "Seconds", "Rated at (UTC)"], rows)]

