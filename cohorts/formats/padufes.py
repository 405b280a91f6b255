"""PAD-UFES-20: smartphone clinical images with Fitzpatrick type (`fitspatrick`, sic)."""
from __future__ import annotations

from pathlib import Path

from cohorts.csvfile import read_table
from cohorts.formats import ReadResult, empty_canonical, finish
from cohorts.schema import Problem

FORMAT = "padufes20"
LABEL_SOURCE = "diagnosis"
DEFAULT_MALIGNANT = frozenset({"BCC", "MEL", "SCC"})
META = "metadata.csv"
REQUIRED = ["patient_id", "lesion_id", "age", "gender", "fitspatrick", "region", "diagnostic", "img_id"]
ROMAN = {"1": "I", "2": "II", "3": "III", "4": "IV", "5": "V", "6": "VI"}


def find(folder: Path) -> Path | None:
    path = folder / META
    return path if path.is_file() and (folder / "images").is_dir() else None


def matches(path: Path, columns: list[str]) -> bool:
    return all(c in columns for c in REQUIRED)


def _skin_type(value: str) -> str:
    """'3' or '3.0' -> 'III'; anything else is passed on for the row checks to report."""
    key = value[:-2] if value.endswith(".0") else value
    return ROMAN.get(key, value)


def read(meta: Path, problems: list[Problem]) -> ReadResult:
    raw = read_table(meta, REQUIRED, problems)
    columns = empty_canonical(len(raw))
    columns.update(
        case_id=list(raw["img_id"]), patient_id=list(raw["patient_id"]), lesion_id=list(raw["lesion_id"]),
        image_path=[f"images/{name}" for name in raw["img_id"]], diagnosis=list(raw["diagnostic"]),
        age=list(raw["age"]), sex=list(raw["gender"]), body_site=list(raw["region"]),
        skin_type=[_skin_type(v) for v in raw["fitspatrick"]],
    )
    return ReadResult(finish(columns, raw), True, [meta])
