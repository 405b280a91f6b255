"""Row validation: each bad row is reported with file, row, column and a fix."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from cohorts.cohort import load_cohort
from cohorts.errors import BsxError
from cohorts.synth import SynthSpec, write_synthetic

HEADER = "case_id,patient_id,lesion_id,image_path,age,sex,skin_type,diagnosis,site,body_site,split"


@pytest.fixture()
def cohort_dir(tmp_path) -> Path:
    folder = tmp_path / "cohort"
    write_synthetic(SynthSpec(n=4, seed=1, image_size=32), folder)
    return folder


def write_rows(folder: Path, rows: list[str], header: str = HEADER, name: str = "cohort.csv") -> Path:
    path = folder / name
    path.write_text("\n".join([header] + rows) + "\n")
    return path


def image(folder: Path, k: int = 0) -> str:
    return f"images/{sorted(p.name for p in (folder / 'images').iterdir())[k]}"


def problems_of(folder: Path, **kwargs):
    cohort = load_cohort(folder, **kwargs)
    return cohort, {(p.row, p.column, p.severity) for p in cohort.problems}


def test_each_bad_row_is_named(cohort_dir, tmp_path):
    outside = tmp_path / "outside.jpg"
    outside.write_bytes((cohort_dir / image(cohort_dir)).read_bytes())
    (cohort_dir / "images" / "empty.jpg").write_bytes(b"")
    os.symlink(outside, cohort_dir / "images" / "link.jpg")
    rows = [
        f"a,P1,L1,{image(cohort_dir, 0)},50,male,II,nevus,A,back,train",
        f"A,P2,L2,{image(cohort_dir, 1)},40,female,II,nevus,A,back,train",      # duplicate id (case-insensitive)
        f"b,P3,L3,{image(cohort_dir, 2)},150,female,II,nevus,A,back,train",     # age out of range
        f"c,P4,L4,{image(cohort_dir, 3)},40,alien,II,nevus,A,back,train",       # unknown sex
        f"d,P5,L5,{image(cohort_dir, 0)},40,male,II,,A,back,train",             # label missing
        "e,P6,L6,images/missing.jpg,40,male,II,nevus,A,back,train",            # missing image
        "f,P7,L7,images/empty.jpg,40,male,II,nevus,A,back,train",              # zero bytes
        "g,P8,L8,../outside.jpg,40,male,II,nevus,A,back,train",                # escapes root
        f"h,P9,L9,{outside},40,male,II,nevus,A,back,train",                     # absolute outside
        "i,P10,L10,images/link.jpg,40,male,II,nevus,A,back,train",             # symlink leaving root
        f"j,P11,L1,{image(cohort_dir, 1)},40,male,II,nevus,A,back,test",        # lesion L1 in two splits
        f"k,P12,L12,{image(cohort_dir, 2)},abc,male,XI,nevus,A,back,train",    # text age, bad skin type
    ]
    write_rows(cohort_dir, rows)
    cohort, found = problems_of(cohort_dir)
    expected = {
        (3, "case_id", "error"), (4, "age", "warning"), (5, "sex", "warning"), (6, "diagnosis", "error"),
        (7, "image_path", "error"), (8, "image_path", "error"), (9, "image_path", "error"),
        (10, "image_path", "error"), (11, "image_path", "error"), (12, "split", "warning"),
        (13, "age", "warning"), (13, "skin_type", "warning"),
    }
    assert expected <= found
    assert all(p.file.endswith("cohort.csv") and p.message for p in cohort.problems)
    assert cohort.cases.loc[2, "age"] != cohort.cases.loc[2, "age"]  # out-of-range age blanked, not kept
    usable_ids = set(cohort.usable_cases["case_id"])
    assert {"a", "b", "c", "j", "k"} <= usable_ids and not usable_ids & {"A", "d", "e", "f", "g", "h", "i"}


def test_outside_root_allowed_with_flag(cohort_dir, tmp_path):
    outside = tmp_path / "outside.jpg"
    outside.write_bytes((cohort_dir / image(cohort_dir)).read_bytes())
    write_rows(cohort_dir, [f"a,P1,L1,{outside},50,male,II,nevus,A,back,train"])
    assert load_cohort(cohort_dir).counts()["error"] == 1
    assert load_cohort(cohort_dir, allow_outside_root=True).counts()["error"] == 0


@pytest.mark.parametrize("content, fragment", [
    (b"", "empty"),
    (HEADER.encode() + b"\n", "no data rows"),
    (b"patient_id,image_path\nP1,x.jpg\n", "missing required column"),
])
def test_unreadable_files_raise_clear_errors(cohort_dir, content, fragment):
    (cohort_dir / "cohort.csv").write_bytes(content)
    with pytest.raises(BsxError) as info:
        load_cohort(cohort_dir / "cohort.csv", layout="generic")
    assert fragment in str(info.value) and "cohort.csv" in str(info.value)


def test_bom_semicolon_and_latin1_are_read_with_warnings(cohort_dir):
    row = f"a;P1;L1;{image(cohort_dir)};50;male;II;nevus;Zürich;back;train"
    (cohort_dir / "cohort.csv").write_bytes(("\n".join([HEADER.replace(",", ";"), row]) + "\n").encode("cp1252"))
    cohort = load_cohort(cohort_dir)
    assert cohort.cases.loc[0, "site"] == "Zürich"
    messages = " ".join(p.message for p in cohort.problems)
    assert "semicolon" in messages and "not UTF-8" in messages
    (cohort_dir / "cohort.csv").write_bytes(b"\xef\xbb\xbf" + ("\n".join([HEADER, row.replace(";", ",")]) + "\n").encode())
    cohort = load_cohort(cohort_dir)
    assert cohort.cases.loc[0, "case_id"] == "a" and cohort.counts()["warning"] == 0


def test_image_checks_report_undecodable_images(cohort_dir):
    target = cohort_dir / image(cohort_dir, 0)
    target.write_bytes(target.read_bytes()[:200])  # truncated JPEG
    (cohort_dir / image(cohort_dir, 1)).write_text("not an image")
    cohort = load_cohort(cohort_dir, images=True)
    bad = {p.case_id for p in cohort.problems if p.severity == "error"}
    assert len(bad) == 2 and cohort.usable.sum() == 2


def test_reading_never_writes_into_the_cohort(cohort_dir):
    before = {p: p.stat().st_mtime_ns for p in cohort_dir.rglob("*")}
    cohort = load_cohort(cohort_dir, images=True)
    _ = cohort.fingerprint
    assert {p: p.stat().st_mtime_ns for p in cohort_dir.rglob("*")} == before


def test_an_image_that_overruns_its_decode_budget_is_reported_and_stopped(cohort_dir):
    from cohorts.images import check_images_bounded

    paths = [str(p) for p in sorted((cohort_dir / "images").iterdir())]
    seen = []
    assert check_images_bounded(paths, workers=1, progress=lambda done, total: seen.append((done, total))) == \
        [None] * len(paths)
    assert seen[-1] == (len(paths), len(paths))
    # A budget no decoder can meet stands in for a pathological file: each image is reported, none hangs.
    reasons = check_images_bounded(paths[:2], workers=1, timeout_s=1e-4)
    assert all(reason and "took longer" in reason and "fix:" in reason for reason in reasons)
