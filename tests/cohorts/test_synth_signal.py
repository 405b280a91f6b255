"""The generator's signal is real: hand-crafted ABCD features separate the classes."""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from cohorts.synth import SynthSpec, generate


def abcd_features(image) -> list[float]:
    """Lesion area, colour spread and blue-red variegation: what the ABCD rule looks at.

    The lesion is whatever is clearly darker than the skin on a ring near the edge.
    """
    pixels = np.asarray(image.convert("RGB").resize((64, 64)), dtype=float)
    grey = pixels.mean(axis=2)
    yy, xx = np.mgrid[0:64, 0:64]
    radius = np.hypot(yy - 32, xx - 32)
    skin = np.median(grey[(radius > 26) & (radius < 31)])
    lesion = grey < skin * 0.8
    inside = pixels[lesion] if lesion.sum() > 5 else pixels.reshape(-1, 3)
    return [lesion.mean(), inside.std(axis=0).mean(), (inside[:, 2] - inside[:, 0]).std()]


def test_handcrafted_features_separate_malignant_from_benign():
    cases = list(generate(SynthSpec(n=300, seed=11, image_size=64)))
    x = np.array([abcd_features(c.image) for c in cases])
    y = np.array([c.malignant for c in cases])
    model = LogisticRegression(max_iter=2000).fit(x[:200], y[:200])
    auc = roc_auc_score(y[200:], model.predict_proba(x[200:])[:, 1])
    assert auc > 0.8, auc


def test_metadata_carries_signal_and_shifts_move_it():
    base = list(generate(SynthSpec(n=400, seed=2, image_size=32)))
    ages = np.array([c.age for c in base])
    y = np.array([c.malignant for c in base])
    assert ages[y == 1].mean() > ages[y == 0].mean() + 5
    older = np.array([c.age for c in generate(SynthSpec(n=400, seed=2, image_size=32, shift="older"))])
    assert older.mean() > ages.mean() + 10
    darker = [c.skin_type for c in generate(SynthSpec(n=200, seed=2, image_size=32, shift="darker_skin"))]
    assert np.mean([t in ("V", "VI") for t in darker]) > 0.4
    assert {c.site for c in generate(SynthSpec(n=30, seed=2, image_size=32, shift="new_site"))} == {"D"}
