"""`bsx`: the headless command line.

Each command group lives in `tui/commands/<name>.py` and exposes
`register(subparsers)`. Heavy imports (torch, textual, reportlab) happen inside
the command handlers, so `bsx --help` starts fast and batch mode never loads
textual.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from cohorts.errors import BsxError

# Order is the order shown in `bsx --help`.
COMMAND_MODULES = [
    "cohort", "train", "validate", "runs", "report", "drift",
    "integrity", "explain", "reader", "tui",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bsx",
        description="BioSignal-X: clinical validation workstation for dermoscopy AI models. "
        "Research and education only; not a diagnostic device.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"tui.commands.{name}")
        except ModuleNotFoundError as exc:  # a command group not present in this build
            if exc.name != f"tui.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    debug = args.debug or os.environ.get("BSX_DEBUG") == "1"
    try:
        code = args.handler(args)
    except BsxError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: finished work is saved; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except OSError as exc:
        # Disk full, permission denied and friends: name the file, no traceback.
        if debug:
            raise
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_USAGE
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
