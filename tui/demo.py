"""`make demo`: synthetic cohorts, a model trained once and cached, a full validation
run with every analysis and a PDF, then the workstation opened on that run.

A second `make demo` reuses everything already built and opens in seconds.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEMO_TRAIN = {"n": 400, "seed": 0}
DEMO_REFERENCE = {"n": 200, "seed": 1}
# The external cohort: older patients, half of them from an unseen site (camera D).
DEMO_EXTERNAL = {"n": 300, "seed": 2, "shift": "older", "sites": {"A": 0.3, "B": 0.2, "D": 0.5}}
IMAGE_SIZE = 64
SIMULATED_READERS = ("simulated-reader-1", "simulated-reader-2", "simulated-reader-3")


def _cohort(path: Path, spec: dict, say) -> Path:
    from cohorts.synth import SynthSpec, write_synthetic

    if not (path / "cohort.csv").is_file():
        say(f"writing synthetic cohort {path.name} ({spec['n']} cases)")
        write_synthetic(SynthSpec(image_size=96, case_prefix=path.name[:3].upper(),
                                  **{k: v for k, v in spec.items() if k != "sites"}, **_sites(spec)), path)
    return path


def _sites(spec: dict) -> dict:
    return {"sites": spec["sites"]} if "sites" in spec else {}


def _model(root: Path, cohort: Path, backbone: str, epochs: int, say) -> Path:
    from engine.train import TrainConfig, Trainer
    from tui.train_progress import rich_reporter

    out = root / "model"
    if (out / "model.json").is_file() and (out / "train.done").is_file():
        return out
    say(f"training {backbone} for up to {epochs} epochs at {IMAGE_SIZE}px (cached for the next demo)")
    config = TrainConfig(cohort=str(cohort), out=str(out), epochs=epochs, image_size=IMAGE_SIZE, backbone=backbone,
                         batch_size=32, lr=2e-3, patience=3, seed=0)
    resume = (out / "train_state.pt").is_file()
    with rich_reporter() as emit:
        Trainer(config, emit).run(resume=resume)
    (out / "train.done").write_text("complete\n")
    return out


def _run(root: Path, name: str, cohort: Path, checkpoint: Path, reference: Path, say,
         calibration: Path | None = None) -> Path:
    """A complete run folder, reused when it already exists (and resumed when it was interrupted)."""
    from engine.runfolder import RunFolder
    from engine.validate import ValidateConfig, run_validation
    from tui.progress import progress_callback

    out = root / "runs" / name
    if RunFolder(out).exists and RunFolder(out).run_info().get("status") == "complete":
        return out
    say(f"validating on the {name} cohort (MC Dropout, 30 samples)")
    config = ValidateConfig(cohort=str(cohort), checkpoint=str(checkpoint), out=str(out), mc_samples=30,
                            reference=str(reference), referral_rate=0.1,
                            calibration=str(calibration) if calibration else None)
    with progress_callback("validating") as progress:
        run_validation(config, progress=progress, stage=lambda s: say(f"  {s}"))
    return out


def _reader_study(run: Path, say) -> Path:
    """A small reader study on the external run, rated by simulated readers (named so)."""
    from engine.readers.attach import attach_study, attached_study
    from engine.readers.simulate import simulate_readers
    from engine.readers.study import cases_from_run, create_study, select_cases

    existing = attached_study(run)
    if existing is not None:
        return existing
    say("reader study: 60 cases, three simulated readers, unaided then aided")
    cases = select_cases(cases_from_run(run), sample=60, enrich_flagged=True, seed=0)
    path = run / "reader_study.sqlite"
    with create_study(path, cases, readers=SIMULATED_READERS, phases=("unaided", "aided"), seed=0) as study:
        truth = dict(zip(cases["case_id"].astype(str), cases["truth"].astype(int)))
        simulate_readers(study, truth, dict(zip(SIMULATED_READERS, (0.6, 0.9, 1.2))), seed=0)
    return attach_study(run, path)


def _report(run: Path, say) -> Path:
    from reports.validation import render_validation_report

    pdf = run / "report.pdf"
    if not pdf.is_file():
        say("writing the PDF report")
        render_validation_report(run)
    return pdf


def main(argv: list[str] | None = None) -> int:
    from cohorts.errors import BsxError
    from tui.console import err

    parser = argparse.ArgumentParser(prog="bsx-demo")
    parser.add_argument("--dir", type=Path, default=Path("demo"))
    parser.add_argument("--backbone", default="efficientnet_b0")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--no-tui", action="store_true", help="prepare everything but do not open the app")
    args = parser.parse_args(argv)
    say = lambda message: err.print(f"[bold cyan]demo[/] {message}")  # noqa: E731
    try:
        root = args.dir
        train = _cohort(root / "cohorts" / "train", DEMO_TRAIN, say)
        reference = _cohort(root / "cohorts" / "reference", DEMO_REFERENCE, say)
        external = _cohort(root / "cohorts" / "external", DEMO_EXTERNAL, say)
        checkpoint = _model(root, train, args.backbone, args.epochs, say)
        # The reference run gives the external run prediction and embedding drift, not only metadata drift.
        reference_run = _run(root, "reference", reference, checkpoint, train, say)
        # Temperature scaling is fitted on the labelled reference cohort and reported before/after.
        run = _run(root, "external", external, checkpoint, reference_run, say, calibration=reference)
        _reader_study(run, say)
        pdf = _report(run, say)
    except BsxError as exc:
        err.print(f"error: {exc}")
        return exc.exit_code
    say(f"run folder: {run}")
    say(f"report: {pdf}")
    if args.no_tui or not sys.stdout.isatty():
        say(f"open the workstation with: .venv/bin/bsx tui {run}")
        return 0
    from tui.cli import main as bsx

    return bsx(["tui", str(run)])


if __name__ == "__main__":
    sys.exit(main())
