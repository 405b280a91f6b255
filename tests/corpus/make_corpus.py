"""Generate the bad-input corpus into a folder and run it through the real `bsx` CLI.

Every malformed input is built on the fly (no binary blobs in git). Each
`CorpusCase` carries the command to run and its declared outcome:

- fatal:      exit 2, a message on stderr naming the file and a fix
- case-error: exit 1, the bad rows reported (file, row, column), the rest usable
- warning:    exit 0 (or the command's success code), a warning naming file/row/column
- ok:         unusual but valid input, accepted with no error

Usage: python -m tests.corpus.make_corpus OUT_DIR   (writes the corpus and prints a summary)
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import sqlite3
import struct
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

GENERIC_HEADER = ["case_id", "patient_id", "lesion_id", "image_path", "age", "sex", "skin_type", "diagnosis",
                  "site", "body_site", "split"]
FATAL, CASE_ERROR, WARNING, OK = "fatal", "case-error", "warning", "ok"
EXIT = {FATAL: 2, CASE_ERROR: 1, WARNING: 0, OK: 0}


@dataclass(frozen=True)
class ProblemSpec:
    """A problem `bsx cohort check --json` must report (message matched case-insensitively)."""

    severity: str
    row: int | None
    column: str | None
    text: str
    file: str | None = None   # metadata file name; None = the cohort's main file


@dataclass
class CorpusCase:
    name: str
    kind: str                       # cohort | checkpoint | run | study
    layout: str
    argv: list[str]
    outcome: str                    # fatal | case-error | warning | ok
    stderr: list[str] = field(default_factory=list)    # substrings stderr must hold (fatal)
    stdout: list[str] = field(default_factory=list)    # substrings stdout must hold
    problems: list[ProblemSpec] = field(default_factory=list)
    usable: int | None = None       # cases still usable (cohort check)
    readonly: Path | None = None    # folder that must be byte-for-byte and mtime unchanged
    marker: Path | None = None      # must not exist afterwards (code-execution payloads)
    untrusted: bool = False         # a security case: the input must be refused
    known_bug: str | None = None    # engine/tui bug that makes this case fail today (xfail strict)
    code: int | None = None         # exit code when not the outcome's default

    @property
    def exit_code(self) -> int:
        return EXIT[self.outcome] if self.code is None else self.code


# ---------------------------------------------------------------------------- images
def _pixels(size: int = 24, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (size, size, 3), dtype=np.uint8)


def write_image(path: Path, kind: str = "jpeg", seed: int = 0) -> Path:
    """A small image of the given kind: jpeg png gif tiff webp cmyk gray16 gray rgba exif."""
    from PIL import Image
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = Image.fromarray(_pixels(seed=seed))
    if kind == "jpeg":
        rgb.save(path, "JPEG", quality=85)
    elif kind == "png":
        rgb.save(path, "PNG")
    elif kind in ("gif", "tiff", "webp"):
        rgb.save(path, kind.upper())
    elif kind == "cmyk":
        rgb.convert("CMYK").save(path, "JPEG")
    elif kind == "gray16":
        Image.fromarray((np.arange(24 * 24, dtype=np.uint16).reshape(24, 24) * 97)).save(path, "PNG")
    elif kind == "gray":
        rgb.convert("L").save(path, "PNG")
    elif kind == "rgba":
        rgb.convert("RGBA").save(path, "PNG")
    elif kind == "exif":
        wide = Image.fromarray(_pixels(32, seed)[:16])  # 32x16, orientation 6 -> 16x32 upright
        exif = Image.Exif()
        exif[0x0112] = 6
        wide.save(path, "JPEG", exif=exif)
    else:
        raise ValueError(kind)
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png_header(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header declares width x height (a decompression bomb's calling card)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
                     + _png_chunk(b"IEND", b""))
    return path


def write_truncated_jpeg(path: Path) -> Path:
    full = write_image(path, "jpeg", seed=5).read_bytes()
    path.write_bytes(full[: len(full) // 2])
    return path


# ---------------------------------------------------------------------------- generic cohorts
def generic_row(i: int, **overrides: str) -> dict[str, str]:
    row = {"case_id": f"C{i:03d}", "patient_id": f"P{i:03d}", "lesion_id": f"L{i:03d}",
           "image_path": f"images/C{i:03d}.jpg", "age": str(30 + 5 * i), "sex": "female" if i % 2 else "male",
           "skin_type": "II", "diagnosis": "melanoma" if i % 2 else "nevus", "site": "A",
           "body_site": "back", "split": "test"}
    row.update(overrides)
    return row


def csv_text(rows: list[dict[str, str]], header: list[str] | None = None, delimiter: str = ",") -> str:
    import csv

    header = header or list(rows[0]) if rows else (header or GENERIC_HEADER)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, delimiter=delimiter, lineterminator="\n",
                            extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def generic_cohort(folder: Path, n: int = 4, rows: list[dict[str, str]] | None = None,
                   images: bool = True, text: str | bytes | None = None, name: str = "cohort.csv") -> Path:
    """A generic-layout cohort with n good rows (or the given rows / raw CSV text) and its JPEGs."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = rows if rows is not None else [generic_row(i) for i in range(n)]
    if images:
        for i in range(n):
            write_image(folder / "images" / f"C{i:03d}.jpg", seed=i)
    data = text if text is not None else csv_text(rows)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return folder


