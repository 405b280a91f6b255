"""Everything a report reads, loaded once from the run folder.

Required parts (run.json, predictions.parquet, metrics.json) raise BsxError
when missing; optional parts load as None and leave a reason in `absent`, so
the report can say which sections are missing and why instead of failing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cohorts.errors import BsxError
from engine.readers.attach import RUN_KEY, STUDY_FILE, attached_study
from engine.runfolder import RunFolder, safe_case_filename

ALGORITHM_READER = "AI"


@dataclass
class ReaderStudy:
    path: Path
    analysis: dict[str, Any]
    ratings: pd.DataFrame  # reader, phase, case_id, value, diagnosis, management
    phases: list[str]
    scale: str


@dataclass
class RunData:
    folder: RunFolder
    run: dict[str, Any]
    predictions: pd.DataFrame
    metrics: dict[str, Any]
    fairness: pd.DataFrame | None = None
    drift: dict[str, Any] | None = None
    integrity: dict[str, Any] | None = None
    gradcam: list[dict[str, Any]] = field(default_factory=list)
    study: ReaderStudy | None = None
    ledger: list[dict[str, Any]] = field(default_factory=list)
    absent: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.run.get("name") or self.folder.path.name)

    @property
    def ok(self) -> pd.Series:
        """Cases with a prediction (no case error)."""
        error = self.predictions["error"] if "error" in self.predictions else pd.Series(None, self.predictions.index)
        return error.isna() | (error.astype(str).str.strip() == "")

    def mc_samples(self) -> np.ndarray | None:
        """(cases x T), memory-mapped: a 25k-case report reads only the rows it draws."""
        if not self.folder.has("mc_samples"):
            return None
        return self.folder.load_array("mc_samples")


def load_run(run_dir: str | Path, *, with_study: bool = True) -> RunData:
    folder = RunFolder(run_dir)
    if not folder.path.is_dir():
        raise BsxError("run folder not found", path=folder.path, fix="give the folder written by `bsx validate`")
    data = RunData(folder, folder.run_info(), folder.predictions(), folder.read_json("metrics"))
    _load_optional(data)
    data.ledger = folder.ledger()
    if with_study:
        data.study = _load_study(data)
    return data


def _load_optional(data: RunData) -> None:
    folder = data.folder
    if folder.has("fairness"):
        data.fairness = _read_csv(folder)
    else:
        data.absent["subgroups"] = "fairness.csv is not in the run folder (subgroup analysis not run or deleted)"
    if folder.has("drift"):
        drift = folder.read_json("drift")
        if drift.get("status") == "no reference" or "verdict" not in drift:
            data.absent["drift"] = str(drift.get("note") or "drift.json holds no comparison")
        else:
            data.drift = drift
    else:
        data.absent["drift"] = "drift.json is not in the run folder (no drift analysis)"
    if folder.has("integrity"):
        data.integrity = folder.read_json("integrity")
    else:
        data.absent["integrity"] = "integrity.json is not in the run folder (integrity checks not run)"
    data.gradcam = _gradcam_entries(folder)
    if not data.gradcam:
        data.absent["explanations"] = ("no Grad-CAM overlays in gradcam/ (run without --no-gradcam, "
                                       "or `bsx explain` a case)")


def _read_csv(folder: RunFolder) -> pd.DataFrame:
    try:
        return folder.fairness()
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise BsxError(f"fairness.csv cannot be read ({exc})", path=folder.file("fairness"),
                       fix="rerun the analyses (`bsx validate` on the same folder)") from None


def _gradcam_entries(folder: RunFolder) -> list[dict[str, Any]]:
    """index.json entries whose overlay exists; overlays without an index are listed bare."""
    directory = folder.gradcam_dir
    if not directory.is_dir():
        return []
    entries: list[dict[str, Any]] = []
    index = directory / "index.json"
    if index.is_file():
        try:
            loaded = json.loads(index.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            loaded = []
        entries = [e for e in loaded if isinstance(e, dict) and "case_id" in e and "error" not in e]
    known = {safe_case_filename(e["case_id"]) for e in entries}
    entries = [e for e in entries if folder.gradcam_path(e["case_id"]).is_file()]
    entries += [{"case_id": p.stem} for p in sorted(directory.glob("*.png")) if p.stem not in known]
    return entries


def _load_study(data: RunData) -> ReaderStudy | None:
    path = attached_study(data.folder.path, data.run)
    if path is None:
        named = data.run.get(RUN_KEY)
        data.absent["reader study"] = (f"the reader study named in run.json is gone ({named})" if named else
                                       f"no reader study attached ({STUDY_FILE} or run.json '{RUN_KEY}')")
        return None
    from engine.readers.study import open_study

    try:
        with open_study(path) as study:
            algorithm = ALGORITHM_READER if ALGORITHM_READER not in study.readers else None
            try:
                result = study.analyze(algorithm_reader=algorithm, drop_incomplete=True)
            except BsxError:
                if algorithm is None:
                    raise
                result = study.analyze(drop_incomplete=True)
            ratings = pd.DataFrame([vars(r) for reader in study.readers for r in study.ratings_of(reader)])
            return ReaderStudy(path, result.to_json(), ratings, list(study.phases), study.settings.scale)
    except BsxError as exc:
        data.absent["reader study"] = f"reader study {path.name} could not be analysed: {exc.message}"
        return None
