"""Finding run folders: `bsx runs list` and the TUI's run picker."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def list_runs(folder: str | Path) -> list[dict[str, Any]]:
    """One summary per run folder directly under `folder` (or `folder` itself), newest first."""
    folder = Path(folder)
    candidates = [folder] if (folder / "run.json").is_file() else sorted(folder.glob("*/run.json"))
    runs = []
    for run_json in (c / "run.json" if c.is_dir() else c for c in candidates):
        try:
            info = json.loads(run_json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            runs.append({"path": str(run_json.parent), "name": run_json.parent.name, "status": "unreadable"})
            continue
        metrics_path = run_json.parent / "metrics.json"
        auc = None
        if metrics_path.is_file():
            try:
                auc = json.loads(metrics_path.read_text()).get("overall", {}).get("auc", {}).get("value")
            except (OSError, ValueError, AttributeError):
                auc = None
        integrity_path = run_json.parent / "integrity.json"
        score = None
        if integrity_path.is_file():
            try:
                score = json.loads(integrity_path.read_text()).get("score")
            except (OSError, ValueError):
                score = None
        runs.append({"path": str(run_json.parent), "name": info.get("name", run_json.parent.name),
                     "status": info.get("status"), "started": info.get("started"),
                     "finished": info.get("finished"), "cohort": info.get("cohort", {}).get("path"),
                     "cases": info.get("cohort", {}).get("n_cases"), "auc": auc, "integrity": score})
    return sorted(runs, key=lambda r: r.get("started") or "", reverse=True)
