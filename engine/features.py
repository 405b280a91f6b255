"""Metadata encoding, fitted on the training cohort and stored in the checkpoint.

Numeric columns are standardised with an explicit missing indicator (never a
silent zero); categorical columns are one-hot over the training vocabulary plus
a "missing" slot and an "unknown" slot for categories never seen in training.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cohorts.errors import BsxError

DEFAULT_NUMERIC = ["age"]
DEFAULT_CATEGORICAL = ["sex", "body_site", "skin_type"]
MISSING, UNKNOWN = "<missing>", "<unknown>"


@dataclass
class MetadataEncoder:
    numeric: list[str] = field(default_factory=lambda: list(DEFAULT_NUMERIC))
    categorical: list[str] = field(default_factory=lambda: list(DEFAULT_CATEGORICAL))
    means: dict[str, float] = field(default_factory=dict)
    stds: dict[str, float] = field(default_factory=dict)
    vocab: dict[str, list[str]] = field(default_factory=dict)

    # -- fitting ---------------------------------------------------------
    def fit(self, cases: pd.DataFrame) -> "MetadataEncoder":
        self.check_columns(cases)
        for column in self.numeric:
            values = pd.to_numeric(cases[column], errors="coerce").dropna()
            self.means[column] = float(values.mean()) if len(values) else 0.0
            std = float(values.std(ddof=0)) if len(values) > 1 else 1.0
            self.stds[column] = std if std > 0 else 1.0
        for column in self.categorical:
            self.vocab[column] = sorted({str(v) for v in cases[column].dropna()})
        return self

    def check_columns(self, cases: pd.DataFrame) -> None:
        missing = [c for c in self.numeric + self.categorical if c not in cases.columns]
        if missing:
            raise BsxError(f"the cohort lacks metadata column(s) the model uses: {', '.join(missing)}",
                           fix="add the columns to the cohort, or use a checkpoint trained without them")

    # -- transforming ----------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        names = []
        for column in self.numeric:
            names += [column, f"{column}{MISSING}"]
        for column in self.categorical:
            names += [f"{column}={v}" for v in self.vocab[column]] + [f"{column}={MISSING}", f"{column}={UNKNOWN}"]
        return names

    @property
    def dim(self) -> int:
        return len(self.feature_names)

    def transform(self, cases: pd.DataFrame) -> tuple[np.ndarray, dict[str, int]]:
        """Encode cases; also return how many values per column were unseen in training."""
        self.check_columns(cases)
        blocks, unseen = [], {}
        for column in self.numeric:
            values = pd.to_numeric(cases[column], errors="coerce").to_numpy(dtype=float)
            missing = np.isnan(values)
            scaled = np.where(missing, 0.0, (values - self.means[column]) / self.stds[column])
            blocks.append(np.stack([scaled, missing.astype(float)], axis=1))
        for column in self.categorical:
            vocab = self.vocab[column]
            lookup = {v: i for i, v in enumerate(vocab)}
            raw = cases[column]
            is_missing = raw.isna().to_numpy()
            codes = np.array([lookup.get(str(v), -1) for v in raw], dtype=int)
            codes[is_missing] = len(vocab)
            new = (codes == -1)
            codes[new] = len(vocab) + 1
            unseen[column] = int(new.sum())
            onehot = np.zeros((len(cases), len(vocab) + 2))
            onehot[np.arange(len(cases)), codes] = 1.0
            blocks.append(onehot)
        matrix = np.concatenate(blocks, axis=1) if blocks else np.zeros((len(cases), 0))
        return matrix.astype(np.float32), unseen

    # -- persistence -----------------------------------------------------
    def to_dict(self) -> dict:
        return {"numeric": self.numeric, "categorical": self.categorical, "means": self.means,
                "stds": self.stds, "vocab": self.vocab}

    @classmethod
    def from_dict(cls, data: dict) -> "MetadataEncoder":
        try:
            return cls(list(data["numeric"]), list(data["categorical"]), dict(data["means"]),
                       dict(data["stds"]), {k: list(v) for k, v in data["vocab"].items()})
        except (KeyError, TypeError, AttributeError) as exc:
            raise BsxError(f"checkpoint metadata encoder is malformed ({exc})",
                           fix="use a checkpoint written by `bsx train`") from None
