"""Generic CSV (the seed's clinical validation format): one row per image.

Required: patient_id,image_path,age,sex,skin_type,diagnosis. Optional: site,
case_id (default: the image file name without extension), lesion_id,
body_site, split, malignant (0/1; default: derived from diagnosis).
"""
from __future__ import annotations

from pathlib import Path

from cohorts.csvfile import read_table
from cohorts.formats import ReadResult, empty_canonical, finish
from cohorts.schema import Problem

FORMAT = "generic"
LABEL_SOURCE = "diagnosis"
DEFAULT_MALIGNANT = frozenset({
    "melanoma", "mel", "bcc", "basal cell carcinoma", "scc", "squamous cell carcinoma", "malignant",
})
REQUIRED = ["patient_id", "image_path", "age", "sex", "skin_type", "diagnosis"]
OPTIONAL = ["site", "case_id", "lesion_id", "body_site", "split", "malignant"]


def find(folder: Path) -> Path | None:
    for name in ("cohort.csv", "metadata.csv"):
        path = folder / name
        if path.is_file():
            return path
    csvs = sorted(folder.glob("*.csv"))
    return csvs[0] if len(csvs) == 1 else None


def matches(path: Path, columns: list[str]) -> bool:
    return "image_path" in columns


def read(meta: Path, problems: list[Problem]) -> ReadResult:
    raw = read_table(meta, REQUIRED, problems)
    columns = empty_canonical(len(raw))
    for name in REQUIRED + OPTIONAL:
        if name in raw.columns:
            columns[name] = list(raw[name])
    if "case_id" not in raw.columns:
        columns["case_id"] = [Path(p.replace("\\", "/")).stem for p in raw["image_path"]]
    has_labels = bool((raw["diagnosis"] != "").any() or ("malignant" in raw and (raw["malignant"] != "").any()))
    return ReadResult(finish(columns, raw), has_labels, [meta])
