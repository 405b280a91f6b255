"""Which public layout is this? Decided by file names first, then by columns."""
from __future__ import annotations

import csv
from pathlib import Path
from types import ModuleType

from cohorts.errors import BsxError
from cohorts.formats import ddi, generic, ham10000, isic2019, isic2020, padufes

# Most specific first: generic accepts any CSV with an image_path column.
LAYOUTS: list[ModuleType] = [isic2019, ham10000, isic2020, padufes, ddi, generic]
BY_NAME = {module.FORMAT: module for module in LAYOUTS}


def _header(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
            first = handle.readline()
    except OSError as exc:
        raise BsxError(f"cannot read ({exc.strerror})", path=path, fix="check file permissions") from None
    delimiter = "," if "," in first or not any(d in first for d in ";\t|") else next(d for d in ";\t|" if d in first)
    return [c.strip() for c in next(csv.reader([first], delimiter=delimiter), [])]


def detect_layout(path: Path, forced: str | None = None) -> tuple[ModuleType, Path]:
    """Return (layout module, metadata file) for a cohort folder or metadata file."""
    if forced:
        if forced not in BY_NAME:
            raise BsxError(f"unknown layout '{forced}'", fix=f"use one of: {', '.join(BY_NAME)}")
        module = BY_NAME[forced]
        meta = path if path.is_file() else module.find(path)
        if meta is None:
            raise BsxError(f"no {forced} metadata file in this folder", path=path,
                           fix="point at the metadata CSV itself")
        return module, meta
    if path.is_file():
        columns = _header(path)
        for module in LAYOUTS:
            if module.matches(path, columns):
                return module, path
        raise BsxError(
            f"not a recognised cohort layout (columns: {', '.join(columns) or 'none'})", path=path,
            fix="use a public layout (ISIC 2019/2020, HAM10000, PAD-UFES-20, DDI) or a generic CSV with "
                "patient_id,image_path,age,sex,skin_type,diagnosis")
    for module in LAYOUTS:
        meta = module.find(path)
        if meta is not None:
            return module, meta
    csvs = sorted(p.name for p in path.glob("*.csv"))
    raise BsxError(
        "no cohort metadata found in this folder"
        + (f" (CSV files here: {', '.join(csvs)})" if csvs else " (no CSV files here)"),
        path=path, fix="point at the metadata CSV, or at a folder in one of the public layouts")
