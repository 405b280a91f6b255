"""Shared fixtures: a tiny synthetic cohort, a checkpoint trained on it, and a run.

Built once per test session with the tiny timm model (`test_efficientnet`) at
32 px so the whole engine runs end to end in seconds on two cores.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Fingerprint caches go to a throwaway folder, never the user's home.
os.environ.setdefault("BSX_CACHE_DIR", tempfile.mkdtemp(prefix="bsx-cache-"))
os.environ.setdefault("BSX_DEBUG", "0")

TINY = {"backbone": "test_efficientnet", "image_size": 32}


def shared_folder() -> Path:
    """The project's shared/ folder: beside the checkout (CI lays a copy there), else /work/shared."""
    beside = Path(__file__).resolve().parents[2] / "shared"
    return beside if beside.is_dir() else Path("/work/shared")


READER_STUDIES = shared_folder() / "reader-studies"


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory) -> Path:
    from cohorts.synth import SynthSpec, write_synthetic

    out = tmp_path_factory.mktemp("cohort") / "train"
    write_synthetic(SynthSpec(n=60, seed=1, image_size=48), out)
    return out


@pytest.fixture(scope="session")
def tiny_external_cohort(tmp_path_factory) -> Path:
    from cohorts.synth import SynthSpec, write_synthetic

    out = tmp_path_factory.mktemp("cohort") / "external"
    write_synthetic(SynthSpec(n=48, seed=7, image_size=48, shift="older", case_prefix="EXT"), out)
    return out


def train_tiny(cohort: Path, out: Path, epochs: int = 1, **overrides):
    from engine.train import TrainConfig, Trainer

    config = TrainConfig(cohort=str(cohort), out=str(out), epochs=epochs, batch_size=8, workers=0,
                         mc_samples=2, **{**TINY, **overrides})
    return Trainer(config).run()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_cohort) -> Path:
    out = tmp_path_factory.mktemp("checkpoint") / "model"
    train_tiny(tiny_cohort, out)
    return out


def tiny_validate_config(cohort: Path, checkpoint: Path, out: Path, **overrides):
    """A validation config sized for tests: few MC samples and resamples, small batches and chunks."""
    from engine.validate import ValidateConfig

    settings = {"mc_samples": 4, "workers": 0, "n_boot": 50, "batch_size": 8, "chunk_size": 16, **overrides}
    return ValidateConfig(cohort=str(cohort), checkpoint=str(checkpoint), out=str(out), **settings)


def validate_tiny(cohort: Path, checkpoint: Path, out: Path, **overrides):
    from engine.validate import run_validation

    return run_validation(tiny_validate_config(cohort, checkpoint, out, **overrides))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_external_cohort, tiny_checkpoint, tiny_cohort) -> Path:
    out = tmp_path_factory.mktemp("runs") / "external"
    validate_tiny(tiny_external_cohort, tiny_checkpoint, out, reference=str(tiny_cohort))
    return out
