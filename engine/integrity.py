"""Integrity score: can this run itself be trusted?

Every check is listed in `integrity.json`, passed or not, with its evidence, so
a reviewer sees what was verified and not only what failed. A violation
(damaged artifacts, bad data, a model that does not match the run, leakage)
costs 15 points; a warning (thin subgroups, missing fields, drift) costs 2.5.
Adaptive steps (recalibration, fine-tuning) are gated on the score.

Checks that need the checkpoint's sidecar (coherence, leakage) pass with
`evidence["checkable"] = False` when the checkpoint is no longer available:
they could not be verified, which the message says.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Callable

import numpy as np
import pandas as pd

from cohorts.atomic import to_jsonable
from engine.runfolder import ARTIFACTS, RunFolder, sha256_file

VIOLATION_PENALTY = 15.0
WARNING_PENALTY = 2.5
HIGH_BAND, STABLE_BAND = 90.0, 70.0
DEFAULT_GATE = 70.0
REQUIRED_ARTIFACTS = ("run", "predictions", "mc_samples", "embeddings", "metrics")
DEFAULT_ERROR_TOLERANCE = 0.05
PREVALENCE_RANGE = (0.05, 0.95)
OPTIONAL_FIELDS = ("skin_type", "site")
UNCERTAINTY_COLUMNS = ("p_std", "mutual_info", "expected_entropy")
IDENTITY_COLUMNS = ("patient_id", "lesion_id", "case_id")
# engine.drift's overall verdicts -> flagged; "not tested" and "no reference" reports are not checkable.
DRIFT_VERDICTS = {"drift": True, "partial drift": True, "no drift": False}
NOT_CHECKABLE_SIDECAR = "not checkable: the checkpoint's sidecar (model.json) is not available"


@dataclass
class Check:
    id: str
    severity: str  # "violation" | "warning"
    passed: bool
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunView:
    """What the checks read, loaded once; None where an artifact is missing or unreadable."""

    folder: RunFolder
    run: dict[str, Any] | None
    predictions: pd.DataFrame | None
    sidecar: dict[str, Any] | None
    load_errors: dict[str, str]

    @property
    def config(self) -> dict[str, Any]:
        return (self.run or {}).get("config") or {}

    @property
    def model(self) -> dict[str, Any]:
        return (self.run or {}).get("model") or {}

    def usable_rows(self) -> pd.DataFrame:
        """Rows without a case error: the ones that must carry a prediction."""
        frame = self.predictions
        if "error" not in frame.columns:
            return frame
        return frame[frame["error"].isna() | (frame["error"].astype(str) == "")]


# -- scoring ---------------------------------------------------------------
def integrity_score(violations: int, warnings: int) -> float:
    return float(min(100.0, max(0.0, 100.0 - VIOLATION_PENALTY * violations - WARNING_PENALTY * warnings)))


def integrity_band(score: float) -> str:
    if score >= HIGH_BAND:
        return "High"
    if score >= STABLE_BAND:
        return "Stable"
    return "Review required"


def integrity_gate(result: dict[str, Any], fail_under: float = DEFAULT_GATE) -> bool:
    """True when the run may be used for adaptive steps / a CI gate passes."""
    score = result.get("score")
    return score is not None and float(score) >= float(fail_under)


def compute_integrity(folder: RunFolder, checkpoint_sidecar: dict | None) -> dict[str, Any]:
    """Run every check over the run folder; the JSON-ready result for integrity.json."""
    view = _load_view(folder, checkpoint_sidecar)
    checks = [check(view) for check in VIOLATION_CHECKS + WARNING_CHECKS]
    violations = sum(1 for c in checks if c.severity == "violation" and not c.passed)
    warnings = sum(1 for c in checks if c.severity == "warning" and not c.passed)
    score = integrity_score(violations, warnings)
    return to_jsonable({"score": score, "band": integrity_band(score), "violations": violations,
                        "warnings": warnings, "checks": [asdict(c) for c in checks]})


def _load_view(folder: RunFolder, sidecar: dict | None) -> RunView:
    errors: dict[str, str] = {}
    run = _try(lambda: folder.run_info(), "run", folder, errors)
    predictions = _try(lambda: folder.predictions(), "predictions", folder, errors)
    return RunView(folder, run, predictions, sidecar, errors)


def _try(load: Callable[[], Any], artifact: str, folder: RunFolder, errors: dict[str, str]) -> Any:
    if not folder.has(artifact):
        errors[artifact] = f"{ARTIFACTS[artifact]} is missing"
        return None
    try:
        return load()
    except Exception as exc:  # BsxError for damaged files; anything else is damage too
        errors[artifact] = str(getattr(exc, "message", exc))
        return None


def _data_unavailable(check_id: str, view: RunView) -> Check | None:
    """Data checks fail when there is no data to verify: a run without predictions is not trustworthy."""
    if view.predictions is not None:
        return None
    reason = view.load_errors.get("predictions", "predictions.parquet is missing")
    return Check(check_id, "violation", False, f"not checkable: {reason}", {"checkable": False})


# -- violations: artifacts and ledger --------------------------------------
def check_artifacts_present(view: RunView) -> Check:
    missing = [ARTIFACTS[a] for a in REQUIRED_ARTIFACTS if not view.folder.has(a)]
    unreadable = {ARTIFACTS[a]: msg for a, msg in view.load_errors.items() if view.folder.has(a)}
    passed = not missing and not unreadable
    message = ("all required artifacts are present" if passed else
               "required artifact(s) missing or unreadable: " + ", ".join(missing + list(unreadable)))
    return Check("artifacts.present", "violation", passed, message,
                 {"required": [ARTIFACTS[a] for a in REQUIRED_ARTIFACTS], "missing": missing,
                  "unreadable": unreadable})


def check_artifact_hashes(view: RunView) -> Check:
    recorded = (view.run or {}).get("artifacts")
    if not isinstance(recorded, dict) or not recorded:
        return Check("artifacts.hashes", "violation", True,
                     "no artifact hashes recorded in run.json yet: presence checked only",
                     {"hashes_recorded": False})
    mismatched, missing = [], []
    for name, expected in sorted(recorded.items()):
        path = view.folder.path / name
        if not path.is_file():
            missing.append(name)
        elif sha256_file(path) != expected:
            mismatched.append(name)
    passed = not mismatched and not missing
    message = (f"all {len(recorded)} recorded artifact hashes match" if passed else
               "artifact(s) changed or removed since the run finished: " + ", ".join(mismatched + missing))
    return Check("artifacts.hashes", "violation", passed, message,
                 {"hashes_recorded": True, "checked": sorted(recorded), "mismatched": mismatched,
                  "missing": missing})


def check_ledger_monotonic(view: RunView) -> Check:
    entries = view.folder.ledger()
    if not entries:
        return Check("ledger.monotonic", "violation", True, "no ledger entries to check", {"entries": 0})
    unreadable = [k for k, e in enumerate(entries) if e.get("event") == "unreadable-ledger-line"]
    times, unparsable = [], []
    for index, entry in enumerate(entries):
        stamp = _parse_time(entry.get("time"))
        if stamp is None and index not in unreadable:
            unparsable.append(index)
        times.append(stamp)
    backwards = [index for index in range(1, len(times))
                 if times[index] is not None and _last_time(times, index) is not None
                 and times[index] < _last_time(times, index)]
    passed = not (unreadable or unparsable or backwards)
    if passed:
        message = f"{len(entries)} ledger {'entry' if len(entries) == 1 else 'entries'} in time order"
    else:
        parts = []
        if backwards:
            parts.append(f"{len(backwards)} entr{'y' if len(backwards) == 1 else 'ies'} earlier than the one before")
        if unreadable or unparsable:
            parts.append(f"{len(unreadable) + len(unparsable)} unreadable or undated line(s)")
        message = "ledger is not a monotonic trace: " + "; ".join(parts)
    return Check("ledger.monotonic", "violation", passed, message,
                 {"entries": len(entries), "out_of_order_lines": [i + 1 for i in backwards],
                  "unreadable_lines": [i + 1 for i in unreadable + unparsable]})


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return None
    return stamp if stamp.tzinfo is not None else None


def _last_time(times: list[datetime | None], index: int) -> datetime | None:
    """Latest readable time before `index`: one bad line must not hide an order violation."""
    earlier = [t for t in times[:index] if t is not None]
    return max(earlier) if earlier else None


# -- violations: data integrity --------------------------------------------
def check_probabilities(view: RunView) -> Check:
    if (unavailable := _data_unavailable("data.probabilities", view)) is not None:
        return unavailable
    rows = view.usable_rows()
    columns = [c for c in rows.columns if c == "p_mean" or c.startswith("prob_")]
    bad: dict[str, int] = {}
    examples: list[str] = []
    for column in columns:
        values = pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=float)
        present = ~np.isnan(values)
        invalid = present & (~np.isfinite(values) | (values < 0) | (values > 1))
        if invalid.any():
            bad[column] = int(invalid.sum())
            examples += rows.loc[invalid, "case_id"].astype(str).head(5).tolist() if "case_id" in rows else []
    passed = not bad
    message = ("every probability of a usable case is finite and in [0, 1]" if passed else
               "non-finite or out-of-range probabilities: " + ", ".join(f"{c} ({n})" for c, n in bad.items()))
    return Check("data.probabilities", "violation", passed, message,
                 {"columns": columns, "invalid": bad, "example_cases": examples[:5]})


def check_duplicate_ids(view: RunView) -> Check:
    if (unavailable := _data_unavailable("data.duplicate_ids", view)) is not None:
        return unavailable
    if "case_id" not in view.predictions.columns:
        return Check("data.duplicate_ids", "violation", False, "predictions have no case_id column",
                     {"checkable": False})
    ids = view.predictions["case_id"].astype(str)
    duplicated = sorted(ids[ids.duplicated(keep=False)].unique().tolist())
    passed = not duplicated
    message = ("case ids are unique" if passed else
               f"{len(duplicated)} case id(s) occur more than once")
    return Check("data.duplicate_ids", "violation", passed, message,
                 {"cases": int(len(ids)), "duplicated": duplicated[:20], "n_duplicated": len(duplicated)})


def check_missing_predictions(view: RunView) -> Check:
    if (unavailable := _data_unavailable("data.missing_predictions", view)) is not None:
        return unavailable
    rows = view.usable_rows()
    if "p_mean" not in rows.columns:
        return Check("data.missing_predictions", "violation", False, "predictions have no p_mean column",
                     {"checkable": False})
    missing = pd.to_numeric(rows["p_mean"], errors="coerce").isna()
    passed = not missing.any()
    message = ("every usable case has a prediction" if passed else
               f"{int(missing.sum())} case(s) without an error have no prediction")
    examples = rows.loc[missing, "case_id"].astype(str).head(5).tolist() if "case_id" in rows else []
    return Check("data.missing_predictions", "violation", passed, message,
                 {"usable_cases": int(len(rows)), "missing": int(missing.sum()), "example_cases": examples})


def check_error_rate(view: RunView) -> Check:
    if (unavailable := _data_unavailable("data.error_rate", view)) is not None:
        return unavailable
    tolerance = float(view.config.get("error_tolerance", DEFAULT_ERROR_TOLERANCE))
    total = len(view.predictions)
    errors = total - len(view.usable_rows())
    rate = errors / total if total else 0.0
    passed = rate <= tolerance
    message = (f"case error rate {rate:.1%} is within the tolerance of {tolerance:.1%}" if passed else
               f"case error rate {rate:.1%} ({errors}/{total}) exceeds the tolerance of {tolerance:.1%}")
    return Check("data.error_rate", "violation", passed, message,
                 {"cases": total, "errors": errors, "rate": rate, "tolerance": tolerance})


# -- violations: parameter coherence ---------------------------------------
def check_model_identity(view: RunView) -> Check:
    if view.sidecar is None:
        return Check("coherence.model", "violation", True, NOT_CHECKABLE_SIDECAR, {"checkable": False})
    differences = {}
    pairs = {"weights_sha256": (view.sidecar.get("weights_sha256"), view.model.get("sha256")),
             "task": (view.sidecar.get("task"), (view.run or {}).get("task")),
             "class_names": (view.sidecar.get("class_names"), (view.run or {}).get("class_names")),
             "architecture": (view.sidecar.get("architecture"), view.model.get("architecture"))}
    for key, (in_sidecar, in_run) in pairs.items():
        if in_sidecar is not None and _canonical(in_sidecar) != _canonical(in_run):
            differences[key] = {"checkpoint": in_sidecar, "run": in_run}
    passed = not differences
    message = ("the checkpoint is the model the run used" if passed else
               "the checkpoint differs from the model recorded in run.json: " + ", ".join(differences))
    return Check("coherence.model", "violation", passed, message, {"checkable": True, "differences": differences})


def check_metadata_encoder(view: RunView) -> Check:
    if view.sidecar is None:
        return Check("coherence.metadata_encoder", "violation", True, NOT_CHECKABLE_SIDECAR, {"checkable": False})
    in_sidecar = view.sidecar.get("metadata_encoder")
    in_run = view.model.get("metadata_encoder")
    differing = _differing_keys(in_sidecar, in_run)
    passed = in_sidecar is not None and in_run is not None and not differing
    if passed:
        message = "metadata encoder (schema, vocabularies, scaling) matches the checkpoint"
    elif in_sidecar is None or in_run is None:
        message = "metadata encoder missing from " + ("the checkpoint sidecar" if in_sidecar is None else "run.json")
    else:
        message = "metadata encoder in run.json differs from the checkpoint's: " + ", ".join(differing)
    evidence = {"checkable": True, "differing_fields": differing,
                "checkpoint_columns": _encoder_columns(in_sidecar), "run_columns": _encoder_columns(in_run)}
    return Check("coherence.metadata_encoder", "violation", passed, message, evidence)


def check_preprocessing(view: RunView) -> Check:
    if view.sidecar is None:
        return Check("coherence.preprocessing", "violation", True, NOT_CHECKABLE_SIDECAR, {"checkable": False})
    in_sidecar = view.sidecar.get("preprocessing") or {}
    in_run = view.model.get("preprocessing") or {}
    problems = []
    if in_sidecar.get("image_size") != in_run.get("image_size"):
        problems.append("image_size")
    for key in ("mean", "std"):
        if not _close_vectors(in_sidecar.get(key), in_run.get(key)):
            problems.append(key)
    passed = not problems
    message = ("image size and normalisation match the checkpoint" if passed else
               "preprocessing differs from the checkpoint's: " + ", ".join(problems))
    return Check("coherence.preprocessing", "violation", passed, message,
                 {"checkable": True, "checkpoint": in_sidecar, "run": in_run, "differing": problems})


def check_mc_uncertainty(view: RunView) -> Check:
    samples = view.config.get("mc_samples")
    reported = [c for c in UNCERTAINTY_COLUMNS if view.predictions is not None and c in view.predictions.columns]
    if samples is None:
        return Check("coherence.mc_uncertainty", "violation", False, "run.json records no mc_samples",
                     {"mc_samples": None, "uncertainty_columns": reported})
    passed = int(samples) >= 2 or not reported
    message = (f"{samples} MC samples support the reported uncertainty" if passed else
               f"uncertainty ({', '.join(reported)}) is reported from {samples} MC sample(s); at least 2 are needed")
    return Check("coherence.mc_uncertainty", "violation", passed, message,
                 {"mc_samples": int(samples), "uncertainty_columns": reported})


def check_mc_samples_shape(view: RunView) -> Check:
    expected_width = view.config.get("mc_samples")
    if not view.folder.has("mc_samples"):
        return Check("coherence.mc_samples_shape", "violation", False, "not checkable: mc_samples.npy is missing",
                     {"checkable": False})
    try:
        shape = tuple(view.folder.load_array("mc_samples").shape)
    except Exception as exc:
        return Check("coherence.mc_samples_shape", "violation", False,
                     f"not checkable: mc_samples.npy cannot be read ({getattr(exc, 'message', exc)})",
                     {"checkable": False})
    cases = len(view.predictions) if view.predictions is not None else None
    problems = []
    if len(shape) != 2:
        problems.append(f"mc_samples.npy has {len(shape)} dimensions, expected 2 (cases x samples)")
    else:
        if expected_width is not None and shape[1] != int(expected_width):
            problems.append(f"width {shape[1]} != mc_samples {expected_width}")
        if cases is not None and shape[0] != cases:
            problems.append(f"{shape[0]} rows for {cases} cases")
    passed = not problems
    message = "mc_samples.npy matches the cases and MC sample count" if passed else "; ".join(problems)
    return Check("coherence.mc_samples_shape", "violation", passed, message,
                 {"shape": list(shape), "mc_samples": expected_width, "cases": cases})


def _canonical(value: Any) -> str:
    return json.dumps(to_jsonable(value), sort_keys=True)


def _differing_keys(left: Any, right: Any) -> list[str]:
    if not isinstance(left, dict) or not isinstance(right, dict):
        return [] if _canonical(left) == _canonical(right) else ["(whole encoder)"]
    return sorted(k for k in set(left) | set(right) if _canonical(left.get(k)) != _canonical(right.get(k)))


def _encoder_columns(encoder: Any) -> list[str] | None:
    if not isinstance(encoder, dict):
        return None
    return list(encoder.get("numeric", [])) + list(encoder.get("categorical", []))


def _close_vectors(left: Any, right: Any) -> bool:
    try:
        a, b = np.asarray(left, dtype=float), np.asarray(right, dtype=float)
    except (TypeError, ValueError):
        return False
    return a.shape == b.shape and a.size > 0 and bool(np.allclose(a, b, rtol=0, atol=1e-9))


# -- violations: leakage ---------------------------------------------------
def hash_identifier(value: Any) -> str:
    """The training side's hash: sha256(str(id)) truncated to 16 hex digits."""
    return hashlib.sha256(str(value).encode()).hexdigest()[:16]


