"""Cached-embedding MC Dropout is exactly MC Dropout for this architecture."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.infer import sample_heads
from engine.model import FusionModel, ModelConfig
from engine.uncertainty import summarise


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return FusionModel(ModelConfig(backbone="test_efficientnet", meta_dim=5, n_outputs=1, dropout=0.4))


@pytest.fixture(scope="module")
def batch():
    generator = torch.Generator().manual_seed(1)
    return torch.randn(3, 3, 32, 32, generator=generator), torch.randn(3, 5, generator=generator)


def test_dropout_lives_only_in_the_heads(model):
    backbone_dropouts = [m for m in model.backbone.modules() if isinstance(m, torch.nn.Dropout) and m.p > 0]
    assert not backbone_dropouts
    assert len(model.dropout_modules()) == 3


def test_cached_path_equals_full_passes_with_same_masks(model, batch):
    images, meta = batch
    samples = 6
    with torch.inference_mode():
        model.mc_mode()
        torch.manual_seed(42)
        full = torch.stack([model(images, meta) for _ in range(samples)])
        embeddings = model.embed(images)
        torch.manual_seed(42)
        cached = torch.stack([model.heads(embeddings, meta) for _ in range(samples)])
    assert torch.allclose(full, cached, atol=1e-6)
    assert full.std(dim=0).mean() > 0  # the samples really differ: dropout is active


def test_batched_sampling_equals_full_passes_on_the_repeated_batch(model, batch):
    images, meta = batch
    samples = 5
    with torch.inference_mode():
        model.mc_mode()
        torch.manual_seed(7)
        full = model(images.repeat(samples, 1, 1, 1), meta.repeat(samples, 1)).view(samples, 3, -1)
        embeddings = model.embed(images)
        torch.manual_seed(7)
        cached = sample_heads(model, embeddings, meta, samples)
    assert torch.allclose(full, cached, atol=1e-5)


def test_backbone_is_deterministic_in_mc_mode(model, batch):
    images, _ = batch
    with torch.inference_mode():
        model.mc_mode()
        assert torch.equal(model.embed(images), model.embed(images))


def test_uncertainty_decomposition():
    samples = np.array([[0.9, 0.5, 0.5], [0.1, 0.5, 0.5]])  # case 0: disagreeing samples; case 1-2: agreeing
    summary = summarise(samples)
    assert summary.mutual_info[0] > 0.3 and summary.mutual_info[1] == pytest.approx(0)
    assert np.allclose(summary.entropy, summary.expected_entropy + summary.mutual_info)
    assert np.allclose(summary.p_mean[:, 1], [0.5, 0.5, 0.5])
    multiclass = summarise(np.array([[[0.7, 0.2, 0.1]], [[0.5, 0.3, 0.2]]]))
    assert multiclass.pred.tolist() == [0] and multiclass.p_mean[0, 0] == pytest.approx(0.6)
