"""The reading pane, driven by Pilot at 80x24 exactly as a reader would use it.

A whole study is read (two readers, unaided then aided, one of them quitting
mid-phase and resuming in a fresh app), the blinding is checked on the
rendered screen, and the MRMC analysis then runs on what was entered.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cohorts.cohort import load_cohort
from cohorts.synth import SynthSpec, write_synthetic
from engine.readers.study import Study, cases_from_cohort, create_study
from tui.cli import main
from tui.reading import Answer, PauseScreen, ReadingApp, ReadingScreen

SIZE = (80, 24)
EVIL_ID = "[bold red]x[/bold red]"


def make_cases(tmp_path: Path) -> pd.DataFrame:
    """Eight synthetic cases with AI output, one Grad-CAM, one hostile id and one broken image."""
    cohort_dir = tmp_path / "cohort"
    write_synthetic(SynthSpec(n=8, seed=1, image_size=48), cohort_dir)
    cases = cases_from_cohort(load_cohort(cohort_dir).cases)
    cases["ai_probability"] = 0.137 + 0.1 * np.arange(len(cases))  # shown as 0.14, 0.24, ...
    cases["ai_uncertainty"] = 0.05
    gradcam = tmp_path / "gradcam.png"
    Image.new("RGB", (16, 16), (200, 30, 30)).save(gradcam)
    cases["gradcam_path"] = [str(gradcam)] + [None] * (len(cases) - 1)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    cases.loc[len(cases) - 1, ["case_id", "image_path"]] = [EVIL_ID, str(broken)]
    return cases


@pytest.fixture
def study_path(tmp_path: Path) -> Path:
    path = tmp_path / "study.sqlite"
    create_study(path, make_cases(tmp_path), readers=["ana", "ben"], scale="1-5", seed=3).close()
    return path


def screen_text(app: ReadingApp) -> str:
    """What the terminal shows right now, as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def truth_of(path: Path) -> dict[str, int]:
    with Study(path) as study:
        return dict(study._con.execute("SELECT case_id, truth FROM cases").fetchall())


def probability_shown(app: ReadingApp) -> str:
    view = app.screen.step.view
    with Study(app.study.path) as study:
        (p,) = study._con.execute("SELECT ai_probability FROM cases WHERE case_id = ?", (view.case_id,)).fetchone()
    return f"{p:.2f}"


async def rate_on_screen(pilot, score: int, diagnosis_key: str = "2", biopsy: str = "n") -> None:
    await pilot.press(str(score), "d", diagnosis_key, biopsy, "enter")
    await pilot.pause()


def reader_score(truth: int, case_id: str, reader: str) -> int:
    """Imperfect but informative ratings, different per reader, so the AUCs are not degenerate."""
    wobble = (sum(map(ord, case_id + reader)) % 3) - 1
    return int(np.clip(2 + 2 * truth + wobble, 1, 5))


async def read_cases(app: ReadingApp, pilot, n: int, truth: dict[str, int], phase: str) -> list[str]:
    """Rate n cases in `phase`, checking the blinding on every screen."""
    rated = []
    for _ in range(n):
        screen: ReadingScreen = app.screen
        view = screen.step.view
        assert view is not None and view.phase == phase
        text = screen_text(app)
        assert f"phase {['unaided', 'aided'].index(phase) + 1} of 2: {phase.upper()}" in text
        if phase == "unaided":
            assert "P(malignant)" not in text and "AI output" not in text
            assert probability_shown(app) not in text
        else:
            assert "P(malignant)" in text and probability_shown(app) in text
        await rate_on_screen(pilot, reader_score(truth[view.case_id], view.case_id, app.reader))
        rated.append(view.case_id)
    return rated


