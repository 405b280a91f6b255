"""`bsx reader`: create a reader study, watch progress, export ratings, run the MRMC analysis.

Heavy modules (pandas, scipy, the engine) load inside the handlers so that
`bsx --help` stays fast; `read` opens the Textual reading pane lazily.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from cohorts.errors import BsxError
from tui.console import err, out, safe


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("reader", help="reader studies: blinded reading and MRMC statistics",
                            description="Reader studies (research use only): create, read, status, export, analyze.")
    commands = parser.add_subparsers(dest="reader_command", metavar="ACTION")
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])

    create = commands.add_parser("create", help="create a study file from a run folder or cohort table")
    create.add_argument("--from", dest="source", required=True, type=Path,
                        help="run folder (predictions.parquet) or cohort cases table (.csv/.parquet)")
    create.add_argument("--out", required=True, type=Path, help="study file to create (.sqlite)")
    create.add_argument("--sample", type=int, help="stratified random sample of N cases (by truth)")
    create.add_argument("--enrich-flagged", action="store_true", help="put the run's flagged cases in the sample first")
    create.add_argument("--phases", default="unaided,aided", help="comma-separated reading phases, in order")
    create.add_argument("--readers", default="", help="comma-separated reader names")
    create.add_argument("--scale", choices=["0-100", "1-5"], default="0-100", help="malignancy confidence scale")
    create.add_argument("--seed", type=int, default=0, help="seed for sampling and per-reader case order")
    create.add_argument("--washout-days", type=float, default=0.0,
                        help="days between a reader's rating of a case in one phase and the next phase")
    create.set_defaults(handler=_create)

    read = commands.add_parser("read", help="open the reading pane for one reader")
    read.add_argument("study", type=Path)
    read.add_argument("--reader", required=True)
    read.add_argument("--image-protocol", default=None, help="auto | sixel | kitty | halfcell | none "
                      "(forcing one skips terminal queries that time out on slow SSH links)")
    read.set_defaults(handler=_read)

    status = commands.add_parser("status", help="progress per reader and phase")
    status.add_argument("study", type=Path)
    status.set_defaults(handler=_status)

    lock = commands.add_parser("lock", help="administrator: lock (or unlock) a reading phase")
    lock.add_argument("study", type=Path)
    lock.add_argument("--phase", required=True)
    lock.add_argument("--unlock", action="store_true")
    lock.set_defaults(handler=_lock)

    export = commands.add_parser("export", help="export ratings as long CSV, iMRMC or OR-DBM MRMC .lrc")
    export.add_argument("study", type=Path)
    export.add_argument("--format", choices=["csv", "imrmc", "lrc"], help="default: from the --out suffix")
    export.add_argument("--out", required=True, type=Path)
    export.set_defaults(handler=_export)

    analyze = commands.add_parser("analyze", help="MRMC analysis (Obuchowski-Rockette, Hillis ddf; DBM cross-check)")
    analyze.add_argument("study", nargs="?", type=Path, help="study file")
    analyze.add_argument("--ratings", type=Path, help="ratings file instead of a study (.csv, .imrmc, .lrc)")
    analyze.add_argument("--algorithm-reader", help="reader id holding the stand-alone algorithm's ratings")
    analyze.add_argument("--covariance", choices=["jackknife", "delong"], default="jackknife")
    analyze.add_argument("--threshold", type=float, help="rating at or above which a call is positive "
                         "(sensitivity/specificity, kappa on continuous ratings)")
    analyze.add_argument("--drop-incomplete", action="store_true",
                         help="analyse only cases every reader rated in every modality")
    analyze.add_argument("--json", action="store_true", help="print one JSON object")
    analyze.set_defaults(handler=_analyze)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _create(args: argparse.Namespace) -> int:
    import pandas as pd

    from engine.readers.study import cases_from_cohort, cases_from_run, create_study, select_cases

    source: Path = args.source
    if source.is_dir():
        cases = cases_from_run(source)
    elif source.suffix.lower() in (".csv", ".parquet") and source.is_file():
        frame = pd.read_csv(source) if source.suffix.lower() == ".csv" else pd.read_parquet(source)
        cases = cases_from_cohort(frame)
    else:
        raise BsxError("not a run folder or cohort table", path=source,
                       fix="pass a run folder (with predictions.parquet) or a cohort .csv/.parquet")
    chosen = select_cases(cases, sample=args.sample, enrich_flagged=args.enrich_flagged, seed=args.seed)
    study = create_study(args.out, chosen, readers=_split(args.readers), phases=_split(args.phases),
                         scale=args.scale, seed=args.seed, washout_days=args.washout_days)
    with study:
        n_pos = int(chosen["truth"].astype(int).sum())
        out.print(f"created {safe(args.out)}: {len(chosen)} cases ({n_pos} malignant, {len(chosen) - n_pos} benign), "
                  f"phases {safe(', '.join(study.phases))}, readers {safe(', '.join(study.readers) or '(none yet)')}")
    if source.is_dir():
        _attach_to_run(source, args.out)
    return 0


def _attach_to_run(run_dir: Path, study_path: Path) -> None:
    """Record the new study in its run, so `bsx tui` and `bsx report` find it."""
    from engine.readers.attach import attach_study
    from engine.runfolder import RunFolder

    if not RunFolder(run_dir).exists:
        err.print(f"[yellow]note:[/yellow] {safe(run_dir)} has no run.json: the study is not recorded in a run")
        return
    try:
        attached = attach_study(run_dir, study_path)
    except BsxError as exc:
        raise BsxError(f"created {study_path} but could not record it in the run ({exc.message})", path=run_dir,
                       fix=f"repair run.json, or move the study to {run_dir / 'reader_study.sqlite'}") from None
    out.print(f"recorded in {safe(run_dir / 'run.json')} (reader_study: {safe(attached)})")


def _read(args: argparse.Namespace) -> int:
    from tui.reading import run_reading_app

    return run_reading_app(args.study, args.reader, image_protocol=args.image_protocol)


def _status(args: argparse.Namespace) -> int:
    from rich.table import Table

    from engine.readers.study import Study

    with Study(args.study) as study:
        table = Table(title=f"{safe(args.study.name)}: progress")
        for column in ("reader", "phase", "rated", "of", "open now", "locked"):
            table.add_column(column, justify="right" if column in ("rated", "of", "open now") else "left")
        for p in study.progress():
            table.add_row(safe(p.reader_id), safe(p.phase), str(p.rated), str(p.total), str(p.open_now),
                          "yes" if p.locked else "")
        if not study.readers:
            out.print("no readers yet")
        out.print(table)
    return 0


def _lock(args: argparse.Namespace) -> int:
    from engine.readers.study import Study

    with Study(args.study) as study:
        study.set_phase_locked(args.phase, not args.unlock)
    out.print(f"phase {safe(args.phase)} {'unlocked' if args.unlock else 'locked'}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from engine.readers.study import Study

    with Study(args.study) as study:
        path = study.export(args.out, args.format)
    out.print(f"wrote {safe(path)}")
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from engine.mrmc import analyze_mrmc
    from engine.readers.interchange import read_ratings, to_mrmc_data
    from engine.readers.study import Study

    if (args.study is None) == (args.ratings is None):
        raise BsxError("give either a study file or --ratings FILE", fix="bsx reader analyze study.sqlite")
    if args.study is not None:
        with Study(args.study) as study:
            result = study.analyze(algorithm_reader=args.algorithm_reader, drop_incomplete=args.drop_incomplete,
                                   covariance=args.covariance, threshold=args.threshold)
    else:
        data = to_mrmc_data(read_ratings(args.ratings), drop_incomplete=args.drop_incomplete, source=args.ratings)
        result = analyze_mrmc(data, covariance=args.covariance, algorithm_reader=args.algorithm_reader,
                              threshold=args.threshold)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        _print_result(result)
    return 0


def _fmt(value: object, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _ci(ci: list | tuple) -> str:
    return f"({_fmt(ci[0])}, {_fmt(ci[1])})"


def _print_result(result) -> None:
    from rich.table import Table

    doc = result.to_json()
    auc = Table(title=f"AUC (empirical), {doc['n_normal']} normal / {doc['n_abnormal']} abnormal cases, "
                      f"{doc['covariance']} covariance")
    auc.add_column("reader")
    for m in doc["modalities"]:
        auc.add_column(safe(m), justify="right")
    for r in doc["readers"]:
        auc.add_row(safe(r), *[_fmt(doc["auc"][m][r]) for m in doc["modalities"]])
    auc.add_row("[b]mean[/b]", *[_fmt(doc["mean_auc"][m]) for m in doc["modalities"]])
    out.print(auc)

    if doc["global"]:
        glob = Table(title="Global test of equal AUC")
        for column in ("design", "statistic", "df", "p"):
            glob.add_column(column)
        for design, test in doc["global"].items():
            if test is None:
                glob.add_row(design.upper(), "undefined", "", "")
            elif "chi2" in test:
                glob.add_row(design.upper(), f"X2 = {_fmt(test['chi2'])}", _fmt(test["df"]), _fmt(test["p"]))
            else:
                glob.add_row(design.upper(), f"F = {_fmt(test['f'])}",
                             f"{_fmt(test['df_num'], 0)}, {_fmt(test['df_den'], 2)}", _fmt(test["p"]))
        out.print(glob)

    if doc["comparisons"]:
        comp = Table(title="Modality differences (a - b)")
        for column in ("a - b", "difference", "design", "SE", "df", "p", "95% CI"):
            comp.add_column(column)
        for row in doc["comparisons"]:
            for design in ("rrrc", "frrc", "rrfc"):
                d = row[design]
                comp.add_row(f"{safe(row['a'])} - {safe(row['b'])}", _fmt(row["difference"]), design.upper(),
                             _fmt(d["se"]), _fmt(d["df"], 2) if "t" in d else "z", _fmt(d["p"]), _ci(d["ci"]))
        out.print(comp)

    single = Table(title="Single-modality AUC, 95% CI")
    for column in ("modality", "AUC", "RRRC", "FRRC", "RRFC"):
        single.add_column(column)
    for m, designs in doc["single_modality"].items():
        single.add_row(safe(m), _fmt(designs["rrrc"]["auc"]), *[_ci(designs[d]["ci"]) for d in ("rrrc", "frrc", "rrfc")])
    out.print(single)

    if "algorithm" in doc:
        alg = Table(title="Stand-alone algorithm vs readers (difference = algorithm - readers' mean)")
        for column in ("modality", "algorithm AUC", "readers' mean", "difference", "design", "p", "95% CI"):
            alg.add_column(column)
        for a in doc["algorithm"]["by_modality"]:
            for design in ("rrrc", "rrfc"):
                test = a[design]
                if test:
                    alg.add_row(safe(a["modality"]), _fmt(a["auc"]), _fmt(a["mean_reader_auc"]),
                                _fmt(a["difference"]), design.upper(), _fmt(test["p"]), _ci(test["ci"]))
        out.print(alg)

    if "operating_points" in doc:
        ops = Table(title="Operating points")
        for column in ("modality", "reader", "sensitivity", "specificity"):
            ops.add_column(column)
        for p in doc["operating_points"]:
            ops.add_row(safe(p["modality"]), safe(p["reader"]),
                        f"{_fmt(p['sensitivity'], 3)} {_ci(p['sensitivity_ci'])}",
                        f"{_fmt(p['specificity'], 3)} {_ci(p['specificity_ci'])}")
        out.print(ops)

    for a in doc.get("agreement", []):
        out.print(f"agreement, {safe(a['modality'])}: Fleiss kappa {_fmt(a['fleiss_kappa'], 3)} "
                  f"({safe(a['basis'])}), ICC(2,1) {_fmt(a['icc_2_1'], 3)}")
    for warning in doc["warnings"]:
        err.print(f"[yellow]note:[/yellow] {safe(warning)}")
    out.print("Research and education only; not a diagnostic device.")
