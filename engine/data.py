"""Images and metadata as tensors, decoded in DataLoader workers.

A case whose image cannot be decoded yields a blank image and its error
message, so one bad file never stops a run: it becomes a case-level error.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from cohorts.images import ImageLoadError, load_rgb

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Preprocessing:
    image_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def to_dict(self) -> dict:
        return {"image_size": self.image_size, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict) -> "Preprocessing":
        return cls(int(data["image_size"]), tuple(data["mean"]), tuple(data["std"]))


def decode(path: str, size: int) -> tuple[np.ndarray, str]:
    """uint8 HxWx3 image resized to size x size, or a blank one and the error."""
    try:
        image = load_rgb(path, size=size)
        if image.size != (size, size):
            image = image.resize((size, size), Image.BILINEAR)
        return np.array(image, dtype=np.uint8), ""
    except ImageLoadError as exc:
        return np.zeros((size, size, 3), dtype=np.uint8), exc.message
    except Exception as exc:  # pathological files must become case errors, not crashes
        return np.zeros((size, size, 3), dtype=np.uint8), f"image could not be decoded ({exc.__class__.__name__})"


class CaseDataset(Dataset):
    """Case i -> (index, uint8 CHW image, metadata vector, label, error)."""

    def __init__(self, image_paths: list[str], meta: np.ndarray, labels: np.ndarray, size: int,
                 augment=None) -> None:
        self.paths, self.meta, self.labels, self.size, self.augment = image_paths, meta, labels, size, augment

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        pixels, error = decode(self.paths[index], self.size)
        image = torch.from_numpy(pixels).permute(2, 0, 1)
        if self.augment is not None and not error:
            image = self.augment(image)
        return index, image, torch.from_numpy(self.meta[index]), float(self.labels[index]), error


def normalise(images: torch.Tensor, prep: Preprocessing, device: torch.device | None = None) -> torch.Tensor:
    """uint8 NCHW -> float, normalised, channels_last (faster convolutions), on `device`.

    The move happens before the float conversion: a uint8 batch is a quarter of the bytes to copy.
    """
    images = images.to(device) if device is not None else images
    mean = torch.tensor(prep.mean, device=images.device).view(1, 3, 1, 1) * 255
    std = torch.tensor(prep.std, device=images.device).view(1, 3, 1, 1) * 255
    return ((images.float() - mean) / std).contiguous(memory_format=torch.channels_last)


def default_workers() -> int:
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def make_loader(dataset: CaseDataset, batch_size: int, workers: int, shuffle: bool = False,
                generator: torch.Generator | None = None, drop_last: bool = False,
                pin_memory: bool = False) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers, drop_last=drop_last,
                      pin_memory=pin_memory,
                      generator=generator, persistent_workers=False,
                      worker_init_fn=_seed_worker if workers else None,
                      multiprocessing_context="fork" if workers and os.name == "posix" else None)


def _seed_worker(worker_id: int) -> None:
    # Each worker's augmentation RNG derives from the loader's seeded generator.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    torch.manual_seed(seed)
