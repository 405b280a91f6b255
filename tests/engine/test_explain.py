"""Grad-CAM / Grad-CAM++ through the fusion model, checked against the `grad-cam` package.

The reference wraps the fusion model as an images-only module with the
metadata held fixed and hooks the layer whose output is forward_features'
(`backbone.bn2` for timm efficientnets): the same model, the same layer.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cohorts.errors import BsxError
from engine.explain import (
    deletion_faithfulness, explain_case, explain_flagged, flagged_cases, gradcam_heatmap, heatmap_correlation,
    jet_colormap, mc_stability, target_probability,
)
from engine.model import FusionModel, ModelConfig
from engine.runfolder import RunFolder

SIZE = 64
META_DIM = 3


class ImagesOnly(torch.nn.Module):
    """The fusion model as pytorch-grad-cam expects it: images in, logits out, metadata fixed."""

    def __init__(self, model: FusionModel, meta: torch.Tensor) -> None:
        super().__init__()
        self.model, self.meta = model, meta

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images, self.meta.expand(images.shape[0], -1))


def make_model(n_outputs: int, dropout: float = 0.3, seed: int = 0) -> FusionModel:
    torch.manual_seed(seed)
    return FusionModel(ModelConfig(backbone="test_efficientnet", meta_dim=META_DIM, n_outputs=n_outputs,
                                   dropout=dropout)).eval()


@pytest.fixture(scope="module")
def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    return torch.randn(1, 3, SIZE, SIZE, generator=generator), torch.randn(1, META_DIM, generator=generator)


def reference_cam(model: FusionModel, image: torch.Tensor, meta: torch.Tensor, method: str, target: int):
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cls = GradCAM if method == "gradcam" else GradCAMPlusPlus
    with cls(model=ImagesOnly(model, meta), target_layers=[model.backbone.bn2]) as cam:
        return cam(input_tensor=image, targets=[ClassifierOutputTarget(target)])[0]


@pytest.mark.parametrize("n_outputs", [1, 4], ids=["binary", "multiclass"])
@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_matches_pytorch_grad_cam(inputs, method, n_outputs):
    image, meta = inputs
    model = make_model(n_outputs)
    with torch.no_grad():
        predicted = 0 if n_outputs == 1 else int(model(image, meta).argmax())
    ours = gradcam_heatmap(model, image, meta, method=method)
    theirs = reference_cam(model, image, meta, method, predicted)
    assert ours.shape == theirs.shape == (SIZE, SIZE)
    assert 0.0 <= ours.min() and ours.max() <= 1.0 and ours.std() > 0.01
    assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.99


def test_explicit_multiclass_target_matches_reference(inputs):
    image, meta = inputs
    model = make_model(4)
    ours = gradcam_heatmap(model, image, meta, method="gradcam", target=2)
    assert np.corrcoef(ours.ravel(), reference_cam(model, image, meta, "gradcam", 2).ravel())[0, 1] > 0.99
    with pytest.raises(BsxError, match="out of range"):
        gradcam_heatmap(model, image, meta, target=4)
    with pytest.raises(BsxError, match="unknown explanation method"):
        gradcam_heatmap(model, image, meta, method="lime")


def test_dropout_off_during_attribution_and_flags_restored(inputs):
    image, meta = inputs
    model = make_model(1, dropout=0.5)
    expected = gradcam_heatmap(model, image, meta)
    model.mc_mode()  # dropout on in the heads, BatchNorm frozen: a mixed state to restore
    flags = {name: module.training for name, module in model.named_modules()}
    first = gradcam_heatmap(model, image, meta)
    second = gradcam_heatmap(model, image, meta)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, expected, atol=1e-6)
    assert {name: module.training for name, module in model.named_modules()} == flags
    model.train()
    gradcam_heatmap(model, image, meta, method="gradcam++")
    assert all(module.training for module in model.modules())


def test_metadata_is_part_of_the_explained_model(inputs):
    image, meta = inputs
    model = make_model(1)
    other_meta = torch.randn(1, META_DIM, generator=torch.Generator().manual_seed(100)) * 3
    base = gradcam_heatmap(model, image, meta)
    other = gradcam_heatmap(model, image, other_meta)
    assert np.abs(other - base).max() > 0.1  # same image, other patient data: another explanation
    assert np.corrcoef(other.ravel(), reference_cam(model, image, other_meta, "gradcam", 0).ravel())[0, 1] > 0.99


def test_deletion_faithfulness_is_the_measured_drop(inputs):
    image, meta = inputs
    model = make_model(1)
    heatmap = gradcam_heatmap(model, image, meta)
    result = deletion_faithfulness(model, image, meta, heatmap, 0, seed=1)
    top = torch.from_numpy(heatmap >= np.quantile(heatmap, 0.8))
    masked = torch.where(top, image.mean(dim=(2, 3), keepdim=True), image)
    with torch.no_grad():
        before = float(target_probability(model(image, meta), 0)[0])
        after = float(target_probability(model(masked, meta), 0)[0])
    assert result["deletion_drop_top"] == pytest.approx(before - after, abs=1e-4)
    assert result["score"] == pytest.approx(result["deletion_drop_top"] - result["deletion_drop_random"])
    assert deletion_faithfulness(model, image, meta, heatmap, 0, seed=1) == result
    whole = deletion_faithfulness(model, image, meta, heatmap, 0, fraction=1.0)
    assert whole["score"] == pytest.approx(0.0, abs=1e-6)  # top and random remove the same pixels


def test_stability_reflects_head_dropout_and_leaves_rng_alone(inputs):
    image, meta = inputs
    steady = make_model(1, dropout=0.0)
    reference = gradcam_heatmap(steady, image, meta)
    assert mc_stability(steady, image, meta, reference, 0, samples=4)["mean_correlation"] == pytest.approx(1.0)

    noisy = make_model(1, dropout=0.6)
    reference = gradcam_heatmap(noisy, image, meta)
    torch.manual_seed(11)
    expected_next = torch.rand(3)
    torch.manual_seed(11)
    result = mc_stability(noisy, image, meta, reference, 0, samples=6, seed=2)
    np.testing.assert_array_equal(torch.rand(3), expected_next)
    assert result["n"] == 6 and -1.0 <= result["min_correlation"] < 0.999
    assert result == mc_stability(noisy, image, meta, reference, 0, samples=6, seed=2)
    assert not any(module.training for module in noisy.modules())


def test_heatmap_correlation_edge_cases():
    ramp = np.linspace(0, 1, 16).reshape(4, 4)
    assert heatmap_correlation(ramp, ramp * 2 + 1) == pytest.approx(1.0)
    assert heatmap_correlation(np.zeros((4, 4)), np.zeros((4, 4))) == 1.0
    assert heatmap_correlation(np.zeros((4, 4)), ramp) == 0.0


def test_jet_colormap_runs_blue_green_red():
    colours = jet_colormap(np.array([0.0, 0.5, 1.0]))
    assert colours[0].argmax() == 2 and colours[1].argmax() == 1 and colours[2].argmax() == 0
    assert colours.dtype == np.uint8


# -- on a real run folder ------------------------------------------------------
@pytest.fixture
def run_copy(tiny_run: Path, tmp_path: Path) -> RunFolder:
    target = tmp_path / "run"
    shutil.copytree(tiny_run, target)
    return RunFolder(target)


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint):
    from engine.checkpoint import load_checkpoint

    return load_checkpoint(tiny_checkpoint)


def test_explain_case_writes_overlay_heatmap_and_figures(run_copy, checkpoint):
    predictions = run_copy.predictions()
    case_id = str(predictions.loc[predictions["error"].isna(), "case_id"].iloc[-1])
    flags = {name: m.training for name, m in checkpoint.model.named_modules()}
    result = explain_case(run_copy, checkpoint, case_id, method="gradcam++")
    assert {name: m.training for name, m in checkpoint.model.named_modules()} == flags
    assert result["case_id"] == case_id and result["method"] == "gradcam++"
    assert 0.0 <= result["probability"] <= 1.0
    assert set(result["faithfulness"]) >= {"deletion_drop_top", "deletion_drop_random", "score"}
    assert set(result["stability"]) >= {"mean_correlation", "n"}
    size = checkpoint.preprocessing.image_size
    with Image.open(run_copy.gradcam_path(case_id)) as overlay:
        assert overlay.format == "PNG" and overlay.size == (size, size) and overlay.mode == "RGB"
    heatmap = np.load(run_copy.gradcam_path(case_id, ".npy"))
    assert heatmap.shape == (size, size) and 0.0 <= heatmap.min() and heatmap.max() <= 1.0
    index = json.loads((run_copy.gradcam_dir / "index.json").read_text())
    assert [e for e in index if e["case_id"] == case_id and e["method"] == "gradcam++"] == [result]
    assert run_copy.ledger()[-1]["event"] == "explain"
    assert not list(run_copy.gradcam_dir.glob(".*.tmp"))


def test_explain_case_refuses_unknown_case_and_method(run_copy, checkpoint):
    with pytest.raises(BsxError, match="not in this run"):
        explain_case(run_copy, checkpoint, "no-such-case")
    with pytest.raises(BsxError, match="unknown explanation method"):
        explain_case(run_copy, checkpoint, str(run_copy.predictions()["case_id"].iloc[0]), method="shap")


def test_validation_explains_flagged_cases_most_uncertain_first(run_copy, checkpoint):
    predictions = run_copy.predictions()
    expected = flagged_cases(predictions, 24)["case_id"].tolist()
    assert expected and predictions.set_index("case_id").loc[expected, "flagged"].all()
    entropy = predictions.set_index("case_id").loc[expected, "entropy"].to_numpy()
    assert np.all(np.diff(entropy) <= 0)
    index = json.loads((run_copy.gradcam_dir / "index.json").read_text())
    assert [e["case_id"] for e in index] == expected  # written by run_validation
    for case_id in expected:
        assert run_copy.gradcam_path(case_id).is_file() and run_copy.gradcam_path(case_id, ".npy").is_file()
    results = explain_flagged(run_copy, checkpoint, limit=2)
    assert [r["case_id"] for r in results] == expected[:2]
    index = json.loads((run_copy.gradcam_dir / "index.json").read_text())
    assert sorted(e["case_id"] for e in index) == sorted(expected)  # refreshed, not duplicated


def test_unreadable_image_is_listed_not_fatal(run_copy, checkpoint):
    predictions = run_copy.predictions()
    first = flagged_cases(predictions, 1)
    predictions.loc[predictions["case_id"] == first["case_id"].iloc[0], "image_path"] = "/nonexistent/x.jpg"
    run_copy.write_predictions(predictions)
    results = explain_flagged(run_copy, checkpoint, limit=2)
    assert "error" in results[0] and "probability" in results[1]
