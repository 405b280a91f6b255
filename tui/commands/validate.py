"""`bsx validate`: run a model on an external cohort with MC Dropout into a run folder."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

EXIT_OK, EXIT_CASE_ERRORS = 0, 1


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("validate", help="validate a checkpoint on a cohort (writes a run folder)")
    parser.add_argument("--cohort", type=Path, required=True, help="cohort folder or metadata CSV")
    parser.add_argument("--checkpoint", type=Path, required=True,
                        help="folder written by `bsx train`, its model.safetensors, or a foreign .pt")
    parser.add_argument("--out", type=Path, required=True, help="run folder (resumed if it holds this run)")
    parser.add_argument("--mc-samples", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None, help="image decoding workers")
    parser.add_argument("--device", default="auto", help="auto (a CUDA GPU when present) | cpu | cuda | cuda:N")
    parser.add_argument("--referral-rate", type=float, default=0.1, help="fraction of cases referred (flagged)")
    parser.add_argument("--referral-score", default="entropy", help="entropy | mutual_info | p_std")
    parser.add_argument("--referral-threshold", type=float, default=None, help="fixed uncertainty threshold")
    parser.add_argument("--threshold", type=float, default=0.5, help="decision threshold on p_mean")
    parser.add_argument("--reference", default=None, help="reference run folder or cohort for drift")
    parser.add_argument("--calibration", default=None, help="labelled cohort to fit temperature scaling on")
    parser.add_argument("--attributes", default=None, help="subgroup columns (default site,sex,age_band,...)")
    parser.add_argument("--reference-group", default=None,
                        help="subgroup each attribute is compared with, e.g. site=A,sex=female (default: largest)")
    parser.add_argument("--age-edges", default=None, help="age band edges, e.g. 0,40,65,120")
    parser.add_argument("--min-subgroup-size", type=int, default=30,
                        help="smaller subgroups are reported as not estimable (default 30)")
    parser.add_argument("--malignant", default=None, help="comma-separated diagnoses counted malignant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--error-tolerance", type=float, default=0.05,
                        help="fraction of case errors above which the exit code is 1")
    parser.add_argument("--no-gradcam", action="store_true", help="skip Grad-CAM overlays for flagged cases")
    parser.add_argument("--allow-outside-root", action="store_true")
    parser.add_argument("--overwrite", action="store_true", help="replace a different run in --out")
    parser.add_argument("--force", action="store_true", help="recalibrate even when integrity is below 70")
    parser.add_argument("--pdf", action="store_true", help="write report.pdf at the end")
    parser.add_argument("--json", action="store_true", help="print metrics.json on stdout")
    parser.set_defaults(handler=run_validate)


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _pairs(text: str | None) -> dict[str, str] | None:
    """'site=A,sex=female' -> {'site': 'A', 'sex': 'female'}."""
    from cohorts.errors import BsxError

    if not text:
        return None
    items = [item.split("=", 1) for item in _split(text)]
    if any(len(item) != 2 or not item[0] or not item[1] for item in items):
        raise BsxError(f"cannot read --reference-group '{text}'", fix="write it as site=A,sex=female")
    return {key.strip(): value.strip() for key, value in items}


def _numbers(text: str | None) -> list[float] | None:
    from cohorts.errors import BsxError

    if not text:
        return None
    try:
        return [float(v) for v in _split(text)]
    except ValueError:
        raise BsxError(f"cannot read --age-edges '{text}'", fix="write them as 0,40,65,120") from None


def run_validate(args: argparse.Namespace) -> int:
    from engine.validate import ValidateConfig, run_validation
    from tui.console import err
    from tui.progress import progress_callback

    config = ValidateConfig(
        cohort=str(args.cohort), checkpoint=str(args.checkpoint), out=str(args.out), mc_samples=args.mc_samples,
        batch_size=args.batch_size, referral_rate=args.referral_rate, referral_score=args.referral_score,
        referral_threshold=args.referral_threshold, threshold=args.threshold, reference=args.reference,
        device=args.device,
        calibration=args.calibration, seed=args.seed, n_boot=args.n_boot, error_tolerance=args.error_tolerance,
        overwrite=args.overwrite, gradcam=not args.no_gradcam, malignant=_split(args.malignant),
        allow_outside_root=args.allow_outside_root, attributes=_split(args.attributes),
        reference_groups=_pairs(args.reference_group), age_edges=_numbers(args.age_edges),
        min_subgroup_size=args.min_subgroup_size)
    if args.workers is not None:
        config.workers = args.workers
    with progress_callback("validating") as progress:
        folder = run_validation(config, progress=progress, stage=lambda s: err.print(f"[dim]{s}…[/]"))
    metrics = folder.read_json("metrics")
    if args.pdf:
        from reports.validation import render_validation_report

        pdf = render_validation_report(folder.path)
        err.print(f"report: {pdf}")
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        from tui.render import run_summary_table
        from tui.console import out

        out.print(run_summary_table(folder))
    errors = metrics.get("n_errors", 0)
    return EXIT_CASE_ERRORS if metrics.get("n_cases") and errors / metrics["n_cases"] > config.error_tolerance \
        else EXIT_OK
