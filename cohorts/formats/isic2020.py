"""ISIC 2020 (SIIM-ISIC melanoma): train.csv with a binary target."""
from __future__ import annotations

from pathlib import Path

from cohorts.csvfile import read_table
from cohorts.formats import ReadResult, empty_canonical, finish
from cohorts.schema import Problem

FORMAT = "isic2020"
LABEL_SOURCE = "column"  # `target` is the malignancy label
DEFAULT_MALIGNANT = frozenset({"melanoma"})
REQUIRED = ["image_name", "patient_id", "sex", "age_approx", "anatom_site_general_challenge"]
LABELS = ["diagnosis", "benign_malignant", "target"]


def find(folder: Path) -> Path | None:
    for name in ("train.csv", "test.csv"):
        path = folder / name
        if path.is_file() and (folder / "jpeg").is_dir():
            return path
    return None


def matches(path: Path, columns: list[str]) -> bool:
    return all(c in columns for c in REQUIRED)


def read(meta: Path, problems: list[Problem]) -> ReadResult:
    raw = read_table(meta, REQUIRED, problems)
    has_labels = "target" in raw.columns
    split = "train" if meta.name == "train.csv" else "test"
    columns = empty_canonical(len(raw))
    columns.update(
        case_id=list(raw["image_name"]), patient_id=list(raw["patient_id"]),
        image_path=[f"jpeg/{split}/{name}.jpg" for name in raw["image_name"]],
        age=list(raw["age_approx"]), sex=list(raw["sex"]),
        body_site=list(raw["anatom_site_general_challenge"]), split=[split] * len(raw),
    )
    if has_labels:
        columns["malignant"] = list(raw["target"])
        if "diagnosis" in raw.columns:
            columns["diagnosis"] = list(raw["diagnosis"])
    return ReadResult(finish(columns, raw), has_labels, [meta])
