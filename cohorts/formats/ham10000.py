"""HAM10000: images split over two part folders; `dataset` names the source collection."""
from __future__ import annotations

from pathlib import Path

from cohorts.csvfile import read_table
from cohorts.formats import ReadResult, empty_canonical, finish
from cohorts.schema import Problem

FORMAT = "ham10000"
LABEL_SOURCE = "diagnosis"
DEFAULT_MALIGNANT = frozenset({"mel", "bcc"})  # akiec (AK/Bowen's) is configurable, as AK in ISIC
META = "HAM10000_metadata.csv"
REQUIRED = ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"]
PARTS = ("HAM10000_images_part_1", "HAM10000_images_part_2")


def find(folder: Path) -> Path | None:
    path = folder / META
    return path if path.is_file() else None


def matches(path: Path, columns: list[str]) -> bool:
    return all(c in columns for c in REQUIRED)


def _image_path(folder: Path, image_id: str) -> str:
    for part in PARTS:
        if (folder / part / f"{image_id}.jpg").exists():
            return f"{part}/{image_id}.jpg"
    return f"{PARTS[0]}/{image_id}.jpg"  # reported missing by the row checks


def _unknown_to_blank(values):
    return ["" if v.lower() == "unknown" else v for v in values]


def read(meta: Path, problems: list[Problem]) -> ReadResult:
    raw = read_table(meta, REQUIRED, problems)
    columns = empty_canonical(len(raw))
    columns.update(
        case_id=list(raw["image_id"]), lesion_id=list(raw["lesion_id"]),
        image_path=[_image_path(meta.parent, i) for i in raw["image_id"]],
        diagnosis=list(raw["dx"]), age=list(raw["age"]), sex=_unknown_to_blank(raw["sex"]),
        body_site=_unknown_to_blank(raw["localization"]),
    )
    if "dataset" in raw.columns:
        columns["site"] = list(raw["dataset"])
    return ReadResult(finish(columns, raw), True, [meta])
