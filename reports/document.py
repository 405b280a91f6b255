"""Page template: header, footer with page numbers, TOC registration and PDF bookmarks.

Built into memory and written with one atomic rename, so an interrupted
render never leaves a truncated PDF where a good one was.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import BaseDocTemplate, Flowable, Frame, PageTemplate, Paragraph

from cohorts.atomic import atomic_write_bytes
from reports.styles import FONT, MARGIN, MUTED, PAGE, RULE

FOOTER_NOTICE = "Research use only. Not for diagnostic use."


class ReportDocument(BaseDocTemplate):
    """A4 document whose h1 paragraphs become TOC entries and PDF outline entries."""

    def __init__(self, target: io.BytesIO, *, title: str, header: str) -> None:
        super().__init__(target, pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN + 4 * mm,
                         bottomMargin=MARGIN, title=title, author="BioSignal-X", subject=FOOTER_NOTICE,
                         creator="BioSignal-X reports")
        self.header = header
        frame = Frame(self.leftMargin, self.bottomMargin, self.width, self.height, id="body")
        self.addPageTemplates([PageTemplate("page", frames=[frame], onPage=self._decorate)])
        self._entries = 0

    def _decorate(self, canvas: Canvas, doc: BaseDocTemplate) -> None:
        canvas.saveState()
        width, height = PAGE
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.5)
        canvas.line(MARGIN, height - MARGIN, width - MARGIN, height - MARGIN)
        canvas.line(MARGIN, MARGIN - 4 * mm, width - MARGIN, MARGIN - 4 * mm)
        canvas.setFont(FONT, 7)
        canvas.setFillColor(MUTED)
        canvas.drawString(MARGIN, height - MARGIN + 2 * mm, self.header[:110])
        canvas.drawString(MARGIN, MARGIN - 8 * mm, FOOTER_NOTICE)
        canvas.drawRightString(width - MARGIN, MARGIN - 8 * mm, f"Page {doc.page}")
        canvas.restoreState()

    def afterFlowable(self, flowable: Flowable) -> None:
        if isinstance(flowable, Paragraph) and flowable.style.name == "h1" and flowable.getPlainText() != "Contents":
            text = flowable.getPlainText()
            key = f"section-{self._entries}"
            self._entries += 1
            self.canv.bookmarkPage(key)
            self.canv.addOutlineEntry(text, key, level=0)
            self.notify("TOCEntry", (0, text, self.page, key))

    def handle_documentBegin(self) -> None:
        self._entries = 0
        super().handle_documentBegin()


def render_pdf(story: Sequence[Flowable], out: Path, *, title: str, header: str, with_toc: bool) -> Path:
    buffer = io.BytesIO()
    doc = ReportDocument(buffer, title=title, header=header)
    if with_toc:
        doc.multiBuild(list(story))
    else:
        doc.build(list(story))
    return atomic_write_bytes(out, buffer.getvalue(), mode=0o600)
