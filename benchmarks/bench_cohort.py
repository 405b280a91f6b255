"""Cohort loading at ISIC 2019 size: metadata checks, and the fingerprint cache."""
from __future__ import annotations

import io
import os
import tempfile
import time
from pathlib import Path

from PIL import Image

from benchmarks.common import best_of, row

N = 25_331


def build_isic2019(root: Path, n: int = N) -> Path:
    """ISIC 2019 layout with n tiny JPEGs (the figure measured is metadata + path checks)."""
    images = root / "ISIC_2019_Training_Input"
    images.mkdir(parents=True)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (180, 120, 90)).save(buffer, "JPEG")
    data = buffer.getvalue()
    meta = ["image,age_approx,anatom_site_general,lesion_id,sex"]
    truth = ["image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK"]
    for i in range(n):
        name = f"ISIC_{i:07d}"
        (images / f"{name}.jpg").write_bytes(data + i.to_bytes(4, "little"))
        meta.append(f"{name},{30 + 5 * (i % 10)}.0,anterior torso,{'HAM' if i % 2 else 'BCN'}_{i:07d},"
                    f"{'male' if i % 3 else 'female'}")
        truth.append(f"{name}," + ",".join("1.0" if k == i % 8 else "0.0" for k in range(9)))
    (root / "ISIC_2019_Training_Metadata.csv").write_text("\n".join(meta) + "\n")
    (root / "ISIC_2019_Training_GroundTruth.csv").write_text("\n".join(truth) + "\n")
    return root


def run() -> list[dict]:
    from cohorts.cohort import load_cohort

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BSX_CACHE_DIR"] = str(Path(tmp) / "cache")
        root = build_isic2019(Path(tmp) / "isic")
        load = best_of(lambda: load_cohort(root), repeat=3)
        start = time.perf_counter()
        _ = load_cohort(root).fingerprint
        first = time.perf_counter() - start
        start = time.perf_counter()
        _ = load_cohort(root).fingerprint
        second = time.perf_counter() - start - load
    return [
        row("cohort load (25,331-case ISIC 2019, metadata + path checks)", f"{load:.2f} s", "< 1 s",
            1.0 / max(load, 1e-9)),
        row("fingerprint: cached vs first computation", f"{first:.2f} s -> {max(second, 0):.2f} s", ">= 10x",
            first / max(second, 1e-3)),
    ]


if __name__ == "__main__":
    for result in run():
        print(result)
