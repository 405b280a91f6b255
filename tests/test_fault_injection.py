"""Fault injection: SIGKILL `bsx validate` / `bsx train` / a reading session at random points, fill the disk,
and run two readers at once. Reruns must give results identical to an uninterrupted run; no file may be
left corrupt; no confirmed rating may be lost."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tui.cli import main

ROOT = Path(__file__).resolve().parents[1]
VALIDATE_SEEDS = [11, 12]
TRAIN_SEEDS = [21, 22]
READER_SEEDS = [31, 32, 33]
TRAIN_ARGS = ["--epochs", "2", "--batch-size", "8", "--image-size", "32", "--backbone", "test_efficientnet",
              "--workers", "0", "--patience", "10", "--seed", "0"]
VALIDATE_ARGS = ["--mc-samples", "4", "--n-boot", "50", "--batch-size", "8", "--workers", "0", "--no-gradcam",
                 "--seed", "0"]


# ---------------------------------------------------------------------------- helpers
def bsx_process(args: list[str], **kwargs) -> subprocess.Popen:
    """`bsx ARGS` as a real child process (its own process group, so SIGKILL takes it all)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BSX_DEBUG": "0"}
    return subprocess.Popen([sys.executable, "-m", "tui.cli", *args], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def kill_after_start(process: subprocess.Popen, stream, delay: float) -> bool:
    """Wait for the child's first output line (imports done), then SIGKILL it `delay` s later.

    Returns True when the kill landed before the child exited on its own.
    """
    stream.readline()
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        time.sleep(0.02)
    if process.poll() is not None:
        return False
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    return True


def artifacts_readable(folder: Path) -> list[str]:
    """Names of files in a run/checkpoint folder that exist but cannot be read back (corrupt)."""
    bad = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        try:
            if path.suffix == ".json":
                json.loads(path.read_text())
            elif path.suffix == ".parquet":
                pd.read_parquet(path)
            elif path.suffix in (".npy", ".npz"):
                np.load(path, allow_pickle=False)
            elif path.suffix == ".safetensors":
                from safetensors.torch import load_file

                load_file(str(path))
            elif path.suffix == ".pt":
                import torch

                torch.load(path, weights_only=True)
        except Exception as exc:  # any failure to read back is corruption
            bad.append(f"{path.relative_to(folder)}: {exc.__class__.__name__}")
    return bad


def synth_cohort(out: Path, n: int, seed: int) -> Path:
    from cohorts.synth import SynthSpec, write_synthetic

    write_synthetic(SynthSpec(n=n, seed=seed, image_size=32, prevalence=0.5), out)
    return out


@pytest.fixture(scope="module")
def workbench(tmp_path_factory) -> dict:
    """A small cohort, an uninterrupted training run and an uninterrupted validation run (in-process)."""
    base = tmp_path_factory.mktemp("fault")
    cohort = synth_cohort(base / "cohort", n=32, seed=4)
    external = synth_cohort(base / "external", n=20, seed=9)
    trained = base / "trained"
    assert main(["train", "--cohort", str(cohort), "--out", str(trained), *TRAIN_ARGS]) == 0
    started = time.monotonic()
    run = base / "run"
    assert main(["validate", "--cohort", str(external), "--checkpoint", str(trained), "--out", str(run),
                 *VALIDATE_ARGS]) in (0, 1)
    return {"base": base, "cohort": cohort, "external": external, "trained": trained, "run": run,
            "validate_seconds": time.monotonic() - started}


def assert_same_run(reference: Path, other: Path) -> None:
    pd.testing.assert_frame_equal(pd.read_parquet(reference / "predictions.parquet"),
                                  pd.read_parquet(other / "predictions.parquet"))
    for name in ("mc_samples.npy", "embeddings.npy"):
        assert np.array_equal(np.load(reference / name), np.load(other / name), equal_nan=True), name
    assert json.loads((reference / "metrics.json").read_text()) == json.loads((other / "metrics.json").read_text())
    assert (reference / "fairness.csv").read_text() == (other / "fairness.csv").read_text()


# ---------------------------------------------------------------------------- validate
@pytest.mark.slow
@pytest.mark.parametrize("seed", VALIDATE_SEEDS)
def test_killed_validate_reruns_to_identical_results(workbench, tmp_path, seed, capsys):
    out = tmp_path / "run"
    args = ["validate", "--cohort", str(workbench["external"]), "--checkpoint", str(workbench["trained"]),
            "--out", str(out), *VALIDATE_ARGS]
    window = workbench["validate_seconds"] * 1.5
    process = bsx_process(args)
    kill_after_start(process, process.stderr, random.Random(seed).uniform(0.0, window))
    if out.exists():
        assert artifacts_readable(out) == []  # atomic writes: whatever the kill left is readable
    assert main(args) in (0, 1), capsys.readouterr().err
    assert "Traceback" not in capsys.readouterr().err
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    assert artifacts_readable(out) == []
    assert_same_run(workbench["run"], out)


def test_stale_temp_file_from_a_kill_does_not_block_the_rerun(workbench, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir(mode=0o700)
    (out / ".run.json.k1ll3d.tmp").write_text('{"identity": ')
    code = main(["validate", "--cohort", str(workbench["external"]), "--checkpoint", str(workbench["trained"]),
                 "--out", str(out), *VALIDATE_ARGS])
    assert code in (0, 1), capsys.readouterr().err
    assert_same_run(workbench["run"], out)


# ---------------------------------------------------------------------------- train
def _history(folder: Path) -> pd.DataFrame:
    frame = pd.read_csv(folder / "metrics.csv")
    return frame.drop(columns=[c for c in ("seconds", "images_per_s") if c in frame])


@pytest.mark.slow
@pytest.mark.parametrize("seed", TRAIN_SEEDS)
def test_killed_train_resumes_to_identical_weights(workbench, tmp_path, seed, capsys):
    from safetensors.torch import load_file

    out = tmp_path / "trained"
    args = ["train", "--cohort", str(workbench["cohort"]), "--out", str(out), *TRAIN_ARGS]
    process = bsx_process([*args, "--progress", "jsonl"])
    kill_after_start(process, process.stdout, random.Random(seed).uniform(0.0, 12.0))
    if out.exists():
        assert artifacts_readable(out) == []
    resumable = (out / "train_state.pt").exists()
    code = main([*args, "--resume"] if resumable else args)
    assert code == 0, capsys.readouterr().err
    assert "Traceback" not in capsys.readouterr().err
    reference, resumed = load_file(str(workbench["trained"] / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert reference.keys() == resumed.keys()
    assert all(np.array_equal(reference[k].numpy(), resumed[k].numpy()) for k in reference)
    pd.testing.assert_frame_equal(_history(workbench["trained"]), _history(out))
    assert artifacts_readable(out) == []


def test_resume_without_state_says_how_to_start(tmp_path, workbench, capsys):
    code = main(["train", "--cohort", str(workbench["cohort"]), "--out", str(tmp_path / "new"), *TRAIN_ARGS,
                 "--resume"])
    err = capsys.readouterr().err
    assert code == 2 and "nothing to resume" in err and "without --resume" in err and "Traceback" not in err


# ---------------------------------------------------------------------------- reader studies
RATER = textwrap.dedent("""
    import sys
    from engine.readers.study import Study
    path, reader, phase, delay = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    import time
    with Study(path) as study:
        print("ready", flush=True)
        while (view := study.next_case(reader, phase)) is not None:
            study.rate(reader, view.case_id, phase, 10 + len(view.case_id) * 3, seconds=1.0)
            print("confirmed", view.case_id, flush=True)
            time.sleep(delay)
    print("done", flush=True)
""")


def study_file(path: Path, n: int = 40, readers: tuple[str, ...] = ("ana", "ben")) -> Path:
    from engine.readers.study import create_study

    cases = pd.DataFrame({"case_id": [f"c{i:02d}" for i in range(n)], "truth": np.arange(n) % 2,
                          "image_path": "img.jpg", "ai_probability": 0.5, "ai_uncertainty": 0.1,
                          "flagged": False, "gradcam_path": None, "metadata": "{}"})
    create_study(path, cases, readers=list(readers)).close()
    return path


def rater(path: Path, reader: str, delay: float = 0.0, phase: str = "unaided") -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", RATER, str(path), reader, phase, str(delay)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def stored_ratings(path: Path, reader: str) -> set[str]:
    from engine.readers.study import Study

    with Study(path) as study:
        return {r.case_id for r in study.ratings_of(reader)}


def kill_rater_after(path: Path, reader: str, stop_after: int) -> list[str]:
    """Start a rating session, SIGKILL it once `stop_after` ratings are confirmed; return the confirmed ids."""
    process = rater(path, reader, delay=0.01)
    assert process.stdout.readline().strip() == "ready"
    confirmed: list[str] = []
    for line in process.stdout:
        confirmed.append(line.split()[1])
        if len(confirmed) == stop_after:
            os.killpg(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=30)
    return confirmed


@pytest.mark.parametrize("seed", READER_SEEDS)
def test_killed_reading_session_loses_no_confirmed_rating(tmp_path, seed):
    path = study_file(tmp_path / "study.sqlite")
    confirmed = kill_rater_after(path, "ana", random.Random(seed).randint(1, 30))
    stored = stored_ratings(path, "ana")
    assert set(confirmed) <= stored and len(stored) <= len(confirmed) + 1
    rerun = rater(path, "ana")
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert stored_ratings(path, "ana") == {f"c{i:02d}" for i in range(40)}


def test_two_readers_write_one_study_at_once(tmp_path):
    path = study_file(tmp_path / "study.sqlite", n=60)
    processes = {reader: rater(path, reader) for reader in ("ana", "ben")}
    for reader, process in processes.items():
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err
        assert out.count("confirmed") == 60 and "Traceback" not in err
    for reader in processes:
        assert stored_ratings(path, reader) == {f"c{i:02d}" for i in range(60)}
    from engine.readers.study import Study

    with Study(path) as study:
        assert study._con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# ---------------------------------------------------------------------------- full disk
@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True,
                            text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a 2 MiB tmpfs here (needs root and CAP_SYS_ADMIN): {result.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _tree_hashes(folder: Path) -> dict[str, str]:
    from engine.runfolder import sha256_file

    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_full_disk_gives_clean_error_and_keeps_previous_run(workbench, small_disk, capsys):
    previous = small_disk / "previous"
    shutil.copytree(workbench["run"], previous)
    before = _tree_hashes(previous)
    stat = os.statvfs(small_disk)
    free = stat.f_bavail * stat.f_frsize
    (small_disk / "filler").write_bytes(b"\0" * max(free - 64 * 1024, 0))
    code = main(["validate", "--cohort", str(workbench["external"]), "--checkpoint", str(workbench["trained"]),
                 "--out", str(small_disk / "new"), *VALIDATE_ARGS])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and "free disk space" in err and str(small_disk / "new") in err
    assert _tree_hashes(previous) == before
    assert artifacts_readable(previous) == []
    assert artifacts_readable(small_disk / "new") == []  # nothing half-written in the failed run either
