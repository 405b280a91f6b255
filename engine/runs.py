"""Finding run folders: `bsx runs list` and the TUI's run picker."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, or None when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def list_runs(folder: str | Path) -> list[dict[str, Any]]:
    """One summary per run folder directly under `folder` (or `folder` itself), newest first."""
    folder = Path(folder)
    candidates = [folder] if (folder / "run.json").is_file() else sorted(folder.glob("*/run.json"))
    runs = []
    for run_json in (c / "run.json" if c.is_dir() else c for c in candidates):
        info = _json_object(run_json)
        if info is None:
            runs.append({"path": str(run_json.parent), "name": run_json.parent.name, "status": "unreadable"})
            continue
        metrics = _json_object(run_json.parent / "metrics.json") or {}
        auc = metrics.get("overall", {}).get("auc", {}) if isinstance(metrics.get("overall"), dict) else {}
        integrity = _json_object(run_json.parent / "integrity.json") or {}
        cohort = info.get("cohort") if isinstance(info.get("cohort"), dict) else {}
        runs.append({"path": str(run_json.parent), "name": info.get("name", run_json.parent.name),
                     "status": info.get("status"), "started": info.get("started"),
                     "finished": info.get("finished"), "cohort": cohort.get("path"),
                     "cases": cohort.get("n_cases"), "auc": auc.get("value") if isinstance(auc, dict) else None,
                     "integrity": integrity.get("score")})
    return sorted(runs, key=lambda r: r.get("started") or "", reverse=True)
