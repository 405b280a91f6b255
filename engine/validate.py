"""A clinical validation run (`bsx validate`): MC Dropout inference into a run folder.

Inference streams in fixed chunks of cases; each finished chunk is saved
atomically under `.partial/`, so an interrupted run (Ctrl-C, kill, power loss)
resumes by running the same command again and recomputes only missing chunks.
Each chunk's dropout RNG is seeded from (run seed, chunk number), so a resumed
run is identical to an uninterrupted one. The analyses then run on the
assembled run folder (engine.analyses).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from cohorts.atomic import atomic_write
from cohorts.errors import BsxError
from engine.checkpoint import Checkpoint, load_checkpoint, versions
from engine.data import default_workers
from engine.device import resolve_device
from engine.infer import mc_predict
from engine.runfolder import ARTIFACTS, RunFolder, sha256_file, utc_now
from engine.uncertainty import summarise

PARTIAL = ".partial"
Progress = Callable[[int, int], None]


class Cancelled(Exception):
    """Raised when the caller asked to stop; finished chunks are kept for resume."""


@dataclass
class ValidateConfig:
    cohort: str
    checkpoint: str
    out: str
    mc_samples: int = 30
    batch_size: int = 32
    workers: int = field(default_factory=default_workers)
    referral_rate: float = 0.1
    referral_score: str = "entropy"
    referral_threshold: float | None = None
    threshold: float = 0.5
    reference: str | None = None
    calibration: str | None = None
    seed: int = 0
    device: str = "auto"
    n_boot: int = 1000
    error_tolerance: float = 0.05
    overwrite: bool = False
    gradcam: bool = True
    max_gradcam: int = 24
    chunk_size: int = 256
    malignant: list[str] | None = None
    allow_outside_root: bool = False
    attributes: list[str] | None = None
    reference_groups: dict[str, str] | None = None  # attribute -> group compared against (default: largest)
    age_edges: list[float] | None = None             # age band edges (default 0,30,45,60,75,120)
    min_subgroup_size: int = 30

    def validate(self) -> None:
        if self.mc_samples < 1:
            raise BsxError("--mc-samples must be at least 1")
        if not 0 <= self.referral_rate < 1:
            raise BsxError(f"--referral-rate must be in [0, 1) (got {self.referral_rate})")
        if self.referral_score not in ("entropy", "mutual_info", "p_std", "expected_entropy"):
            raise BsxError(f"unknown --referral-score '{self.referral_score}'",
                           fix="use entropy, mutual_info, p_std or expected_entropy")
        if self.batch_size < 1 or self.chunk_size < 1:
            raise BsxError("--batch-size must be at least 1")
        if self.age_edges is not None and (len(self.age_edges) < 2 or sorted(self.age_edges) != self.age_edges):
            raise BsxError(f"--age-edges must be at least two increasing numbers (got {self.age_edges})",
                           fix="write them as 0,40,65,120")
        if self.min_subgroup_size < 1:
            raise BsxError("--min-subgroup-size must be at least 1")


def _identity(config: ValidateConfig, model_sha: str, fingerprint: str) -> str:
    """What makes two invocations the same run (resumable into one folder)."""
    key = {"model": model_sha, "cohort": fingerprint, "mc_samples": config.mc_samples, "seed": config.seed,
           "batch_size": config.batch_size, "chunk_size": config.chunk_size, "malignant": config.malignant}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _remove_stale_temp_files(path: Path) -> None:
    """A kill during an atomic write leaves `.name.*.tmp` beside the target: never real content."""
    for stale in path.glob(".*.tmp") if path.is_dir() else []:
        stale.unlink(missing_ok=True)


def _prepare_folder(folder: RunFolder, identity: str, overwrite: bool) -> None:
    _remove_stale_temp_files(folder.path)
    if folder.exists:
        previous = folder.run_info()
        if previous.get("identity") != identity:
            if not overwrite:
                raise BsxError("the output folder holds a different run (other model, cohort or settings)",
                               path=folder.path, fix="choose a new --out, or pass --overwrite to replace it")
            for name in list(ARTIFACTS.values()) + [PARTIAL, "gradcam", "cases"]:
                target = folder.path / name
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
    elif folder.path.exists() and any(folder.path.iterdir()) and not overwrite:
        raise BsxError("the output folder is not empty and holds no run", path=folder.path,
                       fix="choose a new --out")
    folder.ensure()


def _cohort_errors(cohort) -> dict[int, str]:
    """source_row -> first error message, for cases excluded before inference."""
    errors: dict[int, str] = {}
    for problem in cohort.problems:
        if problem.severity == "error" and problem.file == str(cohort.metadata_file) and problem.row not in errors:
            errors[problem.row] = f"{problem.column or 'row'}: {problem.message}"
    return errors


def _run_chunks(folder: RunFolder, checkpoint: Checkpoint, paths: list[str], meta: np.ndarray,
                config: ValidateConfig, progress: Progress | None, should_stop: Callable[[], bool] | None) -> None:
    partial = folder.path / PARTIAL
    partial.mkdir(exist_ok=True, mode=0o700)
    n = len(paths)
    starts = range(0, n, config.chunk_size)
    done = sum(min(config.chunk_size, n - s) for k, s in enumerate(starts) if (partial / f"{k:05d}.npz").exists())
    if progress:
        progress(done, n)
    for k, start in enumerate(starts):
        target = partial / f"{k:05d}.npz"
        if target.exists():
            continue
        stop = min(start + config.chunk_size, n)
        batches = []
        for batch in mc_predict(checkpoint.model, paths[start:stop], meta[start:stop], checkpoint.preprocessing,
                                samples=config.mc_samples, batch_size=config.batch_size, workers=config.workers,
                                seed=config.seed * 1_000_003 + k, should_stop=should_stop,
                                device=resolve_device(config.device)):
            batches.append(batch)
            done += len(batch.indices)
            if progress:
                progress(done, n)
        if should_stop and should_stop():
            raise Cancelled()
        arrays = {"samples": np.concatenate([b.samples for b in batches], axis=1),
                  "logits": np.concatenate([b.logits for b in batches]),
                  "embeddings": np.concatenate([b.embeddings for b in batches]),
                  "errors": np.array([e for b in batches for e in b.errors], dtype=str)}
        atomic_write(target, lambda handle: np.savez(handle, **arrays))


def _load_chunks(folder: RunFolder) -> dict[str, np.ndarray]:
    files = sorted((folder.path / PARTIAL).glob("*.npz"))
    parts = [dict(np.load(f, allow_pickle=False)) for f in files]
    return {"samples": np.concatenate([p["samples"] for p in parts], axis=1),
            "logits": np.concatenate([p["logits"] for p in parts]),
            "embeddings": np.concatenate([p["embeddings"] for p in parts]),
            "errors": np.concatenate([p["errors"] for p in parts])}


def referral_flags(scores: np.ndarray, ok: np.ndarray, rate: float, threshold: float | None) -> tuple[np.ndarray, float]:
    """Refer the most uncertain `rate` of usable cases (ties included), or those at/above a given threshold."""
    from engine.selective import referral_threshold, referred

    if threshold is None:
        threshold = referral_threshold(scores[ok], rate) if ok.any() else float("inf")
    return ok & referred(np.where(ok, scores, -np.inf), threshold), float(threshold)


METADATA_COLUMNS = ["lesion_id", "image_path", "diagnosis", "malignant", "age", "sex", "site", "body_site",
                    "skin_type", "split"]


def _truth(cases: pd.DataFrame, checkpoint: Checkpoint) -> np.ndarray:
    """Binary: the malignant label. Multiclass: the index of the diagnosis among the model's classes."""
    if checkpoint.task == "binary":
        return cases["malignant"].to_numpy(dtype=float)
    lookup = {c: i for i, c in enumerate(checkpoint.class_names)}
    return cases["diagnosis"].map(lambda d: lookup.get(d, np.nan) if isinstance(d, str) else np.nan).to_numpy(float)