def _hashed_ids(values: pd.Series) -> dict[str, str]:
    """hash -> id; integral floats (ids that passed through a float column) also hash as integers."""
    hashed: dict[str, str] = {}
    for value in values.dropna().unique():
        forms = {str(value)}
        if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
            forms.add(str(int(value)))
        for form in forms:
            hashed[hash_identifier(form)] = str(value)
    return hashed


def check_leakage(view: RunView) -> Check:
    if view.sidecar is None:
        return Check("leakage.training_overlap", "violation", True, NOT_CHECKABLE_SIDECAR, {"checkable": False})
    training = view.sidecar.get("training_patient_ids")
    if not isinstance(training, dict):
        return Check("leakage.training_overlap", "violation", True,
                     "not checkable: the checkpoint records no hashed training identities",
                     {"checkable": False})
    if view.predictions is None:
        return _data_unavailable("leakage.training_overlap", view)
    overlaps: dict[str, int] = {}
    examples: dict[str, list[str]] = {}
    for column in IDENTITY_COLUMNS:
        if column not in view.predictions.columns or not training.get(column):
            continue
        ours = _hashed_ids(view.predictions[column])
        shared = sorted(set(ours) & set(training[column]))
        if shared:
            overlaps[column] = len({ours[h] for h in shared})
            examples[column] = sorted({ours[h] for h in shared})[:5]
    passed = not overlaps
    message = ("no validation patient, lesion or case appears in the training cohort" if passed else
               "validation cases overlap the training cohort: " +
               ", ".join(f"{n} {column.replace('_id', '')}(s)" for column, n in overlaps.items()))
    return Check("leakage.training_overlap", "violation", passed, message,
                 {"checkable": True, "overlap": overlaps, "examples": examples,
                  "compared": [c for c in IDENTITY_COLUMNS if training.get(c)]})


