"""Typography, colours and number formatting shared by every report.

One place for these so that the validation and case reports look like one
product, and so that every untrusted string goes through the same escaping
before it meets reportlab's paragraph markup.
"""
from __future__ import annotations

import math
from typing import Any
from xml.sax.saxutils import escape as _xml_escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm

PAGE = A4
MARGIN = 18 * mm
FRAME_WIDTH = PAGE[0] - 2 * MARGIN

FONT, FONT_BOLD, FONT_ITALIC, FONT_MONO = "Helvetica", "Helvetica-Bold", "Helvetica-Oblique", "Courier"

INK = colors.HexColor("#1d2530")
MUTED = colors.HexColor("#5b6675")
RULE = colors.HexColor("#c9d1db")
ACCENT = colors.HexColor("#1f5f99")
ACCENT_LIGHT = colors.HexColor("#e8f0f8")
ZEBRA = colors.HexColor("#f5f7fa")
SERIES = [colors.HexColor(c) for c in ("#1f5f99", "#d9822b", "#3a9a5b", "#b23b3b", "#7a5ba6", "#5b6675")]
BANDS = {"green": colors.HexColor("#3a9a5b"), "amber": colors.HexColor("#d9822b"), "red": colors.HexColor("#b23b3b")}
FLAG = colors.HexColor("#b23b3b")

NOT_FOR_DIAGNOSIS = ("Research and education only. Not a diagnostic device: do not use these results to "
                     "diagnose, treat or manage any patient.")


def _style(name: str, **kw: Any) -> ParagraphStyle:
    base = {"fontName": FONT, "fontSize": 9, "leading": 12, "textColor": INK, "alignment": TA_LEFT}
    return ParagraphStyle(name, **{**base, **kw})


STYLES: dict[str, ParagraphStyle] = {
    "title": _style("title", fontName=FONT_BOLD, fontSize=24, leading=30, spaceAfter=6 * mm),
    "subtitle": _style("subtitle", fontSize=12, leading=16, textColor=MUTED, spaceAfter=3 * mm),
    "h1": _style("h1", fontName=FONT_BOLD, fontSize=15, leading=19, textColor=ACCENT, spaceBefore=2 * mm,
                 spaceAfter=3 * mm, keepWithNext=1),
    "h2": _style("h2", fontName=FONT_BOLD, fontSize=11, leading=14, spaceBefore=4 * mm, spaceAfter=2 * mm,
                 keepWithNext=1),
    "body": _style("body", spaceAfter=2 * mm),
    "small": _style("small", fontSize=7.5, leading=9.5, textColor=MUTED),
    "caption": _style("caption", fontName=FONT_ITALIC, fontSize=7.5, leading=9.5, textColor=MUTED,
                      spaceBefore=1 * mm, spaceAfter=3 * mm),
    "cell": _style("cell", fontSize=7.5, leading=9),
    "cell_head": _style("cell_head", fontName=FONT_BOLD, fontSize=7.5, leading=9, textColor=colors.white),
    "mono": _style("mono", fontName=FONT_MONO, fontSize=7, leading=8.5),
    "notice": _style("notice", fontName=FONT_BOLD, fontSize=9, leading=12, textColor=FLAG, borderColor=FLAG,
                     borderWidth=0.8, borderPadding=4, spaceBefore=3 * mm, spaceAfter=5 * mm),
    "absent": _style("absent", fontName=FONT_ITALIC, textColor=MUTED, backColor=ZEBRA, borderPadding=4,
                     spaceBefore=1 * mm, spaceAfter=3 * mm),
    "center": _style("center", alignment=TA_CENTER, fontSize=7.5, leading=9),
    "toc1": _style("toc1", fontSize=10, leading=15, leftIndent=0),
}


def esc(value: Any) -> str:
    """Untrusted text (case ids, file names, CSV values) made safe for paragraph markup."""
    return _xml_escape("" if value is None else str(value), {'"': "&quot;"})


def finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def num(value: Any, digits: int = 3) -> str:
    """A number as the report prints it; '–' (en dash) where there is none."""
    number = finite(value)
    if number is None:
        return "–"
    if number.is_integer() and abs(number) >= 1 and digits <= 0:
        return f"{int(number):,}"
    return f"{number:.{digits}f}"


def count(value: Any) -> str:
    number = finite(value)
    return "–" if number is None else f"{int(number):,}"


def pct(value: Any, digits: int = 1) -> str:
    number = finite(value)
    return "–" if number is None else f"{100 * number:.{digits}f}%"


def ci(bounds: Any, digits: int = 3) -> str:
    """'[lo, hi]' for a CI pair; '–' when either end is missing."""
    if not bounds or len(bounds) != 2 or finite(bounds[0]) is None or finite(bounds[1]) is None:
        return "–"
    return f"[{num(bounds[0], digits)}, {num(bounds[1], digits)}]"


def estimate(entry: dict[str, Any] | None, digits: int = 3) -> str:
    """An {value, ci} estimate as 'value [lo, hi]', or its not-estimable note."""
    if not entry:
        return "–"
    if finite(entry.get("value")) is None:
        return "not estimable"
    text = num(entry["value"], digits)
    return f"{text} {ci(entry.get('ci'), digits)}" if entry.get("ci") else text


def short_hash(value: Any, length: int = 16) -> str:
    return "–" if not value else str(value)[:length]
