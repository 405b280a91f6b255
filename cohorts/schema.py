"""The canonical case columns and the problem report every reader produces."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

CANONICAL_COLUMNS = [
    "case_id", "patient_id", "lesion_id", "image_path", "diagnosis", "malignant",
    "age", "sex", "site", "body_site", "skin_type", "split",
]

# Fitzpatrick types as written in the canonical frame: single types or the
# grouped form public datasets use (DDI: 12/34/56).
SKIN_TYPES = ["I", "II", "III", "IV", "V", "VI", "I-II", "III-IV", "V-VI"]
SEXES = ["male", "female"]

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One finding about one row (or the whole file when row is None).

    error: the case cannot be used. warning: usable but suspect.
    Rows are 1-based data rows as a spreadsheet shows them (header is row 1).
    """

    severity: Severity
    file: str
    row: int | None
    column: str | None
    message: str
    case_id: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)
