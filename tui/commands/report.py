"""`bsx report`: the PDF validation report of a run folder, or the report of one case."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("report", help="write the PDF report of a run (or of one case)",
                            description="PDF report of a run folder, with a data appendix (CSV/JSON of every "
                            "table) beside it. Research use only; not for diagnostic use.")
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="run folder written by `bsx validate`")
    parser.add_argument("--out", type=Path, default=None,
                        help="PDF to write (default RUN_DIR/report.pdf, or RUN_DIR/cases/<id>.pdf with --case)")
    parser.add_argument("--case", default=None, metavar="ID", help="report one case instead of the whole run")
    parser.set_defaults(handler=run_report)


def run_report(args: argparse.Namespace) -> int:
    from tui.console import err, out, safe

    if args.case is not None:
        from reports.case import render_case_report

        pdf = render_case_report(args.run_dir, args.case, args.out)
    else:
        from reports.validation import data_folder, render_validation_report

        pdf = render_validation_report(args.run_dir, args.out)
        err.print(f"[dim]data appendix: {safe(data_folder(pdf))}[/]")
    out.print(f"wrote {safe(pdf)}")
    return 0
