"""A virtual table of cases: renders only the rows on screen.

Textual's DataTable builds a row object per case and measures every cell, so
opening 100,000 cases takes seconds. This table keeps the pandas frame as is,
holds the current view as one integer index array (sorted and filtered with
numpy), and formats only the lines `render_line` is asked for.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from rich.segment import Segment
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    kind: str = "text"  # text | float | bool


DEFAULT_COLUMNS = [
    Column("case_id", "id", 14),
    Column("truth", "truth", 5, "float"),
    Column("p_mean", "p_mean", 6, "float"),
    Column("p_std", "p_std", 5, "float"),
    Column("entropy", "H", 5, "float"),
    Column("mutual_info", "MI", 5, "float"),
    Column("flagged", "flag", 4, "bool"),
    Column("error", "error", 6),
    Column("site", "site", 5),
    Column("sex", "sex", 6),
    Column("age", "age", 3, "float"),
    Column("skin_type", "skin", 4),
]

FLOAT_DIGITS = {"truth": 0, "age": 0, "p_mean": 3, "p_std": 3, "entropy": 3, "mutual_info": 3}


def misclassified_mask(frame: pd.DataFrame) -> np.ndarray:
    """Labelled cases whose predicted class differs from the truth."""
    if "truth" not in frame or "pred" not in frame:
        return np.zeros(len(frame), bool)
    truth = pd.to_numeric(frame["truth"], errors="coerce").to_numpy(float)
    pred = pd.to_numeric(frame["pred"], errors="coerce").to_numpy(float, na_value=np.nan)
    known = np.isfinite(truth) & np.isfinite(pred)
    return known & (truth != pred)


def format_cell(value: object, column: Column) -> str:
    """One cell as text; missing values are blank so real values stand out."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if column.kind == "float":
        try:
            return f"{float(value):.{FLOAT_DIGITS.get(column.key, 3)}f}"
        except (TypeError, ValueError):
            return str(value)
    if column.kind == "bool":
        return "yes" if bool(value) else ""
    return str(value)


def fit(text: str, width: int, right: bool) -> str:
    """Pad or cut to the column width; a cut is marked with an ellipsis."""
    text = text.replace("\n", " ").replace("\t", " ")
    if len(text) > width:
        return text[: max(width - 1, 0)] + "…"
    return text.rjust(width) if right else text.ljust(width)