# -- warnings ---------------------------------------------------------------
def check_subgroup_size(view: RunView) -> Check:
    if not view.folder.has("fairness"):
        return Check("subgroups.min_size", "warning", True, "no fairness.csv: no subgroup table to check",
                     {"checkable": False})
    try:
        table = view.folder.fairness()
    except Exception as exc:
        return Check("subgroups.min_size", "warning", False, f"fairness.csv cannot be read ({exc})",
                     {"checkable": False})
    notes = table["note"].fillna("").astype(str) if "note" in table.columns else pd.Series([], dtype=str)
    thin = table.loc[notes.str.startswith("not estimable").to_numpy()] if len(notes) else table.iloc[0:0]
    groups = [{"attribute": str(r.get("attribute")), "group": str(r.get("group")), "note": str(r.get("note"))}
              for r in thin.to_dict(orient="records")]
    passed = not groups
    message = ("every subgroup is large enough to estimate" if passed else
               f"{len(groups)} subgroup(s) not estimable (below minimum size or one class only)")
    return Check("subgroups.min_size", "warning", passed, message, {"groups": groups[:50], "n": len(groups)})


def check_optional_fields(view: RunView) -> Check:
    if (unavailable := _data_unavailable("fields.optional", view)) is not None:
        return Check("fields.optional", "warning", False, unavailable.message, unavailable.evidence)
    frame = view.predictions
    recorded = {}
    for column in OPTIONAL_FIELDS:
        values = frame[column] if column in frame.columns else pd.Series([], dtype=object)
        present = values.notna() & (values.astype(str).str.strip() != "")
        recorded[column] = float(present.mean()) if len(frame) and len(values) else 0.0
    missing = [c for c, share in recorded.items() if share == 0.0]
    passed = not missing
    message = ("skin type and site are recorded" if passed else
               "no case records " + " or ".join(missing) + ": subgroup analyses by it are impossible")
    return Check("fields.optional", "warning", passed, message, {"recorded_share": recorded, "missing": missing})


