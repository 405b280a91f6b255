"""`bsx tui [RUN_DIR | COHORT]`: the interactive workstation."""
from __future__ import annotations

import argparse
from pathlib import Path



def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("tui", help="open the interactive terminal workstation")
    parser.add_argument("path", type=Path, nargs="?", default=None,
                        help="a run folder (opens on the run) or a cohort folder/CSV (opens the Cohort pane)")
    parser.add_argument("--image-protocol", choices=["auto", "sixel", "kitty", "halfcell", "none"], default="auto",
                        help="images: auto-detect, or force sixel | kitty | halfcell | none "
                             "(forcing skips terminal queries that time out on slow SSH links)")
    parser.set_defaults(handler=run_tui)


def run_tui(args: argparse.Namespace) -> int:
    from cohorts.errors import BsxError

    if args.path is not None and not args.path.exists():
        raise BsxError("path does not exist", path=args.path, fix="pass a run folder or a cohort")
    from tui.widgets.images import select_protocol

    select_protocol(args.image_protocol)  # before the app owns the terminal
    from tui.app import BsxApp

    BsxApp(args.path, image_protocol=args.image_protocol).run()
    return 0
