"""Safe image loading in one place.

Untrusted images: refuse decompression bombs before decoding, honour EXIF
orientation, decode JPEGs at reduced size (draft mode) when a smaller target is
asked for, always return RGB.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Callable

from PIL import Image, ImageOps, UnidentifiedImageError

from cohorts.errors import BsxError

# 100 megapixels: far above any dermoscope (ISIC's largest are ~30 MP) and
# well below what would exhaust memory when decoded.
MAX_PIXELS = 100_000_000
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}


class ImageLoadError(BsxError):
    """The image cannot be used; the case is recorded as an error, the run goes on."""


def _open(path: Path, max_pixels: int) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError("image file not found", path=path, fix="check image_path and the cohort folder")
    if path.stat().st_size == 0:
        raise ImageLoadError("image file is empty (0 bytes)", path=path, fix="re-export or remove this case")
    try:
        with warnings.catch_warnings():
            # Pillow's own warning fires at ~89 MP, below our limit: we check the size ourselves below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(f"image declares more pixels than allowed, a possible decompression bomb ({exc}); "
                             f"the pixel limit is {max_pixels:,}", path=path,
                             fix="downscale the image or remove this case") from None
    except UnidentifiedImageError as exc:
        raise ImageLoadError(f"not a readable image ({exc.__class__.__name__})", path=path,
                             fix="replace the file with a JPEG or PNG") from None
    except OSError as exc:
        raise ImageLoadError(f"cannot open image ({exc})", path=path, fix="replace the file") from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageLoadError(
            f"image is {width}x{height} = {width * height:,} pixels, over the {max_pixels:,} pixel limit",
            path=path, fix="downscale the image or remove this case")
    return image


def load_rgb(path: str | Path, size: int | None = None, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode an image as RGB, EXIF-rotated; with `size`, JPEGs decode at >= size via draft mode."""
    image = _open(Path(path), max_pixels)
    try:
        if size and image.format == "JPEG":
            image.draft("RGB", (size, size))
        image = ImageOps.exif_transpose(image)
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            # 16-bit greyscale: scale to 8 bits instead of clipping to white.
            image = image.point(lambda v: v / 256).convert("L")
        if image.mode in ("RGBA", "LA", "P"):
            image = image.convert("RGBA")
            background = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, image)
        rgb = image.convert("RGB")
        rgb.load()
        return rgb
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageLoadError(f"image is truncated or corrupt ({exc})", path=Path(path),
                             fix="re-export the image or remove this case") from None
    finally:
        image.close()


def check_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> str | None:
    """Return None when the image decodes to RGB, else a one-line reason."""
    try:
        load_rgb(path, size=64, max_pixels=max_pixels)
    except ImageLoadError as exc:
        return f"{exc.message} (fix: {exc.fix})" if exc.fix else exc.message
    return None


DECODE_TIMEOUT_S = 20.0  # per image: far above any real dermoscopy image, short enough to stop a pathological one
CHECK_CHUNK = 32


def _check_chunk(paths: list[str], max_pixels: int) -> list[str | None]:
    return [check_image(path, max_pixels) for path in paths]


def check_images_bounded(paths: list[str], max_pixels: int = MAX_PIXELS, workers: int | None = None,
                         timeout_s: float = DECODE_TIMEOUT_S,
                         progress: Callable[[int, int], None] | None = None) -> list[str | None]:
    """Decode every image in worker processes, each within a time budget.

    Processes, not threads, so a pathological file (a decoder that never
    finishes) can be stopped: its chunk times out, the chunk is retried image by
    image, and the image that still overruns is reported; the pool is terminated.
    """
    import multiprocessing

    workers = workers or max(1, min(8, os.cpu_count() or 1))
    chunks = [paths[i:i + CHECK_CHUNK] for i in range(0, len(paths), CHECK_CHUNK)]
    results: list[str | None] = []
    # spawn: safe from threaded callers (the Textual app), and no torch state is inherited.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pending = [pool.apply_async(_check_chunk, (chunk, max_pixels)) for chunk in chunks]
        for chunk, job in zip(chunks, pending):
            try:
                results += job.get(timeout=timeout_s * len(chunk))
            except multiprocessing.TimeoutError:
                results += _check_one_by_one(pool, chunk, max_pixels, timeout_s)
            if progress:
                progress(len(results), len(paths))
        pool.terminate()  # stops any decoder still stuck on a pathological file
    return results


def _check_one_by_one(pool, chunk: list[str], max_pixels: int, timeout_s: float) -> list[str | None]:
    import multiprocessing

    reasons: list[str | None] = []
    for path in chunk:
        try:
            reasons.append(pool.apply_async(check_image, (path, max_pixels)).get(timeout=timeout_s))
        except multiprocessing.TimeoutError:
            reasons.append(f"decoding took longer than {timeout_s:g} s: a pathological file "
                           "(fix: re-export the image as a plain JPEG or PNG)")
    return reasons
