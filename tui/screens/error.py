"""An error modal: the message and the fix, for problems that need reading, not a toast."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ErrorScreen(ModalScreen[None]):
    """Closes with Enter (the focused button), q, or Esc."""

    BINDINGS = [
        Binding("q", "close", "Close", id="error.close"),
        Binding("escape", "close", "Close", show=False, id="error.close_escape"),
    ]

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.title_text = title
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(id="error-box", classes="modal-box"):
            yield Static(Text(self.title_text, style="bold"), classes="modal-title")
            with VerticalScroll(id="error-scroll"):
                yield Static(Text(self.message), id="error-message")
            yield Button("OK (Enter)", id="error-ok", variant="error")

    def on_mount(self) -> None:
        self.query_one("#error-ok", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
