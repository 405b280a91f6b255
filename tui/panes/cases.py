"""Cases pane: every case in the virtual table, with sort, filters and id search."""
from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Input, Select, Static

from tui.panes.base import Pane, RunData
from tui.widgets.cases_table import CasesTable

SUBGROUP_ATTRIBUTES = ("site", "sex", "skin_type", "body_site", "diagnosis")
MAX_GROUPS_PER_ATTRIBUTE = 30


class CasesPane(Pane):
    """Filters on top, the table below, a status line saying what is shown."""

    BINDINGS = [
        Binding("f", "toggle('flagged')", "Flagged", id="cases.filter_flagged"),
        Binding("m", "toggle('misclassified')", "Miscl.", id="cases.filter_misclassified"),
        Binding("slash", "focus_search", "Search", id="cases.search"),
        Binding("g", "focus_subgroup", "Group", show=False, id="cases.subgroup"),
        Binding("x", "clear_filters", "Clear", show=False, id="cases.clear"),
    ]

    def compose(self) -> ComposeResult:
        with Horizontal(classes="toolbar"):
            yield Input(placeholder="/ search id", id="cases-search")
            yield Select([], prompt="g subgroup: all", id="cases-subgroup")
        yield Static("no run open", id="cases-status", markup=False)
        yield CasesTable(id="cases-table")

    @property
    def table(self) -> CasesTable:
        return self.query_one("#cases-table", CasesTable)

    def focus_target(self) -> CasesTable:
        return self.table

    def show_run(self, run: RunData) -> None:
        frame = run.predictions
        options = []
        for attribute in SUBGROUP_ATTRIBUTES:
            if attribute in frame:
                values = frame[attribute].dropna().astype(str).value_counts().index[:MAX_GROUPS_PER_ATTRIBUTE]
                options += [(f"{attribute} = {value}", f"{attribute}\x1f{value}") for value in sorted(values)]
        select = self.query_one("#cases-subgroup", Select)
        select.set_options(options)
        self.query_one("#cases-search", Input).value = ""
        self.table.set_frame(frame)

    # -- actions ---------------------------------------------------------
    def action_toggle(self, name: str) -> None:
        self.table.set_filters(**{name: not self.table.filters[name]})

    def action_focus_search(self) -> None:
        self.query_one("#cases-search", Input).focus()

    def action_focus_subgroup(self) -> None:
        self.query_one("#cases-subgroup", Select).focus()

    def action_clear_filters(self) -> None:
        self.query_one("#cases-search", Input).value = ""
        self.query_one("#cases-subgroup", Select).clear()
        self.table.set_filters(flagged=False, misclassified=False, subgroup=None, search="")

    # -- events ----------------------------------------------------------
    @on(Input.Changed, "#cases-search")
    def _search(self, event: Input.Changed) -> None:
        self.table.set_filters(search=event.value)

    @on(Input.Submitted, "#cases-search")
    def _search_done(self) -> None:
        self.table.focus()

    @on(Select.Changed, "#cases-subgroup")
    def _subgroup(self, event: Select.Changed) -> None:
        value = event.value
        if isinstance(value, str) and "\x1f" in value:
            attribute, group = value.split("\x1f", 1)
            self.table.set_filters(subgroup=(attribute, group))
        else:
            self.table.set_filters(subgroup=None)

    @on(CasesTable.ViewChanged)
    def _view_changed(self, event: CasesTable.ViewChanged) -> None:
        filters = self.table.filters
        active = [name for name in ("flagged", "misclassified") if filters[name]]
        if filters["subgroup"]:
            active.append("=".join(filters["subgroup"]))  # type: ignore[arg-type]
        if filters["search"]:
            active.append(f"id~{filters['search']}")
        sort = f"  sorted by {event.sort} {'desc' if event.descending else 'asc'}" if event.sort else ""
        self.query_one("#cases-status", Static).update(
            f"{event.shown:,} of {event.total:,} cases{sort}  filters: {', '.join(active) or 'none'}"
            "  (f flagged, m miscl., s sort, Enter open)")
