"""Reader-study file: blinding, phase rules, resume after interruption, concurrency, bad files, interchange."""
from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from cohorts.errors import BsxError
from engine.readers.interchange import read_ratings, to_mrmc_data, write_ratings
from engine.readers.study import (
    Study, cases_from_cohort, cases_from_run, create_study, select_cases, utc_now,
)


def make_cases(n: int = 12, flagged: int = 0) -> pd.DataFrame:
    truth = np.arange(n) % 2
    return pd.DataFrame({
        "case_id": [f"c{k:02d}" for k in range(n)], "truth": truth, "image_path": "img.jpg",
        "ai_probability": np.linspace(0.05, 0.95, n), "ai_uncertainty": 0.1,
        "flagged": np.arange(n) < flagged, "gradcam_path": None, "metadata": '{"age": 50}',
    })


@pytest.fixture
def study(tmp_path: Path) -> Study:
    s = create_study(tmp_path / "study.sqlite", make_cases(), readers=["ana", "ben"], seed=3)
    yield s
    s.close()


def read_all(study: Study, reader: str, phase: str, *, stop_after: int | None = None) -> int:
    """Rate open cases in order with a deterministic score that tracks truth (so AUC > 0.5)."""
    truth = dict(zip(make_cases()["case_id"], make_cases()["truth"]))
    done = 0
    while (view := study.next_case(reader, phase)) is not None:
        assert view.case_id not in {r.case_id for r in study.ratings_of(reader) if r.phase == phase}
        bump = {"ana": 0, "ben": 7}[reader] + (10 if phase == "aided" else 0)
        score = 40 + 15 * truth[view.case_id] + (int(view.case_id[1:]) * 13 + bump) % 30
        study.rate(reader, view.case_id, phase, score, diagnosis="nevus", management="no biopsy", seconds=4.2)
        done += 1
        if stop_after is not None and done == stop_after:
            break
    return done


def test_file_is_owner_only_including_wal(study: Study):
    read_all(study, "ana", "unaided", stop_after=1)
    for path in study.path.parent.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path.name
    assert study._con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_two_readers_unaided_then_aided_with_interruption(tmp_path: Path):
    path = tmp_path / "study.sqlite"
    create_study(path, make_cases(), readers=["ana", "ben"], seed=3).close()
    first = Study(path)
    assert read_all(first, "ana", "unaided", stop_after=5) == 5
    seen_before = [r.case_id for r in first.ratings_of("ana")]
    first._con.close()  # the SSH session drops: no clean shutdown
    second = Study(path)
    assert [r.case_id for r in second.ratings_of("ana")] == seen_before  # nothing lost
    order = second.case_order("ana", "unaided")
    assert second.next_case("ana", "unaided").case_id == order[5]  # resumes where it stopped
    assert read_all(second, "ana", "unaided") == 7
    for reader, phase in (("ben", "unaided"), ("ana", "aided"), ("ben", "aided")):
        assert read_all(second, reader, phase) == 12
    assert all(p.rated == p.total == 12 for p in second.progress())
    result = second.analyze()
    assert result.modalities == ["unaided", "aided"] and result.readers == ["ana", "ben"]
    assert np.all(result.auc > 0.5) and np.all(result.auc < 1.0)
    assert np.isfinite(result.rrrc.global_test.p)
    with_ai = second.analyze(algorithm_reader="AI")
    cases = make_cases()
    assert with_ai.algorithm[0].auc == pytest.approx(roc_auc_score(cases["truth"], cases["ai_probability"]))
    assert with_ai.readers == ["ana", "ben"]
    second.close()


def test_blinding_and_aided_phase_opens_only_after_unaided(study: Study):
    view = study.next_case("ana", "unaided")
    assert view.ai_probability is None and view.gradcam_path is None and not hasattr(view, "truth")
    assert study.next_case("ana", "aided") is None  # nothing open yet
    with pytest.raises(BsxError, match="not open"):
        study.rate("ana", view.case_id, "aided", 50)
    study.rate("ana", view.case_id, "unaided", 50)
    aided = study.next_case("ana", "aided")
    assert aided.case_id == view.case_id and aided.ai_probability is not None
    assert study.next_case("ben", "aided") is None  # another reader's rating opens nothing for ben
    assert study.ratings_of("ben") == []  # and ben never sees ana's ratings


