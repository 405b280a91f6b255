"""Grad-CAM and Grad-CAM++ through the full image + metadata model.

Attribution runs the backbone's last convolutional stage (`forward_features`)
through pooling, the metadata branch and the fusion head, with the case's
metadata held fixed: the heatmap explains the fused prediction, not an
image-only proxy. Dropout is off during attribution and every module's
training flag is restored afterwards. Each explanation carries two checks on
itself: deletion faithfulness (does removing the most-attributed pixels lower
the probability more than removing random ones?) and stability across MC
dropout samples of the heads (does the explanation survive the model's own
uncertainty?).
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image

from cohorts.atomic import atomic_write, atomic_write_json, make_private_dir
from cohorts.errors import BsxError
from engine.data import decode, normalise
from engine.runfolder import RunFolder

METHODS = ("gradcam", "gradcam++")
DELETION_FRACTION = 0.2
RANDOM_DELETIONS = 5
STABILITY_SAMPLES = 8
OVERLAY_ALPHA = 0.45
_EPS = 1e-7


@contextmanager
def attribution_mode(model: torch.nn.Module) -> Iterator[None]:
    """Eval everywhere (dropout off, BatchNorm frozen); restore each module's flag afterwards."""
    flags = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for module, training in flags.items():
            module.training = training


