"""The reader-study reading pane: one blinded case at a time, scored from the keyboard.

Why a pane of its own: readers work over SSH, often on slow links, so every
step is a single printable key or Enter (Esc is misread under load and never
needed), each rating is committed to the study the moment it is confirmed,
and quitting or a dropped connection loses at most the case on screen. The
blinding rules live in `engine.readers.study`; this pane only shows what a
`CaseView` carries, so the unaided phase has no AI output to leak.

`ReadingScreen` is the whole pane (the main app may push it); `ReadingApp`
wraps it for `bsx reader read`.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image as PILImage
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import ContentSwitcher, Input, Static

from cohorts.errors import BsxError
from engine.readers.study import MANAGEMENT_CHOICES, CaseView, Study

IMAGE_PROTOCOL_ENV = "BSX_IMAGE_PROTOCOL"
MAX_IMAGE_SIDE = 512  # downscale before rendering: terminals show a few hundred pixels at most
NOTE_MAX = 500
SCORE_GROUP = Binding.Group("score", compact=True)
BIOPSY_GROUP = Binding.Group("biopsy")
PICK_GROUP = Binding.Group("diagnosis", compact=True)
PICK_PAGE = 9  # diagnoses per page in the picker: keys 1-9, 0 turns the page
BIOPSY, NO_BIOPSY = MANAGEMENT_CHOICES


# ---------------------------------------------------------------- images

def image_widget_class(protocol: str | None = None) -> type[Widget] | None:
    """The textual-image widget for a protocol (None: images off), chosen once for the whole app.

    One mechanism for every pane (tui.widgets.images): forcing a protocol skips the terminal
    queries that time out on slow SSH links. Must run before `App.run` owns the terminal.
    """
    from tui.widgets.images import PROTOCOLS, select_protocol, selected_widget_class

    protocol = (protocol or os.environ.get(IMAGE_PROTOCOL_ENV) or "auto").strip().lower()
    if protocol not in PROTOCOLS:
        raise BsxError(f"unknown image protocol '{protocol}'",
                       fix=f"use --image-protocol (or {IMAGE_PROTOCOL_ENV}) with one of {', '.join(PROTOCOLS)}")
    select_protocol(protocol)
    return selected_widget_class()


def resolve_image(path: str | None, study_dir: Path) -> Path | None:
    """Absolute paths as stored; relative ones against the working folder, then the study's folder."""
    if not path:
        return None
    candidate = Path(path)
    if candidate.is_absolute() or candidate.exists():
        return candidate
    return study_dir / candidate


def load_image(path: Path | None) -> tuple[PILImage.Image | None, str]:
    """Decode an image fully (so a broken file fails here, not mid-render); else the reason."""
    if path is None:
        return None, "no image recorded for this case"
    try:
        with PILImage.open(path) as raw:
            raw.load()
            image = raw.convert("RGB")
    except FileNotFoundError:
        return None, f"image file not found: {path}"
    except Exception as exc:  # PIL raises many types for damaged or foreign files
        return None, f"image cannot be decoded ({exc.__class__.__name__}): {path}"
    image.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
    return image, ""


