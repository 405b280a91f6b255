"""The one exception type for errors a user can cause and fix.

Every layer raises `BsxError` (or a subclass) for bad input; the CLI prints its
message without a traceback and exits with `exit_code`.
"""
from __future__ import annotations

from pathlib import Path


class BsxError(Exception):
    """A user-fixable problem. The message names the file, row or field, and the fix."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        row: int | None = None,
        column: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.path = Path(path) if path is not None else None
        self.row = row
        self.column = column
        self.fix = fix
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.path is not None:
            where.append(str(self.path))
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        text = f"{': '.join([', '.join(where)]) + ': ' if where else ''}{self.message}"
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text
