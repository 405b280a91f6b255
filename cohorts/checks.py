"""Row validation: turn raw text into typed canonical values and report problems.

Every finding names the file, the spreadsheet row, the column and what to do.
Values that are wrong are blanked (reported missing), never guessed.
"""
from __future__ import annotations

import os
import stat
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from cohorts.images import MAX_PIXELS, check_images_bounded
from cohorts.schema import SKIN_TYPES, Problem

SEX_VALUES = {"male": "male", "m": "male", "man": "male", "female": "female", "f": "female",
              "woman": "female"}
SEX_MISSING = {"", "unknown", "unk", "na", "n/a", "nan", "none", "not specified"}
ROMAN = {"1": "I", "2": "II", "3": "III", "4": "IV", "5": "V", "6": "VI"}
TRUTHY = {"1": 1.0, "1.0": 1.0, "true": 1.0, "yes": 1.0, "malignant": 1.0,
          "0": 0.0, "0.0": 0.0, "false": 0.0, "no": 0.0, "benign": 0.0}


class RowChecker:
    """Collects problems for one metadata file."""

    def __init__(self, frame: pd.DataFrame, file: str) -> None:
        self.frame = frame
        self.file = file
        self.problems: list[Problem] = []

    def add(self, severity: str, index: int, column: str | None, message: str) -> None:
        self.problems.append(Problem(
            severity, self.file, int(self.frame.at[index, "source_row"]), column, message,
            case_id=str(self.frame.at[index, "case_id"])))

    # -- scalar fields -----------------------------------------------------
    def ages(self) -> None:
        raw = self.frame["age"]
        numbers = pd.to_numeric(raw, errors="coerce")
        for index in np.flatnonzero(numbers.isna().to_numpy() & (raw != "").to_numpy()):
            self.add("warning", index, "age", f"age '{raw.iat[index]}' is not a number; treated as missing "
                     "(fix: write the age in years)")
        out_of_range = (numbers < 0) | (numbers > 120)
        for index in np.flatnonzero(out_of_range.to_numpy()):
            self.add("warning", index, "age", f"age {numbers.iat[index]:g} is outside 0-120; treated as missing "
                     "(fix: correct the age, or leave it blank when unknown)")
        self.frame["age"] = numbers.where(~out_of_range).astype(float)

    def sexes(self) -> None:
        lowered = self.frame["sex"].str.lower()
        mapped = lowered.map(SEX_VALUES)
        unknown = mapped.isna() & ~lowered.isin(SEX_MISSING)
        for index in np.flatnonzero(unknown.to_numpy()):
            self.add("warning", index, "sex", f"unknown sex value '{self.frame['sex'].iat[index]}'; "
                     "treated as missing (fix: write male or female, or leave it blank)")
        self.frame["sex"] = mapped.astype(object).where(mapped.notna(), None)

    def skin_types(self) -> None:
        raw = self.frame["skin_type"].str.upper().str.replace("TYPE", "", regex=False).str.strip()
        raw = raw.map(lambda v: ROMAN.get(v[:-2] if v.endswith(".0") else v, v))
        valid = raw.isin(SKIN_TYPES)
        for index in np.flatnonzero((~valid & (raw != "")).to_numpy()):
            self.add("warning", index, "skin_type", f"unknown skin type '{self.frame['skin_type'].iat[index]}'; "
                     "treated as missing (fix: write the Fitzpatrick type as I-VI or 1-6)")
        self.frame["skin_type"] = raw.where(valid, None)

    def blanks_to_none(self, columns: list[str]) -> None:
        for column in columns:
            values = self.frame[column].astype(object)
            self.frame[column] = values.where(values != "", None)

    # -- labels ------------------------------------------------------------
    def labels(self, has_labels: bool, from_column: bool, malignant: frozenset[str]) -> None:
        raw_column = self.frame["malignant"].str.lower()
        column_given = (raw_column != "").any()
        if column_given:
            values = raw_column.map(TRUTHY)
            bad = values.isna() & (raw_column != "")
            for index in np.flatnonzero(bad.to_numpy()):
                self.add("error", index, "malignant", f"label '{self.frame['malignant'].iat[index]}' is not 0/1 or "
                         "True/False (fix: correct the label)")
        elif not from_column:
            lowered = {d.lower() for d in malignant}
            diagnosis = self.frame["diagnosis"].str.lower()
            values = diagnosis.map(lambda d: (1.0 if d in lowered else 0.0) if d else np.nan)
        else:
            values = pd.Series(np.nan, index=self.frame.index)
        if has_labels:
            for index in np.flatnonzero(values.isna().to_numpy() & (raw_column == "").to_numpy()):
                column = "malignant" if from_column or column_given else "diagnosis"
                self.add("error", index, column, "label missing: the case cannot be scored "
                         "(fix: fill in the diagnosis or drop the row)")
        self.frame["malignant"] = values.astype(float)

    # -- identity ----------------------------------------------------------
    def case_ids(self) -> None:
        ids = self.frame["case_id"]
        for index in np.flatnonzero((ids == "").to_numpy()):
            self.add("error", index, "case_id", "case id is blank (fix: give every row an id)")
        folded = ids.str.casefold()
        duplicated = folded.duplicated(keep="first") & (ids != "")
        first_row = dict(zip(folded[~duplicated][::-1], self.frame["source_row"][~duplicated][::-1]))
        for index in np.flatnonzero(duplicated.to_numpy()):
            self.add("error", index, "case_id", f"duplicate case id '{ids.iat[index]}' (first on row "
                     f"{first_row.get(folded.iat[index])}; ids are compared ignoring case) "
                     "(fix: remove the duplicate row or give it its own id)")

    def lesion_splits(self) -> None:
        frame = self.frame[(self.frame["lesion_id"] != "") & (self.frame["split"] != "")]
        splits = frame.groupby("lesion_id")["split"].nunique()
        leaking = set(splits[splits > 1].index)
        for index in frame.index[frame["lesion_id"].isin(leaking)]:
            self.add("warning", index, "split", f"lesion '{self.frame.at[index, 'lesion_id']}' appears in more "
                     "than one split (fix: keep each lesion on one side)")

    # -- image paths -------------------------------------------------------
    def image_paths(self, root: Path, allow_outside_root: bool) -> None:
        """Resolve each path under root; refuse escapes ('..', absolute, symlinks leaving root)."""
        root_real = os.path.realpath(root)
        dir_cache: dict[str, str] = {}
        resolved: list[str | None] = []
        for index, value in enumerate(self.frame["image_path"]):
            resolved.append(self._resolve_one(index, value.replace("\\", "/"), root, root_real,
                                              allow_outside_root, dir_cache))
        # object dtype: pandas 3 would turn None (unusable path) into NaN in a str column
        self.frame["image_path"] = pd.Series(resolved, index=self.frame.index, dtype=object)
        counts = pd.Series([p for p in resolved if p]).value_counts()
        repeated = set(counts[counts > 1].index)
        for index, path in enumerate(resolved):
            if path in repeated:
                self.add("warning", index, "image_path", "the same image file is used by several rows "
                          "(fix: check for duplicated or copy-pasted rows)")

    def _resolve_one(self, index: int, value: str, root: Path, root_real: str, allow: bool,
                     dir_cache: dict[str, str]) -> str | None:
        if not value:
            self.add("error", index, "image_path", "image path is blank (fix: fill in the image file name)")
            return None
        joined = os.path.normpath(os.path.join(root, value))
        directory = os.path.dirname(joined)
        if directory not in dir_cache:
            dir_cache[directory] = os.path.realpath(directory)
        real = os.path.join(dir_cache[directory], os.path.basename(joined))
        try:
            info = os.lstat(real)  # one syscall: existence, size, and whether it is a symlink
            if stat.S_ISLNK(info.st_mode):
                real = os.path.realpath(real, strict=True)
                info = os.stat(real)
        except FileNotFoundError:
            info = None
        except OSError as exc:
            self.add("error", index, "image_path", f"image path '{value}' cannot be resolved ({exc.strerror}; "
                     "a symlink loop?) (fix: replace the link with the image file)")
            return None
        inside = real == root_real or real.startswith(root_real + os.sep)
        if not inside and not allow:
            self.add("error", index, "image_path", f"image path '{value}' leads outside the cohort folder "
                     f"{root} (fix: move the image inside it, or pass --allow-outside-root)")
            return None
        if info is None:
            self.add("error", index, "image_path", f"image file '{value}' not found under {root} "
                     "(fix: correct image_path or restore the file)")
            return None
        if info.st_size == 0:
            self.add("error", index, "image_path", f"image file '{value}' is empty (0 bytes) "
                     "(fix: re-export the image or drop the row)")
            return None
        return real


def check_images(frame: pd.DataFrame, file: str, workers: int | None = None, max_pixels: int = MAX_PIXELS,
                 progress: Callable[[int, int], None] | None = None) -> list[Problem]:
    """Decode every image (in parallel, each within a time budget) and report the unreadable ones."""
    todo = [(i, p) for i, p in enumerate(frame["image_path"]) if isinstance(p, str) and p]
    reasons = check_images_bounded([path for _, path in todo], max_pixels, workers, progress=progress)
    return [Problem("error", file, int(frame.at[index, "source_row"]), "image_path", f"{Path(path).name}: {reason}",
                    case_id=str(frame.at[index, "case_id"]))
            for (index, path), reason in zip(todo, reasons) if reason]


def rows_with_errors(problems: list[Problem]) -> set[str]:
    return {p.case_id for p in problems if p.severity == "error" and p.case_id is not None}


def problem_counts(problems: list[Problem]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for problem in problems:
        counts[problem.severity] += 1
    return {"error": counts["error"], "warning": counts["warning"]}
