"""Raster images (dermoscopy, Grad-CAM overlays) as flowables, downsized before embedding.

Images are decoded with Pillow and shrunk to the printed size first, so a
report of large dermoscopy photographs stays small and fast to render; an
unreadable image becomes a labelled placeholder instead of an error.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image as PILImage
from reportlab.platypus import Flowable, Image, Paragraph

from reports.styles import STYLES, esc

PRINT_DPI = 150
POINTS_PER_INCH = 72
JPEG_QUALITY = 88


def load_thumbnail(path: Any, size_pt: float) -> PILImage.Image | None:
    if path is None or (isinstance(path, float)) or not str(path):
        return None
    try:
        with PILImage.open(Path(str(path))) as image:
            image.draft("RGB", (int(size_pt * PRINT_DPI / POINTS_PER_INCH),) * 2)
            pixels = image.convert("RGB")
            limit = int(size_pt * PRINT_DPI / POINTS_PER_INCH)
            pixels.thumbnail((limit, limit))
            return pixels
    except (OSError, ValueError, PILImage.DecompressionBombError):
        return None


def image_flowable(path: Any, size_pt: float) -> Flowable:
    """The image fitted in a size_pt square, or a placeholder naming why it is missing."""
    pixels = load_thumbnail(path, size_pt)
    if pixels is None:
        name = Path(str(path)).name if path is not None and str(path) else "no path"
        return Paragraph(f"image not available<br/>({esc(name)})", STYLES["center"])
    width, height = pixels.size
    scale = size_pt / max(width, height)
    encoded = io.BytesIO()
    pixels.save(encoded, format="JPEG", quality=JPEG_QUALITY)
    encoded.seek(0)
    return Image(encoded, width=width * scale, height=height * scale)
