"""`bsx integrity RUN_DIR`: recompute the run's integrity score, write integrity.json, gate on it.

The exit code is the gate (0 when the score reaches --fail-under, 1 below it),
so CI jobs can refuse a run that cannot be trusted. The checkpoint sidecar is
read as JSON only (no torch): it is needed for the coherence and leakage
checks, which say "not checkable" when the checkpoint has moved.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from cohorts.errors import BsxError
from tui.console import err, out, safe

BAND_STYLES = {"High": "bold green", "Stable": "bold yellow", "Review required": "bold red"}
SIDECAR_NAME = "model.json"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("integrity", help="recompute a run's integrity score and gate on it",
                            description="Recompute the integrity checks of a run folder, write integrity.json "
                            "and exit 1 when the score is below --fail-under.")
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="run folder written by `bsx validate`")
    parser.add_argument("--fail-under", type=float, default=70.0,
                        help="minimum score for exit code 0 (default 70)")
    parser.add_argument("--json", action="store_true", help="print integrity.json instead of a table")
    parser.set_defaults(handler=_integrity)


def open_run_folder(path: Path):
    """The run folder at `path`, or a BsxError naming what is wrong with it."""
    from engine.runfolder import RunFolder

    if not path.is_dir():
        raise BsxError("run folder not found", path=path, fix="pass a folder written by `bsx validate`")
    folder = RunFolder(path)
    if not folder.exists:
        raise BsxError("not a run folder: it has no run.json", path=path,
                       fix="pass a folder written by `bsx validate`")
    return folder


def sidecar_path(checkpoint: Path) -> Path | None:
    """model.json for a checkpoint folder or weights file, as engine.checkpoint locates it."""
    if checkpoint.is_dir():
        candidates = [checkpoint / SIDECAR_NAME]
    else:
        candidates = [checkpoint.with_suffix(".json"), checkpoint.parent / SIDECAR_NAME]
    return next((c for c in candidates if c.is_file()), None)


def read_checkpoint_sidecar(run: dict) -> tuple[dict | None, str | None]:
    """(sidecar, None) when the run's checkpoint is still where it was; (None, reason) otherwise."""
    recorded = (run.get("model") or {}).get("path")
    if not recorded:
        return None, "run.json records no checkpoint path"
    path = sidecar_path(Path(recorded))
    if path is None:
        return None, f"checkpoint not found at {recorded}"
    try:
        sidecar = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return None, f"checkpoint sidecar {path} cannot be read ({exc})"
    if not isinstance(sidecar, dict):
        return None, f"checkpoint sidecar {path} is not a JSON object"
    return sidecar, None


def _integrity(args: argparse.Namespace) -> int:
    from engine.integrity import compute_integrity, integrity_gate

    if not 0 <= args.fail_under <= 100:
        raise BsxError(f"--fail-under must be between 0 and 100 (got {args.fail_under})")
    folder = open_run_folder(args.run_dir)
    sidecar, reason = read_checkpoint_sidecar(folder.run_info())
    result = compute_integrity(folder, sidecar)
    folder.write_json("integrity", result)
    folder.append_ledger("integrity", score=result["score"], band=result["band"],
                         violations=result["violations"], warnings=result["warnings"])
    passed = integrity_gate(result, args.fail_under)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        if reason:
            err.print(f"[yellow]note:[/] {safe(reason)}: coherence and leakage checks are not checkable")
        print_integrity(result, args.fail_under, passed)
    return 0 if passed else 1


def print_integrity(result: dict, fail_under: float, passed: bool) -> None:
    from rich.table import Table

    style = BAND_STYLES.get(result["band"], "bold")
    out.print(f"Integrity score [{style}]{result['score']:g}[/] ([{style}]{safe(result['band'])}[/]): "
              f"{result['violations']} violation(s), {result['warnings']} warning(s)")
    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("check")
    table.add_column("severity")
    table.add_column("result")
    table.add_column("message", overflow="fold")
    for check in result["checks"]:
        if check["passed"]:
            verdict = "[green]pass[/]"
        else:
            verdict = "[red]FAIL[/]" if check["severity"] == "violation" else "[yellow]WARN[/]"
        table.add_row(safe(check["id"]), check["severity"], verdict, safe(check["message"]))
    out.print(table)
    gate = "[green]passed[/]" if passed else "[red]failed[/]"
    out.print(f"gate {gate}: score {result['score']:g} {'>=' if passed else '<'} {fail_under:g}")
