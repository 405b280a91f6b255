"""Simulated readers for demonstrations and tests of the reader-study workflow.

Each simulated reader sees a noisy version of the truth (better readers see
it more clearly); in phases that show the AI they lean on its probability.
Ratings go through `Study.rate` like a person's, in the order and under the
rules a person meets. Reader names say they are simulated; the numbers they
produce are never evidence about real dermatologists.
"""
from __future__ import annotations

import math

import numpy as np

from engine.readers.study import Study

AI_WEIGHT = 0.8  # how strongly a reader's aided opinion moves towards the AI (logit scale)


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def simulate_readers(study: Study, truth: dict[str, int], skills: dict[str, float], seed: int = 0) -> int:
    """Rate every open case for every reader in every phase; returns the number of ratings made."""
    rng = np.random.default_rng(seed)
    opinion: dict[tuple[str, str], float] = {}
    made = 0
    for phase in study.phases:
        for reader, skill in skills.items():
            while (view := study.next_case(reader, phase)) is not None:
                key = (reader, view.case_id)
                if key not in opinion:  # the reader's own impression, kept across phases
                    opinion[key] = skill * (2 * truth[view.case_id] - 1) + rng.normal(0.0, 1.0)
                latent = opinion[key]
                if view.ai_probability is not None:
                    latent = (1 - AI_WEIGHT / 2) * latent + AI_WEIGHT * _logit(view.ai_probability)
                value = round(100 / (1 + math.exp(-latent)), 1)
                study.rate(reader, view.case_id, phase, value,
                           diagnosis="melanoma" if value >= 50 else "nevus",
                           management="biopsy" if value >= 50 else "no biopsy",
                           seconds=float(rng.uniform(5, 40)))
                made += 1
    return made