def check_prevalence(view: RunView) -> Check:
    if (unavailable := _data_unavailable("labels.prevalence", view)) is not None:
        return Check("labels.prevalence", "warning", False, unavailable.message, unavailable.evidence)
    positive = _positive_labels(view)
    labelled = positive.dropna()
    if labelled.empty:
        return Check("labels.prevalence", "warning", True, "not checkable: no labelled cases",
                     {"checkable": False})
    prevalence = float(labelled.mean())
    low, high = PREVALENCE_RANGE
    passed = low <= prevalence <= high
    message = (f"prevalence {prevalence:.1%} is within {low:.0%}-{high:.0%}" if passed else
               f"extreme prevalence {prevalence:.1%} (outside {low:.0%}-{high:.0%}): "
               "sensitivity or specificity rests on few cases")
    return Check("labels.prevalence", "warning", passed, message,
                 {"prevalence": prevalence, "labelled": int(len(labelled)), "range": [low, high]})


def _positive_labels(view: RunView) -> pd.Series:
    """Malignant (1) / benign (0) per usable case: truth for binary runs, the malignant column for multiclass."""
    rows = view.usable_rows()
    task = (view.run or {}).get("task", "binary")
    column = "truth" if task == "binary" or "malignant" not in rows.columns else "malignant"
    if column not in rows.columns:
        return pd.Series([], dtype=float)
    return pd.to_numeric(rows[column].astype(object), errors="coerce").astype(float)