class CaseImage(Vertical):
    """A titled image slot that shows a plain-text notice instead of failing on a bad file."""

    DEFAULT_CSS = """
    CaseImage { height: 1fr; }
    CaseImage > .image-title { height: 1; color: $text-muted; }
    CaseImage > .image-body { height: 1fr; align: center middle; }
    CaseImage .image-notice { width: 1fr; height: auto; padding: 1; color: $warning; }
    CaseImage .image-pixels { width: auto; height: auto; }
    """

    def __init__(self, title: str, image_class: type[Widget] | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._title = title
        self._image_class = image_class

    def compose(self) -> ComposeResult:
        yield Static(Text(self._title), classes="image-title")
        yield Vertical(classes="image-body")

    def show(self, path: Path | None) -> None:
        """Replace the slot's content with the image at `path`, or a notice saying why not."""
        body = self.query_one(".image-body", Vertical)
        body.remove_children()
        if self._image_class is None:
            body.mount(Static(Text(f"image display is off ({IMAGE_PROTOCOL_ENV}=none)"), classes="image-notice"))
            return
        image, problem = load_image(path)
        if image is None:
            body.mount(Static(Text(problem), classes="image-notice"))
            return
        body.mount(self._image_class(image, classes="image-pixels"))


# ---------------------------------------------------------------- what to show next

@dataclass(frozen=True)
class PhaseCount:
    rated: int
    total: int


@dataclass(frozen=True)
class Step:
    """Where the reader is: a case to rate, or a message saying why there is none."""

    phase: str | None
    view: CaseView | None
    message: str = ""


def phase_counts(study: Study, reader: str) -> dict[str, PhaseCount]:
    """This reader's own progress per phase (never other readers')."""
    rated: dict[str, int] = {}
    for rating in study.ratings_of(reader):
        rated[rating.phase] = rated.get(rating.phase, 0) + 1
    return {p: PhaseCount(rated.get(p, 0), len(study.case_order(reader, p))) for p in study.phases}


def next_step(study: Study, reader: str) -> Step:
    """Phases in order: the first unfinished one is current; say why when it has nothing open."""
    counts = phase_counts(study, reader)
    for index, phase in enumerate(study.phases):
        if counts[phase].rated >= counts[phase].total:
            continue
        view = study.next_case(reader, phase)
        if view is not None:
            return Step(phase, view)
        return Step(phase, None, _blocked_message(study, reader, phase, index))
    return Step(None, None, "You have finished every phase of this study. Thank you: all your ratings are saved.")


def _blocked_message(study: Study, reader: str, phase: str, index: int) -> str:
    locked = any(p.locked for p in study.progress() if p.reader_id == reader and p.phase == phase)
    if locked:
        return (f"The {phase} phase is locked by the study administrator. Your ratings so far are saved; "
                "press Enter to check again once it is unlocked, or q to quit.")
    previous = study.phases[index - 1] if index else "previous"
    days = study.settings.washout_days
    return (f"No {phase} cases are open for you yet: each opens {days:g} days after you rated it in the "
            f"{previous} phase (washout). Press Enter to check again, or q to quit.")


# ---------------------------------------------------------------- the answer form

@dataclass
class Answer:
    """The reader's entries for the case on screen, until confirmed."""

    scale: str
    score_text: str = ""
    diagnosis: str | None = None
    management: str | None = None
    note: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        return float(self.score_text) if self.score_text else None

    def press_digit(self, digit: int) -> None:
        """1-5: the key is the score. 0-100: digits accumulate; one that would pass 100 starts over."""
        if self.scale == "1-5":
            if 1 <= digit <= 5:
                self.score_text = str(digit)
            return
        typed = (self.score_text + str(digit)).lstrip("0") or "0"
        self.score_text = typed if int(typed) <= 100 else str(digit)

    def erase(self) -> None:
        self.score_text = self.score_text[:-1]

    def missing(self) -> list[str]:
        keys = "1-5" if self.scale == "1-5" else "0-9"
        needed = [(self.score is None, f"score ({keys})"), (self.diagnosis is None, "diagnosis (d)"),
                  (self.management is None, "biopsy (y/n)")]
        return [label for absent, label in needed if absent]


class ReadingClock:
    """Seconds spent on the case on screen, not counting pauses."""

    def __init__(self) -> None:
        self._spent = 0.0
        self._since: float | None = None

    def start(self) -> None:
        self._spent, self._since = 0.0, time.monotonic()

    def pause(self) -> None:
        if self._since is not None:
            self._spent += time.monotonic() - self._since
            self._since = None

    def resume(self) -> None:
        if self._since is None:
            self._since = time.monotonic()

    @property
    def running(self) -> bool:
        return self._since is not None

    @property
    def seconds(self) -> float:
        return self._spent + (time.monotonic() - self._since if self._since is not None else 0.0)


# ---------------------------------------------------------------- footer

class KeyBar(Static):
    """The footer: every shown binding of the screen, one line of text.

    Textual's Footer rebuilds a widget per key whenever the bindings change,
    which costs a visible fraction of a second per keypress on a loaded
    server; the reading pane changes its keys often (scale, picker, between
    cases), so it renders the same information as a single Text instead.
    Remapped keys show as remapped (via `App.get_key_display`).
    """

    DEFAULT_CSS = """
    KeyBar { dock: bottom; height: 1; background: $panel; color: $text; }
    """

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self.call_after_refresh(self.render_keys)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen) -> None:
        if screen is self.screen:
            self.render_keys()

    def render_keys(self) -> None:
        groups: dict[str, tuple[list[tuple[str, bool]], bool]] = {}
        for active in self.screen.active_bindings.values():
            binding = active.binding
            if not binding.show:
                continue
            label = binding.group.description if binding.group else binding.description
            keys, compact = groups.setdefault(label, ([], bool(binding.group and binding.group.compact)))
            keys.append((self.app.get_key_display(binding), active.enabled))
        line = Text(no_wrap=True, overflow="ellipsis")
        for label, (keys, compact) in groups.items():
            enabled = any(on for _, on in keys)
            line.append(" ")
            line.append(("" if compact else " ").join(k for k, _ in keys),
                        style="bold reverse" if enabled else "dim reverse")
            line.append(f" {label} ", style="" if enabled else "dim")
        self.update(line)


