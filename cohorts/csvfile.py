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


def read_table(path: Path, required: list[str], problems: list[Problem]) -> pd.DataFrame:
    """Read a CSV as strings ('' for blanks); raise BsxError for a file that cannot be a cohort."""
    path = Path(path)
    if not path.is_file():
        raise BsxError("metadata file not found", path=path, fix="check the cohort path")
    data = path.read_bytes()
    if not data.strip():
        raise BsxError("metadata file is empty", path=path, fix="export the cohort metadata again")
    text = _decode(path, data, problems)
    if not text.strip():  # e.g. a byte-order mark and nothing else
        raise BsxError("metadata file is empty", path=path, fix="export the cohort metadata again")
    header = text.splitlines()[0] if text.splitlines() else ""
    delimiter = _sniff_delimiter(path, header, problems)
    csv.field_size_limit(MAX_FIELD_CHARS)
    try:
        with warnings.catch_warnings():
            # index_col=False: a first row with extra fields must not silently become the index
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False,
                                skipinitialspace=True, engine="python", index_col=False)
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
    return frame.fillna("").apply(lambda column: column.astype(str).str.strip())