def check_unlabelled(view: RunView) -> Check:
    if (unavailable := _data_unavailable("labels.unlabelled", view)) is not None:
        return Check("labels.unlabelled", "warning", False, unavailable.message, unavailable.evidence)
    rows = view.usable_rows()
    truth = pd.to_numeric(rows["truth"].astype(object), errors="coerce") if "truth" in rows.columns else None
    unlabelled = int(truth.isna().sum()) if truth is not None else len(rows)
    passed = unlabelled == 0
    message = ("every usable case has a label" if passed else
               f"{unlabelled} of {len(rows)} usable case(s) have no label and are left out of the metrics")
    return Check("labels.unlabelled", "warning", passed, message,
                 {"unlabelled": unlabelled, "usable_cases": int(len(rows))})


def check_drift(view: RunView) -> Check:
    """engine.drift's overall verdict: "drift" or "partial drift" (some features shifted) is flagged."""
    if not view.folder.has("drift"):
        return Check("drift.flagged", "warning", True, "not checkable: no drift.json", {"checkable": False})
    try:
        report = view.folder.read_json("drift")
    except Exception as exc:
        return Check("drift.flagged", "warning", False, f"drift.json cannot be read ({getattr(exc, 'message', exc)})",
                     {"checkable": False})
    verdict = report.get("verdict")
    if verdict not in DRIFT_VERDICTS:
        note = report.get("note") or report.get("status") or f"drift verdict is {verdict!r}"
        return Check("drift.flagged", "warning", True, f"not checkable: {note}", {"checkable": False})
    flagged = DRIFT_VERDICTS[verdict]
    features = drifted_features(report)
    message = (f"{verdict} between the reference and this cohort" +
               (f": {', '.join(features[:6])}" if features else "")) if flagged else "no drift flagged"
    return Check("drift.flagged", "warning", not flagged, message,
                 {"checkable": True, "verdict": verdict, "verdicts": report.get("verdicts"),
                  "drifted": features})


