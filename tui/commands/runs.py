"""`bsx runs list`: the run folders under a directory."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("runs", help="list validation runs")
    commands = parser.add_subparsers(dest="runs_command", metavar="SUBCOMMAND")
    parser.set_defaults(handler=lambda args: parser.print_help() or 2)
    listing = commands.add_parser("list", help="list the runs in a folder")
    listing.add_argument("folder", type=Path, nargs="?", default=Path("runs"))
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=run_list)


def run_list(args: argparse.Namespace) -> int:
    from engine.runs import list_runs
    from tui.console import out
    from tui.render import runs_table

    runs = list_runs(args.folder)
    if args.json:
        print(json.dumps(runs, indent=2))
    else:
        out.print(runs_table(runs, args.folder))
    return 0
