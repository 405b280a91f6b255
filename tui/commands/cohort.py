"""`bsx cohort synth|info|check`: make, describe and validate cohorts."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

EXIT_OK, EXIT_CASE_ERRORS = 0, 1


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("cohort", help="make, describe and validate cohorts")
    commands = parser.add_subparsers(dest="cohort_command", metavar="SUBCOMMAND")
    parser.set_defaults(handler=lambda args: parser.print_help() or 2)

    synth = commands.add_parser("synth", help="write a synthetic cohort with learnable signal")
    synth.add_argument("--n", type=int, default=400, help="number of cases (default 400)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--prevalence", type=float, default=0.3, help="fraction malignant (default 0.3)")
    synth.add_argument("--shift", default="none", help="none | new_site | older | darker_skin")
    synth.add_argument("--layout", default="generic",
                       help="generic | isic2019 | isic2020 | ham10000 | padufes20 | ddi")
    synth.add_argument("--image-size", type=int, default=128, help="base image size in pixels (default 128)")
    synth.add_argument("--sites", default=None, help="site mix, e.g. A=0.5,B=0.3,C=0.2")
    synth.add_argument("--prefix", default="SYN", help="case id prefix")
    synth.add_argument("--out", type=Path, required=True, help="new folder to write")
    synth.set_defaults(handler=run_synth)

    for name, help_text, handler in (("info", "detect the layout and summarise a cohort", run_info),
                                     ("check", "validate every row (and image) of a cohort", run_check)):
        command = commands.add_parser(name, help=help_text)
        add_load_arguments(command)
        command.add_argument("--json", action="store_true", help="print JSON on stdout")
        if name == "check":
            command.add_argument("--no-images", action="store_true", help="skip decoding every image")
        command.set_defaults(handler=handler)


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that reads a cohort."""
    parser.add_argument("path", type=Path, help="cohort folder or metadata CSV")
    parser.add_argument("--layout", default=None, help="force a layout instead of detecting it")
    parser.add_argument("--malignant", default=None,
                        help="comma-separated diagnoses counted malignant (default: the layout's)")
    parser.add_argument("--allow-outside-root", action="store_true",
                        help="accept image paths outside the cohort folder")


def load_from_args(args: argparse.Namespace, images: bool = False):
    from cohorts.cohort import load_cohort
    from tui.progress import progress_callback

    malignant = [d.strip() for d in args.malignant.split(",") if d.strip()] if args.malignant else None
    with progress_callback("checking images", enabled=images) as progress:
        return load_cohort(args.path, layout=args.layout, malignant=malignant, images=images,
                           allow_outside_root=args.allow_outside_root, progress=progress)


def _parse_sites(text: str | None) -> dict[str, float] | None:
    from cohorts.errors import BsxError

    if not text:
        return None
    try:
        return {k.strip(): float(v) for k, v in (item.split("=") for item in text.split(","))}
    except ValueError:
        raise BsxError(f"cannot read --sites '{text}'", fix="write it as A=0.5,B=0.3,C=0.2") from None


def run_synth(args: argparse.Namespace) -> int:
    from cohorts.synth import SynthSpec, write_synthetic
    from tui.console import err, safe
    from tui.progress import progress_callback

    spec = SynthSpec(n=args.n, seed=args.seed, prevalence=args.prevalence, shift=args.shift,
                     image_size=args.image_size, case_prefix=args.prefix)
    sites = _parse_sites(args.sites)
    if sites:
        spec.sites = sites
    with progress_callback("generating cases") as progress:
        meta = write_synthetic(spec, args.out, args.layout, progress=progress)
    err.print(f"wrote {args.n} cases ({safe(args.layout)} layout) to {safe(meta)}")
    return EXIT_OK


def run_info(args: argparse.Namespace) -> int:
    from tui.console import out
    from tui.render import cohort_summary_table

    cohort = load_from_args(args)
    summary = cohort.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        out.print(cohort_summary_table(summary))
    return EXIT_OK


def run_check(args: argparse.Namespace) -> int:
    from tui.console import out
    from tui.render import problem_table

    cohort = load_from_args(args, images=not args.no_images)
    counts = cohort.counts()
    if args.json:
        print(json.dumps({"format": cohort.format, "cases": len(cohort.cases), "usable": int(cohort.usable.sum()),
                          "counts": counts, "problems": [p.to_dict() for p in cohort.problems]}, indent=2))
    else:
        out.print(problem_table(cohort.problems, len(cohort.cases), cohort.format))
    return EXIT_CASE_ERRORS if counts["error"] else EXIT_OK
