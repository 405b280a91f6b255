"""Rich consoles for the CLI: results on stdout, progress and messages on stderr."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def safe(text: object) -> str:
    """Escape untrusted text (file names, CSV values) before it meets Rich markup."""
    return escape(str(text))
