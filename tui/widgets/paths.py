"""Path completion for inputs: suggests the next file or folder name."""
from __future__ import annotations

import os
from pathlib import Path

from textual.suggester import Suggester


class PathSuggester(Suggester):
    """Completes the last path component from the file system (folders first)."""

    def __init__(self, folders_only: bool = False) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.folders_only = folders_only

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        expanded = os.path.expanduser(value)
        base, _, stem = expanded.rpartition(os.sep)
        folder = Path(base or ("/" if expanded.startswith(os.sep) else "."))
        try:
            entries = sorted(folder.iterdir(), key=lambda p: (not p.is_dir(), p.name))
        except OSError:
            return None
        for entry in entries:
            if entry.name.startswith(stem) and entry.name != stem and not entry.name.startswith("."):
                if self.folders_only and not entry.is_dir():
                    continue
                completed = value[: len(value) - len(stem)] + entry.name
                return completed + (os.sep if entry.is_dir() else "")
        return None
