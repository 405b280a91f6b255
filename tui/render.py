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


def _fmt_estimate(estimate: dict | None) -> str:
    if not estimate or estimate.get("value") is None:
        return (estimate or {}).get("note", "not estimable")
    ci = estimate.get("ci")
    return f"{estimate['value']:.3f}" + (f" ({ci[0]:.3f}-{ci[1]:.3f})" if ci else "")


def run_summary_table(folder) -> Table:
    """The end-of-run summary: headline metrics with CIs, errors, referral, integrity."""
    run = folder.run_info()
    metrics = folder.read_json("metrics")
    table = Table(title=f"Run {safe(run.get('name'))}: {run['cohort']['n_cases']:,} cases", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    overall = metrics.get("overall", {})
    for key in ("auc", "sensitivity", "specificity", "ppv", "npv", "balanced_accuracy", "brier", "ece"):
        if key in overall:
            table.add_row(key, safe(_fmt_estimate(overall[key])))
    counts = run.get("counts", {})
    table.add_row("case errors", f"{counts.get('errors', 0):,}")
    referral = run.get("referral", {})
    table.add_row("referred", f"{referral.get('flagged', 0):,} (rate {referral.get('rate')}, "
                              f"{safe(referral.get('score'))} ≥ {referral.get('threshold', float('nan')):.3f})")
    if folder.has("integrity"):
        integrity = folder.read_json("integrity")
        colour = {"High": "green", "Stable": "yellow"}.get(integrity.get("band"), "red")
        table.add_row("integrity", f"[{colour}]{integrity.get('score')} ({safe(integrity.get('band'))})[/]")
    table.add_row("folder", safe(folder.path))
    return table


def runs_table(runs: list[dict], folder) -> Table:
    table = Table(title=f"Runs in {safe(folder)}", caption=None if runs else "no runs found")
    for column in ("name", "status", "started", "cases", "AUC", "integrity", "cohort"):
        table.add_column(column, overflow="fold")
    for run in runs:
        auc = f"{run['auc']:.3f}" if isinstance(run.get("auc"), (int, float)) else "-"
        table.add_row(safe(run.get("name")), safe(run.get("status")), safe((run.get("started") or "")[:19]),
                      str(run.get("cases") or "-"), auc, str(run.get("integrity") or "-"), safe(run.get("cohort") or ""))
    return table


def drift_table(report: dict) -> Table:
    """Per-feature drift: distance, PSI, test, corrected p-value, flag."""
    table = Table(title=f"Drift: {safe(report.get('verdict', 'n/a'))}")
    for column in ("feature", "type", "JS distance", "PSI", "test", "p (BH)", "drift"):
        table.add_column(column)
    features = report.get("metadata", {}).get("features", {})
    features.update(report.get("prediction", {}).get("features", {}) if report.get("prediction") else {})
    for name, feature in features.items():
        p_value = feature.get("p_value_bh")
        table.add_row(safe(name), safe(feature.get("type", "")), _num(feature.get("js_distance")),
                      _num(feature.get("psi")), safe(feature.get("test", "")),
                      _num(p_value, ".2g"), "[red]yes[/]" if feature.get("drift") else "no")
    embedding = report.get("embedding") or {}
    if embedding.get("mmd"):
        table.caption = (f"embedding: MMD² {_num(embedding['mmd'].get('mmd2'))} "
                         f"(p {_num(embedding['mmd'].get('p_value'), '.2g')}), domain classifier AUC "
                         f"{_num(embedding.get('domain_classifier', {}).get('auc'))}")
    return table


def _num(value, spec: str = ".3f") -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "-"
