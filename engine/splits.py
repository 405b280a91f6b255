"""Train/validation splits grouped by patient, so no patient is on both sides.

Groups are patients; where a cohort has no patient ids, lesions; failing
that, single cases. Groups are assigned to validation per stratum (label, and
site with --site-split) until the stratum's validation share is reached.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cohorts.errors import BsxError


def group_keys(cases: pd.DataFrame) -> pd.Series:
    """patient_id, else lesion_id, else case_id: the unit that must stay on one side."""
    keys = cases["patient_id"].astype(object)
    keys = keys.where(keys.notna(), "lesion:" + cases["lesion_id"].astype(str))
    keys = keys.where(cases["patient_id"].notna() | cases["lesion_id"].notna(), "case:" + cases["case_id"].astype(str))
    return keys.astype(str)


def grouped_split(cases: pd.DataFrame, labels: np.ndarray, val_fraction: float = 0.2, seed: int = 0,
                  by_site: bool = False) -> np.ndarray:
    """Boolean mask: True = validation. Stratified by the group's majority label (and site)."""
    if not 0 < val_fraction < 1:
        raise BsxError(f"validation fraction must be between 0 and 1 (got {val_fraction})")
    groups = group_keys(cases)
    frame = pd.DataFrame({"group": groups.to_numpy(), "label": labels})
    frame["site"] = cases["site"].astype(str).to_numpy() if by_site else ""
    per_group = frame.groupby("group").agg(label=("label", lambda s: s.mode().iat[0]), site=("site", "first"),
                                           size=("label", "size"))
    rng = np.random.default_rng(seed)
    val_groups: set[str] = set()
    for _, stratum in per_group.groupby(["label", "site"]):
        order = rng.permutation(len(stratum))
        target = val_fraction * stratum["size"].sum()
        taken = 0
        for position in order:
            if taken >= target:
                break
            val_groups.add(stratum.index[position])
            taken += stratum["size"].iat[position]
    mask = groups.isin(val_groups).to_numpy()
    if mask.all() or not mask.any():
        raise BsxError(f"the grouped split left the {'training' if mask.all() else 'validation'} side empty "
                       f"({per_group.shape[0]} patient groups)",
                       fix="use a larger cohort or a different --val-fraction")
    return mask