def _case_errors(cases: pd.DataFrame, usable: np.ndarray, excluded: dict[int, str],
                 image_errors: np.ndarray) -> np.ndarray:
    """One message per case ('' when fine): cohort row errors, then image decoding errors."""
    errors = np.array([excluded.get(row, "") for row in cases["source_row"]], dtype=object)
    errors[np.flatnonzero(usable)] = image_errors
    return errors


def _model_columns(summary, logits: np.ndarray, checkpoint: Checkpoint) -> dict[str, np.ndarray]:
    """Per usable case: probabilities, uncertainty, prediction and the dropout-off logits."""
    binary = checkpoint.task == "binary"
    rows = np.arange(len(summary.pred))
    columns = {"p_mean": summary.p_mean[:, 1] if binary else summary.p_mean[rows, summary.pred],
               **{name: getattr(summary, name) for name in ("p_std", "entropy", "expected_entropy", "mutual_info")},
               "pred": summary.pred.astype(float)}
    if binary:
        columns["logit"] = logits[:, 0]
    else:
        for k, name in enumerate(checkpoint.class_names):
            columns[f"prob_{name}"] = summary.p_mean[:, k]
            columns[f"logit_{name}"] = logits[:, k]
    return columns


def _spread(values: np.ndarray, usable: np.ndarray, ok: np.ndarray, dtype=float) -> np.ndarray:
    """Values computed for the usable cases, placed at their rows; NaN for every case with an error."""
    out = np.full((len(usable),) + values.shape[1:], np.nan, dtype=dtype)
    out[np.flatnonzero(usable)] = values
    out[~ok] = np.nan
    return out


