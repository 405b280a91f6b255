"""Simulated readers follow the study's rules, and their skill and the AI's help show in the MRMC analysis."""
from __future__ import annotations

import numpy as np
import pandas as pd

from engine.readers.simulate import simulate_readers
from engine.readers.study import create_study


def test_simulated_readers_rate_every_case_and_skill_shows(tmp_path):
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, 80)
    ai = np.clip(0.5 + 0.35 * (2 * truth - 1) + rng.normal(0, 0.15, 80), 0.01, 0.99)
    cases = pd.DataFrame({"case_id": [f"c{i}" for i in range(80)], "truth": truth, "image_path": None,
                          "ai_probability": ai, "ai_uncertainty": 0.1, "flagged": False, "gradcam_path": None,
                          "metadata": "{}"})
    readers = {"weak": 0.3, "strong": 1.5}
    with create_study(tmp_path / "s.sqlite", cases, readers=tuple(readers), seed=0) as study:
        made = simulate_readers(study, dict(zip(cases["case_id"], truth)), readers, seed=0)
        assert made == 80 * 2 * 2
        assert all(p.rated == p.total for p in study.progress())
        result = study.analyze()
    auc = dict(zip(result.readers, result.auc[result.modalities.index("unaided")]))
    assert auc["strong"] > auc["weak"]
    mean = dict(zip(result.modalities, result.auc.mean(axis=1)))
    assert mean["aided"] > mean["unaided"]  # an informative AI helps the weaker reader most
