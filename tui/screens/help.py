"""The help screen: every binding with its action id, so keys can be remapped."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static


KEY_NAMES = {"question_mark": "?", "slash": "/", "enter": "Enter", "pageup": "PgUp", "pagedown": "PgDn",
             "escape": "Esc"}


def bindings_text(groups: list[tuple[str, list[Binding]]]) -> Text:
    """One line per binding: key, description, id (plain text, nothing parsed as markup)."""
    text = Text()
    for title, bindings in groups:
        text.append(f"{title}\n", style="bold underline")
        for binding in bindings:
            key = binding.key_display or KEY_NAMES.get(binding.key, binding.key)
            text.append(f"  {key:<10}", style="bold")
            text.append(f"{binding.description or binding.action:<24}")
            text.append(f"{binding.id or ''}\n", style="dim")
    text.rstrip()
    return text


class HelpScreen(ModalScreen[None]):
    """Lists bindings; closes with q, ?, Enter or the button (Esc also works but is never needed)."""

    BINDINGS = [
        Binding("q", "close", "Close", id="help.close"),
        Binding("question_mark", "close", "Close", show=False, id="help.close_alt"),
        Binding("escape", "close", "Close", show=False, id="help.close_escape"),
    ]

    def __init__(self, groups: list[tuple[str, list[Binding]]]) -> None:
        super().__init__()
        self.groups = groups

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box", classes="modal-box"):
            yield Static("BioSignal-X keys", classes="modal-title")
            with VerticalScroll(id="help-scroll"):
                yield Static(bindings_text(self.groups), id="help-text")
            yield Button("Close (q)", id="help-close", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#help-close", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
