"""Case pane: one case's image and Grad-CAM, metadata, prediction, MC histogram and ratings."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from cohorts.errors import BsxError
from engine.readers.study import Study
from tui.panes.base import Pane, RunData, fmt, kv_table
from tui.widgets.charts import Chart
from tui.widgets.images import image_widget

METADATA = ("patient_id", "lesion_id", "diagnosis", "age", "sex", "site", "body_site", "skin_type")
UNCERTAINTY = ("p_std", "entropy", "expected_entropy", "mutual_info")


def prediction_text(row: dict[str, Any], class_names: list[str]) -> Text:
    """Truth, prediction, probability and the referral decision."""
    def label(value: Any) -> str:
        try:
            index = int(value)
        except (TypeError, ValueError):
            return "—"
        return class_names[index] if 0 <= index < len(class_names) else str(index)

    truth = row.get("truth")
    correct = None if truth is None or truth != truth or row.get("pred") is None else int(truth) == int(row["pred"])
    verdict = Text("—") if correct is None else Text("correct" if correct else "misclassified",
                                                      style="green" if correct else "bold red")
    rows = [("truth", label(truth)), ("prediction", label(row.get("pred"))), ("outcome", verdict),
            ("p_mean", fmt(row.get("p_mean"))),
            ("referral", Text("flagged for review", style="bold yellow") if row.get("flagged") else "not flagged")]
    if row.get("error"):
        rows.append(("error", str(row["error"])))
    rows += [(key, fmt(row.get(key), 4)) for key in UNCERTAINTY]
    return kv_table(rows, key_width=12)


def ratings_text(case_json: dict[str, Any], none_message: str = "none recorded") -> Text:
    """Reader ratings stored in the case's JSON (older runs); `none_message` when there are none."""
    ratings = case_json.get("ratings") or case_json.get("reader_ratings") or []
    if not ratings:
        return Text(f"reader ratings: {none_message}", style="dim")
    text = Text("reader ratings\n", style="bold")
    for rating in ratings:
        text.append(f"  {rating.get('reader', '?')}: {rating.get('score', rating.get('rating', '?'))}\n")
    text.rstrip()
    return text


def study_ratings_text(ratings: list[dict[str, Any]]) -> Text:
    """Every reader's ratings of the case from the attached study (`Study.case_ratings`), as plain Text."""
    text = Text(f"reader ratings ({len(ratings)})\n", style="bold")
    for rating in ratings:
        text.append(f"  {rating['phase']:<9} ", style="dim")
        text.append(f"{rating['reader']}: ")
        text.append(fmt(float(rating["value"]), 0 if float(rating["value"]).is_integer() else 1), style="bold")
        details = [rating.get("diagnosis"), rating.get("management")]
        if rating.get("seconds") is not None:
            details.append(f"{float(rating['seconds']):.0f} s")
        shown = [str(d) for d in details if d]
        if shown:
            text.append("  " + ", ".join(shown), style="dim")
        if rating.get("note"):
            text.append(f"  note: {rating['note']}")
        text.append("\n")
    text.rstrip()
    return text


def case_ratings_text(study_path: Path | None, case_id: str, case_json: dict[str, Any]) -> Text:
    """Ratings from the run's attached study, else from the case JSON; says which is missing."""
    if study_path is None:
        return ratings_text(case_json, "no reader study attached")
    try:
        with Study(study_path) as study:
            ratings = study.case_ratings(case_id) if case_id in set(study.case_ids()) else None
    except BsxError as exc:
        return Text(f"reader ratings: the study cannot be read ({exc})", style="red")
    if ratings is None:
        return ratings_text(case_json, "this case is not in the reader study")
    if not ratings:
        return ratings_text(case_json, "no ratings yet")
    return study_ratings_text(ratings)


class CaseDetailPane(Pane):
    """Filled by `show_case`; `e` exports this case's PDF."""

    BINDINGS = [Binding("e", "app.export_case", "Case PDF", id="case.export_pdf")]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.run: RunData | None = None
        self.case_id: str | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="case-body"):
            yield Static("No case open: choose one in Cases (3) and press Enter.", id="case-title", markup=False)
            with Horizontal(id="case-images"):
                yield Vertical(id="case-image", classes="image-box")
                yield Vertical(id="case-gradcam", classes="image-box")
            with Horizontal(id="case-info"):
                yield Static("", id="case-prediction", markup=False)
                yield Static("", id="case-metadata", markup=False)
            yield Chart("MC probability samples", id="case-histogram")
            yield Static("", id="case-ratings", markup=False)

    def show_run(self, run: RunData) -> None:
        self.run = run
        self.case_id = None
        self.query_one("#case-title", Static).update("No case open: choose one in Cases (3) and press Enter.")

    def show_case(self, case_id: str) -> None:
        """Show one case of the open run; an unknown id is reported, not raised."""
        if self.run is None:
            self.notify("open a run first", severity="warning")
            return
        frame = self.run.predictions
        matches = frame.index[frame["case_id"].astype(str) == str(case_id)]
        if not len(matches):
            self.app.show_error("Case not found", f"no case '{case_id}' in {self.run.path}")
            return
        position = int(matches[0])
        row = {k: (None if v is None else v) for k, v in frame.iloc[position].to_dict().items()}
        self.case_id = str(case_id)
        title = Text(f"Case {case_id}", style="bold")
        title.append(f"  ({position + 1} of {len(frame)})", style="dim")
        self.query_one("#case-title", Static).update(title)
        class_names = list(self.run.info.get("class_names") or ["benign", "malignant"])
        self.query_one("#case-prediction", Static).update(prediction_text(row, class_names))
        self.query_one("#case-metadata", Static).update(
            kv_table([(key, fmt(row.get(key), 0) if key == "age" else fmt(row.get(key))) for key in METADATA
                      if key in row], key_width=11))
        self._show_images(row)
        self._show_histogram(self.run.mc_samples(position))
        self.query_one("#case-ratings", Static).update(
            case_ratings_text(self.run.study_path, str(case_id), self._case_json(str(case_id))))

    def _case_json(self, case_id: str) -> dict[str, Any]:
        path = self.run.folder.case_json_path(case_id) if self.run else None
        if path is None or not path.is_file():
            return {}
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _show_images(self, row: dict[str, Any]) -> None:
        image_path = Path(row["image_path"]) if row.get("image_path") else None
        gradcam = self.run.folder.gradcam_path(str(row["case_id"])) if self.run else None
        for box_id, path, label in (("#case-image", image_path, "lesion"),
                                    ("#case-gradcam", gradcam, "Grad-CAM")):
            box = self.query_one(box_id, Vertical)
            box.remove_children()
            caption = label if path is not None and path.is_file() else f"{label}: not available"
            box.mount_all([Static(caption, classes="caption", markup=False), image_widget(path, classes="lesion")])

    def _show_histogram(self, samples: list[float]) -> None:
        chart = self.query_one("#case-histogram", Chart)
        if not samples:
            chart.clear()
            return
        chart.draw(lambda plt: (plt.hist(samples, bins=min(20, max(len(samples), 1))), plt.xlabel("p"),
                                plt.xlim(0, 1) if max(samples) - min(samples) > 0.2 else None))