# ---------------------------------------------------------------- modal screens

class PauseScreen(ModalScreen[bool]):
    """Covers the case entirely (nothing to read while away); the clock is stopped meanwhile."""

    DEFAULT_CSS = """
    PauseScreen { align: center middle; background: $background; }
    PauseScreen > Static { width: 64; height: auto; border: round $accent; padding: 1 2; }
    """
    BINDINGS = [
        Binding("p", "resume", "resume", id="reading.resume"),
        Binding("q", "quit_reading", "quit", id="reading.pause_quit"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(Text("Paused. The clock is stopped and the case is hidden.\n\n"
                          "Press p to resume, or q to quit (everything rated is saved)."), id="pause-message")
        yield KeyBar()

    def action_resume(self) -> None:
        self.dismiss(False)

    def action_quit_reading(self) -> None:
        self.dismiss(True)


class NoteScreen(ModalScreen[str]):
    """Free-text note; Enter keeps it (an empty note clears it)."""

    DEFAULT_CSS = """
    NoteScreen { align: center middle; }
    NoteScreen > Vertical { width: 70; height: auto; border: round $accent; padding: 0 1; }
    """
    BINDINGS = [Binding("enter", "save", "save note", priority=True, id="reading.save_note")]

    def __init__(self, note: str) -> None:
        super().__init__()
        self._note = note

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Note for this case (optional). Enter saves."))
            yield Input(self._note, placeholder="free text", max_length=NOTE_MAX, id="note-input")
        yield KeyBar()

    def action_save(self) -> None:
        self.dismiss(self.query_one("#note-input", Input).value.strip())


# ---------------------------------------------------------------- the pane

def _digit_bindings() -> list[Binding]:
    """Digits score the case, or pick a diagnosis while the picker is open (check_action chooses)."""
    keys = (1, 2, 3, 4, 5, 6, 7, 8, 9, 0)
    return [*[Binding(str(k), f"digit({k})", str(k), group=SCORE_GROUP, id=f"reading.digit_{k}") for k in keys],
            *[Binding(str(k), f"pick({k})", str(k), group=PICK_GROUP, id=f"reading.pick_{k}") for k in keys]]


class ReadingScreen(Screen[None]):
    """One reader's session: status, the case (image, metadata, AI when aided), and the answer form."""

    DEFAULT_CSS = """
    ReadingScreen #status { height: 2; background: $panel; padding: 0 1; }
    ReadingScreen #switcher { height: 1fr; }
    ReadingScreen #case { height: 1fr; }
    ReadingScreen #images { width: 38; height: 1fr; }
    ReadingScreen #gradcam { display: none; }
    ReadingScreen #gradcam.-shown { display: block; }
    ReadingScreen #details { width: 1fr; height: 1fr; padding: 0 1; }
    ReadingScreen #details > Static { height: auto; }
    ReadingScreen #ai { border-top: solid $accent; display: none; }
    ReadingScreen #ai.-shown { display: block; }
    ReadingScreen #form { border-top: solid $primary; }
    ReadingScreen #message { color: $warning; }
    ReadingScreen #notice { height: 1fr; align: center middle; }
    ReadingScreen #notice > Static { width: 64; height: auto; border: round $accent; padding: 1 2; }
    """
    BINDINGS = [
        *_digit_bindings(),
        Binding("backspace", "erase", "⌫", group=SCORE_GROUP, id="reading.erase"),
        Binding("d", "diagnosis", "diagnosis", id="reading.diagnosis"),
        Binding("y", f"management('{BIOPSY}')", "y", group=BIOPSY_GROUP, id="reading.biopsy_yes"),
        Binding("n", f"management('{NO_BIOPSY}')", "n", group=BIOPSY_GROUP, id="reading.biopsy_no"),
        Binding("t", "note", "note", id="reading.note"),
        Binding("enter", "confirm", "confirm", id="reading.confirm"),
        Binding("p", "pause", "pause", id="reading.pause"),
        Binding("q", "quit_reading", "quit", id="reading.quit"),
    ]

    def __init__(self, study: Study, reader: str, image_protocol: str | None = None) -> None:
        super().__init__()
        self.study = study
        self.reader = reader
        self.image_class = image_widget_class(image_protocol)
        self.step = Step(None, None)
        self.answer = Answer(study.settings.scale)
        self.clock = ReadingClock()
        self.mode = "notice"  # "case" | "notice" (blocked, finished, or waiting to start a new phase)
        self.pick_page: int | None = None  # the diagnosis picker's page while it is open
        self._waiting_phase: str | None = None

    # -- layout
    def compose(self) -> ComposeResult:
        yield Static(id="status")
        with ContentSwitcher(initial="notice", id="switcher"):
            with Horizontal(id="case"):
                with Vertical(id="images"):
                    yield CaseImage("lesion", self.image_class, id="lesion")
                    yield CaseImage("AI Grad-CAM overlay", self.image_class, id="gradcam")
                with VerticalScroll(id="details"):
                    yield Static(id="case-title")
                    yield Static(id="metadata")
                    yield Static(id="ai")
                    yield Static(id="form")
                    yield Static(id="message")
            with Vertical(id="notice"):
                yield Static(id="notice-text")
        yield KeyBar()

    def on_mount(self) -> None:
        self.advance(first=True)

    # -- moving between cases and phases
    def advance(self, first: bool = False) -> None:
        """Ask the study what comes next; announce a new phase before its first case."""
        previous = self.step.phase
        self.step = next_step(self.study, self.reader)
        self.answer = Answer(self.study.settings.scale)
        self.pick_page = None
        if self.step.view is None:
            self._waiting_phase = None
            self._show_notice(self.step.message)
        elif not first and previous is not None and self.step.phase != previous:
            self._waiting_phase = self.step.phase
            self._show_notice(f"The {previous} phase is complete and saved. Next: the {self.step.phase} phase"
                              f"{self._ai_hint()}. Press Enter to begin.")
        else:
            self._show_case()
        self._render_status()

    def _ai_hint(self) -> str:
        view = self.step.view
        shows_ai = view is not None and (view.ai_probability is not None or view.gradcam_path is not None)
        return ", where the AI output is shown with each case" if shows_ai else ""

    def _set_mode(self, mode: str) -> None:
        """Footer keys grey out between cases; recompute them only when that changes (it is costly)."""
        if mode != self.mode:
            self.mode = mode
            self.refresh_bindings()

    def _show_notice(self, message: str) -> None:
        self._set_mode("notice")
        self.clock.pause()
        self.query_one("#notice-text", Static).update(Text(message))
        self.query_one("#switcher", ContentSwitcher).current = "notice"

    def _show_case(self) -> None:
        view = self.step.view
        assert view is not None
        self._set_mode("case")
        self._waiting_phase = None
        study_dir = self.study.path.parent
        self.query_one("#lesion", CaseImage).show(resolve_image(view.image_path, study_dir))
        gradcam = self.query_one("#gradcam", CaseImage)
        gradcam.set_class(view.gradcam_path is not None, "-shown")
        if view.gradcam_path is not None:
            gradcam.show(resolve_image(view.gradcam_path, study_dir))
        self.query_one("#case-title", Static).update(Text.assemble(("Case ", "bold"), (view.case_id, "bold")))
        self.query_one("#metadata", Static).update(metadata_text(view.metadata))
        ai = self.query_one("#ai", Static)
        ai.set_class(view.ai_probability is not None or view.gradcam_path is not None, "-shown")
        ai.update(ai_text(view))
        self.query_one("#switcher", ContentSwitcher).current = "case"
        self._say("")
        self._render_form()
        self.clock.start()

    def _render_status(self) -> None:
        counts = phase_counts(self.study, self.reader)
        phases = self.study.phases
        line1 = Text.assemble(("Reader ", "dim"), (self.reader, "bold"))
        if self.step.phase is not None:
            index = phases.index(self.step.phase) + 1
            line1.append_text(Text.assemble(("  ·  phase ", "dim"), f"{index} of {len(phases)}: ",
                                            (self.step.phase.upper(), "bold reverse")))
            if self.mode == "case":
                count = counts[self.step.phase]
                line1.append_text(Text.assemble(("  ·  case ", "dim"), f"{count.rated + 1} of {count.total}"))
        else:
            line1.append("  ·  all phases finished", style="dim")
        line2 = Text("Rated: ", style="dim")
        for k, phase in enumerate(phases):
            if k:
                line2.append("  ·  ", style="dim")
            line2.append_text(Text.assemble(phase, f" {counts[phase].rated} of {counts[phase].total}"))
        self.query_one("#status", Static).update(Text("\n").join([line1, line2]))

    def _render_form(self) -> None:
        if self.pick_page is not None:
            self.query_one("#form", Static).update(self._picker_text())
            return
        a = self.answer
        scale = "1-5" if a.scale == "1-5" else "0-100"
        rows = [
            ("Malignancy", f"{a.score_text or '_'}  (scale {scale})" if a.scale == "1-5"
             else f"{a.score_text or '_'}  (0-100, type digits)"),
            ("Diagnosis", a.diagnosis or "_  (d)"),
            ("Biopsy", {BIOPSY: "yes", NO_BIOPSY: "no"}.get(a.management or "", "_  (y/n)")),
            ("Note", a.note or "-  (t, optional)"),
        ]
        form = Text("Your reading\n", style="bold")
        for label, value in rows:
            form.append(f"{label:<11}", style="dim")
            form.append(value + "\n")
        missing = a.missing()
        form.append("Enter to confirm" if not missing else "Still needed: " + ", ".join(missing),
                    style="bold green" if not missing else "dim")
        self.query_one("#form", Static).update(form)

    def _picker_text(self) -> Text:
        diagnoses = self.study.settings.diagnoses
        start = (self.pick_page or 0) * PICK_PAGE
        more = ", 0 more" if len(diagnoses) > PICK_PAGE else ""
        text = Text(f"Diagnosis: its number{more} (Enter: keep)\n", style="bold")
        for k, diagnosis in enumerate(diagnoses[start:start + PICK_PAGE], 1):
            text.append(f" {k} ", style="bold")
            text.append(diagnosis + "\n", style="reverse" if diagnosis == self.answer.diagnosis else "")
        return text

    def _set_picking(self, page: int | None) -> None:
        was_open = self.pick_page is not None
        self.pick_page = page
        if was_open != (page is not None):
            self.refresh_bindings()
        self._render_form()

    def _say(self, message: str) -> None:
        self.query_one("#message", Static).update(Text(message))

    # -- actions
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide keys that do not apply to this study's scale; grey out the form keys between cases."""
        picking = self.pick_page is not None
        if action == "pick":
            number = int(parameters[0])  # type: ignore[call-overload]
            return picking and (number != 0 or len(self.study.settings.diagnoses) > PICK_PAGE)
        if action in ("digit", "erase", "diagnosis") and picking:
            return False  # the digits pick instead; Enter closes the picker
        if action == "digit" and self.study.settings.scale == "1-5":
            if not 1 <= int(parameters[0]) <= 5:  # type: ignore[call-overload]
                return False
        if action == "erase" and self.study.settings.scale == "1-5":
            return False
        if action in ("digit", "erase", "diagnosis", "management", "note") and self.mode != "case":
            return None
        return True

    def action_digit(self, digit: int) -> None:
        self.answer.press_digit(digit)
        self._render_form()

    def action_erase(self) -> None:
        self.answer.erase()
        self._render_form()

    def action_management(self, choice: str) -> None:
        self.answer.management = choice
        self._render_form()

    def action_diagnosis(self) -> None:
        self._set_picking(None if self.pick_page is not None else 0)

    def action_pick(self, number: int) -> None:
        diagnoses = self.study.settings.diagnoses
        if number == 0:
            pages = -(-len(diagnoses) // PICK_PAGE)
            self._set_picking(((self.pick_page or 0) + 1) % pages)
            return
        index = (self.pick_page or 0) * PICK_PAGE + number - 1
        if index < len(diagnoses):
            self.answer.diagnosis = diagnoses[index]
            self._set_picking(None)

    def action_note(self) -> None:
        def saved(note: str | None) -> None:
            if note is not None:
                self.answer.note = note
                self._render_form()

        self.app.push_screen(NoteScreen(self.answer.note), saved)

    def action_confirm(self) -> None:
        """Commit the rating (its own transaction) and move on; between cases, start or re-check."""
        if self.pick_page is not None:
            self._set_picking(None)
            return
        if self.mode != "case":
            if self._waiting_phase is not None and self.step.view is not None:
                self._show_case()
                self._render_status()
            else:
                self.advance()
            return
        missing = self.answer.missing()
        if missing:
            self._say("Still needed: " + ", ".join(missing))
            return
        view = self.step.view
        assert view is not None and self.answer.score is not None
        try:
            self.study.rate(self.reader, view.case_id, view.phase, self.answer.score,
                            diagnosis=self.answer.diagnosis, management=self.answer.management,
                            note=self.answer.note or None, seconds=round(self.clock.seconds, 3))
        except BsxError as exc:
            self.advance()
            self._say(f"Not saved: {exc}")
            return
        self.advance()
        if self.mode == "case":
            self._say(f"Saved {view.case_id}.")

    def action_pause(self) -> None:
        self.clock.pause()

        def closed(quit_now: bool | None) -> None:
            if quit_now:
                self.action_quit_reading()
            elif self.mode == "case":
                self.clock.resume()

        self.app.push_screen(PauseScreen(), closed)

    def action_quit_reading(self) -> None:
        """Leave: every confirmed rating is already committed; the case on screen stays unrated."""
        self.clock.pause()
        if len(self.app.screen_stack) > 1 and self.app.screen is self:
            self.dismiss(None)
        else:
            self.app.exit(0)


def metadata_text(metadata: dict[str, Any]) -> Text:
    """Case metadata as plain text (values are untrusted: never parsed as markup)."""
    shown = [(k.replace("_", " "), v) for k, v in metadata.items() if v is not None and v != ""]
    if not shown:
        return Text("no metadata", style="dim")
    text = Text()
    for k, (label, value) in enumerate(shown):
        if k:
            text.append("  ·  ", style="dim")
        text.append(f"{label} ", style="dim")
        text.append(_format_value(value))
    return text


def _format_value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def ai_text(view: CaseView) -> Text:
    """The AI output for an aided case; empty when the view carries none (unaided phases never do)."""
    if view.ai_probability is None and view.gradcam_path is None:
        return Text("")
    text = Text("AI output\n", style="bold")
    if view.ai_probability is None:
        text.append("no probability for this case\n", style="dim")
    else:
        text.append("P(malignant) ", style="dim")
        text.append(f"{view.ai_probability:.2f}", style="bold")
        if view.ai_uncertainty is not None:
            text.append(f" ± {view.ai_uncertainty:.2f}")
            text.append(" (SD)", style="dim")
        text.append("\n")
    if view.gradcam_path is not None:
        text.append("Grad-CAM: lower left", style="dim")
    return text


class ReadingApp(App[int]):
    """`bsx reader read`: the reading pane as a stand-alone app."""

    TITLE = "BioSignal-X reader study"

    def __init__(self, study: Study, reader: str, image_protocol: str | None = None) -> None:
        super().__init__()
        if reader not in study.readers:
            raise BsxError(f"reader '{reader}' is not in the study", path=study.path,
                           fix=f"readers are {', '.join(study.readers) or '(none)'}")
        self.study = study
        self.reader = reader
        self.image_protocol = image_protocol

    def get_default_screen(self) -> Screen:
        return ReadingScreen(self.study, self.reader, self.image_protocol)


def run_reading_app(study_path: Path, reader: str, image_protocol: str | None = None) -> int:
    """Open the study, pick the image protocol before Textual owns the terminal, and read."""
    image_widget_class(image_protocol)  # the terminal query happens here, while we still own stdin
    with Study(study_path) as study:
        app = ReadingApp(study, reader, image_protocol)
        result = app.run()
    return int(result or 0)
