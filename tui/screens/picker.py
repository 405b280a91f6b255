"""A file/directory picker: a path input with completion over a directory tree."""
from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, Static

from tui.widgets.paths import PathSuggester


class PathPicker(ModalScreen[Path | None]):
    """Returns the chosen path, or None when cancelled (the Cancel button or ctrl+g)."""

    BINDINGS = [
        Binding("ctrl+g", "cancel", "Cancel", id="picker.cancel"),
        Binding("escape", "cancel", "Cancel", show=False, id="picker.cancel_escape"),
    ]

    def __init__(self, title: str, start: Path | None = None, folders_only: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.start = Path(start or Path.cwd()).expanduser()
        self.folders_only = folders_only

    def compose(self) -> ComposeResult:
        root = self.start if self.start.is_dir() else self.start.parent
        with Vertical(id="picker-box", classes="modal-box"):
            yield Static(self.title_text, classes="modal-title", markup=False)
            yield Input(str(self.start), id="picker-path", suggester=PathSuggester(self.folders_only),
                        placeholder="path (Right arrow completes)")
            yield DirectoryTree(root if root.is_dir() else Path.cwd(), id="picker-tree")
            with Horizontal(classes="buttons"):
                yield Button("Open", id="picker-open", variant="primary")
                yield Button("Cancel (^g)", id="picker-cancel")

    def on_mount(self) -> None:
        self.query_one("#picker-path", Input).focus()

    def on_directory_tree_directory_selected(self, event: DirectoryTree.DirectorySelected) -> None:
        self.query_one("#picker-path", Input).value = str(event.path)

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        self.query_one("#picker-path", Input).value = str(event.path)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._choose()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "picker-open":
            self._choose()
        else:
            self.dismiss(None)

    def _choose(self) -> None:
        value = self.query_one("#picker-path", Input).value.strip()
        if not value:
            self.notify("type a path or choose one in the tree", severity="warning")
            return
        path = Path(value).expanduser()
        if not path.exists():
            self.notify(f"{path} does not exist", severity="error", markup=False)
            return
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)