@pytest.mark.asyncio
async def test_two_readers_with_interruption_then_analysis(study_path: Path, capsys):
    truth = truth_of(study_path)

    with Study(study_path) as study:  # ana reads three unaided cases, then quits
        app = ReadingApp(study, "ana")
        async with app.run_test(size=SIZE) as pilot:
            assert "case 1 of 8" in screen_text(app) and "unaided 0 of 8" in screen_text(app)
            first = await read_cases(app, pilot, 3, truth, "unaided")
            waiting = app.screen.step.view.case_id
            await pilot.press("3", "y")  # entered but never confirmed: must not be stored
            await pilot.press("q")
        assert app.return_value == 0

    with Study(study_path) as study:
        saved = study.ratings_of("ana")
        assert [r.case_id for r in saved] == first == study.case_order("ana", "unaided")[:3]
        assert all(r.phase == "unaided" and r.seconds is not None and r.seconds >= 0 for r in saved)
        assert all(r.diagnosis == study.settings.diagnoses[1] and r.management == "no biopsy" for r in saved)

    with Study(study_path) as study:  # a fresh app resumes at the next unrated case
        app = ReadingApp(study, "ana")
        async with app.run_test(size=SIZE) as pilot:
            assert app.screen.step.view.case_id == waiting
            assert "case 4 of 8" in screen_text(app) and "unaided 3 of 8" in screen_text(app)
            await read_cases(app, pilot, 5, truth, "unaided")
            assert "unaided phase is complete" in screen_text(app)
            assert "P(malignant)" not in screen_text(app)
            await pilot.press("enter")
            await read_cases(app, pilot, 8, truth, "aided")
            assert "finished every phase" in screen_text(app)

    with Study(study_path) as study:  # ben reads everything in one sitting
        app = ReadingApp(study, "ben")
        async with app.run_test(size=SIZE) as pilot:
            await read_cases(app, pilot, 8, truth, "unaided")
            await pilot.press("enter")
            await read_cases(app, pilot, 8, truth, "aided")
            assert "finished every phase" in screen_text(app)
        assert {(p.reader_id, p.phase): p.rated for p in study.progress()} == {
            ("ana", "unaided"): 8, ("ana", "aided"): 8, ("ben", "unaided"): 8, ("ben", "aided"): 8}

    capsys.readouterr()
    assert main(["reader", "analyze", str(study_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["modalities"] == ["unaided", "aided"] and doc["readers"] == ["ana", "ben"]
    for modality in ("unaided", "aided"):
        aucs = doc["auc"][modality]
        assert set(aucs) == {"ana", "ben"} and all(0.5 < aucs[r] <= 1.0 for r in aucs)
        assert 0.5 < doc["mean_auc"][modality] <= 1.0


@pytest.mark.asyncio
async def test_pause_hides_the_case_and_stops_the_clock(study_path: Path):
    with Study(study_path) as study:
        app = ReadingApp(study, "ana")
        async with app.run_test(size=SIZE) as pilot:
            screen: ReadingScreen = app.screen
            case_id = screen.step.view.case_id
            await pilot.press("p")
            assert isinstance(app.screen, PauseScreen)
            assert "Paused" in screen_text(app) and case_id not in screen_text(app)
            assert not screen.clock.running
            frozen = screen.clock.seconds
            await pilot.press("4", "y")  # the case's keys do nothing while paused
            assert screen.clock.seconds == frozen and screen.answer.score is None
            await pilot.press("p")
            assert app.screen is screen and screen.clock.running and case_id in screen_text(app)
            await pilot.press("p", "q")  # quitting from the pause screen leaves the app
        assert app.return_value == 0 and study.ratings_of("ana") == []


@pytest.mark.asyncio
async def test_locked_phase_shows_message_and_takes_no_rating(study_path: Path):
    with Study(study_path) as study:
        study.set_phase_locked("unaided")
        app = ReadingApp(study, "ben")
        async with app.run_test(size=SIZE) as pilot:
            assert "unaided phase is locked by the study administrator" in screen_text(app)
            await pilot.press("3", "y", "enter")
            assert study.ratings_of("ben") == []
            study.set_phase_locked("unaided", False)
            await pilot.press("enter")  # check again: the first case appears
            assert app.screen.step.view is not None and "case 1 of 8" in screen_text(app)


@pytest.mark.asyncio
async def test_locked_aided_phase_after_finished_unaided(study_path: Path):
    with Study(study_path) as study:
        for case_id in study.case_order("ana", "unaided"):
            study.rate("ana", case_id, "unaided", 3)
        study.set_phase_locked("aided")
        app = ReadingApp(study, "ana")
        async with app.run_test(size=SIZE):
            text = screen_text(app)
            assert "phase 2 of 2: AIDED" in text and "aided phase is locked" in text
            assert "unaided 8 of 8" in text and "P(malignant)" not in text


@pytest.mark.asyncio
async def test_hostile_id_broken_image_note_and_required_fields(study_path: Path):
    with Study(study_path) as study:
        order = study.case_order("ben", "unaided")
        for case_id in order[:order.index(EVIL_ID)]:
            study.rate("ben", case_id, "unaided", 2)
        app = ReadingApp(study, "ben")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            text = screen_text(app)
            assert f"Case {EVIL_ID}" in text  # shown literally, not parsed as markup
            assert "image cannot be decoded" in text
            await pilot.press("5", "enter")
            assert "Still needed: diagnosis (d)" in screen_text(app)
            assert EVIL_ID not in {r.case_id for r in study.ratings_of("ben")}
            await pilot.press("t", *"see [b]x[/b]", "enter", "y", "d", "1", "enter")
            await pilot.pause()
        (rating,) = [r for r in study.ratings_of("ben") if r.case_id == EVIL_ID]
        assert (rating.value, rating.diagnosis, rating.management, rating.note) == (
            5.0, "melanoma", "biopsy", "see [b]x[/b]")


@pytest.mark.asyncio
async def test_percent_scale_digits(tmp_path: Path):
    path = tmp_path / "percent.sqlite"
    create_study(path, make_cases(tmp_path), readers=["cy"], scale="0-100").close()
    with Study(path) as study:
        app = ReadingApp(study, "cy")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("7", "5", "0")  # 750 is off the scale: the 0 starts over
            assert app.screen.answer.score_text == "0"
            await pilot.press("backspace", "7", "5", "d", "2", "n", "enter")
            await pilot.pause()
        assert [r.value for r in study.ratings_of("cy")] == [75.0]


def test_answer_digit_rules():
    five = Answer("1-5")
    for key in (7, 0, 3, 9):
        five.press_digit(key)
    assert five.score == 3.0
    percent = Answer("0-100")
    for key in (1, 0, 0):
        percent.press_digit(key)
    assert percent.score == 100.0
    percent.press_digit(1)
    assert percent.score == 1.0 and percent.missing() == ["diagnosis (d)", "biopsy (y/n)"]
