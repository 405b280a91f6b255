"""Training learns, keeps patients on one side, resumes exactly; checkpoints are self-describing."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from safetensors.torch import load_file

from cohorts.errors import BsxError
from engine.checkpoint import load_checkpoint
from engine.splits import grouped_split
from engine.train import TrainConfig, Trainer
from tests.conftest import TINY, train_tiny


def test_no_patient_crosses_the_split():
    cases = pd.DataFrame({"patient_id": [f"P{i // 3}" for i in range(90)], "lesion_id": None,
                          "case_id": [str(i) for i in range(90)], "site": "A"})
    labels = np.array([i % 2 for i in range(90)])
    val = grouped_split(cases, labels, 0.25, seed=3)
    assert not set(cases.patient_id[val]) & set(cases.patient_id[~val])
    assert 0.15 < val.mean() < 0.35


def test_sidecar_holds_everything_and_round_trips(tiny_checkpoint):
    sidecar = json.loads((tiny_checkpoint / "model.json").read_text())
    for key in ("architecture", "preprocessing", "class_names", "metadata_encoder", "training_cohort_fingerprint",
                "training_patients_sha256", "seed", "versions", "best_metrics", "weights_sha256", "task"):
        assert key in sidecar, key
    checkpoint = load_checkpoint(tiny_checkpoint)
    assert checkpoint.sha256 == sidecar["weights_sha256"]
    assert checkpoint.encoder.dim == sidecar["architecture"]["meta_dim"]
    for name, tensor in load_file(str(tiny_checkpoint / "model.safetensors")).items():
        assert np.array_equal(checkpoint.model.state_dict()[name].numpy(), tensor.numpy())


def test_tampered_weights_are_refused(tiny_checkpoint, tmp_path):
    copy = tmp_path / "ck"
    copy.mkdir()
    for name in ("model.json", "model.safetensors"):
        (copy / name).write_bytes((tiny_checkpoint / name).read_bytes())
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[-3] ^= 0x01
    (copy / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(BsxError, match="does not match"):
        load_checkpoint(copy)


def test_learning_happens(tmp_path):
    from cohorts.synth import SynthSpec, write_synthetic

    cohort = tmp_path / "cohort"
    write_synthetic(SynthSpec(n=120, seed=5, image_size=40), cohort)
    train_tiny(cohort, tmp_path / "ck", epochs=4, lr=3e-3, patience=10)
    history = pd.read_csv(tmp_path / "ck" / "metrics.csv")
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert history["val_auc"].max() > 0.65
    for column in ("val_loss", "val_accuracy", "val_auc", "val_ece", "val_brier", "val_mc_entropy"):
        assert history[column].notna().all()


def test_resume_reproduces_the_uninterrupted_run(tiny_cohort, tmp_path):
    straight = tmp_path / "straight"
    train_tiny(tiny_cohort, straight, epochs=2, patience=5)
    interrupted = tmp_path / "interrupted"
    config = TrainConfig(cohort=str(tiny_cohort), out=str(interrupted), epochs=2, batch_size=8, workers=0,
                         mc_samples=2, patience=5, **TINY)
    steps = []

    def stop_in_epoch_two(event):
        steps.append(event)

    trainer = Trainer(config, stop_in_epoch_two, should_stop=lambda: any(e.get("epoch") == 2 for e in steps
                                                                         if e.get("event") == "step"))
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    Trainer(config).run(resume=True)
    a = load_file(str(straight / "model.safetensors"))
    b = load_file(str(interrupted / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    timing = ["seconds", "images_per_s"]
    pd.testing.assert_frame_equal(pd.read_csv(straight / "metrics.csv").drop(columns=timing),
                                  pd.read_csv(interrupted / "metrics.csv").drop(columns=timing))


def test_bad_training_inputs(tmp_path, tiny_cohort):
    with pytest.raises(BsxError, match="nothing to resume"):
        Trainer(TrainConfig(cohort=str(tiny_cohort), out=str(tmp_path / "new"), workers=0, **TINY)).run(resume=True)
    from cohorts.synth import SynthSpec, write_synthetic

    single = tmp_path / "single"
    write_synthetic(SynthSpec(n=12, seed=2, image_size=32), single)
    lines = (single / "cohort.csv").read_text().splitlines()
    (single / "cohort.csv").write_text("\n".join([lines[0]] + [l for l in lines[1:] if ",nevus," in l]) + "\n")
    with pytest.raises(BsxError, match="single class"):
        Trainer(TrainConfig(cohort=str(single / "cohort.csv"), out=str(tmp_path / "o"), workers=0,
                            **TINY)).run()


def test_epoch_figures_match_scikit_learn():
    from sklearn.metrics import brier_score_loss, roc_auc_score

    from engine.train import epoch_figures

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 200), 0, 1)
    figures = epoch_figures(y, p)
    assert figures["val_auc"] == pytest.approx(roc_auc_score(y, p))
    assert figures["val_brier"] == pytest.approx(brier_score_loss(y, p))
    assert figures["val_accuracy"] == pytest.approx(((p >= 0.5) == y).mean())
    y3 = rng.integers(0, 3, 300)
    logits = rng.normal(size=(300, 3)) + np.eye(3)[y3]
    p3 = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert epoch_figures(y3, p3)["val_auc"] == pytest.approx(roc_auc_score(y3, p3, multi_class="ovr"))
    assert np.isnan(epoch_figures(np.array([0, 0, 0, 1]), np.array([0.1, 0.2, 0.3, 0.9]))["val_auc"])


def test_a_split_left_empty_by_grouping_is_refused():
    cases = pd.DataFrame({"patient_id": ["P1"] * 10, "lesion_id": None, "case_id": [str(i) for i in range(10)],
                          "site": "A"})
    with pytest.raises(BsxError, match="side empty"):
        grouped_split(cases, np.array([0, 1] * 5), 0.2, seed=0)
