"""Malformed cohorts in every layout through `bsx cohort check --json`: the declared outcome, no traceback,
the cohort folder untouched."""
from __future__ import annotations

import os

import pytest

from tests.corpus.make_corpus import (
    OK, CorpusCase, corpus_params, run_case, snapshot, write_image, write_png_header, write_truncated_jpeg,
)
from tui.cli import main

LAYOUTS = ("generic", "isic2019", "isic2020", "ham10000", "padufes20", "ddi")


CASES = corpus_params(("cohort",))


@pytest.fixture(scope="module")
def corpus() -> dict[str, CorpusCase]:
    return {param.values[0].name: param.values[0] for param in CASES}


def test_corpus_is_large_and_covers_every_layout(corpus):
    assert len(corpus) >= 40
    assert {case.layout for case in corpus.values()} == set(LAYOUTS)
    assert {case.outcome for case in corpus.values()} >= {"fatal", "case-error", "warning", "ok"}


@pytest.mark.parametrize("case", CASES)
def test_malformed_cohort(case: CorpusCase):
    assert run_case(case) == []


def test_debug_flag_shows_the_traceback(corpus):
    case = corpus["empty-file"]
    from cohorts.errors import BsxError

    with pytest.raises(BsxError):
        main(["--debug"] + case.argv)


def test_image_variants_decode_to_rgb_and_exif_is_applied(tmp_path):
    from cohorts.images import load_rgb

    for kind in ("jpeg", "png", "gif", "tiff", "webp", "cmyk", "gray16", "gray", "rgba"):
        image = load_rgb(write_image(tmp_path / f"x.{kind}", kind))
        assert image.mode == "RGB" and image.size == (24, 24), kind
    assert load_rgb(write_image(tmp_path / "exif.jpg", "exif")).size == (16, 32)
    gray16 = load_rgb(tmp_path / "x.gray16")
    assert 0 < max(gray16.getextrema()[0]) < 255  # scaled, not clipped to white


def test_pathological_images_are_bounded_errors(tmp_path):
    from cohorts.images import ImageLoadError, load_rgb

    for path in (write_png_header(tmp_path / "bomb.png", 100_000, 100_000),
                 write_png_header(tmp_path / "huge.png", 12_000, 9_000),
                 write_truncated_jpeg(tmp_path / "cut.jpg")):
        with pytest.raises(ImageLoadError):
            load_rgb(path)
    with pytest.raises(ImageLoadError, match="pixel limit"):
        load_rgb(write_image(tmp_path / "small.jpg"), max_pixels=100)


def test_reading_a_cohort_never_writes_into_it(corpus):
    from cohorts.cohort import load_cohort

    case = corpus["gif-tiff-webp"]
    before = snapshot(case.readonly)
    cohort = load_cohort(case.argv[2], images=True)
    assert cohort.fingerprint and not cohort.counts()["error"]
    assert snapshot(case.readonly) == before
    assert case.outcome == OK


def test_allow_outside_root_flag_accepts_escapes(corpus, capsys):
    case = corpus["dotdot-path"]
    code = main(case.argv + ["--allow-outside-root"])
    assert code == 0, capsys.readouterr().out
    assert os.path.isfile(os.path.join(case.argv[2], "..", "outside", "secret.jpg"))
