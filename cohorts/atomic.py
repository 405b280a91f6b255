"""Atomic, owner-only file writes: temp file in the same folder, fsync, rename.

A crash or a full disk leaves either the old file or the new one, never half a
file. Files that may hold per-patient data are created readable by the owner
only.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def make_private_dir(path: Path) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    return path


def atomic_write(path: Path, write: Callable[[io.BufferedWriter], None], mode: int = PRIVATE_FILE) -> Path:
    """Call `write(fileobj)` on a temp file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from None
        raise
    return path


def _write_error(path: Path, exc: OSError) -> OSError:
    """Name the file and the likely fix: some writers (numpy) raise OSError without errno or file name."""
    detail = exc.strerror or str(exc) or exc.__class__.__name__
    return OSError(exc.errno, f"cannot write {path.name} ({detail}); the previous version, if any, is intact "
                   "(fix: free disk space or check write permission)", str(path))


def atomic_write_bytes(path: Path, data: bytes, mode: int = PRIVATE_FILE) -> Path:
    return atomic_write(path, lambda handle: handle.write(data), mode)


def atomic_write_text(path: Path, text: str, mode: int = PRIVATE_FILE) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), mode)


def atomic_write_json(path: Path, obj: Any, mode: int = PRIVATE_FILE) -> Path:
    text = json.dumps(to_jsonable(obj), indent=2, allow_nan=False)
    return atomic_write_text(path, text + "\n", mode)


def to_jsonable(obj: Any) -> Any:
    """numpy scalars/arrays, paths, tuples -> JSON types; NaN/inf -> None (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy scalar or array
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
