"""Reporting-guideline appendix: TRIPOD+AI (2024) and CLAIM (2024) items and where the report answers them.

Reviewers read a validation against these checklists. A run folder can answer
the data, methods and results items; items about ethics, funding, protocol or
clinical context cannot be answered from a run and are marked for the authors,
so the appendix never claims more than the report holds.
"""
from __future__ import annotations

from dataclasses import dataclass

AUTHORS = "authors to report"
SOURCES = ("TRIPOD+AI: Collins GS et al., BMJ 2024;385:e078378. "
           "CLAIM 2024 update: Tejani AS et al., Radiology: Artificial Intelligence 2024;6(4):e240300. "
           "Item numbers follow the published checklists; check them against the version your venue requires.")


@dataclass(frozen=True)
class Item:
    guideline: str
    item: str
    topic: str
    section: str  # report section that answers it, or AUTHORS


ITEMS: tuple[Item, ...] = (
    Item("TRIPOD+AI", "5a", "Sources of data", "Cohort"),
    Item("TRIPOD+AI", "6a", "Setting and centres", "Cohort; Subgroups (sites)"),
    Item("TRIPOD+AI", "6b", "Eligibility criteria", "Cohort (exclusions and case errors)"),
    Item("TRIPOD+AI", "7", "Data preparation and quality checks", "Cohort; Integrity"),
    Item("TRIPOD+AI", "8a", "Outcome and how it was assessed", "Cohort (malignant diagnoses)"),
    Item("TRIPOD+AI", "9a", "Predictors (inputs) used", "Model (metadata inputs, preprocessing)"),
    Item("TRIPOD+AI", "10", "Sample size", "Summary; Cohort"),
    Item("TRIPOD+AI", "11", "Missing data", "Cohort (demographics, missing values)"),
    Item("TRIPOD+AI", "12c", "Model type and architecture", "Model"),
    Item("TRIPOD+AI", "12d", "Heterogeneity across clusters (sites)", "Subgroups (inter-site heterogeneity)"),
    Item("TRIPOD+AI", "12e", "Performance measures and their uncertainty", "Performance; Calibration"),
    Item("TRIPOD+AI", "12f", "Model updating (recalibration)", "Calibration (recalibration)"),
    Item("TRIPOD+AI", "14", "Fairness: performance in subgroups", "Subgroups"),
    Item("TRIPOD+AI", "15", "Model output and decision threshold", "Performance; Uncertainty (referral)"),
    Item("TRIPOD+AI", "16", "Differences between development and evaluation data", "Drift"),
    Item("TRIPOD+AI", "17", "Ethical approval", AUTHORS),
    Item("TRIPOD+AI", "18e-f", "Data and code availability", "Traceability (hashes, versions)"),
    Item("TRIPOD+AI", "20a", "Flow of participants", "Cohort (exclusions and case errors)"),
    Item("TRIPOD+AI", "20b", "Participant characteristics", "Cohort (demographics)"),
    Item("TRIPOD+AI", "20c", "Comparison with development data", "Drift"),
    Item("TRIPOD+AI", "22", "Full model specification", "Model; Traceability"),
    Item("TRIPOD+AI", "23a", "Model performance with confidence intervals", "Performance; Calibration"),
    Item("TRIPOD+AI", "23b", "Performance across subgroups and clusters", "Subgroups"),
    Item("TRIPOD+AI", "25", "Interpretation", AUTHORS),
    Item("TRIPOD+AI", "26", "Limitations", AUTHORS),
    Item("TRIPOD+AI", "27a", "Handling of poor-quality or missing input", "Uncertainty (referral); Integrity"),
    Item("CLAIM", "7", "Data sources", "Cohort"),
    Item("CLAIM", "8", "Eligibility criteria", "Cohort"),
    Item("CLAIM", "9", "Data preprocessing", "Model (preprocessing)"),
    Item("CLAIM", "12", "Handling of missing data", "Cohort"),
    Item("CLAIM", "14", "Reference standard", "Cohort (malignant diagnoses)"),
    Item("CLAIM", "19", "Inter- and intra-rater variability", "Reader study"),
    Item("CLAIM", "23", "Detailed model description", "Model"),
    Item("CLAIM", "24", "Software libraries and versions", "Traceability"),
    Item("CLAIM", "29", "Metrics of model performance", "Performance"),
    Item("CLAIM", "30", "Statistical measures of significance and uncertainty", "Performance; Subgroups"),
    Item("CLAIM", "31", "Robustness or sensitivity analysis", "Uncertainty; Drift"),
    Item("CLAIM", "32", "Methods for explainability", "Explanations"),
    Item("CLAIM", "33", "External testing", "Summary; Drift"),
    Item("CLAIM", "34", "Flow of participants or cases", "Cohort"),
    Item("CLAIM", "35", "Demographic and clinical characteristics", "Cohort (demographics)"),
    Item("CLAIM", "37", "Diagnostic accuracy estimates and their precision", "Performance"),
    Item("CLAIM", "38", "Failure analysis of incorrectly classified cases", "Uncertainty (flagged); Explanations"),
    Item("CLAIM", "39", "Limitations", AUTHORS),
    Item("CLAIM", "41-44", "Registration, protocol, data access, funding", AUTHORS),
)


def checklist_rows(absent_sections: set[str]) -> list[list[str]]:
    """Rows for the appendix; an item answered only by an absent section says so."""
    rows = []
    for item in ITEMS:
        named = [part.split(" (")[0].strip().lower() for part in item.section.split(";")]
        status = ("author" if item.section == AUTHORS
                  else "absent in this run" if all(n in absent_sections for n in named) else "answered")
        rows.append([item.guideline, item.item, item.topic, item.section, status])
    return rows