def test_ratings_are_final_and_validated(study: Study):
    case = study.next_case("ana", "unaided").case_id
    study.rate("ana", case, "unaided", 10)
    with pytest.raises(BsxError, match="already rated"):
        study.rate("ana", case, "unaided", 90)
    with pytest.raises(BsxError, match="outside the 0-100 scale"):
        study.rate("ben", case, "unaided", 101)
    with pytest.raises(BsxError, match="diagnosis"):
        study.rate("ben", case, "unaided", 10, diagnosis="wart")
    with pytest.raises(BsxError, match="not in the study"):
        study.rate("zoe", case, "unaided", 10)


def test_washout_and_admin_lock(tmp_path: Path):
    s = create_study(tmp_path / "w.sqlite", make_cases(), readers=["ana"], washout_days=14)
    case = s.next_case("ana", "unaided").case_id
    t0 = utc_now()
    s.rate("ana", case, "unaided", 40, now=t0)
    assert s.next_case("ana", "aided", now=t0 + timedelta(days=13)) is None
    assert s.next_case("ana", "aided", now=t0 + timedelta(days=14, seconds=1)).case_id == case
    s.set_phase_locked("unaided")
    with pytest.raises(BsxError, match="locked"):
        s.rate("ana", case, "unaided", 40)
    assert s.next_case("ana", "unaided") is None
    s.set_phase_locked("unaided", False)
    assert s.next_case("ana", "unaided") is not None
    s.close()


def test_case_order_is_seeded_per_reader(tmp_path: Path):
    a = create_study(tmp_path / "a.sqlite", make_cases(), readers=["ana", "ben"], seed=1)
    b = create_study(tmp_path / "b.sqlite", make_cases(), readers=["ben", "ana"], seed=1)
    assert a.case_order("ana", "unaided") == b.case_order("ana", "unaided")
    assert a.case_order("ana", "unaided") != a.case_order("ben", "unaided")
    assert sorted(a.case_order("ana", "aided")) == sorted(make_cases()["case_id"])
    a.close(), b.close()


def test_two_writers_at_once(tmp_path: Path):
    path = tmp_path / "study.sqlite"
    create_study(path, make_cases(40), readers=["ana", "ben"]).close()
    errors: list[BaseException] = []

    def session(reader: str) -> None:
        try:
            with Study(path) as s:
                while (view := s.next_case(reader, "unaided")) is not None:
                    s.rate(reader, view.case_id, "unaided", 50)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(r,)) for r in ("ana", "ben")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    with Study(path) as s:
        assert {(p.reader_id, p.rated) for p in s.progress() if p.phase == "unaided"} == {("ana", 40), ("ben", 40)}


def test_two_processes_write_at_once(tmp_path: Path):
    import multiprocessing as mp

    path = tmp_path / "study.sqlite"
    create_study(path, make_cases(30), readers=["ana", "ben"]).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_process_session, args=(str(path), r)) for r in ("ana", "ben")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0]
    with Study(path) as s:
        assert sorted(p.rated for p in s.progress() if p.phase == "unaided") == [30, 30]


def _process_session(path: str, reader: str) -> None:
    with Study(path) as s:
        while (view := s.next_case(reader, "unaided")) is not None:
            s.rate(reader, view.case_id, "unaided", 60)


def test_corrupt_and_foreign_files(tmp_path: Path):
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(BsxError, match="not a readable study"):
        Study(garbage)
    foreign = tmp_path / "foreign.sqlite"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE t (x)")
    con.commit(), con.close()
    with pytest.raises(BsxError, match="foreign SQLite"):
        Study(foreign)
    with pytest.raises(BsxError, match="not found"):
        Study(tmp_path / "missing.sqlite")
    create_study(tmp_path / "s.sqlite", make_cases()).close()
    with pytest.raises(BsxError, match="already exists"):
        create_study(tmp_path / "s.sqlite", make_cases())
    truncated = tmp_path / "t.sqlite"
    truncated.write_bytes((tmp_path / "s.sqlite").read_bytes()[:1500])
    with pytest.raises(BsxError):
        Study(truncated)


