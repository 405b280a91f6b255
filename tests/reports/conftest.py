"""Report tests work on copies of the session's tiny run, so no test changes the shared folder."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest


def copy_run(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("report.pdf", "report_data"))
    return target


def pdf_text(path: Path) -> str:
    """All text of a PDF with whitespace collapsed (extraction breaks lines anywhere)."""
    from pypdf import PdfReader

    text = " ".join(page.extract_text() or "" for page in PdfReader(str(path)).pages)
    return re.sub(r"\s+", " ", text)


@pytest.fixture
def run_copy(tiny_run, tmp_path) -> Path:
    return copy_run(tiny_run, tmp_path / "run")
