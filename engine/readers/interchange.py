"""Ratings in and out: long CSV, the FDA iMRMC `.imrmc` format and the Iowa OR-DBM MRMC `.lrc` format.

Every reader returns the same long frame (reader, modality, case, truth,
rating; labels as strings, in order of first appearance) and `to_mrmc_data`
turns it into the fully crossed array the statistics need, refusing what
would give a silently wrong number: missing truth, conflicting truth,
duplicates, unrated cells (unless the caller asks to drop incomplete cases).

`.lrc` carries no case ids: cases are numbered by position, normals first
(1..n0), then abnormals (n0+1..n0+n1), the convention of the Van Dyke data.
A treatment marked `S` (smaller = more abnormal) is read with its ratings
negated, so larger always means more suspicious.
"""
from __future__ import annotations

import csv
import io
import shlex
from pathlib import Path

import numpy as np
import pandas as pd

from cohorts.atomic import atomic_write_text
from cohorts.errors import BsxError
from engine.mrmc.data import MrmcData

LONG_COLUMNS = ["reader", "modality", "case", "truth", "rating"]
FORMATS = ("csv", "imrmc", "lrc")
DEFAULT_MODALITY = "1"


def format_for(path: Path, fmt: str | None = None) -> str:
    """The interchange format named explicitly or by the file suffix."""
    fmt = (fmt or Path(path).suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise BsxError(f"unknown ratings format '{fmt}'", path=path, fix="use a .csv, .imrmc or .lrc file")
    return fmt


def read_ratings(path: str | Path, fmt: str | None = None) -> pd.DataFrame:
    """Read any supported ratings file into the long frame."""
    path = Path(path)
    if not path.is_file():
        raise BsxError("ratings file not found", path=path)
    reader = {"csv": read_long_csv, "imrmc": read_imrmc, "lrc": read_lrc}[format_for(path, fmt)]
    return reader(path)


def write_ratings(frame: pd.DataFrame, path: str | Path, fmt: str | None = None, *, title: str = "BioSignal-X reader study") -> Path:
    """Write the long frame in the format named by `fmt` or the suffix (atomically, owner-only)."""
    path = Path(path)
    fmt = format_for(path, fmt)
    text = {"csv": long_csv_text, "imrmc": imrmc_text, "lrc": lrc_text}[fmt](_checked_long(frame, path), title)
    return atomic_write_text(path, text)


def read_long_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise BsxError(f"not a readable CSV ({exc})", path=path) from None
    frame.columns = [c.strip().lower() for c in frame.columns]
    if "modality" not in frame.columns:
        frame["modality"] = DEFAULT_MODALITY
    missing = [c for c in LONG_COLUMNS if c not in frame.columns]
    if missing:
        raise BsxError(f"missing column(s) {', '.join(missing)}", path=path,
                       fix="columns must be reader,modality,case,truth,rating (modality optional)")
    frame = frame[LONG_COLUMNS].apply(lambda s: s.str.strip())
    return _typed(frame, path, first_row=2)


def long_csv_text(frame: pd.DataFrame, title: str = "") -> str:
    buf = io.StringIO()
    out = frame[LONG_COLUMNS].copy()
    out["truth"] = out["truth"].astype(int)
    out.to_csv(buf, index=False, lineterminator="\n", float_format="%.10g")
    return buf.getvalue()


def read_imrmc(path: Path) -> pd.DataFrame:
    """iMRMC: free header, `BEGIN DATA:`, then readerID,caseID,modalityID,score; truth rows have reader -1."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip().upper().startswith("BEGIN DATA"))
    except StopIteration:
        raise BsxError("no 'BEGIN DATA:' line: not an iMRMC file", path=path) from None
    rows = [(i + 1, [f.strip() for f in next(csv.reader([line]))])
            for i, line in enumerate(lines[start + 1:], start=start + 1) if line.strip()]
    truth: dict[str, str] = {}
    data = []
    for lineno, fields in rows:
        if len(fields) != 4:
            raise BsxError(f"expected 4 fields (readerID,caseID,modalityID,score), found {len(fields)}",
                           path=path, row=lineno)
        reader, case, modality, score = fields
        if reader == "-1":
            if case in truth and truth[case] != score:
                raise BsxError(f"case {case} has two different truth rows", path=path, row=lineno)
            truth[case] = score
        else:
            data.append((reader, modality, case, score, lineno))
    frame = pd.DataFrame([d[:4] for d in data], columns=["reader", "modality", "case", "rating"])
    no_truth = sorted(set(frame["case"]) - set(truth), key=_natural)
    if no_truth:
        raise BsxError(f"{len(no_truth)} rated case(s) have no truth row (e.g. {', '.join(no_truth[:5])})",
                       path=path, fix="add a '-1,<case>,truth,<0|1>' row for every case")
    frame["truth"] = frame["case"].map(truth)
    return _typed(frame[LONG_COLUMNS], path, first_row=None)


def imrmc_text(frame: pd.DataFrame, title: str = "") -> str:
    cases = frame.drop_duplicates("case")[["case", "truth"]]
    head = [title or "BioSignal-X reader study", f"N0:{int((cases['truth'] == 0).sum())}",
            f"N1:{int((cases['truth'] == 1).sum())}", f"NR:{frame['reader'].nunique()}",
            f"NM:{frame['modality'].nunique()}", "BEGIN DATA:"]
    truth_rows = [f"-1,{c},truth,{int(t)}" for c, t in zip(cases["case"], cases["truth"])]
    data_rows = [f"{r},{c},{m},{v:.10g}" for r, c, m, v in
                 zip(frame["reader"], frame["case"], frame["modality"], frame["rating"])]
    return "\n".join(head + truth_rows + data_rows) + "\n"


def read_lrc(path: Path) -> pd.DataFrame:
    """OR-DBM MRMC: title; per reader: id, [treatment names, L/S flags on the first], normals, *, abnormals, *; #."""
    lines = [(i + 1, line.strip()) for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines())]
    pos = 1
    modalities: list[str] = []
    larger_is_abnormal: list[bool] = []
    records = []
    while pos < len(lines):
        lineno, text = lines[pos]
        if not text:
            pos += 1
            continue
        if text.startswith("#"):
            break
        reader = text.strip('"')
        pos += 1
        if not modalities:
            modalities = [m for m in shlex.split(lines[pos][1])]
            flags = lines[pos + 1][1].split()
            if len(flags) != len(modalities) or any(f.upper() not in ("L", "S") for f in flags):
                raise BsxError("expected one L or S flag per treatment", path=path, row=lines[pos + 1][0])
            larger_is_abnormal = [f.upper() == "L" for f in flags]
            pos += 2
        for truth in (0, 1):
            index = 0
            while pos < len(lines) and not lines[pos][1].startswith("*"):
                lineno, text = lines[pos]
                pos += 1
                if not text:
                    continue
                index += 1
                values = text.split()[: len(modalities)]
                try:
                    numbers = [float(v) for v in values]
                except ValueError:
                    raise BsxError(f"non-numeric rating in '{text}'", path=path, row=lineno) from None
                if len(numbers) != len(modalities):
                    raise BsxError(f"expected {len(modalities)} ratings, found {len(numbers)}", path=path, row=lineno)
                for m, value, larger in zip(modalities, numbers, larger_is_abnormal):
                    records.append((reader, m, truth, index, value if larger else -value))
            if pos >= len(lines):
                raise BsxError(f"reader {reader}: missing '*' after the {'abnormal' if truth else 'normal'} cases",
                               path=path)
            pos += 1
    if not records:
        raise BsxError("no ratings found: not an OR-DBM MRMC .lrc file", path=path)
    frame = pd.DataFrame(records, columns=["reader", "modality", "truth", "index", "rating"])
    n0 = frame.loc[frame["truth"] == 0, "index"].max()
    frame["case"] = np.where(frame["truth"] == 0, frame["index"], frame["index"] + (0 if np.isnan(n0) else n0)).astype(int).astype(str)
    return _typed(frame[LONG_COLUMNS].astype({"truth": str, "rating": str}), path, first_row=None)


