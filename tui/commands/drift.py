"""`bsx drift`: reference vs current, on two cohorts (metadata) or two runs (adds predictions, embeddings)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("drift", help="compare a cohort or run with a reference")
    parser.add_argument("--ref", type=Path, required=True, help="reference cohort or run folder")
    parser.add_argument("--cur", type=Path, required=True, help="current cohort or run folder")
    parser.add_argument("--out", type=Path, default=None, help="write drift.json here")
    parser.add_argument("--json", action="store_true", help="print the report on stdout")
    parser.set_defaults(handler=run_drift)


def run_drift(args: argparse.Namespace) -> int:
    from cohorts.atomic import atomic_write_json
    from engine.analyses import reference_data, resolve_reference
    from engine.drift import drift_report
    from tui.console import err, out
    from tui.render import drift_table

    ref_kind, ref_path = resolve_reference(str(args.ref), None)
    cur_kind, cur_path = resolve_reference(str(args.cur), None)
    ref, cur = reference_data(ref_kind, ref_path), reference_data(cur_kind, cur_path)
    both_runs = ref_kind == cur_kind == "run"
    report = drift_report(ref["frame"], cur["frame"],
                          ref_pred=ref["predictions"] if both_runs else None,
                          cur_pred=cur["predictions"] if both_runs else None,
                          ref_emb=ref["embeddings"] if both_runs else None,
                          cur_emb=cur["embeddings"] if both_runs else None)
    report["reference"] = {"kind": ref_kind, "path": str(ref_path.resolve())}
    report["current"] = {"kind": cur_kind, "path": str(cur_path.resolve())}
    if args.out:
        atomic_write_json(args.out, report)
        err.print(f"wrote {args.out}")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        out.print(drift_table(report))
    return 0
