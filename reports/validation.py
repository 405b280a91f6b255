"""The validation report: one PDF from one run folder, plus its data appendix.

`render_validation_report(run_dir)` writes `<run>/report.pdf` and
`<run>/report_data/` (a CSV per table and JSON of every table and chart), so
every number in the PDF can be checked or re-plotted without parsing the PDF.
"""
from __future__ import annotations

from pathlib import Path

from reportlab.platypus import Flowable, PageBreak

from reports.document import render_pdf
from reports.rundata import RunData, load_run
from reports.sections import BODY, Context, contents, heading, new_section, now_text, para, title_page
from reports.tables import TableBook
from reports.tripod import SOURCES, checklist_rows

DEFAULT_NAME = "report.pdf"
DATA_FOLDER = "report_data"


def render_validation_report(run_dir: Path, out: Path | None = None) -> Path:
    """Render the report of `run_dir` to `out` (default `<run>/report.pdf`); returns the PDF path."""
    data = load_run(run_dir)
    out = Path(out) if out is not None else data.folder.path / DEFAULT_NAME
    book = TableBook()
    story = build_story(data, book)
    render_pdf(story, out, title=f"Clinical validation report: {data.name}",
               header=f"BioSignal-X clinical validation report · run {data.name}", with_toc=True)
    book.write(data_folder(out))
    return out


def data_folder(pdf: Path) -> Path:
    """report_data/ beside the default report; <stem>_data/ beside a report named otherwise."""
    return pdf.parent / (DATA_FOLDER if pdf.name == DEFAULT_NAME else f"{pdf.stem}_data")


def build_story(data: RunData, book: TableBook) -> list[Flowable]:
    ctx = Context(data, book, now_text())
    story: list[Flowable] = title_page(ctx) + contents(ctx)
    for index, (_, builder) in enumerate(BODY):
        if index:
            story.append(new_section())
        story += builder(ctx)
    story += [PageBreak()] + appendix(ctx)
    return story


def appendix(ctx: Context) -> list[Flowable]:
    absent = {name.lower() for name in ctx.data.absent}
    rows = checklist_rows(absent)
    story: list[Flowable] = [
        heading("Appendix"), heading("Reporting checklist: TRIPOD+AI and CLAIM", 2),
        para("Where each applicable item of the reporting guidelines is answered in this report. Items about "
             "ethics, funding, registration and interpretation cannot come from a run folder and are left to the "
             "authors."),
        ctx.book.table("checklist", "TRIPOD+AI and CLAIM items", ["Guideline", "Item", "Topic", "Answered in",
                                                                 "Status"], rows, widths=[0.8, 0.5, 2.2, 2.0, 0.9]),
        para(SOURCES, "small"),
        heading("Data appendix", 2),
        para("Every table of this report is also written as CSV (one file per table) with tables.json and "
             "charts.json (curves, bins and forest-plot rows) in the data folder beside this PDF "
             f"(<i>{DATA_FOLDER}/</i> for the default report name)."),
    ]
    if ctx.data.absent:
        story.append(heading("Sections absent from this report", 2))
        story.append(ctx.book.table("absent_sections_appendix", "Absent sections", ["Section", "Why"],
                                    [[k.capitalize(), v] for k, v in ctx.data.absent.items()], widths=[1, 4]))
    return story
