"""The fully crossed ratings array every MRMC analysis starts from.

Obuchowski-Rockette and DBM are defined for a factorial design: every reader
rates every case in every modality. `MrmcData` holds exactly that and refuses
anything else, so no analysis ever runs on a silently padded or mis-aligned
array.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cohorts.errors import BsxError


@dataclass(frozen=True)
class MrmcData:
    """ratings[modality, reader, case]; truth[case] is 1 for abnormal (diseased), 0 for normal."""

    ratings: np.ndarray
    truth: np.ndarray
    modalities: list[str]
    readers: list[str]
    cases: list[str]
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        ratings = np.asarray(self.ratings, dtype=float)
        truth = np.asarray(self.truth)
        if ratings.ndim != 3:
            raise BsxError(f"ratings must be modality x reader x case, got {ratings.ndim} dimensions")
        t, r, c = ratings.shape
        if (t, r, c) != (len(self.modalities), len(self.readers), len(self.cases)):
            raise BsxError("ratings shape does not match the modality, reader and case labels")
        if truth.shape != (c,):
            raise BsxError(f"truth has {truth.size} entries for {c} cases")
        if not np.all(np.isin(truth, (0, 1))):
            raise BsxError("truth must be 0 (normal) or 1 (abnormal) for every case",
                           fix="recode the truth column to 0/1")
        if not np.all(np.isfinite(ratings)):
            raise BsxError("ratings contain missing or non-finite values",
                           fix="every reader must rate every case in every modality")
        n_abnormal = int(truth.sum())
        if n_abnormal == 0 or n_abnormal == c:
            only = "abnormal" if n_abnormal else "normal"
            raise BsxError(f"all {c} cases are {only}: an AUC needs both normal and abnormal cases",
                           fix="add cases of the other class")
        if min(n_abnormal, c - n_abnormal) < 2:
            raise BsxError("the jackknife needs at least two normal and two abnormal cases")
        for name, labels in (("modality", self.modalities), ("reader", self.readers), ("case", self.cases)):
            if len(set(labels)) != len(labels):
                raise BsxError(f"duplicate {name} labels")
        object.__setattr__(self, "ratings", ratings)
        object.__setattr__(self, "truth", truth.astype(int))

    @property
    def n_normal(self) -> int:
        return int((self.truth == 0).sum())

    @property
    def n_abnormal(self) -> int:
        return int(self.truth.sum())

    def select(self, *, modalities: list[str] | None = None, readers: list[str] | None = None) -> "MrmcData":
        """A sub-study (some modalities, some readers) on the same cases."""
        mods = modalities if modalities is not None else self.modalities
        rdrs = readers if readers is not None else self.readers
        mi = [self.modalities.index(m) for m in mods]
        ri = [self.readers.index(r) for r in rdrs]
        return MrmcData(self.ratings[np.ix_(mi, ri)], self.truth, list(mods), list(rdrs),
                        list(self.cases), list(self.warnings))

    def constant_reader_warnings(self) -> list[str]:
        """Readers whose ratings never vary get AUC 0.5 by ties: legitimate, but worth saying."""
        spread = np.ptp(self.ratings, axis=2)
        return [f"reader {self.readers[j]} gave the same rating to every case in modality "
                f"{self.modalities[i]} (AUC 0.5 by ties)"
                for i, j in zip(*np.nonzero(spread == 0))]