# ---------------------------------------------------------------------------- the corpus
class _Builder:
    """Collects cases; each case gets its own folder under root/<kind>/<name>."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.cases: list[CorpusCase] = []

    def folder(self, kind: str, name: str) -> Path:
        path = self.root / kind / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def check(self, name: str, layout: str, build: Callable[[Path], Path], outcome: str, **expect) -> None:
        """A cohort case run through `bsx cohort check --json`; the case folder must stay untouched."""
        base = self.folder("cohorts", name)
        target = build(base)
        self.cases.append(CorpusCase(name, "cohort", layout, ["cohort", "check", str(target), "--json"], outcome,
                                     readonly=base, **expect))


def _cohort_cases(b: _Builder) -> None:
    _file_level_cases(b)
    _encoding_cases(b)
    _row_cases(b)
    _image_cases(b)
    _path_cases(b)
    _public_layout_cases(b)


def _file_level_cases(b: _Builder) -> None:
    b.check("missing-metadata-file", "generic", lambda d: generic_cohort(d / "c", text="x") and
            (d / "c" / "cohort.csv").unlink() or d / "c", FATAL, stderr=["no cohort metadata found", "fix:"])
    b.check("nonexistent-path", "generic", lambda d: d / "nowhere.csv", FATAL,
            stderr=["nowhere.csv", "does not exist", "fix:"])
    b.check("empty-file", "generic", lambda d: generic_cohort(d / "c", text=""), FATAL,
            stderr=["cohort.csv", "empty", "fix:"])
    b.check("whitespace-only-file", "generic", lambda d: generic_cohort(d / "c", text="\n \n\t\n"), FATAL,
            stderr=["cohort.csv", "empty", "fix:"])
    b.check("header-only", "generic", lambda d: generic_cohort(d / "c", images=False, text=csv_text([], GENERIC_HEADER)),
            FATAL, stderr=["cohort.csv", "no data rows", "fix:"])
    b.check("zero-rows-with-images", "generic", lambda d: generic_cohort(d / "c", text=csv_text([], GENERIC_HEADER)),
            FATAL, stderr=["cohort.csv", "no data rows", "fix:"])
    b.check("missing-required-column", "generic", lambda d: generic_cohort(
        d / "c", text=csv_text([generic_row(i) for i in range(4)], [h for h in GENERIC_HEADER if h != "sex"])),
        FATAL, stderr=["cohort.csv", "missing required column(s) sex", "fix:"])
    renamed = [h if h != "image_path" else "Image_Path" for h in GENERIC_HEADER]
    b.check("renamed-column", "generic", lambda d: generic_cohort(d / "c", text=csv_text(
        [{("Image_Path" if k == "image_path" else k): v for k, v in generic_row(i).items()} for i in range(4)],
        renamed)), FATAL, stderr=["cohort.csv", "image_path", "fix:"])
    b.check("extra-columns", "generic", lambda d: generic_cohort(d / "c", rows=[
        {**generic_row(i), "notes": "free text, with comma", "Unnamed: 0": str(i)} for i in range(4)]), OK, usable=4)
    b.check("ragged-row", "generic", lambda d: generic_cohort(
        d / "c", text=csv_text([generic_row(i) for i in range(4)]) + "C009,P9,L9,images/C000.jpg,40,male,II,nevus,A,back,test,x,y\n"),
        FATAL, stderr=["cohort.csv", "cannot parse csv", "fix:"])
    b.check("first-row-extra-fields", "generic", lambda d: generic_cohort(
        d / "c", text=csv_text([generic_row(i) for i in range(4)]).replace("test\n", "test,x,y\n", 1)),
        FATAL, stderr=["cohort.csv", "more fields than the header", "fix:"])
    b.check("short-row", "generic", lambda d: generic_cohort(
        d / "c", text=csv_text([generic_row(i) for i in range(4)]) + "C009,P9\n"), CASE_ERROR,
        problems=[ProblemSpec("error", 6, "image_path", "blank")], usable=4)
    b.check("bom-only-file", "generic", lambda d: generic_cohort(d / "c", text=b"\xef\xbb\xbf"), FATAL,
            stderr=["cohort.csv", "empty", "fix:"])
    b.check("unterminated-quote", "generic", lambda d: generic_cohort(
        d / "c", text=csv_text([generic_row(i) for i in range(4)]) + 'C009,"P9,L9\n'),
        FATAL, stderr=["cohort.csv", "cannot parse csv", "fix:"])
    b.check("huge-csv-line", "generic", lambda d: generic_cohort(
        d / "c", rows=[generic_row(0, diagnosis="x" * 1_500_000)] + [generic_row(i) for i in range(1, 4)]),
        FATAL, stderr=["cohort.csv", "field larger than field limit", "fix:"])
    b.check("long-but-allowed-field", "generic", lambda d: generic_cohort(
        d / "c", rows=[{**generic_row(i), "notes": "n" * 200_000} for i in range(4)]), OK, usable=4)
    b.check("binary-garbage-csv", "generic", lambda d: generic_cohort(
        d / "c", text=bytes(range(256)) * 40), FATAL, stderr=["cohort.csv", "cannot parse csv", "fix:"])
    b.check("two-csvs-ambiguous", "generic", lambda d: generic_cohort(d / "c", name="a.csv") and
            generic_cohort(d / "c", name="b.csv", images=False), FATAL,
            stderr=["no cohort metadata found", "a.csv, b.csv", "fix:"])
    b.check("unknown-layout-csv", "generic", lambda d: generic_cohort(
        d / "c", text="foo,bar\n1,2\n") / "cohort.csv", FATAL, stderr=["cohort.csv", "not a recognised cohort layout", "fix:"])


def _encoding_cases(b: _Builder) -> None:
    rows = [generic_row(i) for i in range(4)]
    b.check("bom-prefixed", "generic", lambda d: generic_cohort(d / "c", text=b"\xef\xbb\xbf" + csv_text(rows).encode()),
            OK, usable=4)
    latin = csv_text([generic_row(0, body_site="épaule")] + rows[1:]).encode("cp1252")
    b.check("cp1252-encoded", "generic", lambda d: generic_cohort(d / "c", text=latin), WARNING,
            problems=[ProblemSpec("warning", 2, None, "not UTF-8")], usable=4)
    mixed = (csv_text([generic_row(0, body_site="Zürich")] + rows[1:2]).encode("utf-8")
             + csv_text([generic_row(2, body_site="Genève")] + rows[3:]).split("\n", 1)[1].encode("cp1252"))
    b.check("mixed-encodings", "generic", lambda d: generic_cohort(d / "c", text=mixed), WARNING,
            problems=[ProblemSpec("warning", 4, None, "line 4")], usable=4)
    b.check("semicolon-delimiter", "generic", lambda d: generic_cohort(d / "c", text=csv_text(rows, delimiter=";")),
            WARNING, problems=[ProblemSpec("warning", 1, None, "semicolon")], usable=4)
    b.check("tab-delimiter", "generic", lambda d: generic_cohort(d / "c", text=csv_text(rows, delimiter="\t")),
            WARNING, problems=[ProblemSpec("warning", 1, None, "tab")], usable=4)
    b.check("utf16-encoded", "generic", lambda d: generic_cohort(d / "c", text=csv_text(rows).encode("utf-16")),
            FATAL, stderr=["cohort.csv", "fix:"])


def _row_cases(b: _Builder) -> None:
    def rows(**changes: dict[str, str]) -> Callable[[Path], Path]:
        """Four good rows with per-row overrides keyed 'r<index>'."""
        return lambda d: generic_cohort(d / "c", rows=[generic_row(i, **changes.get(f"r{i}", {})) for i in range(4)])

    b.check("blank-and-nan-fields", "generic", rows(r1={"age": "", "sex": "NaN", "diagnosis": ""}), CASE_ERROR,
            problems=[ProblemSpec("error", 3, "diagnosis", "label missing")], usable=3)
    b.check("age-is-text", "generic", rows(r0={"age": "forty"}), WARNING,
            problems=[ProblemSpec("warning", 2, "age", "not a number")], usable=4)
    b.check("age-out-of-range", "generic", rows(r2={"age": "150"}), WARNING,
            problems=[ProblemSpec("warning", 4, "age", "outside 0-120")], usable=4)
    b.check("unknown-sex", "generic", rows(r3={"sex": "X?"}), WARNING,
            problems=[ProblemSpec("warning", 5, "sex", "unknown sex")], usable=4)
    b.check("unknown-skin-type", "generic", rows(r0={"skin_type": "VII"}), WARNING,
            problems=[ProblemSpec("warning", 2, "skin_type", "unknown skin type")], usable=4)
    b.check("duplicate-ids", "generic", rows(r2={"case_id": "C000"}), CASE_ERROR,
            problems=[ProblemSpec("error", 4, "case_id", "duplicate case id")], usable=3)
    b.check("case-insensitive-duplicate-ids", "generic", rows(r0={"case_id": "abc"}, r3={"case_id": "ABC"}),
            CASE_ERROR, problems=[ProblemSpec("error", 5, "case_id", "ignoring case")], usable=3)
    b.check("blank-case-id", "generic", rows(r1={"case_id": ""}), CASE_ERROR,
            problems=[ProblemSpec("error", 3, "case_id", "blank")], usable=3)
    b.check("label-is-text", "generic", lambda d: generic_cohort(d / "c", rows=[
        {**generic_row(i), "malignant": "maybe" if i == 1 else str(i % 2)} for i in range(4)]), CASE_ERROR,
        problems=[ProblemSpec("error", 3, "malignant", "not 0/1")], usable=3)
    b.check("lesion-in-two-splits", "generic", rows(r0={"lesion_id": "L1", "split": "train"},
                                                    r1={"lesion_id": "L1", "split": "test"}), WARNING,
            problems=[ProblemSpec("warning", 2, "split", "more than one split")], usable=4)
    b.check("blank-image-path", "generic", rows(r2={"image_path": ""}), CASE_ERROR,
            problems=[ProblemSpec("error", 4, "image_path", "blank")], usable=3)
    b.check("same-image-twice", "generic", rows(r1={"image_path": "images/C000.jpg"}), WARNING,
            problems=[ProblemSpec("warning", 3, "image_path", "several rows")], usable=4)


def _swap_image(index: int, write: Callable[[Path], object], rel: str | None = None) -> Callable[[Path], Path]:
    """Four good rows; row `index` points at `rel` (default its own jpg), written by `write`."""
    def build(d: Path) -> Path:
        rel_path = rel or f"images/C{index:03d}.jpg"
        rows = [generic_row(i, **({"image_path": rel_path} if i == index else {})) for i in range(4)]
        generic_cohort(d / "c", rows=rows)
        target = d / "c" / rel_path
        if target.exists() and rel is None:
            target.unlink()
        write(target)
        return d / "c"
    return build


def _image_cases(b: _Builder) -> None:
    b.check("missing-image", "generic", _swap_image(1, lambda p: None), CASE_ERROR,
            problems=[ProblemSpec("error", 3, "image_path", "not found")], usable=3)
    b.check("zero-byte-image", "generic", _swap_image(0, lambda p: p.write_bytes(b"")), CASE_ERROR,
            problems=[ProblemSpec("error", 2, "image_path", "0 bytes")], usable=3)
    b.check("truncated-jpeg", "generic", _swap_image(2, write_truncated_jpeg), CASE_ERROR,
            problems=[ProblemSpec("error", 4, "image_path", "truncated")], usable=3)
    b.check("non-image-file", "generic", _swap_image(3, lambda p: p.write_text("hello, I am a text file\n")),
            CASE_ERROR, problems=[ProblemSpec("error", 5, "image_path", "not a readable image")], usable=3)
    b.check("image-path-is-folder", "generic", _swap_image(1, lambda p: p.mkdir(), "images/sub"),
            CASE_ERROR, problems=[ProblemSpec("error", 3, "image_path", "sub")], usable=3)
    b.check("decompression-bomb", "generic", _swap_image(0, lambda p: write_png_header(p, 100_000, 100_000),
                                                         "images/bomb.png"),
            CASE_ERROR, problems=[ProblemSpec("error", 2, "image_path", "decompression bomb")], untrusted=True, usable=3)
    b.check("over-pixel-limit", "generic", _swap_image(1, lambda p: write_png_header(p, 12_000, 9_000),
                                                       "images/huge.png"),
            CASE_ERROR, problems=[ProblemSpec("error", 3, "image_path", "pixel limit")], untrusted=True, usable=3)
    b.check("png-with-jpg-extension", "generic", _swap_image(0, lambda p: write_image(p, "png")), OK, usable=4)
    for kind in ("cmyk", "gray16", "gray", "rgba", "exif"):
        b.check(f"{kind}-image", "generic", _swap_image(1, lambda p, k=kind: write_image(p, k),
                                                        f"images/x.{'png' if kind in ('gray16', 'gray', 'rgba') else 'jpg'}"),
                OK, usable=4)

    def formats(d: Path) -> Path:
        rows = [generic_row(0)] + [generic_row(i, image_path=f"images/f{i}.{k}")
                                   for i, k in ((1, "gif"), (2, "tiff"), (3, "webp"))]
        generic_cohort(d / "c", rows=rows)
        for i, kind in ((1, "gif"), (2, "tiff"), (3, "webp")):
            write_image(d / "c" / "images" / f"f{i}.{kind}", kind)
        return d / "c"
    b.check("gif-tiff-webp", "generic", formats, OK, usable=4)

    def names(d: Path) -> Path:
        rels = ["images/with space.jpg", "images/ünïcødé 病変.jpg", "images/C002.jpg", "images\\C003.jpg"]
        generic_cohort(d / "c", rows=[generic_row(i, image_path=r) for i, r in enumerate(rels)])
        for rel in rels[:2]:
            write_image(d / "c" / rel)
        return d / "c"
    b.check("spaces-unicode-backslash-names", "generic", names, OK, usable=4)


def _path_cases(b: _Builder) -> None:
    def outside(rel: Callable[[Path], str], link: bool = False, loop: bool = False) -> Callable[[Path], Path]:
        def build(d: Path) -> Path:
            secret = write_image(d / "outside" / "secret.jpg")
            value = rel(d)
            rows = [generic_row(i, **({"image_path": value} if i == 1 else {})) for i in range(4)]
            generic_cohort(d / "c", rows=rows)
            if link:
                os.symlink(secret, d / "c" / "images" / "link.jpg")
            if loop:
                os.symlink("loop_b.jpg", d / "c" / "images" / "loop_a.jpg")
                os.symlink("loop_a.jpg", d / "c" / "images" / "loop_b.jpg")
            return d / "c"
        return build

    expect = dict(outcome=CASE_ERROR, untrusted=True, usable=3)
    b.check("dotdot-path", "generic", outside(lambda d: "../outside/secret.jpg"),
            problems=[ProblemSpec("error", 3, "image_path", "outside the cohort folder")], **expect)
    b.check("absolute-path-outside", "generic", outside(lambda d: str(d / "outside" / "secret.jpg")),
            problems=[ProblemSpec("error", 3, "image_path", "outside the cohort folder")], **expect)
    b.check("symlink-leaving-root", "generic", outside(lambda d: "images/link.jpg", link=True),
            problems=[ProblemSpec("error", 3, "image_path", "outside the cohort folder")], **expect)
    b.check("symlink-loop", "generic", outside(lambda d: "images/loop_a.jpg", loop=True),
            problems=[ProblemSpec("error", 3, "image_path", "cannot be resolved")], **{**expect, "untrusted": False})
    b.check("dotdot-inside-root", "generic", outside(lambda d: "images/../images/C001.jpg"), OK, usable=4)


def _synth(folder: Path, layout: str, n: int = 4) -> Path:
    from cohorts.synth import SynthSpec, write_synthetic

    write_synthetic(SynthSpec(n=n, seed=3, image_size=32, prevalence=0.5), folder, layout)
    return folder


def _edit_csv(path: Path, edit: Callable[[list[dict[str, str]]], None], drop: str | None = None) -> None:
    import csv

    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    header = [h for h in rows[0] if h != drop]
    edit(rows)
    path.write_text(csv_text(rows, header), encoding="utf-8")


def _layout_case(b: _Builder, name: str, layout: str, meta: str, outcome: str,
                 edit: Callable[[list[dict[str, str]]], None] = lambda rows: None, drop: str | None = None,
                 after: Callable[[Path], None] = lambda d: None, **expect) -> None:
    def build(d: Path) -> Path:
        _synth(d / "c", layout)
        if meta:
            _edit_csv(d / "c" / meta, edit, drop)
        after(d / "c")
        return d / "c"
    b.check(name, layout, build, outcome, **expect)


def _set(row: int, column: str, value: str) -> Callable[[list[dict[str, str]]], None]:
    return lambda rows: rows[row].__setitem__(column, value)


def _public_layout_cases(b: _Builder) -> None:
    isic_meta, isic_truth = "ISIC_2019_Training_Metadata.csv", "ISIC_2019_Training_GroundTruth.csv"
    _layout_case(b, "isic2019-missing-ground-truth", "isic2019", "", WARNING,
                 after=lambda d: (d / isic_truth).unlink(),
                 problems=[ProblemSpec("warning", None, None, "without labels")], usable=4)
    _layout_case(b, "isic2019-two-classes-in-truth", "isic2019", isic_truth, CASE_ERROR,
                 edit=lambda rows: rows[1].update(MEL="1.0", NV="1.0", BCC="0.0", BKL="0.0", DF="0.0", VASC="0.0"),
                 problems=[ProblemSpec("error", 3, None, "exactly one 1.0", file=isic_truth)])
    _layout_case(b, "isic2019-missing-age-column", "isic2019", isic_meta, FATAL, drop="age_approx",
                 stderr=[isic_meta, "age_approx", "fix:"])
    _layout_case(b, "isic2019-missing-image", "isic2019", "", CASE_ERROR,
                 after=lambda d: next((d / "ISIC_2019_Training_Input").glob("*.jpg")).unlink(),
                 problems=[ProblemSpec("error", None, "image_path", "not found")], usable=3)
    _layout_case(b, "isic2020-target-is-text", "isic2020", "train.csv", CASE_ERROR, edit=_set(0, "target", "maybe"),
                 problems=[ProblemSpec("error", 2, "malignant", "not 0/1")], usable=3)
    _layout_case(b, "isic2020-no-jpeg-folder", "isic2020", "", FATAL,
                 after=lambda d: __import__("shutil").rmtree(d / "jpeg"), stderr=["train.csv", "fix:"])
    _layout_case(b, "ham10000-image-in-no-part", "ham10000", "HAM10000_metadata.csv", CASE_ERROR,
                 edit=_set(2, "image_id", "ISIC_missing"),
                 problems=[ProblemSpec("error", 4, "image_path", "not found")], usable=3)
    _layout_case(b, "ham10000-blank-dx", "ham10000", "HAM10000_metadata.csv", CASE_ERROR, edit=_set(0, "dx", ""),
                 problems=[ProblemSpec("error", 2, "diagnosis", "label missing")], usable=3)
    _layout_case(b, "padufes-bad-fitzpatrick", "padufes20", "metadata.csv", WARNING, edit=_set(1, "fitspatrick", "7"),
                 problems=[ProblemSpec("warning", 3, "skin_type", "unknown skin type")], usable=4)
    _layout_case(b, "padufes-age-text", "padufes20", "metadata.csv", WARNING, edit=_set(3, "age", "unknown"),
                 problems=[ProblemSpec("warning", 5, "age", "not a number")], usable=4)
    _layout_case(b, "ddi-label-unsure", "ddi", "ddi_metadata.csv", CASE_ERROR, edit=_set(0, "malignant", "unsure"),
                 problems=[ProblemSpec("error", 2, "malignant", "not 0/1")], usable=3)
    _layout_case(b, "ddi-dotdot-file", "ddi", "ddi_metadata.csv", CASE_ERROR,
                 edit=_set(3, "DDI_file", "../../etc/passwd"), untrusted=True,
                 problems=[ProblemSpec("error", 5, "image_path", "outside the cohort folder")], usable=3)


# ---------------------------------------------------------------------------- checkpoints
class Payload:
    """Unpickling this creates `marker`: the proof that a loader ran code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_pickle_payload(path: Path, marker: Path, legacy: bool = False) -> Path:
    """A .pt whose unpickling would create `marker` (torch zip format, or a raw legacy pickle)."""
    if legacy:
        path.write_bytes(pickle.dumps({"weight": Payload(marker)}, protocol=2))
    else:
        import torch

        torch.save({"state_dict": {"weight": Payload(marker)}}, path)
    return path