def _batched(image: torch.Tensor, meta: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    image = image if image.dim() == 4 else image.unsqueeze(0)
    meta = torch.as_tensor(meta, dtype=torch.float32)
    meta = meta if meta.dim() == 2 else meta.unsqueeze(0)
    return image.float(), meta


def feature_map(model, images: torch.Tensor) -> torch.Tensor:
    """Activations of the last convolutional stage, as a leaf the gradients are taken against."""
    with torch.no_grad():
        fmap = model.backbone.forward_features(images)
    return fmap.detach().contiguous().requires_grad_(True)


def logits_from_features(model, fmap: torch.Tensor, meta: torch.Tensor) -> torch.Tensor:
    embedding = model.backbone.forward_head(fmap, pre_logits=True)
    return model.heads(embedding, meta)


def resolve_target(logits: torch.Tensor, target: int | None) -> int:
    """Output index explained: the single logit (binary) or the given / predicted class (multiclass)."""
    n_outputs = logits.shape[1]
    if target is None:
        return 0 if n_outputs == 1 else int(logits[0].argmax())
    if not 0 <= int(target) < n_outputs:
        raise BsxError(f"target class {target} is out of range: the model has {n_outputs} output(s)")
    return int(target)


def cam_weights(activations: torch.Tensor, grads: torch.Tensor, method: str) -> torch.Tensor:
    """(N, C) channel weights: mean gradient (Grad-CAM) or Chattopadhyay et al.'s alpha weights (Grad-CAM++)."""
    if method == "gradcam":
        return grads.mean(dim=(2, 3))
    if method == "gradcam++":
        grads_2 = grads.pow(2)
        grads_3 = grads_2 * grads
        sum_activations = activations.sum(dim=(2, 3), keepdim=True)
        alpha = grads_2 / (2 * grads_2 + sum_activations * grads_3 + 1e-6)
        alpha = torch.where(grads != 0, alpha, torch.zeros_like(alpha))
        return (torch.clamp(grads, min=0) * alpha).sum(dim=(2, 3))
    raise BsxError(f"unknown explanation method '{method}'", fix=f"use one of: {', '.join(METHODS)}")


def cams_from_gradients(activations: torch.Tensor, grads: torch.Tensor, method: str,
                        size: tuple[int, int]) -> np.ndarray:
    """(N, H, W) heatmaps in [0, 1]: ReLU of the weighted map, min-max scaled, bilinear upsampled."""
    weights = cam_weights(activations, grads, method)
    cam = torch.relu((weights[:, :, None, None] * activations).sum(dim=1))
    flat = cam.flatten(1)
    low = flat.min(dim=1).values[:, None, None]
    cam = cam - low
    high = cam.flatten(1).max(dim=1).values[:, None, None]
    cam = cam / (high + _EPS)
    upsampled = F.interpolate(cam[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    return upsampled.clamp(0, 1).detach().cpu().numpy().astype(np.float32)


def gradcam_heatmap(model, image_tensor: torch.Tensor, meta: torch.Tensor | np.ndarray, *,
                    method: str = "gradcam", target: int | None = None) -> np.ndarray:
    """(H, W) heatmap in [0, 1] for one normalised image, metadata held fixed, dropout off."""
    if method not in METHODS:
        raise BsxError(f"unknown explanation method '{method}'", fix=f"use one of: {', '.join(METHODS)}")
    images, meta = _batched(image_tensor, meta)
    with attribution_mode(model), torch.enable_grad():
        fmap = feature_map(model, images[:1])
        logits = logits_from_features(model, fmap, meta[:1])
        index = resolve_target(logits, target)
        (grads,) = torch.autograd.grad(logits[:, index].sum(), fmap)
        return cams_from_gradients(fmap.detach(), grads, method, tuple(images.shape[-2:]))[0]


def target_probability(logits: torch.Tensor, index: int) -> torch.Tensor:
    """Per-row probability of the explained output (sigmoid for one logit, softmax otherwise)."""
    if logits.shape[1] == 1:
        return torch.sigmoid(logits[:, 0])
    return torch.softmax(logits, dim=1)[:, index]


# -- self-checks --------------------------------------------------------------
def deletion_faithfulness(model, image: torch.Tensor, meta: torch.Tensor, heatmap: np.ndarray, index: int,
                          *, fraction: float = DELETION_FRACTION, repeats: int = RANDOM_DELETIONS,
                          seed: int = 0) -> dict[str, float]:
    """Probability drop when the top `fraction` attributed pixels become the image mean, vs random pixels.

    A faithful map scores > 0: its pixels matter more to the model than random ones.
    """
    images, meta = _batched(image, meta)
    height, width = heatmap.shape
    n_pixels = height * width
    k = max(1, int(round(fraction * n_pixels)))
    order = np.argsort(-heatmap.ravel(), kind="stable")
    rng = np.random.default_rng(seed)
    masks = np.zeros((1 + repeats, n_pixels), dtype=bool)
    masks[0, order[:k]] = True
    for r in range(repeats):
        masks[1 + r, rng.choice(n_pixels, size=k, replace=False)] = True
    mask = torch.from_numpy(masks.reshape(1 + repeats, 1, height, width))
    mean = images[:1].mean(dim=(2, 3), keepdim=True)
    batch = torch.where(mask, mean, images[:1].expand(1 + repeats, -1, -1, -1))
    with attribution_mode(model), torch.no_grad():
        original = float(target_probability(model(images[:1], meta[:1]), index)[0])
        deleted = target_probability(model(batch, meta[:1].expand(1 + repeats, -1)), index).numpy()
    drop_top = original - float(deleted[0])
    drop_random = original - float(deleted[1:].mean())
    return {"deletion_drop_top": drop_top, "deletion_drop_random": drop_random,
            "score": drop_top - drop_random, "fraction": fraction, "random_repeats": repeats}


def mc_stability(model, image: torch.Tensor, meta: torch.Tensor, reference: np.ndarray, index: int, *,
                 method: str = "gradcam", samples: int = STABILITY_SAMPLES, seed: int = 0) -> dict[str, Any]:
    """Mean correlation of heatmaps under MC dropout in the heads with the dropout-off heatmap.

    Only the heads are stochastic, so the backbone runs once; dropout is on for
    this check only, and the caller's RNG state is left untouched.
    """
    images, meta = _batched(image, meta)
    with attribution_mode(model), torch.enable_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in model.dropout_modules():
            module.train()
        base = feature_map(model, images[:1]).detach()
        fmap = base.expand(samples, -1, -1, -1).clone().requires_grad_(True)
        logits = logits_from_features(model, fmap, meta[:1].expand(samples, -1))
        (grads,) = torch.autograd.grad(logits[:, index].sum(), fmap)
        maps = cams_from_gradients(fmap.detach(), grads, method, tuple(images.shape[-2:]))
    correlations = [heatmap_correlation(reference, m) for m in maps]
    return {"mean_correlation": float(np.mean(correlations)), "min_correlation": float(np.min(correlations)),
            "n": samples}


def heatmap_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; two flat maps agree (1.0), one flat and one not do not (0.0)."""
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    sa, sb = a.std(), b.std()
    if sa < 1e-12 or sb < 1e-12:
        return 1.0 if sa < 1e-12 and sb < 1e-12 and np.allclose(a, b) else 0.0
    return float(np.corrcoef(a, b)[0, 1])


# -- overlays -------------------------------------------------------------------
def jet_colormap(values: np.ndarray) -> np.ndarray:
    """[0, 1] -> uint8 RGB, blue (cold) through green to red (hot), like matplotlib's jet."""
    v = np.clip(values, 0.0, 1.0)[..., None]
    centres = np.array([3.0, 2.0, 1.0])  # red, green, blue peaks at 3/4, 1/2, 1/4
    rgb = np.clip(1.5 - np.abs(4.0 * v - centres), 0.0, 1.0)
    return (rgb * 255).round().astype(np.uint8)


def overlay_image(pixels: np.ndarray, heatmap: np.ndarray, alpha: float = OVERLAY_ALPHA) -> Image.Image:
    colours = jet_colormap(heatmap).astype(np.float32)
    blended = (1 - alpha) * pixels.astype(np.float32) + alpha * colours
    return Image.fromarray(blended.clip(0, 255).round().astype(np.uint8), mode="RGB")


def _write_png(path, image: Image.Image) -> None:
    atomic_write(path, lambda handle: image.save(handle, format="PNG"))


def _write_npy(path, array: np.ndarray) -> None:
    atomic_write(path, lambda handle: np.save(handle, array, allow_pickle=False))


# -- run folder level -------------------------------------------------------------
def _case_row(predictions: pd.DataFrame, case_id: str, folder: RunFolder) -> pd.DataFrame:
    rows = predictions[predictions["case_id"].astype(str) == str(case_id)]
    if rows.empty:
        raise BsxError(f"case '{case_id}' is not in this run", path=folder.file("predictions"),
                       fix="use a case id from predictions.parquet (`bsx runs show` lists them)")
    row = rows.iloc[:1]
    error = row["error"].iloc[0] if "error" in row.columns else None
    if isinstance(error, str) and error:
        raise BsxError(f"case '{case_id}' failed during validation ({error}): nothing to explain",
                       path=folder.file("predictions"))
    return row


def _case_inputs(row: pd.DataFrame, checkpoint) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    path = str(row["image_path"].iloc[0])
    pixels, error = decode(path, checkpoint.preprocessing.image_size)
    if error:
        raise BsxError(f"the lesion image cannot be read ({error})", path=path,
                       fix="restore the image at its cohort path")
    meta, _unseen = checkpoint.encoder.transform(row.reset_index(drop=True))
    image = normalise(torch.from_numpy(pixels).permute(2, 0, 1)[None], checkpoint.preprocessing)
    return pixels, image, torch.as_tensor(meta, dtype=torch.float32)


def explain_row(folder: RunFolder, checkpoint, row: pd.DataFrame, method: str = "gradcam",
                seed: int = 0) -> dict[str, Any]:
    """Explain one predictions row; write gradcam/<id>.png and .npy; return the figures."""
    case_id = str(row["case_id"].iloc[0])
    pixels, image, meta = _case_inputs(row, checkpoint)
    model = checkpoint.model
    with attribution_mode(model), torch.no_grad():
        logits = model(image, meta)
    index = resolve_target(logits, None)
    probability = float(target_probability(logits, index)[0])
    heatmap = gradcam_heatmap(model, image, meta, method=method, target=index)
    faithfulness = deletion_faithfulness(model, image, meta, heatmap, index, seed=seed)
    stability = mc_stability(model, image, meta, heatmap, index, method=method, seed=seed)
    make_private_dir(folder.gradcam_dir)
    overlay_path, heatmap_path = folder.gradcam_path(case_id), folder.gradcam_path(case_id, ".npy")
    _write_png(overlay_path, overlay_image(pixels, heatmap))
    _write_npy(heatmap_path, heatmap)
    target_name = _output_name(checkpoint.class_names, index, multiclass=logits.shape[1] > 1)
    return {"case_id": case_id, "method": method, "target": index, "target_name": target_name,
            "probability": probability, "faithfulness": faithfulness, "stability": stability,
            "overlay": overlay_path.name, "heatmap": heatmap_path.name}


def _output_name(class_names: list[str], index: int, multiclass: bool) -> str:
    """The class an explained output stands for: the predicted class, or the positive class of a binary model."""
    if multiclass:
        return class_names[index] if index < len(class_names) else str(index)
    return class_names[-1] if class_names else "positive"


def explain_case(folder: RunFolder, checkpoint, case_id: str, method: str = "gradcam") -> dict[str, Any]:
    """One case on request (`bsx explain`): overlay, raw heatmap, faithfulness and stability."""
    if method not in METHODS:
        raise BsxError(f"unknown explanation method '{method}'", fix=f"use one of: {', '.join(METHODS)}")
    row = _case_row(folder.predictions(), case_id, folder)
    result = explain_row(folder, checkpoint, row, method)
    _update_index(folder, [result])
    folder.append_ledger("explain", case_id=result["case_id"], method=method,
                         faithfulness=result["faithfulness"]["score"])
    return result


def flagged_cases(predictions: pd.DataFrame, limit: int) -> pd.DataFrame:
    """Flagged cases without an error, most uncertain (highest entropy) first."""
    ok = predictions["error"].isna() if "error" in predictions.columns else True
    flagged = predictions[predictions["flagged"].fillna(False).astype(bool) & ok]
    return flagged.sort_values("entropy", ascending=False, kind="stable").head(max(0, limit))


def explain_flagged(folder: RunFolder, checkpoint, limit: int = 24, method: str = "gradcam") -> list[dict]:
    """Overlays for the most uncertain flagged cases and gradcam/index.json listing them.

    A case whose image has become unreadable since inference is listed with its
    error instead of stopping the run.
    """
    results = []
    cases = flagged_cases(folder.predictions(), limit)
    for position in range(len(cases)):
        row = cases.iloc[[position]]
        try:
            results.append(explain_row(folder, checkpoint, row, method))
        except BsxError as exc:
            results.append({"case_id": str(row["case_id"].iloc[0]), "method": method, "error": exc.message})
    make_private_dir(folder.gradcam_dir)
    _update_index(folder, results)
    folder.append_ledger("explain-flagged", method=method, cases=len(results),
                         errors=sum(1 for r in results if "error" in r))
    return results


def _update_index(folder: RunFolder, results: list[dict]) -> None:
    """gradcam/index.json: one entry per (case, method); newer results replace older ones."""
    path = folder.gradcam_dir / "index.json"
    entries: list[dict] = []
    if path.is_file():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            entries = loaded if isinstance(loaded, list) else []
        except (OSError, ValueError):
            entries = []
    fresh = {(r["case_id"], r["method"]) for r in results}
    kept = [e for e in entries if isinstance(e, dict) and (e.get("case_id"), e.get("method")) not in fresh]
    atomic_write_json(path, kept + results)