def test_create_refuses_bad_cases(tmp_path: Path):
    one_class = make_cases().assign(truth=1)
    with pytest.raises(BsxError, match="same truth"):
        create_study(tmp_path / "x.sqlite", one_class)
    assert not (tmp_path / "x.sqlite").exists()
    with pytest.raises(BsxError, match="0 or 1"):
        create_study(tmp_path / "y.sqlite", make_cases().assign(truth=2))


def test_cases_from_run_and_cohort(tmp_path: Path):
    run = tmp_path / "run"
    (run / "gradcam").mkdir(parents=True)
    pred = pd.DataFrame({"case_id": ["a", "b", "c", "d"], "truth": [0, 1, 0, 1], "p_mean": [0.1, 0.8, 0.3, 0.6],
                         "p_std": [0.01, 0.05, 0.2, 0.1], "flagged": [False, False, True, True],
                         "image_path": ["a.jpg", "b.jpg", "c.jpg", "d.jpg"], "age": [40, 50, None, 70],
                         "sex": ["f", "m", "f", "m"], "site": "x", "skin_type": "II", "body_site": "back"})
    pred.to_parquet(run / "predictions.parquet")
    (run / "gradcam" / "b.png").write_bytes(b"png")
    cases = cases_from_run(run)
    assert cases.loc[1, "gradcam_path"].endswith("b.png") and pd.isna(cases.loc[0, "gradcam_path"])
    assert cases.loc[2, "metadata"] == '{"age": null, "sex": "f", "site": "x", "skin_type": "II", "body_site": "back"}'
    picked = select_cases(cases, sample=2, enrich_flagged=True, seed=0)
    assert set(picked["case_id"]) == {"c", "d"}
    cohort = pd.DataFrame({"case_id": list("pqrs"), "image_path": "x.jpg", "malignant": [1, 0, 0, 1], "age": 30,
                           "sex": "f", "site": "s", "skin_type": "I", "body_site": "arm"})
    c = cases_from_cohort(cohort)
    assert c["truth"].tolist() == [1, 0, 0, 1] and c["ai_probability"].isna().all()
    with pytest.raises(BsxError, match="not a run folder"):
        cases_from_run(tmp_path)


def test_stratified_sample_keeps_class_balance():
    cases = make_cases(100).assign(truth=(np.arange(100) < 20).astype(int))
    picked = select_cases(cases, sample=10, seed=4)
    assert len(picked) == 10 and picked["truth"].sum() == 2
    assert picked["case_id"].tolist() != select_cases(cases, sample=10, seed=5)["case_id"].tolist()


# ---------------------------------------------------------------- interchange round trips and bad input

@pytest.mark.parametrize("fmt", ["csv", "imrmc", "lrc"])
def test_export_round_trip(study: Study, tmp_path: Path, fmt: str):
    for reader in ("ana", "ben"):
        read_all(study, reader, "unaided")
        read_all(study, reader, "aided")
    out = study.export(tmp_path / f"ratings.{fmt}")
    assert out.stat().st_mode & 0o777 == 0o600
    back = to_mrmc_data(read_ratings(out))
    direct = to_mrmc_data(study.ratings_frame())
    if fmt == "lrc":  # .lrc numbers cases normals-first by position
        order = np.r_[np.flatnonzero(direct.truth == 0), np.flatnonzero(direct.truth == 1)]
        np.testing.assert_allclose(back.ratings, direct.ratings[:, :, order])
    else:
        assert back.cases == direct.cases
        np.testing.assert_allclose(back.ratings, direct.ratings)
    assert back.readers == ["ana", "ben"] and back.modalities == ["unaided", "aided"]