class CasesTable(ScrollView, can_focus=True):
    """Sortable, filterable cases; Enter opens the case under the cursor."""

    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False, id="cases.up"),
        Binding("down", "cursor(1)", "Down", show=False, id="cases.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="cases.page_up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="cases.page_down"),
        Binding("home", "jump(0)", "First", show=False, id="cases.first"),
        Binding("end", "jump(-1)", "Last", show=False, id="cases.last"),
        Binding("left", "column(-1)", "Column left", show=False, id="cases.col_left"),
        Binding("right", "column(1)", "Column right", show=False, id="cases.col_right"),
        Binding("s", "sort_current", "Sort", id="cases.sort"),
        Binding("enter", "open_case", "Open", id="cases.open"),
    ]

    COMPONENT_CLASSES = {"cases-table--header", "cases-table--cursor", "cases-table--sorted",
                         "cases-table--flagged", "cases-table--error"}

    DEFAULT_CSS = """
    CasesTable { height: 1fr; scrollbar-size-vertical: 1; }
    CasesTable > .cases-table--header { text-style: bold; background: $panel; }
    CasesTable > .cases-table--sorted { text-style: bold underline; background: $panel; }
    CasesTable > .cases-table--cursor { background: $accent 40%; }
    CasesTable:focus > .cases-table--cursor { background: $accent; color: $text; }
    CasesTable > .cases-table--flagged { color: $warning; }
    CasesTable > .cases-table--error { color: $error; }
    """

    cursor_row: reactive[int] = reactive(0, always_update=True)
    cursor_col: reactive[int] = reactive(0)

    class CaseSelected(Message):
        """The user asked to open a case."""

        def __init__(self, case_id: str, index: int) -> None:
            super().__init__()
            self.case_id = case_id
            self.index = index

    class ViewChanged(Message):
        """Sort or filters changed: `shown` of `total` cases are in view."""

        def __init__(self, shown: int, total: int, sort: str | None, descending: bool) -> None:
            super().__init__()
            self.shown, self.total, self.sort, self.descending = shown, total, sort, descending

    def __init__(self, frame: pd.DataFrame | None = None, columns: list[Column] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.frame = pd.DataFrame()
        self.columns: list[Column] = []
        self._values: dict[str, np.ndarray] = {}
        self._order = np.zeros(0, np.int64)
        self._mask = np.zeros(0, bool)
        self.view = np.zeros(0, np.int64)
        self.sort_key: str | None = None
        self.descending = False
        self.filters: dict[str, object] = {"flagged": False, "misclassified": False, "subgroup": None, "search": ""}
        self.set_frame(frame if frame is not None else pd.DataFrame(), columns)

    # -- data ------------------------------------------------------------
    def set_frame(self, frame: pd.DataFrame, columns: list[Column] | None = None) -> None:
        """Show a new frame; keeps only the columns it has."""
        self.frame = frame.reset_index(drop=True)
        wanted = columns or DEFAULT_COLUMNS
        self.columns = [c for c in wanted if c.key in self.frame.columns]
        self._values = {c.key: self.frame[c.key].to_numpy(dtype=object) for c in self.columns}
        self._order = np.arange(len(self.frame), dtype=np.int64)
        self.sort_key, self.descending = None, False
        self._misclassified = misclassified_mask(self.frame)
        self._apply()

    @property
    def total(self) -> int:
        return len(self.frame)

    @property
    def row_width(self) -> int:
        return sum(c.width for c in self.columns) + max(len(self.columns) - 1, 0)

    def current_index(self) -> int | None:
        """The frame row under the cursor, or None when the view is empty."""
        if not len(self.view):
            return None
        return int(self.view[min(self.cursor_row, len(self.view) - 1)])

    def current_case_id(self) -> str | None:
        index = self.current_index()
        return None if index is None else str(self.frame.at[index, "case_id"])

    def sort_by(self, key: str, descending: bool | None = None) -> None:
        """Stable sort on one column; missing values always last."""
        if key not in self.frame.columns:
            raise KeyError(key)
        if descending is None:
            descending = not self.descending if key == self.sort_key else False
        series = self.frame[key]
        numeric = pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
        if numeric:
            values = pd.to_numeric(series, errors="coerce").to_numpy(float, na_value=np.nan)
            missing = np.isnan(values)
            keyed = np.where(missing, 0.0, -values if descending else values)
            order = np.lexsort((keyed, missing))
        else:
            missing = series.isna().to_numpy()
            text = series.astype(str).where(~missing, "").to_numpy()
            codes = pd.factorize(text, sort=True)[0].astype(np.int64)
            order = np.lexsort((-codes if descending else codes, missing))
        self._order = order.astype(np.int64)
        self.sort_key, self.descending = key, descending
        self._apply(keep_cursor=True)

    def set_filters(self, **filters: object) -> None:
        """flagged=bool, misclassified=bool, subgroup=(attribute, value)|None, search=str."""
        unknown = set(filters) - set(self.filters)
        if unknown:
            raise KeyError(", ".join(sorted(unknown)))
        self.filters.update(filters)
        self._apply()

    def _filter_mask(self) -> np.ndarray:
        mask = np.ones(len(self.frame), bool)
        if self.filters["flagged"] and "flagged" in self.frame:
            mask &= self.frame["flagged"].fillna(False).to_numpy(bool)
        if self.filters["misclassified"]:
            mask &= self._misclassified
        subgroup = self.filters["subgroup"]
        if subgroup:
            attribute, value = subgroup  # type: ignore[misc]
            if attribute in self.frame:
                mask &= (self.frame[attribute].astype(str) == str(value)).to_numpy()
        search = str(self.filters["search"] or "").strip()
        if search and "case_id" in self.frame:
            mask &= self.frame["case_id"].astype(str).str.contains(search, case=False, regex=False).to_numpy()
        return mask

    def _apply(self, keep_cursor: bool = False) -> None:
        keep = self.current_index() if keep_cursor else None
        self._mask = self._filter_mask()
        self.view = self._order[self._mask[self._order]]
        self.virtual_size = Size(self.row_width, len(self.view) + 1)
        row = 0
        if keep is not None:
            found = np.flatnonzero(self.view == keep)
            row = int(found[0]) if len(found) else 0
        self.cursor_row = row
        if self.is_attached:
            self._scroll_cursor_into_view()
            self.refresh()
            self.post_message(self.ViewChanged(len(self.view), self.total, self.sort_key, self.descending))

    # -- drawing ---------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        if y == 0:
            strip = self._header_strip()
        else:
            position = scroll_y + y - 1
            if position >= len(self.view):
                return Strip.blank(width, self.rich_style)
            strip = self._row_strip(position)
        return strip.crop(scroll_x, scroll_x + width).extend_cell_length(width, self.rich_style)

    def _header_strip(self) -> Strip:
        header = self.get_component_rich_style("cases-table--header")
        sorted_style = self.get_component_rich_style("cases-table--sorted")
        segments: list[Segment] = []
        for number, column in enumerate(self.columns):
            label = column.label
            if column.key == self.sort_key:
                label += "▼" if self.descending else "▲"
            style = sorted_style if number == self.cursor_col else header
            segments.append(Segment(fit(label, column.width, column.kind != "text"), style))
            segments.append(Segment(" ", header))
        return Strip(segments[:-1] if segments else [], self.row_width)

    def _row_strip(self, position: int) -> Strip:
        index = int(self.view[position])
        base = self.rich_style
        if position == self.cursor_row:
            base = base + self.get_component_rich_style("cases-table--cursor")
        flagged = self.get_component_rich_style("cases-table--flagged")
        error = self.get_component_rich_style("cases-table--error")
        segments: list[Segment] = []
        for column in self.columns:
            text = format_cell(self._values[column.key][index], column)
            style = base
            if column.key == "flagged" and text:
                style = base + flagged
            elif column.key == "error" and text:
                style = base + error
            segments.append(Segment(fit(text, column.width, column.kind != "text"), style))
            segments.append(Segment(" ", base))
        return Strip(segments[:-1] if segments else [], self.row_width)

    # -- cursor ----------------------------------------------------------
    @property
    def page_height(self) -> int:
        return max(self.scrollable_content_region.height - 1, 1)

    def _scroll_cursor_into_view(self) -> None:
        top = int(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + self.page_height:
            self.scroll_to(y=self.cursor_row - self.page_height + 1, animate=False, immediate=True)

    def _move_to(self, row: int) -> None:
        if not len(self.view):
            return
        self.cursor_row = max(0, min(row, len(self.view) - 1))
        self._scroll_cursor_into_view()
        self.refresh()

    def action_cursor(self, delta: int) -> None:
        self._move_to(self.cursor_row + delta)

    def action_page(self, direction: int) -> None:
        self._move_to(self.cursor_row + direction * self.page_height)

    def action_jump(self, where: int) -> None:
        self._move_to(0 if where == 0 else len(self.view) - 1)

    def action_column(self, delta: int) -> None:
        if not self.columns:
            return
        self.cursor_col = max(0, min(self.cursor_col + delta, len(self.columns) - 1))
        left = sum(c.width + 1 for c in self.columns[: self.cursor_col])
        right = left + self.columns[self.cursor_col].width
        width = self.scrollable_content_region.width
        if left < self.scroll_x:
            self.scroll_to(x=left, animate=False)
        elif right > self.scroll_x + width:
            self.scroll_to(x=right - width, animate=False)
        self.refresh()

    def action_sort_current(self) -> None:
        if self.columns:
            self.sort_by(self.columns[self.cursor_col].key)

    def action_open_case(self) -> None:
        index = self.current_index()
        if index is not None:
            self.post_message(self.CaseSelected(str(self.frame.at[index, "case_id"]), index))

    def on_click(self, event: events.Click) -> None:
        """Header click sorts that column; a row click moves the cursor, a double click opens."""
        x = event.x + int(self.scroll_x)
        if event.y == 0:
            edge = 0
            for number, column in enumerate(self.columns):
                edge += column.width + 1
                if x < edge:
                    self.cursor_col = number
                    self.sort_by(column.key)
                    return
            return
        self._move_to(int(self.scroll_y) + event.y - 1)
        if event.chain >= 2:
            self.action_open_case()