def base_checkpoint(folder: Path, cohort: Path) -> Path:
    """An untrained tiny checkpoint (test_efficientnet, 32 px) whose encoder fits `cohort`."""
    from cohorts.cohort import load_cohort
    from engine.checkpoint import save_checkpoint
    from engine.data import Preprocessing
    from engine.features import MetadataEncoder
    from engine.model import FusionModel, ModelConfig
    import torch

    torch.manual_seed(0)
    encoder = MetadataEncoder().fit(load_cohort(cohort).cases)
    model = FusionModel(ModelConfig(backbone="test_efficientnet", meta_dim=encoder.dim))
    return save_checkpoint(folder, model, encoder=encoder, preprocessing=Preprocessing(image_size=32),
                           class_names=["benign", "malignant"], task="binary", extra={"seed": 0})


def _sidecar_edit(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        data = json.loads((folder / "model.json").read_text())
        edit(data)
        (folder / "model.json").write_text(json.dumps(data))
    return apply


def _rehash(folder: Path) -> None:
    from engine.runfolder import sha256_file

    _sidecar_edit(lambda d: d.__setitem__("weights_sha256", sha256_file(folder / "model.safetensors")))(folder)


def _weights_edit(edit: Callable[[bytes], bytes], rehash: bool = True) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        path = folder / "model.safetensors"
        path.write_bytes(edit(path.read_bytes()))
        if rehash:
            _rehash(folder)
    return apply


def _wrong_shapes(folder: Path) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / "model.safetensors"))
    key = next(k for k in state if k.startswith("head") and k.endswith("weight"))
    state[key] = state[key].reshape(-1)[: state[key].numel() // 2].reshape(-1, 1).contiguous()
    save_file(state, str(folder / "model.safetensors"))
    _rehash(folder)


def _torch_save(obj_factory: Callable[[], object]) -> Callable[[Path], Path]:
    def write(path: Path) -> Path:
        import torch

        torch.save(obj_factory(), path)
        return path
    return write


def _checkpoint_cases(b: _Builder, cohort: Path, base: Path) -> None:
    import shutil

    def case(name: str, mutate: Callable[[Path], object] | None, stderr: list[str], *, target: str = "",
             untrusted: bool = False, marker: Path | None = None, known_bug: str | None = None) -> None:
        folder = b.folder("checkpoints", name)
        ckpt = folder / "model"
        shutil.copytree(base, ckpt)
        if mutate:
            mutate(ckpt)
        path = ckpt / target if target else ckpt
        argv = ["validate", "--cohort", str(cohort), "--checkpoint", str(path), "--out", str(folder / "run"),
                "--mc-samples", "2", "--n-boot", "20", "--batch-size", "8", "--workers", "0", "--no-gradcam"]
        b.cases.append(CorpusCase(name, "checkpoint", "checkpoint", argv, FATAL, stderr=stderr + ["fix:"]
                                  if "refused" not in stderr[0] else stderr, readonly=ckpt, untrusted=untrusted,
                                  marker=marker, known_bug=known_bug))

    case("weights-missing", lambda c: (c / "model.safetensors").unlink(), ["model.safetensors", "not found"])
    case("sidecar-missing", lambda c: (c / "model.json").unlink(), ["model.json", "sidecar"])
    case("sidecar-not-json", lambda c: (c / "model.json").write_text("{not json"), ["model.json", "not valid json"])
    case("sidecar-lacks-keys", _sidecar_edit(lambda d: d.pop("architecture")), ["model.json", "lacks architecture"])
    case("sidecar-meta-dim-inconsistent", _sidecar_edit(lambda d: d["architecture"].__setitem__("meta_dim", 3)),
         ["model.json", "metadata features"])
    case("sidecar-unknown-field", _sidecar_edit(lambda d: d["architecture"].__setitem__("wings", 2)),
         ["model.json", "inconsistent"])
    case("sidecar-bad-image-size", _sidecar_edit(lambda d: d["preprocessing"].__setitem__("image_size", "big")),
         ["model.json", "inconsistent"])
    case("sidecar-unknown-backbone", _sidecar_edit(lambda d: d["architecture"].__setitem__("backbone", "no_such_net")),
         ["no_such_net", "fix:"])
    case("sidecar-more-outputs", _sidecar_edit(lambda d: d["architecture"].__setitem__("n_outputs", 3)),
         ["model.safetensors", "do not fit"])
    case("sha-mismatch", _weights_edit(lambda data: data[:-8] + bytes(8), rehash=False),
         ["model.safetensors", "does not match"], untrusted=True)
    case("truncated-safetensors", _weights_edit(lambda data: data[: len(data) // 2]),
         ["model.safetensors", "damaged"])
    case("zero-byte-safetensors", _weights_edit(lambda data: b""), ["model.safetensors", "damaged"])
    case("garbage-safetensors-header", _weights_edit(lambda data: b"\xff" * 8 + b"{garbage" + data[16:]),
         ["model.safetensors", "damaged"])
    case("wrong-shapes", _wrong_shapes, ["model.safetensors", "do not fit"])
    case("checkpoint-path-missing", lambda c: shutil.rmtree(c), ["not found"])
    for legacy in (False, True):
        name = "pickle-payload-legacy" if legacy else "pickle-payload-zip"
        marker = b.folder("checkpoints", name) / "PWNED"

        def mutate(c: Path, legacy: bool = legacy, marker: Path = marker) -> None:
            write_pickle_payload(c / "evil.pt", marker, legacy)
            shutil.copy(c / "model.json", c / "evil.json")
        case(name, mutate, ["refused to load", "evil.pt"], target="evil.pt", untrusted=True, marker=marker)
    case("pt-not-a-state-dict", lambda c: (_torch_save(lambda: {"weight": 1, "note": "hi"})(c / "odd.pt"),
                                           shutil.copy(c / "model.json", c / "odd.json")),
         ["odd.pt", "plain state dict"], target="odd.pt")


# ---------------------------------------------------------------------------- run folders
def fake_run(folder: Path, n: int = 6) -> Path:
    """A minimal complete-looking run folder (run.json, predictions.parquet, metrics.json)."""
    import numpy as np
    import pandas as pd
    from engine.runfolder import RunFolder

    run = RunFolder(folder).ensure()
    run.write_json("run", {"name": folder.name, "status": "complete", "started": "2024-01-01T00:00:00",
                           "cohort": {"path": "x", "n_cases": n}})
    frame = pd.DataFrame({"case_id": [f"c{i}" for i in range(n)], "truth": np.arange(n) % 2,
                          "p_mean": np.linspace(0.1, 0.9, n), "p_std": 0.1, "flagged": False,
                          "image_path": "img.jpg", "age": 50.0, "sex": "male"})
    run.write_predictions(frame)
    run.write_json("metrics", {"overall": {"auc": {"value": 0.75}}})
    run.write_json("integrity", {"score": 90})
    return folder


def _run_cases(b: _Builder, cohort: Path, base: Path) -> None:
    def study_from(name: str, mutate: Callable[[Path], object], stderr: list[str],
                   known_bug: str | None = None) -> None:
        folder = b.folder("runs", name)
        run = fake_run(folder / "run")
        mutate(run)
        argv = ["reader", "create", "--from", str(run), "--out", str(folder / "out" / "study.sqlite")]
        b.cases.append(CorpusCase(name, "run", "run", argv, FATAL, stderr=stderr, readonly=run, known_bug=known_bug))

    study_from("predictions-missing", lambda r: (r / "predictions.parquet").unlink(),
               ["predictions.parquet", "fix:"])
    study_from("predictions-garbage", lambda r: (r / "predictions.parquet").write_bytes(b"PAR1" + os.urandom(200)),
               ["predictions.parquet", "cannot read"])
    study_from("predictions-truncated", lambda r: (r / "predictions.parquet").write_bytes(
        (r / "predictions.parquet").read_bytes()[:300]), ["predictions.parquet", "cannot read"])
    study_from("predictions-lack-truth", lambda r: __import__("pandas").read_parquet(r / "predictions.parquet")
               .drop(columns="truth").to_parquet(r / "predictions.parquet"), ["predictions.parquet", "truth"])

    def listing(name: str, mutate: Callable[[Path], object], outcome: str, stdout: list[str] = (),
                stderr: list[str] = (), known_bug: str | None = None) -> None:
        folder = b.folder("runs", name)
        run = fake_run(folder / "runs" / "r1")
        mutate(run)
        b.cases.append(CorpusCase(name, "run", "run", ["runs", "list", str(folder / "runs"), "--json"], outcome,
                                  stdout=list(stdout), stderr=list(stderr), readonly=folder / "runs",
                                  known_bug=known_bug))

    listing("run-json-corrupt-listed", lambda r: (r / "run.json").write_text('{"name": "r1", '), WARNING,
            stdout=['"unreadable"'])
    listing("metrics-json-corrupt-listed", lambda r: (r / "metrics.json").write_text("[1, 2"), OK,
            stdout=['"auc": null'])
    listing("run-json-not-an-object", lambda r: (r / "run.json").write_text("[]"), WARNING,
            stdout=['"unreadable"'])
    listing("integrity-json-not-an-object", lambda r: (r / "integrity.json").write_text('"ok"'), OK,
            stdout=['"integrity": null'])

    def revalidate(name: str, mutate: Callable[[Path], object], stderr: list[str],
                   known_bug: str | None = None) -> None:
        folder = b.folder("runs", name)
        run = fake_run(folder / "run")
        mutate(run)
        argv = ["validate", "--cohort", str(cohort), "--checkpoint", str(base), "--out", str(run),
                "--mc-samples", "2", "--n-boot", "20", "--workers", "0", "--no-gradcam"]
        b.cases.append(CorpusCase(name, "run", "run", argv, FATAL, stderr=stderr, readonly=run, known_bug=known_bug))

    revalidate("out-run-json-corrupt", lambda r: (r / "run.json").write_text("{\"identity\": "),
               ["run.json", "not valid json", "fix:"])
    revalidate("out-holds-other-run", lambda r: None, ["different run", "fix:"])
    revalidate("out-run-json-not-an-object", lambda r: (r / "run.json").write_text("[1]"), ["run.json", "fix:"])


# ---------------------------------------------------------------------------- study files
def real_study(path: Path) -> Path:
    import numpy as np
    import pandas as pd
    from engine.readers.study import create_study

    cases = pd.DataFrame({"case_id": [f"c{i}" for i in range(8)], "truth": np.arange(8) % 2,
                          "image_path": "img.jpg", "ai_probability": 0.5, "ai_uncertainty": 0.1,
                          "flagged": False, "gradcam_path": None, "metadata": "{}"})
    create_study(path, cases, readers=["ana"]).close()
    return path


def _foreign_sqlite(path: Path, app_id: int = 0, version: int = 0, tables: bool = True) -> Path:
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA application_id = {app_id}")
    con.execute(f"PRAGMA user_version = {version}")
    if tables:
        con.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        con.execute("INSERT INTO invoices VALUES (1, 9.5)")
    con.commit()
    con.close()
    return path


def _corrupt_pages(path: Path) -> Path:
    data = bytearray(path.read_bytes())
    for offset in range(4096, len(data), 4096):  # keep the header page; wreck the b-tree pages
        data[offset: offset + 64] = b"\xa5" * 64
    path.write_bytes(bytes(data))
    return path


def _study_cases(b: _Builder) -> None:
    from engine.readers.study import APPLICATION_ID

    def case(name: str, build: Callable[[Path], object], stderr: list[str], known_bug: str | None = None) -> None:
        folder = b.folder("studies", name)
        path = folder / "study.sqlite"
        build(path)
        b.cases.append(CorpusCase(name, "study", "study", ["reader", "status", str(path)], FATAL,
                                  stderr=stderr, readonly=folder, known_bug=known_bug))

    case("study-random-bytes", lambda p: p.write_bytes(os.urandom(8192)), ["study.sqlite", "not a readable study"])
    case("study-zero-bytes", lambda p: p.write_bytes(b""), ["study.sqlite", "foreign"])
    case("study-foreign-sqlite", _foreign_sqlite, ["study.sqlite", "foreign sqlite"])
    case("study-newer-schema", lambda p: _foreign_sqlite(p, APPLICATION_ID, 99), ["study.sqlite", "newer"])
    case("study-truncated", lambda p: p.write_bytes(real_study(p).read_bytes()[:5000]), ["study.sqlite", "not a readable"])
    case("study-corrupt-pages", lambda p: _corrupt_pages(real_study(p)), ["study.sqlite", "damaged"])
    case("study-is-a-folder", lambda p: p.mkdir(), ["study.sqlite", "not found"])
    case("study-our-id-no-tables", lambda p: _foreign_sqlite(p, APPLICATION_ID, 1, tables=False),
         ["study.sqlite", "fix:"])


# ---------------------------------------------------------------------------- entry points
def build_corpus(root: Path, kinds: tuple[str, ...] = ("cohort", "checkpoint", "run", "study")) -> list[CorpusCase]:
    """Write every malformed input under `root` and return the cases, with their expected outcomes."""
    root = Path(root)
    b = _Builder(root)
    if "cohort" in kinds:
        _cohort_cases(b)
    if {"checkpoint", "run"} & set(kinds):
        good = generic_cohort(root / "good" / "cohort", n=8)
        base = base_checkpoint(root / "good" / "checkpoint", good)
        if "checkpoint" in kinds:
            _checkpoint_cases(b, good, base)
        if "run" in kinds:
            _run_cases(b, good, base)
    if "study" in kinds:
        _study_cases(b)
    return b.cases


def snapshot(folder: Path | None) -> dict[str, tuple]:
    """Every entry under `folder` (not following links) with its type, size and mtime."""
    if folder is None or not os.path.lexists(folder):
        return {}
    found: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            found[os.path.relpath(path, folder)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return found


def _matches(problem: dict, spec: ProblemSpec) -> bool:
    if problem["severity"] != spec.severity or spec.text.lower() not in problem["message"].lower():
        return False
    if spec.row is not None and problem["row"] != spec.row:
        return False
    if spec.column is not None and problem["column"] != spec.column:
        return False
    return spec.file is None or Path(problem["file"]).name == spec.file


def evaluate(case: CorpusCase, code: int, out: str, err: str, before: dict, after: dict) -> list[str]:
    """Why this run of the case did not meet its declared outcome ([] when it did)."""
    failures: list[str] = []
    if code != case.exit_code:
        failures.append(f"exit code {code}, expected {case.exit_code}")
    if "Traceback" in err or "Traceback" in out:
        failures.append("a traceback reached the user")
    for text in case.stderr:
        if text.lower() not in err.lower():
            failures.append(f"stderr lacks {text!r}")
    for text in case.stdout:
        if text.lower() not in out.lower():
            failures.append(f"stdout lacks {text!r}")
    if case.kind == "cohort" and case.outcome != FATAL:
        failures += _check_report(case, out)
    if before != after:
        changed = sorted(set(before.items()) ^ set(after.items()))
        failures.append(f"input folder changed: {changed[:4]}")
    if case.marker is not None and case.marker.exists():
        failures.append(f"code from the file ran: {case.marker} exists")
    return failures


def _check_report(case: CorpusCase, out: str) -> list[str]:
    try:
        report = json.loads(out)
    except ValueError:
        return ["stdout is not the JSON problem report"]
    failures = []
    problems = report["problems"]
    for spec in case.problems:
        if not any(_matches(p, spec) for p in problems):
            failures.append(f"no problem like {spec} in {problems[:5]}")
    errors = [p for p in problems if p["severity"] == "error"]
    if case.outcome in (OK, WARNING) and errors:
        failures.append(f"unexpected errors: {errors[:3]}")
    if case.outcome == OK and problems:
        failures.append(f"unexpected problems: {problems[:3]}")
    if case.usable is not None and report["usable"] != case.usable:
        failures.append(f"usable {report['usable']}, expected {case.usable}")
    return failures


def invoke(argv: list[str]) -> tuple[int, str, str, BaseException | None]:
    """Run `bsx argv` in-process, capturing stdout/stderr; a crash is returned, not raised."""
    from tui.cli import main

    out, err = io.StringIO(), io.StringIO()
    crash = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
        except Exception as exc:  # a crash: exactly what the corpus hunts for
            crash, code = exc, -1
    return code, out.getvalue(), err.getvalue(), crash


def run_case(case: CorpusCase) -> list[str]:
    """Run one case through the CLI and return its failures."""
    before = snapshot(case.readonly)
    code, out, err, crash = invoke(case.argv)
    failures = evaluate(case, code, out, err, before, snapshot(case.readonly))
    if crash is not None:
        failures.insert(0, f"crashed: {crash.__class__.__name__}: {crash}")
    return failures


def corpus_params(kinds: tuple[str, ...]) -> list:
    """pytest params, one per case, built once into a temp folder removed at exit; known bugs are strict xfails."""
    import atexit
    import shutil
    import tempfile

    import pytest

    root = Path(tempfile.mkdtemp(prefix="bsx-corpus-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return [pytest.param(case, id=case.name, marks=[pytest.mark.xfail(strict=True, reason=case.known_bug)]
                         if case.known_bug else []) for case in build_corpus(root, kinds)]


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m tests.corpus.make_corpus OUT_DIR", file=sys.stderr)
        return 2
    os.environ.setdefault("BSX_CACHE_DIR", str(Path(args[0]) / ".cache"))
    cases = build_corpus(Path(args[0]))
    by_kind: dict[str, int] = {}
    for case in cases:
        by_kind[case.kind] = by_kind.get(case.kind, 0) + 1
    print(f"wrote {len(cases)} cases to {args[0]}: " + ", ".join(f"{k} {v}" for k, v in by_kind.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
