"""One reader per public layout. Each module defines:

- FORMAT: the name (`bsx cohort info` prints it)
- DEFAULT_MALIGNANT: diagnoses counted malignant unless the user says otherwise
- LABEL_SOURCE: "diagnosis" (malignant derived via the mapping) or "column"
- find(folder) -> metadata file or None: the layout's file names in that folder
- matches(csv_path, columns) -> bool: a CSV given directly is this layout
- read(meta, problems) -> ReadResult with canonical columns as raw text
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass
class ReadResult:
    frame: pd.DataFrame       # canonical columns, raw text ('' = missing), plus source_row
    has_labels: bool          # does this file carry ground truth at all
    files: list[Path]         # metadata files read (fingerprinted)


def empty_canonical(n: int) -> dict[str, list[str]]:
    from cohorts.schema import CANONICAL_COLUMNS
    return {column: [""] * n for column in CANONICAL_COLUMNS}


def finish(columns: dict, source: pd.DataFrame) -> pd.DataFrame:
    """Canonical frame from a dict of columns; source_row is the spreadsheet row (header = 1)."""
    frame = pd.DataFrame(columns, index=source.index)
    frame["source_row"] = source.index.to_numpy() + 2
    return frame.reset_index(drop=True)
