"""Training the fusion model on a cohort (`bsx train`).

Grouped split (no patient on both sides), class-weighted loss, AdamW with a
cosine schedule, dermoscopy augmentation, early stopping on validation loss,
exact resume. Every epoch's randomness derives from (seed, epoch), so a
resumed run reproduces the uninterrupted one.
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from cohorts.atomic import atomic_write, atomic_write_text
from cohorts.errors import BsxError
from engine.checkpoint import save_checkpoint
from engine.data import CaseDataset, Preprocessing, default_workers, make_loader, normalise
from engine.device import resolve_device
from engine.features import MetadataEncoder
from engine.infer import probabilities, sample_heads
from engine.model import FusionModel, ModelConfig
from engine.runfolder import RunFolder
from engine.splits import grouped_split
from engine.uncertainty import summarise

STATE_FILE = "train_state.pt"
METRICS_FILE = "metrics.csv"
Progress = Callable[[dict[str, Any]], None]


@dataclass
class TrainConfig:
    cohort: str
    out: str
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    image_size: int = 224
    backbone: str = "efficientnet_b0"
    backbone_weights: str | None = None
    target: str = "binary"
    site_split: bool = False
    val_fraction: float = 0.2
    patience: int = 3
    seed: int = 0
    workers: int = field(default_factory=default_workers)
    mc_samples: int = 10
    device: str = "auto"
    skip_errors: bool = False
    malignant: list[str] | None = None

    def validate(self) -> None:
        if self.target not in ("binary", "multiclass"):
            raise BsxError(f"--target must be binary or multiclass (got {self.target})")
        for name in ("epochs", "batch_size", "image_size", "mc_samples"):
            if getattr(self, name) < 1:
                raise BsxError(f"--{name.replace('_', '-')} must be at least 1")
        if self.lr <= 0:
            raise BsxError("--lr must be positive")


@dataclass
class Prepared:
    cases: pd.DataFrame
    labels: np.ndarray
    class_names: list[str]
    val_mask: np.ndarray
    encoder: MetadataEncoder
    meta: np.ndarray
    fingerprint: str


def prepare(config: TrainConfig) -> Prepared:
    from cohorts.cohort import load_cohort

    cohort = load_cohort(config.cohort, malignant=config.malignant)
    errors = cohort.counts()["error"]
    if errors and not config.skip_errors:
        first = next(p for p in cohort.problems if p.severity == "error")
        raise BsxError(f"the cohort has {errors} row error(s), e.g. row {first.row}: {first.message}",
                       path=cohort.metadata_file,
                       fix="fix them (see `bsx cohort check`), or pass --skip-errors to train on the usable rows")
    cases = cohort.usable_cases
    cases = cases[cases["malignant"].notna()].reset_index(drop=True)
    if config.target == "binary":
        labels = cases["malignant"].to_numpy(dtype=int)
        class_names = ["benign", "malignant"]
    else:
        class_names = sorted(cases["diagnosis"].dropna().astype(str).unique())
        labels = cases["diagnosis"].astype(str).map({c: i for i, c in enumerate(class_names)}).to_numpy(dtype=int)
    if len(np.unique(labels)) < 2:
        raise BsxError(f"the cohort has a single class among {len(cases)} labelled usable cases",
                       path=cohort.metadata_file, fix="training needs both malignant and benign cases")
    val_mask = grouped_split(cases, labels, config.val_fraction, config.seed, config.site_split)
    for side, mask in (("training", ~val_mask), ("validation", val_mask)):
        if len(np.unique(labels[mask])) < 2:
            raise BsxError(f"the {side} split has a single class after grouping by patient",
                           fix="use a larger cohort or a different --seed")
    encoder = MetadataEncoder().fit(cases[~val_mask])
    meta, _unseen = encoder.transform(cases)
    return Prepared(cases, labels, class_names, val_mask, encoder, meta, cohort.fingerprint)


def augmentation():
    from torchvision.transforms import v2

    return v2.Compose([v2.RandomHorizontalFlip(), v2.RandomVerticalFlip(),
                       v2.RandomRotation(30), v2.ColorJitter(0.15, 0.15, 0.1, 0.02)])


def loss_function(labels: np.ndarray, n_outputs: int) -> nn.Module:
    """Class weights inversely proportional to frequency (imbalanced cohorts)."""
    counts = np.bincount(labels, minlength=max(2, n_outputs)).astype(float)
    if n_outputs == 1:
        return nn.BCEWithLogitsLoss(pos_weight=torch.tensor(counts[0] / max(counts[1], 1.0)))
    weights = counts.sum() / (len(counts) * np.maximum(counts, 1.0))
    return nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32))


def compute_loss(criterion: nn.Module, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if logits.shape[1] == 1:
        return criterion(logits[:, 0], labels.float())
    return criterion(logits, labels.long())


class Trainer:
    def __init__(self, config: TrainConfig, progress: Progress | None = None,
                 should_stop: Callable[[], bool] | None = None) -> None:
        config.validate()
        self.config = config
        self.out = Path(config.out)
        self.emit = progress or (lambda event: None)
        self.should_stop = should_stop or (lambda: False)

    # -- setup -------------------------------------------------------------
    def _build(self, data: Prepared) -> None:
        config = self.config
        torch.manual_seed(config.seed)
        n_outputs = 1 if config.target == "binary" else len(data.class_names)
        self.model_config = ModelConfig(backbone=config.backbone, meta_dim=data.encoder.dim, n_outputs=n_outputs)
        weights = Path(config.backbone_weights) if config.backbone_weights else None
        self.device = resolve_device(config.device)
        self.model = FusionModel(self.model_config, weights).to(device=self.device, memory_format=torch.channels_last)
        self.prep = Preprocessing(image_size=config.image_size)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        steps = max(1, int((~data.val_mask).sum()) // config.batch_size) * config.epochs
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=max(steps, 1))
        self.criterion = loss_function(data.labels[~data.val_mask], n_outputs).to(self.device)
        paths = data.cases["image_path"].tolist()
        train_idx, val_idx = np.flatnonzero(~data.val_mask), np.flatnonzero(data.val_mask)
        self.train_set = CaseDataset([paths[i] for i in train_idx], data.meta[train_idx], data.labels[train_idx],
                                     config.image_size, augment=augmentation())
        self.val_set = CaseDataset([paths[i] for i in val_idx], data.meta[val_idx], data.labels[val_idx],
                                   config.image_size)

    # -- state -------------------------------------------------------------
    def _save_state(self, epoch: int, best_loss: float, stale: int, history: list[dict]) -> None:
        state = {"epoch": torch.tensor(epoch), "best_loss": torch.tensor(best_loss), "stale": torch.tensor(stale),
                 "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": {k: torch.tensor(v) if isinstance(v, (int, float)) else v
                               for k, v in self.scheduler.state_dict().items() if k != "_get_lr_called_within_step"},
                 "rng": torch.get_rng_state()}
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write(self.out / STATE_FILE, lambda handle: handle.write(buffer.getvalue()))
        self._write_history(history)

    def _load_state(self) -> tuple[int, float, int, list[dict]]:
        path = self.out / STATE_FILE
        if not path.is_file():
            raise BsxError("nothing to resume: no training state in this folder", path=path,
                           fix="run without --resume to start training")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            scheduler = {k: v.item() if isinstance(v, torch.Tensor) and v.ndim == 0 else v
                         for k, v in state["scheduler"].items()}
            self.scheduler.load_state_dict(scheduler)
            torch.set_rng_state(state["rng"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise BsxError(f"training state cannot be resumed ({str(exc).splitlines()[0]})", path=path,
                           fix="resume with the same options as the original run, or start again") from None
        return int(state["epoch"]), float(state["best_loss"]), int(state["stale"]), self._read_history()

    def _write_history(self, history: list[dict]) -> None:
        buffer = io.StringIO()
        if history:
            writer = csv.DictWriter(buffer, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)
        atomic_write_text(self.out / METRICS_FILE, buffer.getvalue(), mode=0o644)

    def _read_history(self) -> list[dict]:
        path = self.out / METRICS_FILE
        if not path.is_file():
            return []
        return [{k: float(v) if k != "epoch" else int(v) for k, v in row.items()}
                for row in csv.DictReader(path.open())]

    # -- one epoch ---------------------------------------------------------
    def _train_epoch(self, epoch: int) -> tuple[float, float]:
        config = self.config
        torch.manual_seed(config.seed * 10_007 + epoch)
        # drop_last: a final batch of one image would break BatchNorm in training mode.
        loader = make_loader(self.train_set, config.batch_size, config.workers, shuffle=True,
                             generator=torch.Generator().manual_seed(config.seed * 7_919 + epoch),
                             drop_last=len(self.train_set) > config.batch_size)
        self.model.train()
        total, seen, started = 0.0, 0, time.perf_counter()
        steps = len(loader)
        for step, (_idx, images, meta, labels, errors) in enumerate(loader, start=1):
            keep = torch.tensor([not e for e in errors])
            if not keep.any():
                continue
            logits = self.model(normalise(images[keep], self.prep, self.device), meta[keep].to(self.device))
            loss = compute_loss(self.criterion, logits, labels[keep].to(self.device))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            total += loss.item() * int(keep.sum())
            seen += int(keep.sum())
            rate = seen / max(time.perf_counter() - started, 1e-9)
            self.emit({"event": "step", "epoch": epoch, "step": step, "steps": steps, "loss": loss.item(),
                       "images_per_s": rate})
            if self.should_stop():
                raise KeyboardInterrupt
        return total / max(seen, 1), seen / max(time.perf_counter() - started, 1e-9)

    def _validate_epoch(self, epoch: int) -> dict[str, float]:
        config = self.config
        self.model.eval()
        torch.manual_seed(config.seed * 31 + epoch)
        losses, probs, mc_probs, labels = [], [], [], []
        with torch.inference_mode():
            for _idx, images, meta, y, errors in make_loader(self.val_set, config.batch_size, config.workers):
                keep = torch.tensor([not e for e in errors])
                self.model.eval()
                meta_kept = meta[keep].to(self.device)
                embeddings = self.model.embed(normalise(images[keep], self.prep, self.device))
                logits = self.model.heads(embeddings, meta_kept)
                losses.append(float(compute_loss(self.criterion, logits, y[keep].to(self.device))) * int(keep.sum()))
                probs.append(probabilities(logits).cpu().numpy())
                samples = sample_heads(self.model, embeddings, meta_kept, config.mc_samples)
                mc_probs.append(probabilities(samples).cpu().numpy())
                labels.append(y[keep].numpy().astype(int))
        y = np.concatenate(labels)
        p = np.concatenate(probs)
        mc = summarise(np.concatenate(mc_probs, axis=1))
        return {"val_loss": sum(losses) / max(len(y), 1), **epoch_figures(y, p),
                "val_mc_entropy": float(mc.entropy.mean())}

    # -- the loop ----------------------------------------------------------
    def run(self, resume: bool = False) -> dict[str, Any]:
        config = self.config
        data = prepare(config)
        self.out.mkdir(parents=True, exist_ok=True)
        if not resume and (self.out / STATE_FILE).exists():
            raise BsxError("this folder already holds a training run", path=self.out,
                           fix="pass --resume to continue it, or choose a new --out")
        self._build(data)
        start_epoch, best_loss, stale, history = (self._load_state() if resume else (0, math.inf, 0, []))
        folder = RunFolder(self.out)
        folder.append_ledger("train-start" if not resume else "train-resume", config=asdict(config),
                             cohort_fingerprint=data.fingerprint, epoch=start_epoch)
        self.emit({"event": "start", "epochs": config.epochs, "from_epoch": start_epoch + 1,
                   "train_cases": int((~data.val_mask).sum()), "val_cases": int(data.val_mask.sum()),
                   "classes": data.class_names})
        patient_hash = _patient_hash(data.cases)
        for epoch in range(start_epoch + 1, config.epochs + 1):
            started = time.perf_counter()
            train_loss, rate = self._train_epoch(epoch)
            row = {"epoch": epoch, "train_loss": train_loss, **self._validate_epoch(epoch),
                   "lr": self.scheduler.get_last_lr()[0], "images_per_s": rate,
                   "seconds": time.perf_counter() - started}
            history.append(row)
            improved = row["val_loss"] < best_loss - 1e-6
            if improved:
                best_loss, stale = row["val_loss"], 0
                save_checkpoint(self.out, self.model, encoder=data.encoder, preprocessing=self.prep,
                                class_names=data.class_names, task=config.target, extra={
                                    "training_cohort_fingerprint": data.fingerprint,
                                    "training_patients_sha256": patient_hash,
                                    "training_case_ids_sha256": _ids_hash(data.cases["case_id"]),
                                    "training_patient_ids": _identity_list(data.cases),
                                    "seed": config.seed, "best_epoch": epoch, "best_metrics": row,
                                    "train_config": asdict(config)})
            else:
                stale += 1
            self._save_state(epoch, best_loss, stale, history)
            self.emit({"event": "epoch", **row, "best": improved})
            if stale >= config.patience:
                self.emit({"event": "early_stop", "epoch": epoch, "patience": config.patience})
                break
        best = min(history, key=lambda r: r["val_loss"]) if history else {}
        folder.append_ledger("train-end", best_epoch=best.get("epoch"), best_val_loss=best.get("val_loss"),
                             weights_sha256=_weights_hash(self.out))
        result = {"event": "done", "checkpoint": str(self.out), "best_epoch": best.get("epoch"),
                  "best": best, "epochs_run": len(history)}
        self.emit(result)
        return result


def _estimable_auc(truth: np.ndarray, score: np.ndarray) -> float:
    """DeLong AUC, or NaN when a class has fewer than 2 cases (small validation splits)."""
    from engine.metrics import auc_delong

    positives = int(truth.sum())
    return auc_delong(truth, score)[0] if min(positives, len(truth) - positives) >= 2 else float("nan")


def epoch_figures(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Validation accuracy, AUC, ECE and Brier for one epoch.

    Binary: P(malignant). Multiclass: macro one-vs-rest AUC over the estimable classes,
    top-label ECE, Brier summed over classes (Brier's original form).
    """
    from engine.metrics import expected_calibration_error

    if p.ndim == 1:
        pred = (p >= 0.5).astype(int)
        return {"val_accuracy": float((pred == y).mean()), "val_auc": float(_estimable_auc(y, p)),
                "val_ece": float(expected_calibration_error(p, y)), "val_brier": float(((p - y) ** 2).mean())}
    pred = p.argmax(axis=1)
    aucs = [_estimable_auc((y == k).astype(int), p[:, k]) for k in range(p.shape[1])]
    aucs = [a for a in aucs if a == a]
    onehot = np.eye(p.shape[1])[y]
    return {"val_accuracy": float((pred == y).mean()), "val_auc": float(np.mean(aucs)) if aucs else float("nan"),
            "val_ece": float(expected_calibration_error(p.max(axis=1), (pred == y).astype(int))),
            "val_brier": float(((p - onehot) ** 2).sum(axis=1).mean())}


def _ids_hash(values: pd.Series) -> str:
    return hashlib.sha256("\n".join(sorted(values.astype(str))).encode()).hexdigest()


def _patient_hash(cases: pd.DataFrame) -> str:
    return _ids_hash(cases["patient_id"].dropna())


def _identity_list(cases: pd.DataFrame) -> dict[str, list[str]]:
    """Hashed patient and lesion ids of the training cohort, for leakage checks at validation.

    Hashes, not ids, so a checkpoint shared outside the site carries no identifiers.
    """
    def hashed(column: str) -> list[str]:
        return sorted({hashlib.sha256(str(v).encode()).hexdigest()[:16] for v in cases[column].dropna()})

    return {"patient_id": hashed("patient_id"), "lesion_id": hashed("lesion_id"), "case_id": hashed("case_id")}


def _weights_hash(folder: Path) -> str | None:
    from engine.runfolder import sha256_file

    path = folder / "model.safetensors"
    return sha256_file(path) if path.is_file() else None
