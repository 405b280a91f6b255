"""The sections of the validation report, in order, each a list of flowables.

Each builder takes the loaded run (`RunData`) and the `TableBook` that records
every table for the data appendix. A section whose data is missing still
appears, with a note saying why it is empty, so a reader never wonders
whether something was forgotten.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable, KeepTogether, PageBreak, Paragraph, Spacer, Table, TableStyle
from reportlab.platypus.tableofcontents import TableOfContents

from reports import charts
from reports.images import image_flowable
from reports.rundata import RunData
from reports.styles import (
    BANDS, FRAME_WIDTH, MUTED, NOT_FOR_DIAGNOSIS, STYLES, ci, count, esc, estimate, finite, num, pct, short_hash,
)
from reports.tables import TableBook, key_value_table

MAX_FLAGGED_ROWS = 40  # flagged cases listed in the uncertainty section
MAX_ERROR_ROWS = 25  # case errors and cohort problems listed
MAX_GALLERY = 12  # Grad-CAM cases shown
MAX_INTERSECTION_ROWS = 30
MAX_LEDGER_ROWS = 20
HALF = FRAME_WIDTH / 2 - 3 * mm
CHART_H = 62 * mm
METRIC_LABELS = {
    "auc": "AUC (ROC)", "sensitivity": "Sensitivity", "specificity": "Specificity", "ppv": "PPV", "npv": "NPV",
    "accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy", "brier": "Brier score",
    "ece": "ECE (equal width)", "ece_equal_mass": "ECE (equal mass)", "sens_at_spec": "Sensitivity at specificity",
    "spec_at_sens": "Specificity at sensitivity", "specificity_macro": "Specificity (macro)",
}
SECTION_TITLES = ["Summary", "Cohort", "Model", "Performance", "Calibration", "Uncertainty", "Subgroups",
                  "Drift", "Explanations", "Integrity", "Reader study", "Traceability", "Appendix"]


@dataclass
class Context:
    data: RunData
    book: TableBook
    generated: str

    @property
    def metrics(self) -> dict[str, Any]:
        return self.data.metrics


def heading(title: str, level: int = 1) -> Paragraph:
    return Paragraph(esc(title), STYLES["h1" if level == 1 else "h2"])


def para(text: str, style: str = "body") -> Paragraph:
    """`text` is trusted markup written here; interpolate untrusted values with esc()."""
    return Paragraph(text, STYLES[style])


def absent_note(reason: str) -> Paragraph:
    return para(f"Section not available: {esc(reason)}", "absent")


def side_by_side(left: Flowable, right: Flowable) -> Table:
    """Two figures in one row; KeepTogether cannot live in a table cell, so its content goes in."""
    cells = [list(x._content) if isinstance(x, KeepTogether) else x for x in (left, right)]
    table = Table([cells], colWidths=[FRAME_WIDTH / 2, FRAME_WIDTH / 2], hAlign="LEFT")
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                               ("RIGHTPADDING", (0, 0), (-1, -1), 0)]))
    return table


def figure(drawing: Flowable, caption: str) -> KeepTogether:
    return KeepTogether([drawing, para(caption, "caption")])


def _ok_frame(ctx: Context) -> pd.DataFrame:
    return ctx.data.predictions[ctx.data.ok]


# ---------------------------------------------------------------------------
# Title page and contents
# ---------------------------------------------------------------------------
def title_page(ctx: Context) -> list[Flowable]:
    run, integrity = ctx.data.run, ctx.data.integrity
    model, cohort = run.get("model") or {}, run.get("cohort") or {}
    story: list[Flowable] = [Spacer(1, 30 * mm), para("Clinical validation report", "title"),
                             para(f"Run <b>{esc(ctx.data.name)}</b> · {esc(run.get('task', ''))} task · "
                                  f"{count(ctx.metrics.get('n_cases'))} cases", "subtitle"),
                             para(NOT_FOR_DIAGNOSIS, "notice")]
    pairs = [("Model", f"{(model.get('architecture') or {}).get('backbone', '–')} · sha256 "
                       f"{short_hash(model.get('sha256'))}"),
             ("Cohort", f"{cohort.get('path', '–')} ({cohort.get('format', '–')})"),
             ("Run finished", run.get("finished") or "–"), ("Report generated", ctx.generated)]
    story.append(key_value_table(ctx.book, "title_run", "Run", pairs))
    story.append(Spacer(1, 8 * mm))
    story.append(_integrity_badge(integrity))
    story.append(PageBreak())
    return story


def band_color(band: str) -> Any:
    text = str(band).lower()
    if text in BANDS:
        return BANDS[text]
    if "high" in text or "pass" in text:
        return BANDS["green"]
    if "stable" in text or "moderate" in text:
        return BANDS["amber"]
    return BANDS["red"]


def _integrity_badge(integrity: dict[str, Any] | None) -> Flowable:
    if integrity is None:
        return absent_note("integrity.json is missing: this run's integrity is unknown")
    text = (f"<font size=14><b>Integrity {esc(num(integrity.get('score'), 0))}/100 · "
            f"{esc(integrity.get('band', '–'))}</b></font><br/>"
            f"{count(integrity.get('violations'))} violation(s), {count(integrity.get('warnings'))} warning(s)")
    badge = Table([[para(text, "body")]], colWidths=[FRAME_WIDTH * 0.6], hAlign="LEFT")
    badge.setStyle(TableStyle([("LINEBEFORE", (0, 0), (0, 0), 6, band_color(integrity.get("band", ""))),
                               ("BACKGROUND", (0, 0), (-1, -1), band_color(integrity.get("band", "")).clone(alpha=0.08)),
                               ("LEFTPADDING", (0, 0), (-1, -1), 10), ("TOPPADDING", (0, 0), (-1, -1), 6),
                               ("BOTTOMPADDING", (0, 0), (-1, -1), 6)]))
    return badge


def contents(ctx: Context) -> list[Flowable]:
    toc = TableOfContents()
    toc.levelStyles = [STYLES["toc1"]]
    toc.dotsMinLevel = 0
    return [para("Contents", "h1"), toc, PageBreak()]


# ---------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------
def summary(ctx: Context) -> list[Flowable]:
    m, data = ctx.metrics, ctx.data
    overall = m.get("overall", {})
    counts = data.run.get("counts") or {}
    drift = data.drift["verdict"] if data.drift else f"not assessed ({data.absent.get('drift', '')})"
    integrity = data.integrity or {}
    rows = [["Cases", count(m.get("n_cases")), ""], ["Cases with an error", count(m.get("n_errors")), ""],
            ["Labelled cases", count(m.get("n_labelled")), ""],
            ["Flagged for referral", count(counts.get("flagged")), f"{data.run.get('referral', {}).get('score', '')}"]]
    for key in ("auc", "sensitivity", "specificity", "ece", "brier"):
        if key in overall:
            rows.append([METRIC_LABELS[key], estimate(overall[key]), overall[key].get("method", "")])
    rows += [["Integrity score", f"{num(integrity.get('score'), 0)} ({integrity.get('band', '–')})"
              if integrity else "not assessed", "integrity.json"],
             ["Drift verdict", drift, "drift.json"]]
    level = pct(m.get("ci_level", 0.95), 0)
    story = [heading("Summary"),
             para(f"This report describes the validation of a {esc(m.get('task', ''))} dermoscopy classifier on "
                  f"an external cohort of {count(m.get('n_cases'))} cases. Figures are given with {level} "
                  f"confidence intervals (DeLong for AUC, Wilson for proportions, a seeded patient-level "
                  f"bootstrap otherwise). A case is called positive when {esc(m.get('decision', ''))} "
                  f"(threshold {num(m.get('threshold'))})."),
             ctx.book.table("summary", "Headline figures", ["Figure", f"Value [{level} CI]", "Method / source"],
                            rows, widths=[1.4, 1.6, 1.2])]
    if data.absent:
        story.append(heading("Absent sections", 2))
        story.append(ctx.book.table("absent_sections", "Absent sections", ["Section", "Why"],
                                    [[k.capitalize(), v] for k, v in data.absent.items()], widths=[1, 4]))
    return story


# ---------------------------------------------------------------------------
# Cohort
# ---------------------------------------------------------------------------
DEMOGRAPHIC_COLUMNS = ("site", "sex", "age_band", "skin_type", "body_site", "diagnosis")
AGE_EDGES = (0, 30, 45, 60, 75, 200)


def _age_band(age: pd.Series) -> pd.Series:
    labels = [f"{lo}-{hi - 1}" if hi < 200 else f"{lo}+" for lo, hi in zip(AGE_EDGES[:-1], AGE_EDGES[1:])]
    return pd.cut(pd.to_numeric(age, errors="coerce"), AGE_EDGES, right=False, labels=labels).astype(object)


def cohort(ctx: Context) -> list[Flowable]:
    data, run_cohort = ctx.data, ctx.data.run.get("cohort") or {}
    problems = run_cohort.get("problems") or {}
    pairs = [("Path", run_cohort.get("path", "–")), ("Format", run_cohort.get("format", "–")),
             ("Fingerprint", run_cohort.get("fingerprint", "–")),
             ("Metadata sha256", run_cohort.get("metadata_sha256", "–")),
             ("Cases", count(run_cohort.get("n_cases"))), ("Usable (passed row checks)", count(run_cohort.get("n_usable"))),
             ("Labelled", count(ctx.metrics.get("n_labelled"))),
             ("Prevalence (positive class)", pct(ctx.metrics.get("prevalence"))
              if not isinstance(ctx.metrics.get("prevalence"), dict) else "per class, see below"),
             ("Row problems", ", ".join(f"{k}: {v}" for k, v in problems.items()) or "none"),
             ("Malignant diagnoses", ", ".join(run_cohort.get("malignant_diagnoses") or []) or "–")]
    story = [heading("Cohort"), key_value_table(ctx.book, "cohort", "Cohort", pairs),
             heading("Demographics and case mix", 2), _demographics(ctx)]
    ages = pd.to_numeric(data.predictions.get("age", pd.Series(dtype=float)), errors="coerce").dropna()
    if len(ages):
        q1, median, q3 = np.percentile(ages, [25, 50, 75])
        story.append(para(f"Age: median {num(median, 0)} years (IQR {num(q1, 0)}–{num(q3, 0)}), "
                          f"range {num(ages.min(), 0)}–{num(ages.max(), 0)}; {count(len(data.predictions) - len(ages))}"
                          " case(s) without an age.", "small"))
    story += _exclusions(ctx)
    return story


def _demographics(ctx: Context) -> Flowable:
    frame = ctx.data.predictions.copy()
    if "age" in frame:
        frame["age_band"] = _age_band(frame["age"])
    rows = []
    total = len(frame)
    truth = pd.to_numeric(frame.get("truth", pd.Series(np.nan, frame.index)), errors="coerce")
    for column in DEMOGRAPHIC_COLUMNS:
        if column not in frame:
            continue
        values = frame[column].astype(object).where(frame[column].notna(), "(missing)").astype(str)
        table = pd.DataFrame({"value": values, "pos": truth}).groupby("value", sort=True)
        for value, block in table:
            n = len(block)
            positives = block["pos"].sum() if column != "diagnosis" else np.nan
            rows.append([column, value, count(n), pct(n / total if total else None),
                         count(positives) if finite(positives) is not None else "–"])
    return ctx.book.table("demographics", "Demographics and case mix",
                          ["Attribute", "Group", "Cases", "Share", "Positives"], rows, widths=[1.1, 1.8, 0.7, 0.7, 0.7])


def _exclusions(ctx: Context) -> list[Flowable]:
    frame = ctx.data.predictions
    errors = frame[~ctx.data.ok]
    story: list[Flowable] = [heading("Exclusions and case errors", 2)]
    if errors.empty:
        story.append(para("No case failed: every case has a prediction."))
    else:
        shown = errors.head(MAX_ERROR_ROWS)
        story.append(para(f"{count(len(errors))} case(s) have no prediction; the first {len(shown)} are listed "
                          "(all are in predictions.parquet, column <i>error</i>)."))
        story.append(ctx.book.table("case_errors", "Case errors", ["Case", "Error"],
                                    [[r.case_id, r.error] for r in shown.itertuples()], widths=[1, 3]))
    problems = (ctx.data.run.get("cohort") or {}).get("problem_list") or []
    if problems:
        shown = problems[:MAX_ERROR_ROWS]
        story.append(para(f"Cohort row problems found on loading: {count(len(problems))} recorded, "
                          f"{len(shown)} listed.", "small"))
        story.append(ctx.book.table("cohort_problems", "Cohort problems", ["Severity", "Row", "Column", "Message"],
                                    [[p.get("severity"), p.get("row"), p.get("column"), p.get("message")]
                                     for p in shown], widths=[0.7, 0.5, 0.9, 3.5]))
    return story


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------
def model(ctx: Context) -> list[Flowable]:
    run = ctx.data.run
    info = run.get("model") or {}
    arch, prep = info.get("architecture") or {}, info.get("preprocessing") or {}
    encoder = info.get("metadata_encoder") or {}
    pairs = [("Task", run.get("task", "–")), ("Classes", ", ".join(map(str, run.get("class_names") or []))),
             ("Checkpoint", info.get("path", "–")), ("Checkpoint sha256", info.get("sha256", "–")),
             ("Training cohort", info.get("training_cohort") or "–"),
             ("Training cohort fingerprint", info.get("training_cohort_fingerprint") or "–"),
             ("Best epoch", info.get("best_epoch", "–")), ("Training seed", info.get("seed", "–"))]
    pairs += [(f"Architecture: {k}", v) for k, v in arch.items()]
    pairs += [(f"Preprocessing: {k}", v) for k, v in prep.items()]
    pairs += [("Metadata inputs", ", ".join(list(encoder.get("numeric") or []) + list(encoder.get("categorical") or []))
               or "none")]
    unseen = run.get("unseen_categories") or {}
    if any(unseen.values()):
        pairs.append(("Unseen metadata categories", ", ".join(f"{k}: {v}" for k, v in unseen.items() if v)))
    return [heading("Model"), para("The checkpoint is self-describing: architecture, preprocessing and the "
                                   "fingerprint of its training cohort come from its sidecar, not from this report."),
            key_value_table(ctx.book, "model", "Model", pairs)]


# ---------------------------------------------------------------------------
# Performance
# ---------------------------------------------------------------------------
def performance(ctx: Context) -> list[Flowable]:
    m = ctx.metrics
    story: list[Flowable] = [heading("Performance")]
    overall = m.get("overall") or {}
    level = pct(m.get("ci_level", 0.95), 0)
    story.append(_roc_and_confusion(ctx))
    rows = []
    for key, entry in overall.items():
        label = METRIC_LABELS.get(key, key)
        if "at" in entry:
            label = f"{label} {num(entry['at'], 2)}"
        counts = f"{entry['k']:,}/{entry['n']:,}" if "k" in entry and "n" in entry else ""
        rows.append([label, num(entry.get("value")), ci(entry.get("ci")), entry.get("method", ""), counts,
                     entry.get("note", "")])
    story.append(heading("Metrics with confidence intervals", 2))
    story.append(ctx.book.table("metrics", "Overall metrics", ["Metric", "Value", f"{level} CI", "Method", "k/n", "Note"],
                                rows, widths=[1.5, 0.6, 1.1, 0.7, 0.7, 1.6]))
    bootstrap = m.get("bootstrap") or {}
    story.append(para(f"Bootstrap: {count(bootstrap.get('n_boot'))} {esc(bootstrap.get('method', ''))} resamples of "
                      f"{count(bootstrap.get('n_units'))} {esc(bootstrap.get('unit', ''))}(s), seed "
                      f"{esc(bootstrap.get('seed', ''))}. {esc(bootstrap.get('note', ''))}", "small"))
    if m.get("per_class"):
        story.append(heading("Per class (one vs rest)", 2))
        rows = [[name, count(e.get("n_positive")), estimate(e.get("auc")), estimate(e.get("sensitivity")),
                 estimate(e.get("specificity")), estimate(e.get("ppv"))] for name, e in m["per_class"].items()]
        story.append(ctx.book.table("per_class", "Per-class metrics",
                                    ["Class", "n", "AUC", "Sensitivity", "Specificity", "PPV"], rows))
    return story


def _roc_and_confusion(ctx: Context) -> Flowable:
    m = ctx.metrics
    roc = m.get("roc") or {}
    auc = (m.get("overall") or {}).get("auc", {})
    if m.get("task") == "binary" and roc.get("fpr"):
        ctx.book.record("roc", roc)
        confusion = m.get("confusion") or {}
        op = None
        if all(finite(confusion.get(k)) is not None for k in ("tp", "fp", "tn", "fn")):
            pos, neg = confusion["tp"] + confusion["fn"], confusion["tn"] + confusion["fp"]
            op = (confusion["fp"] / neg if neg else None, confusion["tp"] / pos if pos else None)
            op = op if None not in op else None
        left = figure(charts.roc_chart(roc["fpr"], roc["tpr"], width=HALF, height=CHART_H,
                                       label=f"AUC {estimate(auc)}", operating_point=op),
                      f"ROC curve ({count(roc.get('n_points_full'))} thresholds, drawn with at most "
                      f"{len(roc['fpr'])} points); dot: threshold {num(m.get('threshold'))}.")
    elif m.get("task") == "multiclass" and isinstance(roc, dict) and any((v or {}).get("fpr") for v in roc.values()):
        ctx.book.record("roc", roc)
        name, curve = next((k, v) for k, v in roc.items() if (v or {}).get("fpr"))
        left = figure(charts.roc_chart(curve["fpr"], curve["tpr"], width=HALF, height=CHART_H, label=str(name)),
                      "One-vs-rest ROC of the first class with a curve (all curves in report_data/charts.json).")
    else:
        left = absent_note(roc.get("note", "no ROC curve in metrics.json") if isinstance(roc, dict) else "no ROC curve")
    matrix, labels = _confusion_matrix(m)
    if matrix is None:
        right: Flowable = absent_note((m.get("confusion") or {}).get("note", "no confusion matrix"))
    else:
        ctx.book.table("confusion", "Confusion matrix (rows truth, columns predicted)", ["truth \\ predicted", *labels],
                       [[labels[i], *row] for i, row in enumerate(matrix)])
        right = figure(charts.confusion_chart(matrix, labels, size=min(HALF, CHART_H + 10 * mm)),
                       f"Confusion matrix at the operating point ({esc(m.get('decision', ''))}).")
    return side_by_side(left, right)


def _confusion_matrix(m: dict[str, Any]) -> tuple[list[list[int]] | None, list[str]]:
    confusion = m.get("confusion") or {}
    names = [str(c) for c in m.get("class_names") or []]
    if m.get("task") == "binary":
        if any(confusion.get(k) is None for k in ("tp", "fp", "tn", "fn")):
            return None, names
        return [[confusion["tn"], confusion["fp"]], [confusion["fn"], confusion["tp"]]], names
    if confusion.get("matrix") is None:
        return None, names
    return confusion["matrix"], [str(c) for c in confusion.get("labels", names)]


# ---------------------------------------------------------------------------
# Calibration
# ---------------------------------------------------------------------------
def calibration(ctx: Context) -> list[Flowable]:
    m = ctx.metrics
    reliability = m.get("reliability") or {}
    story: list[Flowable] = [heading("Calibration")]
    what = "top-label confidence" if reliability.get("of") == "top_label" else "predicted probability"
    if reliability.get("equal_width"):
        ctx.book.record("reliability", reliability)
        story.append(side_by_side(
            figure(charts.reliability_chart(reliability["equal_width"], width=HALF, height=CHART_H,
                                            title="Reliability (equal-width bins)",
                                            x_label=f"Mean {what}"),
                   f"{count(reliability.get('bins'))} equal-width bins; dashed: perfect calibration."),
            figure(charts.reliability_chart(reliability["equal_mass"], width=HALF, height=CHART_H,
                                            title="Reliability (equal-mass bins)", x_label=f"Mean {what}"),
                   "Equal-mass bins hold the same number of cases each.")))
    else:
        story.append(absent_note(reliability.get("note", "no reliability bins in metrics.json")))
    overall = m.get("overall") or {}
    rows = [[METRIC_LABELS[k], estimate(overall[k], 4), overall[k].get("method", "")]
            for k in ("ece", "ece_equal_mass", "brier") if k in overall]
    story.append(ctx.book.table("calibration", "Calibration figures", ["Figure", "Value [CI]", "Method"], rows,
                                widths=[1.5, 2, 1]))
    story += _recalibration(ctx)
    return story


def _recalibration(ctx: Context) -> list[Flowable]:
    cal = ctx.metrics.get("calibration")
    story: list[Flowable] = [heading("Recalibration (temperature scaling)", 2)]
    if not cal:
        return story + [para("Not performed: the run had no labelled calibration cohort "
                             "(<i>bsx validate --calibration COHORT</i>). Figures above are of the model as trained.")]
    if not cal.get("before") or not cal.get("after"):
        return story + [absent_note(cal.get("note", "no before/after figures"))]
    keys = [k for k in cal["before"] if isinstance(cal["before"].get(k), (int, float))]
    rows = [[k, num(cal["before"].get(k), 4), num(cal["after"].get(k), 4)] for k in keys]
    story.append(para(f"Temperature {num(cal.get('temperature'))} fitted on {count(cal.get('fitted_on'))} cases, "
                      f"evaluated on {count(cal.get('evaluated_on'))} cases; applied to "
                      f"{esc(cal.get('applied_to', '–'))}."))
    story.append(ctx.book.table("recalibration", "Before / after temperature scaling",
                                ["Figure", "Before", "After"], rows, widths=[2, 1, 1]))
    return story


# ---------------------------------------------------------------------------
# Uncertainty
# ---------------------------------------------------------------------------
UNCERTAINTY_UNITS = {"entropy": "Predictive entropy (nats)", "mutual_info": "Mutual information (nats)",
                     "p_std": "SD of MC probabilities", "expected_entropy": "Expected entropy (nats)"}


def uncertainty(ctx: Context) -> list[Flowable]:
    data = ctx.data
    frame = _ok_frame(ctx)
    referral = data.run.get("referral") or {}
    score = referral.get("score", "entropy")
    story: list[Flowable] = [heading("Uncertainty"),
                             para(f"MC Dropout with {count((data.run.get('config') or {}).get('mc_samples'))} samples "
                                  f"per case. The {pct(referral.get('rate'))} most uncertain cases by "
                                  f"<b>{esc(score)}</b> are flagged for referral (threshold "
                                  f"{num(referral.get('threshold'), 4)}; {count(referral.get('flagged'))} flagged).")]
    flagged = frame["flagged"].fillna(False).astype(bool) if "flagged" in frame else pd.Series(False, frame.index)
    hists = []
    for column in ("entropy", "mutual_info"):
        if column in frame:
            values = frame[column].to_numpy(float)
            hists.append(figure(charts.histogram_chart(
                {"retained": values[~flagged.to_numpy()], "flagged": values[flagged.to_numpy()]},
                width=HALF, height=CHART_H * 0.9, x_label=UNCERTAINTY_UNITS[column], title=f"{column} by referral",
                marker=referral.get("threshold") if column == score else None, marker_label="threshold"),
                f"Distribution of {esc(column)} over {count(len(values))} cases."))
    if len(hists) == 2:
        story.append(side_by_side(*hists))
    story += hists[:1] if len(hists) == 1 else []
    story += _selective(ctx, score)
    story += _flagged_cases(ctx, frame, score)
    return story


def _selective(ctx: Context, score: str) -> list[Flowable]:
    selective = ctx.metrics.get("selective") or {}
    scores = selective.get("scores") or {}
    curves = {name: (e["curve"]["coverage"], e["curve"]["risk"]) for name, e in scores.items()
              if (e.get("curve") or {}).get("coverage")}
    story: list[Flowable] = [heading("Selective prediction: risk-coverage and AURC", 2)]
    if not scores:
        return story + [absent_note("no selective-prediction section in metrics.json")]
    ctx.book.record("risk_coverage", {n: {"coverage": c, "risk": r} for n, (c, r) in curves.items()})
    referral_coverage = (scores.get(score) or {}).get("referral", {}).get("coverage")
    chart = (charts.risk_coverage_chart(curves, width=HALF, height=CHART_H, referral_coverage=referral_coverage)
             if curves else absent_note("risk-coverage curves need labelled cases"))
    rows = []
    for name, e in scores.items():
        retained = (e.get("referral") or {}).get("retained") or {}
        rows.append([name, estimate(e.get("aurc"), 4), num(e.get("aurc_optimal"), 4), num(e.get("aurc_random"), 4),
                     count((e.get("referral") or {}).get("n_referred")), estimate(retained.get("auc")),
                     estimate(retained.get("accuracy"))])
    table = ctx.book.table("aurc", "AURC and the referral operating point per uncertainty score",
                           ["Score", "AURC [CI]", "Optimal", "Random", "Referred", "AUC retained", "Accuracy retained"],
                           rows, widths=[0.9, 1.3, 0.6, 0.6, 0.6, 1.3, 1.3])
    everything = selective.get("all") or {}
    story += [figure(chart, f"Risk on retained cases ({esc(selective.get('risk', ''))}) against coverage; the red "
                            f"line marks the referral point ({pct(referral_coverage)} retained)."),
              table,
              para(f"Lower AURC is better; <i>optimal</i> orders cases by their actual errors, <i>random</i> is the "
                   f"overall error rate. All cases: AUC {estimate(everything.get('auc'))}, accuracy "
                   f"{estimate(everything.get('accuracy'))}.", "small")]
    return story


def _flagged_cases(ctx: Context, frame: pd.DataFrame, score: str) -> list[Flowable]:
    if "flagged" not in frame:
        return []
    flagged = frame[frame["flagged"].fillna(False).astype(bool)]
    order = score if score in flagged else "p_std"
    shown = flagged.sort_values(order, ascending=False).head(MAX_FLAGGED_ROWS)
    rows = [[r["case_id"], _truth_text(ctx, r.get("truth")), num(r.get("p_mean")), num(r.get("p_std"), 4),
             num(r.get("entropy"), 4), num(r.get("mutual_info"), 5)] for _, r in shown.iterrows()]
    note = (f"{count(len(flagged))} flagged case(s); the {len(shown)} most uncertain are listed"
            if len(flagged) > len(shown) else f"All {count(len(flagged))} flagged case(s)")
    return [heading("Flagged cases", 2), para(f"{note}, sorted by {esc(order)}.", "small"),
            ctx.book.table("flagged_cases", "Flagged cases", ["Case", "Truth", "p (mean)", "p (SD)", "Entropy",
                                                              "Mutual info"], rows, widths=[1.8, 1, 0.8, 0.8, 0.8, 0.8])]


def _truth_text(ctx: Context, truth: Any) -> str:
    value = finite(truth)
    names = ctx.metrics.get("class_names") or []
    if value is None:
        return "–"
    return str(names[int(value)]) if 0 <= int(value) < len(names) else num(value, 0)


# ---------------------------------------------------------------------------
# Subgroups
# ---------------------------------------------------------------------------
SUBGROUP_METRICS = ("auc", "sensitivity", "specificity", "ece", "referral_rate")


def subgroups(ctx: Context) -> list[Flowable]:
    story: list[Flowable] = [heading("Subgroups")]
    table = ctx.data.fairness
    if table is None:
        story.append(absent_note(ctx.data.absent.get("subgroups", "fairness.csv missing")))
    else:
        story += _fairness(ctx, table)
    story += _heterogeneity(ctx)
    return story


def _flags(row: pd.Series) -> str:
    hits = [m for m in ("prevalence",) + SUBGROUP_METRICS + ("ppv", "brier", "mean_uncertainty")
            for label in ("overall", "ref") if str(row.get(f"{m}_flag_{label}", "")).lower() == "true"]
    return ", ".join(dict.fromkeys(hits))


def _fairness_rows(frame: pd.DataFrame) -> tuple[list[list[Any]], list[int]]:
    rows, flagged = [], []
    for _, r in frame.iterrows():
        marks = _flags(r)
        values = [ci_cell(r, m) for m in SUBGROUP_METRICS]
        group = f"{r['group']}{' (ref)' if str(r.get('is_reference')).lower() == 'true' else ''}"
        rows.append([r["attribute"], group, count(r["n"]), count(r.get("positives")), *values,
                     marks or ("" if str(r.get("estimable")).lower() == "true" else r.get("note", ""))])
        if marks:
            flagged.append(len(rows) - 1)
    return rows, flagged


def ci_cell(row: pd.Series, metric: str) -> str:
    if finite(row.get(metric)) is None:
        return "–"
    return f"{num(row[metric])} {ci([row.get(f'{metric}_ci_low'), row.get(f'{metric}_ci_high')])}"


def _fairness(ctx: Context, table: pd.DataFrame) -> list[Flowable]:
    summary = ctx.metrics.get("fairness") or {}
    settings = summary.get("settings") or {}
    single = table[~table["attribute"].astype(str).str.contains(" x ", regex=False)]
    crossed = table[table["attribute"].astype(str).str.contains(" x ", regex=False)]
    header = ["Attribute", "Group", "n", "Pos.", "AUC [CI]", "Sensitivity [CI]", "Specificity [CI]", "ECE [CI]",
              "Referral [CI]", "Flags"]
    widths = [0.8, 1.0, 0.45, 0.45, 1.15, 1.15, 1.15, 1.15, 1.15, 0.9]
    rows, flagged = _fairness_rows(single)
    story: list[Flowable] = [
        para(f"{count(summary.get('n_flagged', 0))} flagged gap(s). Flag rule: {esc(settings.get('flag_rule', '–'))}. "
             f"Groups smaller than {esc(settings.get('min_size', '–'))} cases are not estimated. Intervals: "
             f"{esc(settings.get('bootstrap', '–'))}; red bar: flagged row."),
        ctx.book.table("subgroups", "Subgroup performance", header, rows, widths=widths, flagged_rows=flagged)]
    story += _forest(ctx, single)
    crossed_flagged = crossed[[bool(_flags(r)) for _, r in crossed.iterrows()]] if len(crossed) else crossed
    if len(crossed_flagged):
        shown = crossed_flagged.head(MAX_INTERSECTION_ROWS)
        rows, flagged = _fairness_rows(shown)
        story += [heading("Intersections with flagged gaps", 2),
                  para(f"{count(len(crossed_flagged))} of {count(len(crossed))} intersection groups are flagged; "
                       f"{len(shown)} listed (all in fairness.csv).", "small"),
                  ctx.book.table("subgroup_intersections", "Flagged intersection groups", header, rows,
                                 widths=widths, flagged_rows=flagged)]
    return story


def _forest(ctx: Context, single: pd.DataFrame) -> list[Flowable]:
    overall = single[single["attribute"] == "overall"]
    groups = single[(single["attribute"] != "overall") & (single["auc"].notna())]
    if groups.empty:
        return [absent_note("no subgroup has an estimable AUC")]
    rows = [{"label": f"{r['attribute']}: {r['group']}"[:40], "value": finite(r["auc"]),
             "lo": finite(r.get("auc_ci_low")), "hi": finite(r.get("auc_ci_high")),
             "flagged": any(str(r.get(f"auc_flag_{x}")).lower() == "true" for x in ("overall", "ref"))}
            for _, r in groups.iterrows()]
    reference = finite(overall["auc"].iloc[0]) if len(overall) else None
    ctx.book.record("forest_auc", rows)
    return [figure(charts.forest_plot(rows, width=FRAME_WIDTH * 0.8, reference=reference, x_label="AUC",
                                      title="Subgroup AUC with CI (grey line: overall AUC)"),
                   "Diamonds: AUC per group; whiskers: bootstrap CI; red: flagged AUC gap.")]


def _heterogeneity(ctx: Context) -> list[Flowable]:
    het = ctx.metrics.get("heterogeneity")
    story: list[Flowable] = [heading("Inter-site heterogeneity", 2)]
    if not het:
        return story + [absent_note("no heterogeneity analysis in metrics.json")]
    rows = [[s["site"], count(s["n"]), count(s["positives"]), num(s.get("auc")), ci(s.get("ci")),
             num(s.get("weight_random")), "yes" if s["site"] in het.get("flagged_sites", []) else "", s.get("note", "")]
            for s in het.get("sites", [])]
    flagged = [k for k, s in enumerate(het.get("sites", [])) if s["site"] in het.get("flagged_sites", [])]
    story.append(ctx.book.table("sites", "Per-site AUC", ["Site", "n", "Pos.", "AUC", "CI", "Weight (RE)", "Outlier",
                                                          "Note"], rows, widths=[0.8, 0.5, 0.5, 0.6, 1.1, 0.7, 0.6, 2],
                                flagged_rows=flagged))
    pooled = het.get("pooled") or {}
    text = (f"{esc(het.get('method', ''))} on the {esc(het.get('scale', ''))} scale, {count(het.get('k'))} of "
            f"{count(het.get('n_sites'))} sites pooled. ")
    if pooled:
        text += (f"Pooled AUC {num(pooled.get('auc'))} {ci(pooled.get('ci'))}; I² {pct(het.get('i2'))}, "
                 f"τ² {num(het.get('tau2'), 4)}, Q {num(het.get('q'), 2)} (df {esc(het.get('q_df'))}, "
                 f"p {num(het.get('q_p'), 4)}); prediction interval {ci(het.get('prediction_interval'))}. ")
    story.append(para(text + esc(het.get("note", ""))))
    return story


# ---------------------------------------------------------------------------
# Drift
# ---------------------------------------------------------------------------
def drift(ctx: Context) -> list[Flowable]:
    report = ctx.data.drift
    story: list[Flowable] = [heading("Drift")]
    if report is None:
        return story + [absent_note(ctx.data.absent.get("drift", "drift.json missing"))]
    ref = report.get("reference") or {}
    verdicts = ", ".join(f"{k}: {v}" for k, v in (report.get("verdicts") or {}).items())
    story.append(para(f"Overall verdict: <b>{esc(report.get('verdict'))}</b> ({esc(verdicts)}). Reference: "
                      f"{esc(ref.get('kind', ''))} {esc(ref.get('path', ''))} ({esc(ref.get('source', ''))}); "
                      f"{count(report.get('reference_rows'))} reference vs {count(report.get('current_rows'))} "
                      f"current cases."))
    metadata = report.get("metadata") or {}
    features = metadata.get("features") or {}
    rows = [[name, f.get("type") or "–", f.get("test") or "–", num(f.get("statistic"), 3), num(f.get("p_value_bh"), 4),
             num(f.get("js_distance"), 3), num(f.get("psi"), 3), "drift" if f.get("drift") else "", f.get("note", "")]
            for name, f in features.items()]
    flagged = [k for k, f in enumerate(features.values()) if f.get("drift")]
    story.append(ctx.book.table("drift_features", "Per-feature metadata drift",
                                ["Feature", "Type", "Test", "Statistic", "p (BH)", "JS dist.", "PSI", "Drift", "Note"],
                                rows, widths=[1.1, 0.8, 0.8, 0.7, 0.7, 0.7, 0.6, 0.5, 1.4], flagged_rows=flagged))
    if features:
        names = list(features)
        story.append(figure(charts.bar_chart(names, [features[n].get("js_distance") for n in names],
                                             width=FRAME_WIDTH * 0.75, x_label="Jensen-Shannon distance (base 2, 0-1)",
                                             title="Metadata drift per feature",
                                             flagged=[bool(features[n].get("drift")) for n in names]),
                            f"Red: drift by the rule per feature ({esc((metadata.get('settings') or {}).get('correction', ''))})."))
        story += _worst_feature(ctx, features)
    story += _prediction_and_embedding_drift(ctx, report)
    return story


def _worst_feature(ctx: Context, features: dict[str, dict]) -> list[Flowable]:
    ranked = sorted((f.get("js_distance") or 0, n) for n, f in features.items() if f.get("histogram"))
    if not ranked:
        return []
    name = ranked[-1][1]
    hist = features[name]["histogram"]
    ref, cur = np.asarray(hist["reference"], float), np.asarray(hist["current"], float)
    if "categories" in hist:
        labels = [str(c) for c in hist["categories"]]
    else:
        edges = hist["edges"]
        labels = [f"{edges[k]:.3g}" for k in range(len(edges) - 1)]
    ctx.book.record(f"drift_histogram_{name}", hist)
    return [figure(charts.paired_bars(labels, ref / max(ref.sum(), 1), cur / max(cur.sum(), 1), width=FRAME_WIDTH * 0.75,
                                      height=CHART_H, x_label=f"{name} (bin lower edge or category)",
                                      title=f"Largest shift: {name}"),
                   f"Share of cases per bin of <i>{esc(name)}</i>, reference vs this cohort.")]


def _prediction_and_embedding_drift(ctx: Context, report: dict[str, Any]) -> list[Flowable]:
    story: list[Flowable] = []
    prediction = report.get("prediction")
    if prediction:
        rows = [[n, f.get("test") or "–", num(f.get("statistic"), 3), num(f.get("p_value_bh"), 4),
                 num(f.get("js_distance"), 3), "drift" if f.get("drift") else ""]
                for n, f in (prediction.get("features") or {}).items()]
        story += [heading("Prediction drift", 2),
                  ctx.book.table("drift_predictions", "Prediction drift",
                                 ["Output", "Test", "Statistic", "p (BH)", "JS dist.", "Drift"], rows)]
    embedding = report.get("embedding")
    story.append(heading("Embedding drift", 2))
    if embedding:
        mmd, clf = embedding.get("mmd") or {}, embedding.get("domain_classifier") or {}
        rows = [["MMD permutation test", num(mmd.get("mmd2", mmd.get("statistic")), 5), num(mmd.get("p_value"), 4),
                 "drift" if mmd.get("drift") else ""],
                ["Domain classifier AUC", f"{num(clf.get('auc'))} {ci(clf.get('ci'))}", "–",
                 "drift" if clf.get("drift") else ""]]
        story += [para(f"Verdict: <b>{esc(embedding.get('verdict'))}</b> on {esc(embedding.get('n_used'))} "
                       "embeddings (reference, current)."),
                  ctx.book.table("drift_embedding", "Embedding drift", ["Test", "Statistic", "p", "Drift"], rows)]
    else:
        story.append(para("Not assessed: the reference has no embeddings (a cohort, not a run folder). Pass a "
                          "reference run with <i>--reference RUN</i> to compare images.", "small"))
    return story


# ---------------------------------------------------------------------------
# Explanations
# ---------------------------------------------------------------------------
def explanations(ctx: Context) -> list[Flowable]:
    story: list[Flowable] = [heading("Explanations")]
    entries = ctx.data.gradcam
    if not entries:
        return story + [absent_note(ctx.data.absent.get("explanations", "no Grad-CAM overlays"))]
    frame = ctx.data.predictions.set_index(ctx.data.predictions["case_id"].astype(str))
    shown = entries[:MAX_GALLERY]
    story.append(para(f"Grad-CAM overlays of {len(shown)} of {count(len(entries))} explained case(s), most "
                      "uncertain first. Faithfulness: probability drop when the most-attributed pixels are removed "
                      "minus the drop for random pixels; stability: mean correlation of heatmaps under MC dropout."))
    rows, records = [], []
    for entry in shown:
        case_id = str(entry["case_id"])
        row = frame.loc[case_id] if case_id in frame.index else None
        if isinstance(row, pd.DataFrame):
            row = row.iloc[0]
        image = image_flowable(row.get("image_path") if row is not None else None, 32 * mm)
        overlay = image_flowable(ctx.data.folder.gradcam_path(case_id), 32 * mm)
        figures = _explanation_figures(ctx, entry, row)
        records.append({"case_id": case_id, **figures})
        text = "<br/>".join([f"<b>{esc(case_id)}</b>"] + [f"{esc(k)}: {esc(v)}" for k, v in figures.items()])
        rows.append([image, overlay, para(text, "cell")])
    gallery = Table(rows, colWidths=[36 * mm, 36 * mm, FRAME_WIDTH - 72 * mm], repeatRows=0, hAlign="LEFT")
    gallery.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LINEBELOW", (0, 0), (-1, -1), 0.25, MUTED),
                                 ("TOPPADDING", (0, 0), (-1, -1), 3), ("BOTTOMPADDING", (0, 0), (-1, -1), 3)]))
    ctx.book.table("explanations", "Explained cases", list(records[0].keys()), [list(r.values()) for r in records])
    story += [para("Columns: dermoscopy image, Grad-CAM overlay, figures.", "small"), gallery]
    return story


def _explanation_figures(ctx: Context, entry: dict[str, Any], row: pd.Series | None) -> dict[str, str]:
    faith, stab = entry.get("faithfulness"), entry.get("stability")
    faith = faith.get("score") if isinstance(faith, dict) else faith
    stab = stab.get("mean_correlation") if isinstance(stab, dict) else stab
    probability = entry.get("probability", row.get("p_mean") if row is not None else None)
    out = {"probability": num(probability), "faithfulness": num(faith), "stability": num(stab)}
    if row is not None:
        out |= {"p SD": num(row.get("p_std"), 4), "entropy": num(row.get("entropy"), 4),
                "truth": _truth_text(ctx, row.get("truth")), "diagnosis": str(row.get("diagnosis", "–"))}
    if entry.get("method"):
        out["method"] = str(entry["method"])
    return out


# ---------------------------------------------------------------------------
# Integrity
# ---------------------------------------------------------------------------
def integrity(ctx: Context) -> list[Flowable]:
    result = ctx.data.integrity
    story: list[Flowable] = [heading("Integrity")]
    if result is None:
        return story + [absent_note(ctx.data.absent.get("integrity", "integrity.json missing"))]
    story.append(_integrity_badge(result))
    checks = result.get("checks") or []
    checks = sorted(checks, key=lambda c: (bool(c.get("passed")), c.get("severity") != "violation"))
    rows = [[c.get("id"), c.get("severity"), "pass" if c.get("passed") else "FAIL", c.get("message")] for c in checks]
    flagged = [k for k, c in enumerate(checks) if not c.get("passed")]
    story += [Spacer(1, 3 * mm),
              ctx.book.table("integrity_checks", "Integrity checks", ["Check", "Severity", "Result", "Message"], rows,
                             widths=[1.3, 0.7, 0.5, 3.5], flagged_rows=flagged)]
    return story


# ---------------------------------------------------------------------------
# Reader study
# ---------------------------------------------------------------------------
def reader_study(ctx: Context) -> list[Flowable]:
    study = ctx.data.study
    story: list[Flowable] = [heading("Reader study")]
    if study is None:
        return story + [absent_note(ctx.data.absent.get("reader study", "no reader study"))]
    doc = study.analysis
    modalities, readers = doc["modalities"], doc["readers"]
    story.append(para(f"Study {esc(study.path.name)}: {len(readers)} reader(s), phases {esc(', '.join(modalities))}, "
                      f"{count(doc['n_abnormal'])} abnormal and {count(doc['n_normal'])} normal cases, rating scale "
                      f"{esc(study.scale)}; {esc(doc.get('covariance'))} covariance (Obuchowski-Rockette, Hillis df)."))
    rows = [[r, *[num(doc["auc"][m].get(r)) for m in modalities]] for r in readers]
    rows.append(["mean", *[num(doc["mean_auc"].get(m)) for m in modalities]])
    story.append(ctx.book.table("reader_auc", "Reader AUC per phase", ["Reader", *modalities], rows))
    single = doc.get("single_modality") or {}
    rows = [[m, num((single.get(m) or {}).get("rrrc", {}).get("auc")), ci((single.get(m) or {}).get("rrrc", {}).get("ci"))]
            for m in modalities]
    story.append(ctx.book.table("reader_mean_auc", "Reader-averaged AUC (RRRC)", ["Phase", "AUC", "95% CI"], rows))
    comparisons = doc.get("comparisons") or []
    if comparisons:
        rows = [[f"{c['a']} − {c['b']}", num(c["difference"]), ci(c["rrrc"].get("ci")), num(c["rrrc"].get("p"), 4),
                 num(c["frrc"].get("p"), 4)] for c in comparisons]
        story.append(ctx.book.table("reader_comparisons", "Phase comparisons",
                                    ["Difference", "ΔAUC", "95% CI (RRRC)", "p (RRRC)", "p (FRRC)"], rows))
    algorithm = doc.get("algorithm")
    if algorithm:
        rows = [[a["modality"], num(a["auc"]), num(a["mean_reader_auc"]), num(a["difference"]),
                 ci((a.get("rrrc") or a.get("frrc") or {}).get("ci")), num((a.get("rrrc") or a.get("frrc") or {}).get("p"), 4)]
                for a in algorithm.get("by_modality", [algorithm])]
        story.append(ctx.book.table("algorithm_vs_readers", "AI vs readers",
                                    ["Phase", "AI AUC", "Mean reader AUC", "Difference", "95% CI", "p"], rows))
    for warning in doc.get("warnings") or []:
        story.append(para(f"Note: {esc(warning)}", "small"))
    return story


# ---------------------------------------------------------------------------
# Traceability
# ---------------------------------------------------------------------------
def traceability(ctx: Context) -> list[Flowable]:
    run = ctx.data.run
    config, model_info, cohort_info = run.get("config") or {}, run.get("model") or {}, run.get("cohort") or {}
    pairs = [("Run identity", run.get("identity", "–")), ("Status", run.get("status", "–")),
             ("Created", run.get("created", "–")), ("Started", run.get("started", "–")),
             ("Finished", run.get("finished", "–")), ("Resumed", run.get("resumed", "–")),
             ("Command line", run.get("command") or "not recorded (run through the API or the TUI)"),
             ("Model sha256", model_info.get("sha256", "–")), ("Cohort fingerprint", cohort_info.get("fingerprint", "–")),
             ("Run seed", config.get("seed", "–")), ("Bootstrap", f"{config.get('n_boot', '–')} resamples"),
             ("MC samples", config.get("mc_samples", "–")), ("Report generated", ctx.generated)]
    pairs += [(f"Version: {k}", v) for k, v in (run.get("versions") or {}).items()]
    pairs += [(f"sha256: {k}", v) for k, v in (run.get("artifacts") or {}).items()]
    story = [heading("Traceability"), key_value_table(ctx.book, "traceability", "Traceability", pairs)]
    settings = [(k, v) for k, v in config.items() if k not in ("seed", "n_boot", "mc_samples")]
    story += [heading("Run settings", 2), key_value_table(ctx.book, "settings", "Run settings", settings)]
    ledger = ctx.data.ledger[-MAX_LEDGER_ROWS:]
    if ledger:
        rows = [[e.get("time", ""), e.get("event", ""),
                 ", ".join(f"{k}={v}" for k, v in e.items() if k not in ("time", "event", "artifacts"))[:160]]
                for e in ledger]
        story += [heading("Ledger", 2), para(f"Last {len(ledger)} of {len(ctx.data.ledger)} entries of ledger.jsonl.",
                                             "small"),
                  ctx.book.table("ledger", "Ledger", ["Time (UTC)", "Event", "Details"], rows, widths=[1.4, 1, 3])]
    return story


def now_text() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


Builder = Callable[[Context], list[Flowable]]
BODY: Sequence[tuple[str, Builder]] = (
    ("Summary", summary), ("Cohort", cohort), ("Model", model), ("Performance", performance),
    ("Calibration", calibration), ("Uncertainty", uncertainty), ("Subgroups", subgroups), ("Drift", drift),
    ("Explanations", explanations), ("Integrity", integrity), ("Reader study", reader_study),
    ("Traceability", traceability),
)


def new_section() -> Flowable:
    """Major sections start on a fresh page unless little of the current one is used."""
    return CondPageBreak(120 * mm)