def lrc_text(frame: pd.DataFrame, title: str = "") -> str:
    data = to_mrmc_data(frame)
    ratings, truth = data.ratings, data.truth
    lines = [title or "BioSignal-X reader study"]
    for j, reader in enumerate(data.readers):
        lines.append(reader)
        if j == 0:
            lines.append("   ".join(f'"{m}"' for m in data.modalities))
            lines.append("   ".join("L" for _ in data.modalities))
        for cls, label in ((0, "Non-diseased case"), (1, "Diseased case")):
            for k in np.flatnonzero(truth == cls):
                values = "   ".join(f"{v:.6f}" for v in ratings[:, j, k])
                lines.append(f"   {values}   {label} {data.cases[k]}")
            lines.append("*")
    lines.append("#")
    return "\n".join(lines) + "\n"


def to_mrmc_data(frame: pd.DataFrame, *, drop_incomplete: bool = False, source: Path | None = None) -> MrmcData:
    """Long frame -> fully crossed MrmcData; missing cells raise unless `drop_incomplete`."""
    frame = _checked_long(frame, source)
    modalities = list(dict.fromkeys(frame["modality"]))
    readers = list(dict.fromkeys(frame["reader"]))
    truth_by_case = frame.drop_duplicates("case").set_index("case")["truth"]
    cases = list(truth_by_case.index)
    cube = (frame.set_index(["modality", "reader", "case"])["rating"]
            .reindex(pd.MultiIndex.from_product([modalities, readers, cases])).to_numpy()
            .reshape(len(modalities), len(readers), len(cases)))
    missing = np.isnan(cube)
    warnings = []
    if missing.any():
        gaps = [f"reader {readers[j]} has no rating for {int(missing[i, j].sum())} case(s) in modality "
                f"{modalities[i]} (e.g. case {cases[int(np.flatnonzero(missing[i, j])[0])]})"
                for i, j in zip(*np.nonzero(missing.any(axis=2)))]
        if not drop_incomplete:
            raise BsxError("incomplete ratings: " + "; ".join(gaps[:5]) + (" ..." if len(gaps) > 5 else ""),
                           path=source, fix="have every reader rate every case in every modality, or drop "
                           "incomplete cases (--drop-incomplete) to analyse only the cases everyone rated")
        keep = ~missing.any(axis=(0, 1))
        warnings.append(f"dropped {int((~keep).sum())} case(s) not rated by every reader in every modality")
        cube = cube[:, :, keep]
        cases = [c for c, k in zip(cases, keep) if k]
    truth = truth_by_case.loc[cases].to_numpy(dtype=int)
    return MrmcData(cube, truth, modalities, readers, cases, warnings)


