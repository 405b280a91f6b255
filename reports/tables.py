"""Tables that split across pages with repeated headers, and the data appendix behind them.

Every table the PDF shows goes through `TableBook.table`, which both builds the
flowable and records the same rows, so `report_data/` holds exactly what the
reader of the PDF saw, as CSV and JSON.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from reportlab.platypus import LongTable, Paragraph, TableStyle

from cohorts.atomic import atomic_write_text, to_jsonable
from reports.styles import ACCENT, FLAG, FRAME_WIDTH, RULE, STYLES, ZEBRA, esc

_NAME = re.compile(r"[^a-z0-9_]+")


@dataclass
class RecordedTable:
    name: str
    title: str
    header: list[str]
    rows: list[list[Any]]


@dataclass
class TableBook:
    """Collects the tables of one report for the data appendix."""

    tables: list[RecordedTable] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    def table(self, name: str, title: str, header: Sequence[str], rows: Sequence[Sequence[Any]], *,
              widths: Sequence[float] | None = None, flagged_rows: Sequence[int] = (),
              total_width: float = FRAME_WIDTH) -> LongTable:
        """Record the rows and return a page-splitting table of them (header repeated)."""
        header, body = [str(h) for h in header], [list(r) for r in rows]
        self.tables.append(RecordedTable(_unique(self, name), title, header, body))
        return data_table(header, body, widths=widths, flagged_rows=flagged_rows, total_width=total_width)

    def record(self, name: str, value: Any) -> None:
        """Data behind a chart (curves, bins) that is not a table in the PDF."""
        self.extras[name] = value

    def write(self, folder: Path) -> list[Path]:
        """report_data/<name>.csv per table, and tables.json + charts.json with everything."""
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for table in self.tables:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(table.header)
            writer.writerows([["" if v is None else v for v in row] for row in table.rows])
            written.append(atomic_write_text(folder / f"{table.name}.csv", buffer.getvalue()))
        index = [{"name": t.name, "title": t.title, "header": t.header, "rows": t.rows} for t in self.tables]
        written.append(atomic_write_text(folder / "tables.json", json.dumps(to_jsonable(index), indent=1)))
        written.append(atomic_write_text(folder / "charts.json", json.dumps(to_jsonable(self.extras), indent=1)))
        return written


def _unique(book: TableBook, name: str) -> str:
    base = _NAME.sub("_", name.lower()).strip("_") or "table"
    taken = {t.name for t in book.tables}
    candidate, k = base, 2
    while candidate in taken:
        candidate, k = f"{base}_{k}", k + 1
    return candidate


def cell(value: Any, style: str = "cell") -> Paragraph:
    """Every cell is a Paragraph of escaped text, so long values wrap instead of overflowing."""
    return Paragraph(esc(value), STYLES[style])


def data_table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, widths: Sequence[float] | None = None,
               flagged_rows: Sequence[int] = (), total_width: float = FRAME_WIDTH) -> LongTable:
    """Relative `widths` are scaled to `total_width` (default: the text frame); None splits it evenly."""
    data = [[cell(h, "cell_head") for h in header]] + [[cell(v) for v in row] for row in rows]
    relative = list(widths) if widths is not None else [1.0] * len(header)
    widths = [total_width * w / float(sum(relative)) for w in relative]
    table = LongTable(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
    commands: list[tuple] = [
        ("BACKGROUND", (0, 0), (-1, 0), ACCENT),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
    commands += [("BACKGROUND", (0, r), (-1, r), ZEBRA) for r in range(2, len(data), 2)]
    commands += [("LINEBEFORE", (0, r + 1), (0, r + 1), 2.5, FLAG) for r in flagged_rows]
    table.setStyle(TableStyle(commands))
    return table


def key_value_table(book: TableBook, name: str, title: str, pairs: Sequence[tuple[str, Any]], *,
                    total_width: float = FRAME_WIDTH) -> LongTable:
    """Two-column 'field / value' table (model, cohort, traceability)."""
    return book.table(name, title, ["Field", "Value"], [[k, v] for k, v in pairs], widths=[1, 2.6],
                      total_width=total_width)
