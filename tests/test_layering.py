"""The layering in DESIGN.md: headless code never loads textual; cohorts never loads torch."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_after(modules: list[str]) -> set[str]:
    code = ("import importlib, sys\n"
            f"for name in {modules!r}:\n    importlib.import_module(name)\n"
            "print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


HEADLESS = {
    "cohorts": ["cohorts.cohort", "cohorts.synth", "cohorts.writers", "cohorts.detect", "cohorts.checks",
                "cohorts.images", "cohorts.fingerprint"],
    "engine": ["engine.validate", "engine.train", "engine.analyses", "engine.metrics", "engine.fairness",
               "engine.drift", "engine.integrity", "engine.explain", "engine.mrmc", "engine.readers.study"],
    "reports": ["reports.validation", "reports.case"],
    "cli": ["tui.cli"] + [f"tui.commands.{p.stem}" for p in (ROOT / "tui" / "commands").glob("*.py")
                          if p.stem not in ("__init__",)],
}


@pytest.mark.parametrize("group", sorted(HEADLESS))
def test_headless_modules_never_load_textual(group):
    loaded = imported_after(HEADLESS[group])
    assert "textual" not in loaded


def test_cohorts_never_loads_torch():
    loaded = imported_after(HEADLESS["cohorts"])
    assert not loaded & {"torch", "timm", "torchvision", "reportlab"}


def test_bsx_help_is_light():
    code = ("import sys\nfrom tui.cli import build_parser\nbuild_parser().format_help()\n"
            "print('torch' in sys.modules, 'textual' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["False", "False"], result.stderr


def test_import_linter_contracts_hold():
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(linter)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