def from_mrmc_data(data: MrmcData) -> pd.DataFrame:
    """MrmcData -> long frame (for export and relabelling tests)."""
    t, r, c = data.ratings.shape
    mi, ri, ci = np.meshgrid(np.arange(t), np.arange(r), np.arange(c), indexing="ij")
    return pd.DataFrame({
        "reader": np.asarray(data.readers, dtype=object)[ri.ravel()],
        "modality": np.asarray(data.modalities, dtype=object)[mi.ravel()],
        "case": np.asarray(data.cases, dtype=object)[ci.ravel()],
        "truth": data.truth[ci.ravel()],
        "rating": data.ratings.ravel(),
    })


def _typed(frame: pd.DataFrame, path: Path, first_row: int | None) -> pd.DataFrame:
    """String frame -> typed frame; names the file row of the first bad value."""
    frame = frame.reset_index(drop=True)
    for column in ("reader", "modality", "case"):
        empty = frame[column].astype(str).str.strip() == ""
        if empty.any():
            raise BsxError(f"empty {column}", path=path, row=_row(empty, first_row), column=column)
    truth_text = frame["truth"].astype(str).str.strip()
    if (truth_text == "").any():
        bad = truth_text == ""
        raise BsxError(f"case {frame.loc[bad.idxmax(), 'case']} has no truth", path=path,
                       row=_row(bad, first_row), column="truth", fix="every case needs truth 0 (normal) or 1 (abnormal)")
    truth = pd.to_numeric(truth_text, errors="coerce")
    bad = ~truth.isin([0, 1])
    if bad.any():
        raise BsxError(f"truth must be 0 or 1, found '{truth_text[bad.idxmax()]}'", path=path,
                       row=_row(bad, first_row), column="truth")
    rating_text = frame["rating"].astype(str).str.strip()
    rating = pd.to_numeric(rating_text, errors="coerce")
    bad = rating.isna() & ~rating_text.str.lower().isin(["", "na", "nan"])
    if bad.any():
        raise BsxError(f"rating '{rating_text[bad.idxmax()]}' is not a number", path=path,
                       row=_row(bad, first_row), column="rating")
    return pd.DataFrame({"reader": frame["reader"].astype(str), "modality": frame["modality"].astype(str),
                         "case": frame["case"].astype(str), "truth": truth.astype(int), "rating": rating.astype(float)})


def _checked_long(frame: pd.DataFrame, path: Path | None) -> pd.DataFrame:
    """Consistent truth per case, no duplicate cells, unrated cells (NaN) removed."""
    missing = [c for c in LONG_COLUMNS if c not in frame.columns]
    if missing:
        raise BsxError(f"ratings lack column(s) {', '.join(missing)}", path=path)
    frame = frame[LONG_COLUMNS].astype({"reader": str, "modality": str, "case": str})
    if frame["truth"].isna().any():
        case = frame.loc[frame["truth"].isna(), "case"].iloc[0]
        raise BsxError(f"case {case} has no truth", path=path, fix="every case needs truth 0 or 1")
    conflicting = frame.groupby("case")["truth"].nunique()
    conflicting = conflicting[conflicting > 1]
    if len(conflicting):
        raise BsxError(f"case(s) with conflicting truth across rows: {', '.join(conflicting.index[:5])}", path=path,
                       fix="give each case one truth value")
    frame = frame[frame["rating"].notna()]
    dup = frame.duplicated(["reader", "modality", "case"], keep=False)
    if dup.any():
        first = frame[dup].iloc[0]
        raise BsxError(f"{int(dup.sum())} duplicate ratings, e.g. reader {first['reader']}, modality "
                       f"{first['modality']}, case {first['case']}", path=path,
                       fix="keep one rating per reader, modality and case")
    if frame.empty:
        raise BsxError("no ratings", path=path)
    return frame.reset_index(drop=True)


def _row(mask: pd.Series, first_row: int | None) -> int | None:
    return None if first_row is None else int(mask.to_numpy().argmax()) + first_row


def _natural(text: str) -> tuple:
    return (0, int(text), "") if text.isdigit() else (1, 0, text)
