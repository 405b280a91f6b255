"""Device selection: a GPU when present, the CPU otherwise, a clear error for a GPU that is not there."""
from __future__ import annotations

import pytest
import torch

from cohorts.errors import BsxError
from engine.device import resolve_device


def test_auto_uses_cuda_only_when_available():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_missing_gpu_is_a_clear_error():
    with pytest.raises(BsxError, match="no usable CUDA GPU"):
        resolve_device("cuda")


def test_unknown_device_names_are_refused():
    with pytest.raises(BsxError, match="unknown device"):
        resolve_device("tpu")
