"""Robustness figures: the bad-input corpus and a reduced set of kill tests.

Prints: malformed inputs tried / handled as expected / crashes; kill points tried / runs recovered
identical / data lost; untrusted-file cases refused.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from benchmarks.common import row

VALIDATE_KILLS = (0.3, 0.7)          # kill points as fractions of an uninterrupted run's duration
READER_KILLS = (3, 11, 25)           # kill a reading session after this many confirmed ratings
FAST_VALIDATE = ["--mc-samples", "4", "--n-boot", "50", "--batch-size", "8", "--workers", "0", "--no-gradcam"]


def corpus_figures(root: Path) -> dict[str, int]:
    from tests.corpus.make_corpus import build_corpus, evaluate, invoke, snapshot

    cases = build_corpus(root)
    handled = crashes = untrusted = refused = 0
    for case in cases:
        before = snapshot(case.readonly)
        code, out, err, crash = invoke(case.argv)
        failures = evaluate(case, code, out, err, before, snapshot(case.readonly))
        handled += not failures and crash is None
        crashes += crash is not None or "Traceback" in err
        if case.untrusted:
            untrusted += 1
            refused += not failures and crash is None
    return {"tried": len(cases), "handled": handled, "crashes": crashes, "untrusted": untrusted,
            "refused": refused, "known_bugs": sum(case.known_bug is not None for case in cases)}


def validate_kills(root: Path) -> tuple[int, int, int]:
    """(kill points, reruns identical to an uninterrupted run, runs with a corrupt or differing file)."""
    import time

    from tests.test_fault_injection import artifacts_readable, assert_same_run, bsx_process, kill_after_start
    from tui.cli import main

    cohort, checkpoint = root / "good" / "cohort", root / "good" / "checkpoint"
    reference = root / "kills" / "reference"
    started = time.monotonic()
    main(["validate", "--cohort", str(cohort), "--checkpoint", str(checkpoint), "--out", str(reference),
          *FAST_VALIDATE])
    seconds = time.monotonic() - started
    identical = lost = 0
    for k, fraction in enumerate(VALIDATE_KILLS):
        out = root / "kills" / f"run{k}"
        args = ["validate", "--cohort", str(cohort), "--checkpoint", str(checkpoint), "--out", str(out),
                *FAST_VALIDATE]
        process = bsx_process(args)
        kill_after_start(process, process.stderr, fraction * seconds * 1.5)
        broken = artifacts_readable(out) if out.exists() else []
        main(args)
        try:
            assert_same_run(reference, out)
            identical += not broken
        except (AssertionError, OSError, ValueError):
            lost += 1
        lost += bool(broken)
    return len(VALIDATE_KILLS), identical, lost


def reader_kills(root: Path) -> tuple[int, int, int]:
    """(kill points, sessions where every confirmed rating survived, ratings lost)."""
    from tests.test_fault_injection import kill_rater_after, stored_ratings, study_file

    intact = lost = 0
    for k, stop_after in enumerate(READER_KILLS):
        path = study_file(root / "kills" / f"study{k}.sqlite")
        confirmed = kill_rater_after(path, "ana", stop_after)
        missing = set(confirmed) - stored_ratings(path, "ana")
        lost += len(missing)
        intact += not missing
    return len(READER_KILLS), intact, lost


def run() -> list[dict]:
    import contextlib
    import io

    root = Path(tempfile.mkdtemp(prefix="bsx-robustness-"))
    os.environ.setdefault("BSX_CACHE_DIR", str(root / ".cache"))
    try:
        corpus = corpus_figures(root / "corpus")
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            v_tried, v_same, v_lost = validate_kills(root / "corpus")
        r_tried, r_intact, r_lost = reader_kills(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    kills, recovered = v_tried + r_tried, v_same + r_intact
    return [
        row("robustness_corpus",
            f"{corpus['tried']} malformed inputs tried, {corpus['handled']} handled as expected, "
            f"{corpus['crashes']} crashes ({corpus['known_bugs']} known engine/tui bugs)",
            "ratio = 1 (every input handled as declared)", corpus["handled"] / corpus["tried"]),
        row("robustness_kills",
            f"{kills} kill points tried ({v_tried} bsx validate, {r_tried} reading sessions), {recovered} recovered "
            f"identical, {v_lost + r_lost} data lost",
            "ratio = 1 (every kill recovered, nothing lost)", recovered / kills),
        row("robustness_untrusted",
            f"{corpus['untrusted']} untrusted-file cases (pickle payloads, path escapes, bombs, hash mismatch), "
            f"{corpus['refused']} refused",
            "ratio = 1 (every one refused)", corpus["refused"] / max(corpus["untrusted"], 1)),
    ]


if __name__ == "__main__":
    for result in run():
        print(f"{result['benchmark']:<22} {result['ratio']:6.3f}  {result['figure']}  [target: {result['target']}]")
