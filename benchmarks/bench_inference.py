"""MC Dropout and validation throughput at 224 px, and memory against cohort size.

Ratios printed side by side in one run:
- cached MC Dropout (T=30) vs one deterministic pass         target >= 0.8
- cached MC Dropout vs the seed's naive T full passes/image   target >= 20x
- end-to-end validate (decode + inference) vs pure backbone   target >= 0.7
- peak RSS of a 20,000-case vs a 2,000-case validation        target <= 1.2
and training / inference images per second at 224 px.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import best_of, row

SIZE, SAMPLES, N_IMAGES, BATCH = 224, 30, 32, 16


def _model():
    from engine.model import FusionModel, ModelConfig

    torch.manual_seed(0)
    return FusionModel(ModelConfig(backbone="efficientnet_b0", meta_dim=20)).to(memory_format=torch.channels_last)


def _throughputs(model) -> dict[str, float]:
    from engine.infer import sample_heads

    images = torch.randn(N_IMAGES, 3, SIZE, SIZE).contiguous(memory_format=torch.channels_last)
    meta = torch.randn(N_IMAGES, 20)
    batches = [(images[i:i + BATCH], meta[i:i + BATCH]) for i in range(0, N_IMAGES, BATCH)]

    def deterministic():
        model.eval()
        for x, m in batches:
            model(x, m)

    def cached_mc():
        for x, m in batches:
            model.eval()
            sample_heads(model, model.embed(x), m, SAMPLES)

    def naive_one_image():  # the seed system: T full forward passes for each image
        model.mc_mode()
        for _ in range(SAMPLES):
            model(images[:1], meta[:1])

    with torch.inference_mode():
        deterministic()  # warm-up
        t_det = best_of(deterministic, 2)
        t_mc = best_of(cached_mc, 2)
        t_naive = best_of(naive_one_image, 1) * N_IMAGES
    return {"det": N_IMAGES / t_det, "mc": N_IMAGES / t_mc, "naive": N_IMAGES / t_naive}


def _train_rate(model) -> float:
    images = torch.randn(BATCH, 3, SIZE, SIZE).contiguous(memory_format=torch.channels_last)
    meta, labels = torch.randn(BATCH, 20), torch.randint(0, 2, (BATCH,)).float()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    def step():
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(images, meta)[:, 0], labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()
    return BATCH / best_of(step, 2)


def _jpeg_cohort(folder: Path, n: int, size: int) -> Path:
    """n cases sharing a few real JPEGs (the decode cost is real; generation is not the point)."""
    from cohorts.synth import SynthSpec, generate

    (folder / "images").mkdir(parents=True)
    sources = []
    for k, case in enumerate(generate(SynthSpec(n=8, seed=1, image_size=size))):
        buffer = io.BytesIO()
        case.image.resize((size, size)).save(buffer, "JPEG", quality=90)
        sources.append(buffer.getvalue())
    lines = ["case_id,patient_id,image_path,age,sex,skin_type,diagnosis,site,body_site"]
    for i in range(n):
        (folder / "images" / f"c{i}.jpg").write_bytes(sources[i % len(sources)])
        lines.append(f"c{i},P{i},images/c{i}.jpg,{30 + i % 50},{'male' if i % 2 else 'female'},II,"
                     f"{'melanoma' if i % 4 == 0 else 'nevus'},A,back")
    (folder / "cohort.csv").write_text("\n".join(lines) + "\n")
    return folder


def _end_to_end_rate(model, tmp: Path) -> float:
    from engine.checkpoint import save_checkpoint
    from engine.data import Preprocessing
    from engine.features import MetadataEncoder
    from engine.validate import ValidateConfig, run_validation
    import pandas as pd

    cohort = _jpeg_cohort(tmp / "e2e", N_IMAGES * 2, 448)
    encoder = MetadataEncoder().fit(pd.DataFrame({"age": [40.0], "sex": ["male"], "body_site": ["back"],
                                                  "skin_type": ["II"]}))
    model.config.meta_dim = encoder.dim
    from engine.model import FusionModel

    fitted = FusionModel(model.config)
    save_checkpoint(tmp / "ck", fitted, encoder=encoder, preprocessing=Preprocessing(SIZE),
                    class_names=["benign", "malignant"], task="binary", extra={})
    config = ValidateConfig(cohort=str(cohort), checkpoint=str(tmp / "ck"), out=str(tmp / "run"),
                            mc_samples=SAMPLES, batch_size=BATCH, gradcam=False, n_boot=50)
    started = time.perf_counter()
    timings = {}
    run_validation(config, stage=lambda s: timings.setdefault(s, time.perf_counter()))
    inference = timings.get("writing predictions", time.perf_counter()) - timings.get("inference", started)
    return N_IMAGES * 2 / inference


MEMORY_SCRIPT = """
import resource, sys
from engine.validate import ValidateConfig, run_validation
run_validation(ValidateConfig(cohort=sys.argv[1], checkpoint=sys.argv[2], out=sys.argv[3], mc_samples=10,
               batch_size=64, workers=1, gradcam=False, n_boot=20))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _peak_rss(tmp: Path, n: int, checkpoint: Path) -> int:
    cohort = _jpeg_cohort(tmp / f"mem{n}", n, 32)
    result = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(cohort), str(checkpoint), str(tmp / f"run{n}")],
                            capture_output=True, text=True, env={**os.environ, "BSX_CACHE_DIR": str(tmp / "cache")})
    if result.returncode:
        raise RuntimeError(result.stderr[-2000:])
    return int(result.stdout.split()[-1])


def _tiny_checkpoint(tmp: Path) -> Path:
    from engine.checkpoint import save_checkpoint
    from engine.data import Preprocessing
    from engine.features import MetadataEncoder
    from engine.model import FusionModel, ModelConfig
    import pandas as pd

    encoder = MetadataEncoder().fit(pd.DataFrame({"age": [40.0], "sex": ["male"], "body_site": ["back"],
                                                  "skin_type": ["II"]}))
    model = FusionModel(ModelConfig(backbone="test_efficientnet", meta_dim=encoder.dim))
    return save_checkpoint(tmp / "tiny", model, encoder=encoder, preprocessing=Preprocessing(32),
                           class_names=["benign", "malignant"], task="binary", extra={})


def run() -> list[dict]:
    model = _model()
    rates = _throughputs(model)
    rows = [
        row("MC Dropout T=30 (cached heads) vs one deterministic pass, 224 px",
            f"{rates['mc']:.1f} vs {rates['det']:.1f} img/s", ">= 0.8", rates["mc"] / rates["det"]),
        row("MC Dropout T=30 cached vs naive T full passes per image",
            f"{rates['mc']:.1f} vs {rates['naive']:.2f} img/s", ">= 20x", rates["mc"] / rates["naive"]),
        row("training throughput, efficientnet_b0 224 px", f"{_train_rate(model):.1f} img/s", "(figure)", 1.0),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["BSX_CACHE_DIR"] = str(tmp / "cache")
        e2e = _end_to_end_rate(_model(), tmp)
        rows.append(row("bsx validate end to end (JPEG decode + MC inference) vs pure backbone, 224 px",
                        f"{e2e:.1f} vs {rates['det']:.1f} img/s", ">= 0.7", e2e / rates["det"]))
        checkpoint = _tiny_checkpoint(tmp)
        small, large = _peak_rss(tmp, 2_000, checkpoint), _peak_rss(tmp, 20_000, checkpoint)
        rows.append(row("peak RSS, 20,000 vs 2,000 cases", f"{large / 1024:.0f} vs {small / 1024:.0f} MiB",
                        "<= 1.2", large / small))
    return rows


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
