"""The run folder: the contract between the engine, the reports and the TUI.

    runs/<name>/
      run.json            config, model hash, cohort fingerprint, versions, timestamps, status
      predictions.parquet one row per case (see PREDICTION_COLUMNS) + every canonical metadata column
      mc_samples.npy      (cases x T) sampled probabilities of the positive / predicted class
      embeddings.npy      (cases x D) backbone embeddings, float32
      metrics.json        overall metrics with CIs: {"overall": {"auc": {"value", "ci", "method"}, ...}, ...}
      fairness.csv        subgroup table
      drift.json          reference vs this cohort, per feature
      integrity.json      checks, violations, warnings, score
      gradcam/<id>.png    heatmap overlays (and <id>.npy raw heatmaps)
      cases/<id>.json     per-case JSON
      ledger.jsonl        append-only trace: what ran, when, on which hashes

Everything is written atomically and owner-only. Readers (reports, TUI) use
`RunFolder` and never engine internals.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cohorts.atomic import PRIVATE_FILE, atomic_write, atomic_write_json, make_private_dir
from cohorts.errors import BsxError

# Columns every predictions.parquet has (binary task). Multiclass runs add
# prob_<class> and logit_<class> columns; p_mean is then the predicted class's probability.
PREDICTION_COLUMNS = [
    "case_id", "patient_id", "truth", "p_mean", "p_std", "entropy",
    "expected_entropy", "mutual_info", "pred", "flagged", "error",
]

ARTIFACTS = {
    "run": "run.json",
    "predictions": "predictions.parquet",
    "mc_samples": "mc_samples.npy",
    "embeddings": "embeddings.npy",
    "metrics": "metrics.json",
    "fairness": "fairness.csv",
    "drift": "drift.json",
    "integrity": "integrity.json",
    "ledger": "ledger.jsonl",
}

_SAFE_ID = re.compile(r"[^A-Za-z0-9._-]")


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def safe_case_filename(case_id: str) -> str:
    """Case ids come from user CSVs: make them safe as file names (no / or ..)."""
    name = _SAFE_ID.sub("_", str(case_id))
    if name in {"", ".", ".."}:
        name = "_" + hashlib.sha1(str(case_id).encode()).hexdigest()[:12]
    return name


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


class RunFolder:
    """A run folder on disk: paths, loaders and atomic writers."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # -- paths -----------------------------------------------------------
    def file(self, artifact: str) -> Path:
        return self.path / ARTIFACTS[artifact]

    @property
    def gradcam_dir(self) -> Path:
        return self.path / "gradcam"

    @property
    def cases_dir(self) -> Path:
        return self.path / "cases"

    def case_json_path(self, case_id: str) -> Path:
        return self.cases_dir / f"{safe_case_filename(case_id)}.json"

    def gradcam_path(self, case_id: str, suffix: str = ".png") -> Path:
        return self.gradcam_dir / f"{safe_case_filename(case_id)}{suffix}"

    def has(self, artifact: str) -> bool:
        return self.file(artifact).is_file()

    @property
    def exists(self) -> bool:
        return self.file("run").is_file()

    # -- readers ---------------------------------------------------------
    def require(self, artifact: str) -> Path:
        path = self.file(artifact)
        if not path.is_file():
            raise BsxError(
                f"the run folder has no {path.name}",
                path=self.path,
                fix="point at a folder written by `bsx validate`, or run it again to complete this one",
            )
        return path

    def read_json(self, artifact: str) -> dict[str, Any]:
        path = self.require(artifact)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BsxError(f"{path.name} is not valid JSON ({exc})", path=path,
                           fix="the run is damaged: rerun `bsx validate` with --overwrite") from None
        if not isinstance(data, dict):
            raise BsxError(f"{path.name} does not hold a JSON object", path=path,
                           fix="the run is damaged: rerun `bsx validate` with --overwrite")
        return data

    def run_info(self) -> dict[str, Any]:
        return self.read_json("run")

    def predictions(self) -> pd.DataFrame:
        path = self.require("predictions")
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for damaged files
            raise BsxError(f"predictions.parquet cannot be read ({exc})", path=path,
                           fix="the run is damaged: rerun `bsx validate` with --overwrite") from None

    def load_array(self, artifact: str, mmap: bool = True) -> np.ndarray:
        path = self.require(artifact)
        try:
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise BsxError(f"{path.name} cannot be read ({exc})", path=path,
                           fix="the run is damaged: rerun `bsx validate` with --overwrite") from None

    def fairness(self) -> pd.DataFrame:
        return pd.read_csv(self.require("fairness"))

    def ledger(self) -> list[dict[str, Any]]:
        path = self.file("ledger")
        if not path.is_file():
            return []
        entries = []
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line:
                try:
                    entries.append(json.loads(line))
                except json.JSONDecodeError:
                    entries.append({"event": "unreadable-ledger-line", "raw": line[:200]})
        return entries

    # -- writers ---------------------------------------------------------
    def ensure(self) -> "RunFolder":
        make_private_dir(self.path)
        return self

    def write_json(self, artifact: str, obj: Any) -> Path:
        return atomic_write_json(self.file(artifact), obj)

    def write_predictions(self, frame: pd.DataFrame) -> Path:
        return atomic_write(self.file("predictions"), lambda handle: frame.to_parquet(handle, index=False))

    def write_array(self, artifact: str, array: np.ndarray) -> Path:
        return atomic_write(self.file(artifact), lambda handle: np.save(handle, array, allow_pickle=False))

    def write_fairness(self, table: pd.DataFrame) -> Path:
        return atomic_write(self.file("fairness"), lambda handle: handle.write(table.to_csv(index=False).encode()))

    def append_ledger(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one line; O_APPEND writes of one line are atomic enough for a trace."""
        from cohorts.atomic import to_jsonable

        entry = {"time": utc_now(), "event": event, **fields}
        line = json.dumps(to_jsonable(entry), allow_nan=False) + "\n"
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.file("ledger"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        return entry
