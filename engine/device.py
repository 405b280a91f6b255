"""Where models run: the GPU when there is one (the remote boxes users validate on), else the CPU."""
from __future__ import annotations

import torch

from cohorts.errors import BsxError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA when available; asking for CUDA where there is none is a clear error."""
    name = (name or "auto").lower()
    if name not in DEVICES and not name.startswith("cuda:"):
        raise BsxError(f"unknown device '{name}'", fix=f"use one of: {', '.join(DEVICES)} (or cuda:N)")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BsxError(f"--device {name} was asked for but this machine has no usable CUDA GPU",
                       fix="use --device cpu (or auto)")
    return torch.device(name)