def write_csv(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "r.csv"
    path.write_text("reader,modality,case,truth,rating\n" + "\n".join(rows) + "\n")
    return path


def test_bad_ratings_files_say_what_is_wrong(tmp_path: Path):
    good = [f"{r},m,{c},{c % 2},{(c * 7 + r) % 5 + c % 2}" for r in (1, 2) for c in range(1, 9)]
    assert to_mrmc_data(read_ratings(write_csv(tmp_path, good))).ratings.shape == (1, 2, 8)
    with pytest.raises(BsxError, match="incomplete ratings: reader 2 has no rating for 1 case"):
        to_mrmc_data(read_ratings(write_csv(tmp_path, good[:-1])))
    dropped = to_mrmc_data(read_ratings(write_csv(tmp_path, good[:-1])), drop_incomplete=True)
    assert dropped.ratings.shape == (1, 2, 7) and "dropped 1 case" in dropped.warnings[0]
    with pytest.raises(BsxError, match="duplicate"):
        to_mrmc_data(read_ratings(write_csv(tmp_path, good + [good[0]])))
    with pytest.raises(BsxError, match="no truth") as exc:
        read_ratings(write_csv(tmp_path, good[:3] + ["1,m,3,,4"] + good[4:]))
    assert exc.value.row == 5
    with pytest.raises(BsxError, match="conflicting truth"):
        to_mrmc_data(read_ratings(write_csv(tmp_path, [g if i else "1,m,1,0,3" for i, g in enumerate(good)])))
    with pytest.raises(BsxError, match="all 8 cases are normal"):
        to_mrmc_data(read_ratings(write_csv(tmp_path, [g.rsplit(",", 2)[0] + ",0," + g.rsplit(",", 1)[1]
                                                       for g in good])))
    with pytest.raises(BsxError, match="not a number"):
        read_ratings(write_csv(tmp_path, good[:2] + ["1,m,3,1,high"]))
    with pytest.raises(BsxError, match="unknown ratings format"):
        read_ratings(tmp_path / "r.csv", "xlsx")


def test_imrmc_without_truth_row_is_refused(tmp_path: Path):
    path = tmp_path / "x.imrmc"
    path.write_text("t\nBEGIN DATA:\n-1,1,truth,0\n0,1,A,3\n0,2,A,4\n")
    with pytest.raises(BsxError, match="no truth row"):
        read_ratings(path)


def test_lrc_refuses_incomplete_export(tmp_path: Path):
    frame = pd.DataFrame({"reader": ["a", "a", "b"], "modality": "m", "case": ["1", "2", "1"],
                          "truth": [0, 1, 0], "rating": [1.0, 2.0, 3.0]})
    with pytest.raises(BsxError, match="incomplete"):
        write_ratings(frame, tmp_path / "x.lrc")


def test_case_ratings_is_the_admin_view_across_readers_in_phase_order(study: Study):
    read_all(study, "ben", "unaided")
    read_all(study, "ana", "unaided")
    read_all(study, "ana", "aided", stop_after=12)
    case = study.case_ids()[0]
    rows = study.case_ratings(case)
    assert [(r["phase"], r["reader"]) for r in rows] == [("unaided", "ana"), ("unaided", "ben"), ("aided", "ana")]
    mine = {(r.phase, r.value, r.rated_at) for r in study.ratings_of("ana") if r.case_id == case}
    assert {(r["phase"], r["value"], r["timestamp"]) for r in rows if r["reader"] == "ana"} == mine
    assert set(rows[0]) == {"reader", "phase", "value", "diagnosis", "management", "note", "seconds", "timestamp"}
    assert rows[0]["diagnosis"] == "nevus" and rows[0]["seconds"] == 4.2
    with pytest.raises(BsxError, match="not in the study"):
        study.case_ratings("no-such-case")


def test_analyze_can_be_limited_to_finished_phases(study: Study):
    read_all(study, "ana", "unaided")
    read_all(study, "ben", "unaided")
    read_all(study, "ana", "aided", stop_after=3)
    with pytest.raises(BsxError, match="incomplete"):
        study.analyze()
    doc = study.analyze(phases=["unaided"]).to_json()
    assert doc["modalities"] == ["unaided"] and doc["readers"] == ["ana", "ben"] and doc["comparisons"] == []
    with pytest.raises(BsxError, match="unknown phase"):
        study.analyze(phases=["later"])
    study.set_phase_locked("aided")
    assert study.locked_phases() == ["aided"]
