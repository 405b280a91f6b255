"""DDI (Diverse Dermatology Images): skin tone groups 12/34/56, malignant True/False."""
from __future__ import annotations

from pathlib import Path

from cohorts.csvfile import read_table
from cohorts.formats import ReadResult, empty_canonical, finish
from cohorts.schema import Problem

FORMAT = "ddi"
LABEL_SOURCE = "column"
DEFAULT_MALIGNANT = frozenset()  # the `malignant` column is the label
META = "ddi_metadata.csv"
REQUIRED = ["DDI_ID", "DDI_file", "skin_tone", "malignant", "disease"]
TONES = {"12": "I-II", "34": "III-IV", "56": "V-VI"}
TRUTH = {"true": "1", "false": "0", "1": "1", "0": "0"}


def find(folder: Path) -> Path | None:
    path = folder / META
    return path if path.is_file() else None


def matches(path: Path, columns: list[str]) -> bool:
    return all(c in columns for c in REQUIRED)


def read(meta: Path, problems: list[Problem]) -> ReadResult:
    raw = read_table(meta, REQUIRED, problems)
    columns = empty_canonical(len(raw))
    columns.update(
        case_id=list(raw["DDI_ID"]), image_path=list(raw["DDI_file"]), diagnosis=list(raw["disease"]),
        skin_type=[TONES.get(v, v) for v in raw["skin_tone"]],
        malignant=[TRUTH.get(v.lower(), v) for v in raw["malignant"]],
    )
    return ReadResult(finish(columns, raw), True, [meta])
