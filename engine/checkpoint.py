"""Self-describing checkpoints: safetensors weights + a JSON sidecar.

    <dir>/model.safetensors   weights
    <dir>/model.json          architecture, preprocessing, classes, metadata encoder,
                              training cohort fingerprint, patient ids hash, seed,
                              versions, best-epoch metrics, sha256 of the weights

Loading verifies the hash. Foreign PyTorch files are read with
`weights_only=True` only; anything that needs arbitrary code is refused.
"""
from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path

import torch

from cohorts.atomic import atomic_write, atomic_write_json
from cohorts.errors import BsxError
from engine.data import Preprocessing
from engine.features import MetadataEncoder
from engine.model import FusionModel, ModelConfig
from engine.runfolder import sha256_file

WEIGHTS, SIDECAR = "model.safetensors", "model.json"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    model: FusionModel
    encoder: MetadataEncoder
    preprocessing: Preprocessing
    class_names: list[str]
    sidecar: dict
    weights_path: Path

    @property
    def sha256(self) -> str:
        return self.sidecar["weights_sha256"]

    @property
    def task(self) -> str:
        return self.sidecar["task"]


def versions() -> dict[str, str]:
    import numpy
    import timm

    return {"python": platform.python_version(), "torch": torch.__version__, "timm": timm.__version__,
            "numpy": numpy.__version__}


def save_checkpoint(folder: Path, model: FusionModel, *, encoder: MetadataEncoder, preprocessing: Preprocessing,
                    class_names: list[str], task: str, extra: dict) -> Path:
    """Write weights then sidecar, each atomically; the sidecar carries the weights' hash."""
    from safetensors.torch import save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    weights = atomic_write(folder / WEIGHTS, lambda handle: handle.write(save(state)))
    sidecar = {
        "format_version": FORMAT_VERSION, "task": task, "class_names": class_names,
        "architecture": model.config.to_dict(), "preprocessing": preprocessing.to_dict(),
        "metadata_encoder": encoder.to_dict(), "weights_file": WEIGHTS,
        "weights_sha256": sha256_file(weights), "versions": versions(), **extra,
    }
    atomic_write_json(folder / SIDECAR, sidecar)
    return folder


def _locate(path: Path) -> tuple[Path, Path]:
    """(weights, sidecar) for a checkpoint folder, a .safetensors file or a foreign .pt/.pth."""
    path = Path(path)
    if path.is_dir():
        weights, sidecar = path / WEIGHTS, path / SIDECAR
    else:
        weights = path
        candidates = [path.with_suffix(".json"), path.parent / SIDECAR]
        sidecar = next((c for c in candidates if c.is_file()), candidates[-1])
    if not weights.is_file():
        raise BsxError("checkpoint weights not found", path=weights,
                       fix="pass the folder written by `bsx train` or its model.safetensors")
    if not sidecar.is_file():
        raise BsxError("checkpoint has no JSON sidecar (model.json) describing the architecture", path=sidecar,
                       fix="keep model.json beside the weights, as `bsx train` writes it")
    return weights, sidecar


def _read_sidecar(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BsxError(f"checkpoint sidecar is not valid JSON ({exc})", path=path,
                       fix="restore model.json from the training folder") from None
    required = ["task", "class_names", "architecture", "preprocessing", "metadata_encoder"]
    missing = [k for k in required if k not in data]
    if missing:
        raise BsxError(f"checkpoint sidecar lacks {', '.join(missing)}", path=path,
                       fix="use a checkpoint written by `bsx train`")
    return data


def _load_state(weights: Path) -> dict[str, torch.Tensor]:
    if weights.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(weights))
        except (SafetensorError, OSError, ValueError) as exc:
            raise BsxError(f"weights file is damaged ({exc})", path=weights,
                           fix="copy the checkpoint again from where it was trained") from None
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError, EOFError...
        raise BsxError(
            f"refused to load: the file needs arbitrary code to unpickle or is damaged ({exc.__class__.__name__})",
            path=weights, fix="ask for a safetensors checkpoint; pickles from strangers can run code") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BsxError("the file does not hold a plain state dict of tensors", path=weights,
                       fix="export the model's state_dict() (tensors only), ideally as safetensors")
    return state


def load_checkpoint(path: str | Path) -> Checkpoint:
    weights, sidecar_path = _locate(Path(path))
    sidecar = _read_sidecar(sidecar_path)
    expected = sidecar.get("weights_sha256")
    actual = sha256_file(weights)
    if weights.suffix == ".safetensors" and expected != actual:
        raise BsxError(f"weights hash {actual[:12]}… does not match the sidecar's {str(expected)[:12]}…: "
                       "the weights were changed or damaged", path=weights,
                       fix="copy the checkpoint again; never edit a checkpoint by hand")
    sidecar["weights_sha256"] = actual
    try:
        config = ModelConfig(**sidecar["architecture"])
        encoder = MetadataEncoder.from_dict(sidecar["metadata_encoder"])
        preprocessing = Preprocessing.from_dict(sidecar["preprocessing"])
    except (TypeError, KeyError, ValueError) as exc:
        raise BsxError(f"checkpoint sidecar is inconsistent ({exc})", path=sidecar_path,
                       fix="restore model.json from the training folder; never edit it by hand") from None
    if config.meta_dim != encoder.dim:
        raise BsxError(f"sidecar architecture expects {config.meta_dim} metadata features but its encoder "
                       f"makes {encoder.dim}", path=sidecar_path, fix="the sidecar does not belong to these weights")
    model = FusionModel(config)
    state = _load_state(weights)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise BsxError(f"weights do not fit the architecture in the sidecar: {' '.join(first)}", path=weights,
                       fix="the weights and model.json come from different models") from None
    model.eval()
    return Checkpoint(model, encoder, preprocessing, list(sidecar["class_names"]), sidecar, weights)