def _predictions_frame(cases: pd.DataFrame, usable: np.ndarray, excluded: dict[int, str], results: dict,
                       checkpoint: Checkpoint, config: ValidateConfig
                       ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, float]:
    """predictions.parquet, mc_samples and embeddings for every case of the cohort (errors kept, as NaN)."""
    summary = summarise(results["samples"])
    errors = _case_errors(cases, usable, excluded, results["errors"])
    ok = errors == ""
    frame = pd.DataFrame({"case_id": cases["case_id"].astype(str), "patient_id": cases["patient_id"],
                          "truth": _truth(cases, checkpoint)})
    for name, values in _model_columns(summary, results["logits"], checkpoint).items():
        frame[name] = _spread(values, usable, ok)
    frame["pred"] = frame["pred"].astype("Int64")
    flagged, threshold = referral_flags(frame[config.referral_score].to_numpy(), ok, config.referral_rate,
                                        config.referral_threshold)
    frame["flagged"] = flagged
    frame["error"] = pd.Series(errors, dtype=object).where(~ok, None)
    for column in METADATA_COLUMNS:
        frame[column] = cases[column].to_numpy()
    samples = _spread(summary.reported.T, usable, ok, np.float32)
    embeddings = _spread(results["embeddings"], usable, ok, np.float32)
    return frame, samples, embeddings, threshold


def _write_case_files(folder: RunFolder, frame: pd.DataFrame, samples: np.ndarray, run_name: str) -> None:
    """cases/<id>.json: the seed system's per-case output, one file per case."""
    folder.cases_dir.mkdir(exist_ok=True, mode=0o700)
    from cohorts.atomic import atomic_write_json

    records = frame.to_dict(orient="records")
    for record, row_samples in zip(records, samples):
        record = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in record.items()}
        record["run"] = run_name
        record["mc_samples"] = [round(float(s), 6) for s in row_samples if np.isfinite(s)]
        atomic_write_json(folder.case_json_path(record["case_id"]), record)


def _infer(folder: RunFolder, checkpoint: Checkpoint, cohort, meta: np.ndarray, config: ValidateConfig,
           run_info: dict, progress: Progress | None, should_stop: Callable[[], bool] | None,
           say: Callable[[str], None]) -> tuple[pd.DataFrame, np.ndarray, float]:
    """MC Dropout over the usable cases (resumable chunks), then predictions, samples and embeddings."""
    usable, cases = cohort.usable, cohort.cases
    paths = [p for p, ok in zip(cases["image_path"].tolist(), usable) if ok]
    say("inference")
    try:
        _run_chunks(folder, checkpoint, paths, meta[usable], config, progress, should_stop)
    except (Cancelled, KeyboardInterrupt):
        run_info["status"] = "interrupted"
        folder.write_json("run", run_info)
        folder.append_ledger("validate-interrupted")
        raise
    say("writing predictions")
    results = _load_chunks(folder) if paths else {
        "samples": np.zeros((config.mc_samples, 0)), "logits": np.zeros((0, 1)),
        "embeddings": np.zeros((0, checkpoint.model.embedding_dim), np.float32), "errors": np.array([], str)}
    frame, samples, embeddings, threshold = _predictions_frame(cases, usable, _cohort_errors(cohort), results,
                                                               checkpoint, config)
    _check_probabilities(frame)
    folder.write_predictions(frame)
    folder.write_array("mc_samples", samples)
    folder.write_array("embeddings", embeddings)
    return frame, samples, threshold


def _reuse_predictions(folder: RunFolder, config: ValidateConfig) -> tuple[pd.DataFrame, np.ndarray, float]:
    """A completed run's predictions with the referral decision redone for the current settings."""
    frame = folder.predictions()
    ok = frame["error"].isna().to_numpy()
    flagged, threshold = referral_flags(frame[config.referral_score].to_numpy(dtype=float), ok,
                                        config.referral_rate, config.referral_threshold)
    frame["flagged"] = flagged
    folder.write_predictions(frame)
    folder.append_ledger("validate-reuse", reason="inference complete for this model, cohort and sampling")
    return frame, np.asarray(folder.load_array("mc_samples", mmap=False)), threshold


