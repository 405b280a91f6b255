"""The Cohort object and `load_cohort`, the one way a cohort gets in."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from cohorts.checks import RowChecker, check_images, problem_counts
from cohorts.detect import detect_layout
from cohorts.errors import BsxError
from cohorts.fingerprint import cohort_fingerprint
from cohorts.images import MAX_PIXELS
from cohorts.schema import CANONICAL_COLUMNS, Problem


@dataclass
class Cohort:
    cases: pd.DataFrame              # canonical columns (+ source_row)
    root: Path                       # folder image paths are relative to
    format: str                      # detected layout
    metadata_files: list[Path]
    has_labels: bool
    malignant_diagnoses: frozenset[str]
    problems: list[Problem] = field(default_factory=list)

    @property
    def metadata_file(self) -> Path:
        return self.metadata_files[0]

    @property
    def usable(self) -> np.ndarray:
        """Cases without an error-severity problem."""
        bad_rows = {p.row for p in self.problems if p.severity == "error" and p.file == str(self.metadata_file)}
        return ~self.cases["source_row"].isin(bad_rows).to_numpy()

    @property
    def usable_cases(self) -> pd.DataFrame:
        return self.cases[self.usable].reset_index(drop=True)

    @cached_property
    def fingerprint(self) -> str:
        paths = [p for p in self.cases["image_path"] if isinstance(p, str) and p]
        return cohort_fingerprint(self.metadata_files, self.root, paths)

    @property
    def metadata_hash(self) -> str:
        """Hash of the canonical metadata alone (cheap; no image reads)."""
        canonical = self.cases[CANONICAL_COLUMNS].to_csv(index=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def counts(self) -> dict[str, int]:
        return problem_counts(self.problems)

    def summary(self) -> dict:
        cases = self.cases
        labelled = cases["malignant"].notna()
        missing = {c: int(cases[c].isna().sum()) for c in
                   ("patient_id", "lesion_id", "age", "sex", "site", "body_site", "skin_type", "diagnosis")}
        return {
            "format": self.format, "root": str(self.root),
            "metadata_files": [str(p) for p in self.metadata_files],
            "cases": int(len(cases)), "usable": int(self.usable.sum()),
            "labelled": int(labelled.sum()), "malignant": int((cases["malignant"] == 1).sum()),
            "benign": int((cases["malignant"] == 0).sum()),
            "patients": int(cases["patient_id"].nunique()),
            "sites": {str(k): int(v) for k, v in cases["site"].value_counts().items()},
            "sex": {str(k): int(v) for k, v in cases["sex"].value_counts().items()},
            "skin_type": {str(k): int(v) for k, v in cases["skin_type"].value_counts().items()},
            "age": _age_summary(cases["age"]),
            "missing": missing, "problems": self.counts(),
            "malignant_diagnoses": sorted(self.malignant_diagnoses),
        }


def _age_summary(age: pd.Series) -> dict:
    known = age.dropna()
    if known.empty:
        return {"known": 0}
    return {"known": int(len(known)), "mean": round(float(known.mean()), 1), "min": float(known.min()),
            "max": float(known.max())}


def load_cohort(
    path: str | Path,
    *,
    layout: str | None = None,
    malignant: list[str] | None = None,
    images: bool = False,
    allow_outside_root: bool = False,
    max_pixels: int = MAX_PIXELS,
    progress: Callable[[int, int], None] | None = None,
) -> Cohort:
    """Read a cohort in any supported layout, validate every row, and (optionally) every image.

    Never writes into the cohort folder.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise BsxError("cohort path does not exist", path=path, fix="check the path")
    module, meta = detect_layout(path, layout)
    problems: list[Problem] = []
    result = module.read(meta, problems)
    mapping = frozenset(malignant) if malignant else module.DEFAULT_MALIGNANT
    frame = result.frame
    checker = RowChecker(frame, str(meta))
    checker.case_ids()
    checker.ages()
    checker.sexes()
    checker.skin_types()
    checker.labels(result.has_labels, module.LABEL_SOURCE == "column", mapping)
    checker.lesion_splits()
    checker.image_paths(meta.parent, allow_outside_root)
    checker.blanks_to_none(["patient_id", "lesion_id", "diagnosis", "site", "body_site", "split"])
    problems.extend(checker.problems)
    if images:
        problems.extend(check_images(frame, str(meta), max_pixels=max_pixels, progress=progress))
    frame = frame[CANONICAL_COLUMNS + ["source_row"]]
    problems.sort(key=lambda p: (p.row or 0, p.severity != "error"))
    return Cohort(frame, meta.parent, module.FORMAT, result.files, result.has_labels, mapping, problems)
