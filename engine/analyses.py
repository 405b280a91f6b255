"""Every analysis of a run, computed from the run folder and written back into it.

metrics.json (performance, calibration, selective prediction, subgroup and
site summaries), fairness.csv, drift.json, integrity.json and Grad-CAM
overlays for flagged cases. `bsx validate` runs them all; each can be rerun.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from cohorts.errors import BsxError
from engine.runfolder import RunFolder

FAIRNESS_ATTRIBUTES = ["site", "sex", "age_band", "skin_type", "body_site"]


def performance(folder: RunFolder, run: dict, config, temperature: dict | None = None) -> dict[str, Any]:
    from engine.metrics import compute_metrics

    return compute_metrics(folder.predictions(), task=run["task"], class_names=run["class_names"],
                           threshold=config.threshold, referral_rate=config.referral_rate, n_boot=config.n_boot,
                           seed=config.seed, temperature=temperature, source=folder.file("predictions"))


def subgroups(folder: RunFolder, metrics: dict, config) -> None:
    """fairness.csv plus its summary and the inter-site heterogeneity in metrics.json."""
    from engine.fairness import fairness_summary, subgroup_table
    from engine.heterogeneity import site_heterogeneity

    predictions = _binary_view(folder.predictions(), metrics)
    if predictions.loc[predictions["error"].isna(), "truth"].isna().all():
        note = "not estimable: the cohort has no labels (prediction-only run)"
        metrics["fairness"] = {"status": "not estimable", "note": note}
        metrics["heterogeneity"] = {"status": "not estimable", "note": note}
        return
    age_edges = {"age_edges": tuple(config.age_edges)} if config.age_edges else {}
    table = subgroup_table(predictions, attributes=config.attributes, threshold=config.threshold,
                           n_boot=config.n_boot, seed=config.seed, reference=config.reference_groups,
                           min_size=config.min_subgroup_size, **age_edges)
    folder.write_fairness(table)
    metrics["fairness"] = fairness_summary(table)
    metrics["heterogeneity"] = site_heterogeneity(predictions, min_size=config.min_subgroup_size)


def _binary_view(predictions: pd.DataFrame, metrics: dict) -> pd.DataFrame:
    """Subgroup analyses are binary (malignant vs not): map a multiclass run onto that."""
    if metrics.get("task") != "multiclass":
        return predictions
    view = predictions.copy()
    view["truth"] = predictions["malignant"].astype(float)
    malignant = [c for c in metrics["class_names"] if c.lower() in {"mel", "bcc", "scc", "melanoma",
                                                                   "basal cell carcinoma"}]
    view["p_mean"] = predictions[[f"prob_{c}" for c in malignant]].sum(axis=1) if malignant else np.nan
    return view


def resolve_reference(reference: str | None, default_cohort: str | None) -> tuple[str, Path] | None:
    """('run', path) for a run folder, ('cohort', path) for a cohort, None when there is none."""
    candidate = reference or default_cohort
    if not candidate:
        return None
    path = Path(candidate)
    if not path.exists():
        if reference:
            raise BsxError("reference not found", path=path, fix="point --reference at a run folder or a cohort")
        return None
    return ("run", path) if RunFolder(path).exists else ("cohort", path)


def reference_data(kind: str, path: Path) -> dict[str, Any]:
    if kind == "run":
        ref = RunFolder(path)
        predictions = ref.predictions()
        ok = predictions["error"].isna().to_numpy()
        embeddings = np.asarray(ref.load_array("embeddings"))[ok] if ref.has("embeddings") else None
        return {"frame": predictions[ok], "predictions": predictions[ok], "embeddings": embeddings}
    from cohorts.cohort import load_cohort

    cases = load_cohort(path).usable_cases.drop(columns=["source_row"])  # a file position, not a feature
    return {"frame": cases, "predictions": None, "embeddings": None}


def drift(folder: RunFolder, config, run: dict) -> dict[str, Any]:
    from engine.drift import drift_report

    resolved = resolve_reference(config.reference, run["model"].get("training_cohort"))
    if resolved is None:
        return {"status": "no reference", "note": "no reference given and the training cohort is not available; "
                "pass --reference RUN_OR_COHORT"}
    kind, path = resolved
    ref = reference_data(kind, path)
    predictions = folder.predictions()
    ok = predictions["error"].isna().to_numpy()
    embeddings = np.asarray(folder.load_array("embeddings"))[ok]
    report = drift_report(ref["frame"], predictions[ok], ref_pred=ref["predictions"], cur_pred=predictions[ok],
                          ref_emb=ref["embeddings"], cur_emb=embeddings if ref["embeddings"] is not None else None)
    report["reference"] = {"kind": kind, "path": str(path.resolve()),
                           "source": "given" if config.reference else "training cohort (from the checkpoint)"}
    return report


def recalibrate(folder: RunFolder, checkpoint, config, integrity: dict, force: bool) -> dict[str, Any]:
    """Temperature scaling fitted on a labelled calibration cohort (an adaptive step: gated on integrity)."""
    from cohorts.cohort import load_cohort
    from engine.calibration import fit_calibration
    from engine.device import resolve_device
    from engine.infer import mc_predict

    if integrity.get("score", 0) < 70 and not force:
        raise BsxError(f"recalibration refused: integrity score {integrity.get('score')} is below 70",
                       path=folder.path, fix="resolve the integrity violations, or pass --force")
    cohort = load_cohort(config.calibration)
    cases = cohort.usable_cases
    cases = cases[cases["malignant"].notna()].reset_index(drop=True)
    meta, _ = checkpoint.encoder.transform(cases)
    logits, errors = [], []
    for batch in mc_predict(checkpoint.model, cases["image_path"].tolist(), meta, checkpoint.preprocessing,
                            samples=1, batch_size=config.batch_size, workers=config.workers, seed=config.seed,
                            device=resolve_device(config.device)):
        logits.append(batch.logits)
        errors += batch.errors
    ok = np.array([e == "" for e in errors])
    matrix = np.concatenate(logits)[ok]
    if checkpoint.task == "binary":
        labels = cases["malignant"].to_numpy(dtype=int)[ok]
        matrix = matrix[:, 0]
    else:
        lookup = {c: i for i, c in enumerate(checkpoint.class_names)}
        labels = cases["diagnosis"].map(lookup).to_numpy()[ok]
        keep = ~pd.isna(labels)
        matrix, labels = matrix[keep], labels[keep].astype(int)
    report = fit_calibration(matrix, labels)
    report["calibration_cohort"] = str(Path(config.calibration).resolve())
    return report


def record_integrity(folder: RunFolder, sidecar: dict | None) -> dict[str, Any]:
    """Hash the artifacts into run.json, then score the run against those hashes."""
    from engine.integrity import compute_integrity
    from engine.validate import artifact_hashes

    run = folder.run_info()
    run["artifacts"] = artifact_hashes(folder)
    folder.write_json("run", run)
    integrity = compute_integrity(folder, sidecar)
    folder.write_json("integrity", integrity)
    return integrity


def run_analyses(folder: RunFolder, *, checkpoint, config, say: Callable[[str], None] | None = None,
                 force: bool = False) -> dict[str, Any]:
    from engine.explain import explain_flagged

    say = say or (lambda message: None)
    run = folder.run_info()
    say("performance metrics")
    metrics = performance(folder, run, config)
    say("subgroups and sites")
    subgroups(folder, metrics, config)
    folder.write_json("metrics", metrics)
    say("drift")
    folder.write_json("drift", drift(folder, config, run))
    say("integrity")
    integrity = record_integrity(folder, checkpoint.sidecar)
    if config.calibration:
        say("recalibration")
        temperature = recalibrate(folder, checkpoint, config, integrity, force)
        calibrated = performance(folder, run, config, temperature)
        metrics["calibration"] = calibrated.get("calibration", temperature)
        folder.write_json("metrics", metrics)
        integrity = record_integrity(folder, checkpoint.sidecar)
    if config.gradcam:
        say("Grad-CAM for flagged cases")
        checkpoint.model.to("cpu")  # a handful of cases: attribution runs where the images are decoded
        explain_flagged(folder, checkpoint, limit=config.max_gradcam)
    folder.append_ledger("analyses", metrics=True, fairness=True, drift=True, integrity=integrity.get("score"))
    return metrics