def run_validation(config: ValidateConfig, progress: Progress | None = None,
                   should_stop: Callable[[], bool] | None = None,
                   stage: Callable[[str], None] | None = None) -> RunFolder:
    from cohorts.cohort import load_cohort

    config.validate()
    resolve_device(config.device)  # a missing GPU is refused before any work
    say = stage or (lambda message: None)
    say("loading checkpoint")
    checkpoint = load_checkpoint(config.checkpoint)
    say("loading cohort")
    cohort = load_cohort(config.cohort, malignant=config.malignant, allow_outside_root=config.allow_outside_root)
    checkpoint.encoder.check_columns(cohort.cases)
    say("fingerprinting cohort")
    identity = _identity(config, checkpoint.sha256, cohort.fingerprint)
    folder = RunFolder(config.out)
    _prepare_folder(folder, identity, config.overwrite)
    usable = cohort.usable
    cases = cohort.cases
    meta, unseen = checkpoint.encoder.transform(cases)
    started = utc_now()
    previous = folder.run_info() if folder.exists else {}
    run_info = {
        "format_version": 1, "name": folder.path.name, "identity": identity, "status": "running",
        "created": previous.get("created", started), "started": started, "finished": None,
        "command": " ".join(["bsx"] + sys.argv[1:]) if sys.argv and sys.argv[0].endswith("bsx") else None,
        "config": asdict(config), "task": checkpoint.task, "class_names": checkpoint.class_names,
        "model": {"path": str(Path(config.checkpoint).resolve()), "sha256": checkpoint.sha256,
                  "architecture": checkpoint.sidecar["architecture"],
                  "preprocessing": checkpoint.sidecar["preprocessing"],
                  "metadata_encoder": checkpoint.sidecar["metadata_encoder"],
                  "training_cohort_fingerprint": checkpoint.sidecar.get("training_cohort_fingerprint"),
                  "training_cohort": checkpoint.sidecar.get("train_config", {}).get("cohort"),
                  "best_epoch": checkpoint.sidecar.get("best_epoch"), "seed": checkpoint.sidecar.get("seed")},
        "cohort": {"path": str(Path(config.cohort).resolve()), "format": cohort.format,
                   "fingerprint": cohort.fingerprint, "metadata_sha256": cohort.metadata_hash,
                   "n_cases": int(len(cases)), "n_usable": int(usable.sum()), "has_labels": cohort.has_labels,
                   "problems": cohort.counts(), "problem_list": [p.to_dict() for p in cohort.problems[:500]],
                   "malignant_diagnoses": sorted(cohort.malignant_diagnoses)},
        "unseen_categories": unseen, "versions": versions(), "resumed": bool(previous),
    }
    folder.write_json("run", run_info)
    folder.append_ledger("validate-start", identity=identity, model_sha256=checkpoint.sha256,
                         cohort_fingerprint=cohort.fingerprint, resumed=bool(previous))
    if previous.get("identity") == identity and folder.has("predictions") and folder.has("mc_samples"):
        # Same model, cohort and sampling, inference finished (predictions are written only after the last
        # chunk): the predictions stand; only the referral decision and the analyses are redone.
        say("inference already complete: reusing predictions")
        frame, samples, threshold = _reuse_predictions(folder, config)
    else:
        frame, samples, threshold = _infer(folder, checkpoint, cohort, meta, config, run_info, progress,
                                           should_stop, say)
    _write_case_files(folder, frame, samples, folder.path.name)
    run_info["referral"] = {"score": config.referral_score, "rate": config.referral_rate, "threshold": threshold,
                            "flagged": int(frame["flagged"].sum())}
    run_info["counts"] = {"cases": int(len(frame)), "errors": int(frame["error"].notna().sum()),
                          "flagged": int(frame["flagged"].sum()), "labelled": int(frame["truth"].notna().sum())}
    folder.write_json("run", run_info)
    from engine.analyses import run_analyses

    run_analyses(folder, checkpoint=checkpoint, config=config, say=say)
    shutil.rmtree(folder.path / PARTIAL, ignore_errors=True)
    run_info = folder.run_info()
    run_info["status"] = "complete"
    run_info["finished"] = utc_now()
    run_info["artifacts"] = artifact_hashes(folder)
    folder.write_json("run", run_info)
    folder.append_ledger("validate-end", status="complete", artifacts=run_info["artifacts"])
    return folder


def artifact_hashes(folder: RunFolder) -> dict[str, str]:
    return {name: sha256_file(folder.path / name) for key, name in ARTIFACTS.items()
            if key not in ("run", "ledger", "integrity") and (folder.path / name).is_file()}


def _check_probabilities(frame: pd.DataFrame) -> None:
    ok = frame["error"].isna()
    values = frame.loc[ok, "p_mean"].to_numpy(dtype=float)
    if not np.all(np.isfinite(values)) or values.min(initial=0) < 0 or values.max(initial=1) > 1:
        raise BsxError("the model produced non-finite or out-of-range probabilities",
                       fix="the checkpoint is damaged or incompatible; retrain or use another checkpoint")
