"""ISIC 2019: metadata CSV + one-hot ground truth; the test split has no labels."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from cohorts.csvfile import read_table
from cohorts.formats import ReadResult, empty_canonical, finish
from cohorts.schema import Problem

FORMAT = "isic2019"
LABEL_SOURCE = "diagnosis"
DEFAULT_MALIGNANT = frozenset({"MEL", "BCC", "SCC"})  # AK is pre-malignant: add it with --malignant
CLASSES = ["MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK"]
TRAIN_META, TRAIN_TRUTH = "ISIC_2019_Training_Metadata.csv", "ISIC_2019_Training_GroundTruth.csv"
TEST_META = "ISIC_2019_Test_Metadata.csv"
META_COLUMNS = ["image", "age_approx", "anatom_site_general", "sex"]


def find(folder: Path) -> Path | None:
    for name in (TRAIN_META, TEST_META):
        if (folder / name).is_file():
            return folder / name
    return None


def matches(path: Path, columns: list[str]) -> bool:
    return path.name in (TRAIN_META, TEST_META)


def site_from_lesion_id(lesion_id: str) -> str:
    """'HAM_0000118' -> 'HAM', 'MSK4_0011170' -> 'MSK': the source collection."""
    match = re.match(r"[A-Za-z]+", lesion_id or "")
    return match.group(0).upper() if match else ""


def _diagnoses(truth_path: Path, images: list[str], problems: list[Problem]) -> list[str]:
    truth = read_table(truth_path, ["image"] + CLASSES[:-1], problems)
    classes = [c for c in CLASSES if c in truth.columns]
    onehot = truth[classes].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    by_image = dict(zip(truth["image"], range(len(truth))))
    out = []
    for image in images:
        index = by_image.get(image)
        if index is None:
            out.append("")
            continue
        row = onehot[index]
        ones = np.flatnonzero(row == 1.0)
        if len(ones) != 1 or np.isnan(row).any():
            problems.append(Problem("error", str(truth_path), index + 2, None,
                                    f"ground truth must have exactly one 1.0 among {', '.join(classes)}",
                                    case_id=image))
            out.append("")
        else:
            out.append(classes[ones[0]])
    return out


def read(meta: Path, problems: list[Problem]) -> ReadResult:
    raw = read_table(meta, META_COLUMNS, problems)
    is_test = meta.name == TEST_META
    images_dir = "ISIC_2019_Test_Input" if is_test else "ISIC_2019_Training_Input"
    columns = empty_canonical(len(raw))
    lesion = raw["lesion_id"] if "lesion_id" in raw else [""] * len(raw)
    columns.update(
        case_id=list(raw["image"]), lesion_id=list(lesion),
        image_path=[f"{images_dir}/{image}.jpg" for image in raw["image"]],
        age=list(raw["age_approx"]), sex=list(raw["sex"]), body_site=list(raw["anatom_site_general"]),
        site=[site_from_lesion_id(value) for value in lesion],
        split=["test" if is_test else "train"] * len(raw),
    )
    files = [meta]
    truth_path = meta.parent / TRAIN_TRUTH
    has_labels = not is_test and truth_path.is_file()
    if not is_test and not has_labels:
        problems.append(Problem("warning", str(meta), None, None,
                                f"{TRAIN_TRUTH} not found beside the metadata: cohort read without labels"))
    if has_labels:
        columns["diagnosis"] = _diagnoses(truth_path, list(raw["image"]), problems)
        files.append(truth_path)
    return ReadResult(finish(columns, raw), has_labels, files)
