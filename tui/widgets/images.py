"""Lesion images in the terminal through textual-image.

`auto` lets textual-image ask the terminal (Sixel, then Kitty graphics, else
half-cell characters). Those queries time out on slow SSH links, so any
explicit `--image-protocol` imports textual-image with the queries switched
off and picks the widget class directly. Must run before the app starts:
once Textual owns stdin the terminal cannot be queried.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

from textual.widget import Widget
from textual.widgets import Static

PROTOCOLS = ("auto", "sixel", "kitty", "halfcell", "none")

_selected: type[Widget] | None = None
_protocol = "auto"


def select_protocol(protocol: str = "auto") -> str:
    """Import textual-image for `protocol`; returns the protocol in use."""
    global _selected, _protocol
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown image protocol '{protocol}' (choose from {', '.join(PROTOCOLS)})")
    _protocol = protocol
    if protocol == "none":
        _selected = None
        return protocol
    saved = sys.__stdout__
    if protocol != "auto" or saved is None or not saved.isatty():
        _preset_cell_size()
        sys.__stdout__ = io.StringIO()  # not a tty: textual-image skips its terminal queries
    try:
        from textual_image import widget as image_widgets
    finally:
        sys.__stdout__ = saved
    _selected = {"auto": image_widgets.Image, "sixel": image_widgets.SixelImage,
                 "kitty": image_widgets.TGPImage, "halfcell": image_widgets.HalfcellImage}[protocol]
    return protocol


def _preset_cell_size() -> None:
    """Cell size from the tty ioctl (instant) or the VT340 default, never by escape-sequence query."""
    from textual_image import _terminal

    width, height = 10, 20
    try:
        rows, columns, pixels_x, pixels_y = _terminal.get_tiocgwinsz()
    except Exception:  # no tty, or a platform without the ioctl: keep the VT340 default
        rows = columns = pixels_x = pixels_y = 0
    if rows and columns and pixels_x and pixels_y:
        width, height = int(pixels_x / columns), int(pixels_y / rows)
    _terminal.get_cell_size._result = _terminal.CellSize(width, height)


def selected_widget_class() -> type[Widget] | None:
    """The widget class `select_protocol` chose (None when images are off)."""
    return _selected


def current_protocol() -> str:
    return _protocol


def image_widget(path: Path | None, *, id: str | None = None, classes: str = "") -> Widget:
    """An image widget for `path`, or a text placeholder saying why there is none."""
    if _selected is None and _protocol != "none":
        select_protocol("halfcell")
    if path is None or not Path(path).is_file():
        return Static("(no image)", id=id, classes=f"image-missing {classes}".strip(), markup=False)
    if _selected is None:
        return Static(f"image: {path.name}", id=id, classes=f"image-missing {classes}".strip(), markup=False)
    try:
        return _selected(str(path), id=id, classes=classes)
    except Exception as exc:  # a broken image file must not take the pane down
        return Static(f"(image unreadable: {exc})", id=id, classes=f"image-missing {classes}".strip(),
                      markup=False)