def drifted_features(report: dict[str, Any]) -> list[str]:
    """Drifted metadata features plus the prediction / embedding parts whose verdict is drift."""
    metadata = report.get("metadata") if isinstance(report.get("metadata"), dict) else {}
    names = [str(name) for name in metadata.get("drifted_features") or []]
    parts = report.get("verdicts") if isinstance(report.get("verdicts"), dict) else {}
    names += [f"{part} (overall)" for part, verdict in parts.items() if part != "metadata" and verdict == "drift"]
    return names


def check_unseen_categories(view: RunView) -> Check:
    unseen = (view.run or {}).get("unseen_categories") or {}
    counts = {str(k): int(v) for k, v in unseen.items() if isinstance(v, (int, float)) and v > 0}
    passed = not counts
    message = ("every metadata category was seen in training" if passed else
               "metadata values unseen in training (encoded as unknown): " +
               ", ".join(f"{column} ({n})" for column, n in counts.items()))
    return Check("metadata.unseen_categories", "warning", passed, message, {"unseen": counts})


VIOLATION_CHECKS: list[Callable[[RunView], Check]] = [
    check_artifacts_present, check_artifact_hashes, check_ledger_monotonic,
    check_probabilities, check_duplicate_ids, check_missing_predictions, check_error_rate,
    check_model_identity, check_metadata_encoder, check_preprocessing, check_mc_uncertainty,
    check_mc_samples_shape, check_leakage,
]
WARNING_CHECKS: list[Callable[[RunView], Check]] = [
    check_subgroup_size, check_optional_fields, check_prevalence, check_unlabelled, check_drift,
    check_unseen_categories,
]
