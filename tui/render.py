"""Rich tables for the CLI (all untrusted text escaped)."""
from __future__ import annotations

from rich.table import Table

from tui.console import safe


def cohort_summary_table(summary: dict) -> Table:
    table = Table(title=f"Cohort ({safe(summary['format'])})", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    counts = summary["problems"]
    rows = [
        ("layout", summary["format"]), ("metadata", ", ".join(summary["metadata_files"])),
        ("cases", f"{summary['cases']:,} ({summary['usable']:,} usable)"),
        ("labels", f"{summary['labelled']:,} labelled: {summary['malignant']:,} malignant, "
                   f"{summary['benign']:,} benign"),
        ("malignant diagnoses", ", ".join(summary["malignant_diagnoses"]) or "(label column)"),
        ("patients", f"{summary['patients']:,}"),
        ("sites", _counts(summary["sites"])), ("sex", _counts(summary["sex"])),
        ("skin type", _counts(summary["skin_type"])),
        ("age", _age(summary["age"])),
        ("missing", ", ".join(f"{k} {v:,}" for k, v in summary["missing"].items() if v) or "none"),
        ("problems", f"{counts['error']:,} errors, {counts['warning']:,} warnings"),
    ]
    for field, value in rows:
        table.add_row(field, safe(value))
    return table


def _counts(values: dict) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in values.items()) or "not recorded"


def _age(age: dict) -> str:
    if not age.get("known"):
        return "not recorded"
    return f"mean {age['mean']} (range {age['min']:g}-{age['max']:g}), known for {age['known']:,}"


def problem_table(problems: list, n_cases: int, layout: str, limit: int = 200) -> Table:
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    table = Table(title=f"{layout}: {n_cases:,} cases, {errors:,} errors, {warnings:,} warnings",
                  caption="no problems found" if not problems else
                  (f"first {limit} of {len(problems):,} shown; --json for all" if len(problems) > limit else None))
    for column in ("severity", "file", "row", "column", "case", "message"):
        table.add_column(column, overflow="fold")
    for problem in problems[:limit]:
        style = "red" if problem.severity == "error" else "yellow"
        table.add_row(f"[{style}]{problem.severity}[/]", safe(_short(problem.file)), str(problem.row or ""),
                      safe(problem.column or ""), safe(problem.case_id or ""), safe(problem.message))
    return table


def _short(path: str) -> str:
    return path.rsplit("/", 1)[-1]
