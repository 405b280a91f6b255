"""Content fingerprint of a cohort: metadata + image bytes, hashed once and cached.

Image hashes are cached per file keyed by (size, mtime_ns) in the user's cache
folder (never in the cohort, which is read-only to us), so a second load of a
25,000-image cohort costs a stat per file.
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cohorts.atomic import atomic_write_json


def cache_dir() -> Path:
    base = os.environ.get("BSX_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "biosignal-x")
    return Path(base) / "fingerprints"


def _hash_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cache_file(root: Path) -> Path:
    key = hashlib.sha256(os.path.realpath(root).encode()).hexdigest()[:24]
    return cache_dir() / f"{key}.json"


def image_hashes(root: Path, paths: list[str]) -> dict[str, str]:
    """sha256 per image path, reusing cached hashes whose size and mtime still match."""
    cache_path = _cache_file(root)
    try:
        cached = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cached = {}
    result: dict[str, str] = {}
    stale: list[tuple[str, list]] = []
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            continue
        key = [stat.st_size, stat.st_mtime_ns]
        entry = cached.get(path)
        if entry and entry[:2] == key:
            result[path] = entry[2]
        else:
            stale.append((path, key))
    if stale:
        with ThreadPoolExecutor(max_workers=4) as pool:
            for (path, key), digest in zip(stale, pool.map(lambda item: _hash_file(item[0]), stale)):
                result[path] = digest
                cached[path] = key + [digest]
        try:
            atomic_write_json(cache_path, cached)
        except OSError:
            pass  # a read-only home must not stop a validation; the next load hashes again
    return result


def cohort_fingerprint(metadata_files: list[Path], root: Path, image_paths: list[str]) -> str:
    digest = hashlib.sha256()
    for path in metadata_files:
        digest.update(Path(path).name.encode())
        digest.update(_hash_file(str(path)).encode())
    hashes = image_hashes(root, image_paths)
    root_real = os.path.realpath(root)
    for path in sorted(hashes):
        digest.update(os.path.relpath(path, root_real).encode())
        digest.update(hashes[path].encode())
    return digest.hexdigest()
