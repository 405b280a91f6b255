"""`bsx tui RUN` in a real terminal (tmux, 80x24): keys in, screen text out."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TMUX = shutil.which("tmux")
BSX = Path(sys.executable).with_name("bsx")
PANE_NAMES = ["Cohort", "Run", "Cases", "Case", "Perf", "Fairness", "Drift", "Integrity", "Reports", "Readers"]


def tmux(*args: str) -> str:
    return subprocess.run([TMUX, *args], check=True, capture_output=True, text=True).stdout


def wait_for(session: str, text: str, timeout: float = 30.0) -> str:
    """Poll the screen until `text` shows (the app's start-up time varies with load)."""
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = tmux("capture-pane", "-p", "-t", session)
        if text in screen:
            return screen
        time.sleep(0.3)
    raise AssertionError(f"{text!r} never appeared; last screen:\n{screen}")


@pytest.fixture
def session(tiny_run: Path):
    if TMUX is None:
        pytest.skip("tmux is not installed (the Makefile's test setup installs it)")
    if not BSX.exists():
        pytest.skip(f"the bsx entry point is not installed next to {sys.executable}")
    name = f"bsx-e2e-{uuid.uuid4().hex[:8]}"
    tmux("new", "-d", "-s", name, "-x", "80", "-y", "24",
         f"{BSX} tui {tiny_run} --image-protocol halfcell")
    try:
        yield name
    finally:
        subprocess.run([TMUX, "kill-session", "-t", name], capture_output=True)


def test_tui_in_tmux(session: str, tiny_run: Path) -> None:
    screen = wait_for(session, tiny_run.name)
    tab_row = next(line for line in screen.splitlines() if "Cohort" in line and "Reports" in line)
    assert [name for name in PANE_NAMES if f" {name} " in f" {tab_row} "] == PANE_NAMES
    tmux("send-keys", "-t", session, "3")
    screen = wait_for(session, "of 48 cases")
    assert "p_mean" in screen
    tmux("send-keys", "-t", session, "Enter")
    wait_for(session, "prediction")
    tmux("send-keys", "-t", session, "5")
    wait_for(session, "value (95% CI)")
    tmux("send-keys", "-t", session, "8")
    wait_for(session, "violations")
    tmux("send-keys", "-t", session, "?")
    wait_for(session, "app.pane.cases")
    tmux("send-keys", "-t", session, "q")
    time.sleep(0.5)
    tmux("send-keys", "-t", session, "q")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if subprocess.run([TMUX, "has-session", "-t", session], capture_output=True).returncode != 0:
            return  # the session ends when `bsx tui` exits
        time.sleep(0.3)
    raise AssertionError("the app did not quit on q")
