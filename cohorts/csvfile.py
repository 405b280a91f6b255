"""Reading a cohort's metadata CSV as the user's software wrote it.

Everything is read as text (validation decides what a value means), with the
encoding and delimiter problems real exports have turned into clear messages.
"""
from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

import pandas as pd

from cohorts.errors import BsxError
from cohorts.schema import Problem

MAX_FIELD_CHARS = 1_000_000  # one huge field must not exhaust memory silently


def _decode(path: Path, data: bytes, problems: list[Problem]) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        problems.append(Problem(
            "warning", str(path), line, None,
            f"file is not UTF-8 (byte 0x{data[exc.start]:02x} on line {line}); read as Windows-1252 — "
            "check accented names; fix: re-save the CSV as UTF-8"))
        return data.decode("cp1252", errors="replace")


def _sniff_delimiter(path: Path, header: str, problems: list[Problem]) -> str:
    if "," in header:
        return ","
    for delimiter, name in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
        if delimiter in header:
            problems.append(Problem("warning", str(path), 1, None,
                                    f"file uses {name} as delimiter instead of comma; read with {name}s"))
            return delimiter
    return ","


def _refuse_binary(path: Path, data: bytes) -> None:
    """NUL bytes or mostly control characters: an image, a spreadsheet or UTF-16, not a CSV text file."""
    head = data[:4096]
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 13))
    if b"\x00" in head or controls > len(head) // 10:
        raise BsxError("cannot parse CSV: the file holds binary data, not text (UTF-16, a spreadsheet or an image?)",
                       path=path, fix="export the metadata as a UTF-8 CSV text file")


def _refuse_huge_lines(path: Path, lines: list[str]) -> None:
    """The C parser has no field size limit: refuse a runaway line (a missing quote, a pasted blob) ourselves."""
    longest = max(range(len(lines)), key=lambda i: len(lines[i]), default=None)
    if longest is not None and len(lines[longest]) > MAX_FIELD_CHARS:
        raise BsxError(f"line {longest + 1} is {len(lines[longest]):,} characters: field larger than field limit "
                       f"({MAX_FIELD_CHARS:,})", path=path, row=longest + 1,
                       fix="check for an unclosed quote or data pasted into one cell")


def read_table(path: Path, required: list[str], problems: list[Problem]) -> pd.DataFrame:
    """Read a CSV as strings ('' for blanks); raise BsxError for a file that cannot be a cohort."""
    path = Path(path)
    if not path.is_file():
        raise BsxError("metadata file not found", path=path, fix="check the cohort path")
    data = path.read_bytes()
    if not data.strip():
        raise BsxError("metadata file is empty", path=path, fix="export the cohort metadata again")
    _refuse_binary(path, data)
    text = _decode(path, data, problems)
    if not text.strip():  # e.g. a byte-order mark and nothing else
        raise BsxError("metadata file is empty", path=path, fix="export the cohort metadata again")
    lines = text.splitlines()
    _refuse_huge_lines(path, lines)
    header = lines[0] if lines else ""
    delimiter = _sniff_delimiter(path, header, problems)
    try:
        with warnings.catch_warnings():
            # index_col=False: a first row with extra fields must not silently become the index
            warnings.simplefilter("error", pd.errors.ParserWarning)
            # C engine for speed (25k rows in milliseconds); object dtype because plain Python
            # strings iterate far faster than Arrow-backed ones in the row checks.
            frame = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=object, keep_default_na=False,
                                skipinitialspace=True, engine="c", index_col=False)
    except pd.errors.ParserWarning:
        raise BsxError("cannot parse CSV (a row has more fields than the header)", path=path,
                       fix="check quoting and that every row has the header's number of fields") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
        raise BsxError(f"cannot parse CSV ({exc})", path=path,
                       fix="check quoting and that every row has the header's number of fields") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise BsxError(
            f"missing required column(s) {', '.join(missing)}; found: {', '.join(frame.columns) or 'none'}",
            path=path, fix=f"rename or add the columns so the header has: {', '.join(required)}")
    if frame.empty:
        raise BsxError("the file has a header but no data rows", path=path,
                       fix="export the cohort again with its cases")
    # short rows leave NaN even with keep_default_na=False: blanks are '' everywhere else
    return frame.fillna("").apply(lambda column: column.map(lambda v: str(v).strip())).astype(object)
