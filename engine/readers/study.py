"""A reader study is one SQLite file: cases, readers, phases, case orders, and every rating.

Why SQLite in WAL mode: each rating is its own committed transaction, so a
dropped SSH session loses nothing, and several readers (processes) can write
at once (WAL plus a busy timeout serialises the short write transactions).
The file is created owner-only (0600) and built under a temporary name, so a
failed `create` never leaves half a study behind.

Blinding rules live here, not in the UI: a reader only ever gets their own
ratings back; AI output is hidden in phases that do not show it; a case opens
in an AI-showing phase only after that reader rated it in the preceding phase
(and, if a washout is configured, only that many days later); an admin can
lock a phase.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from cohorts.errors import BsxError

APPLICATION_ID = 0x42535852  # "BSXR": marks the file as a BioSignal-X reader study
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000
SCALES = {"0-100": (0.0, 100.0), "1-5": (1.0, 5.0)}
DEFAULT_DIAGNOSES = ("melanoma", "nevus", "basal cell carcinoma", "squamous cell carcinoma",
                     "actinic keratosis", "seborrheic keratosis", "dermatofibroma", "vascular lesion", "other")
MANAGEMENT_CHOICES = ("biopsy", "no biopsy")
DEFAULT_PHASES = ("unaided", "aided")
RUN_METADATA = ("age", "sex", "site", "skin_type", "body_site")

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE cases (
    case_id TEXT PRIMARY KEY, truth INTEGER NOT NULL CHECK (truth IN (0, 1)), image_path TEXT,
    ai_probability REAL, ai_uncertainty REAL, gradcam_path TEXT, metadata TEXT NOT NULL DEFAULT '{}');
CREATE TABLE readers (reader_id TEXT PRIMARY KEY, added_at TEXT NOT NULL);
CREATE TABLE phases (
    name TEXT PRIMARY KEY, position INTEGER NOT NULL UNIQUE, shows_ai INTEGER NOT NULL,
    locked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE case_order (
    reader_id TEXT NOT NULL REFERENCES readers, phase TEXT NOT NULL REFERENCES phases,
    position INTEGER NOT NULL, case_id TEXT NOT NULL REFERENCES cases,
    PRIMARY KEY (reader_id, phase, position), UNIQUE (reader_id, phase, case_id));
CREATE TABLE ratings (
    reader_id TEXT NOT NULL REFERENCES readers, case_id TEXT NOT NULL REFERENCES cases,
    phase TEXT NOT NULL REFERENCES phases, value REAL NOT NULL, diagnosis TEXT, management TEXT,
    note TEXT, seconds REAL, rated_at TEXT NOT NULL, PRIMARY KEY (reader_id, case_id, phase));
"""


@dataclass(frozen=True)
class CaseView:
    """What a reader may see of one case in one phase: never the truth, AI only when the phase shows it."""

    case_id: str
    phase: str
    position: int
    total: int
    image_path: str | None
    metadata: dict[str, Any]
    ai_probability: float | None
    ai_uncertainty: float | None
    gradcam_path: str | None


@dataclass(frozen=True)
class Rating:
    reader_id: str
    case_id: str
    phase: str
    value: float
    diagnosis: str | None
    management: str | None
    note: str | None
    seconds: float | None
    rated_at: str


@dataclass(frozen=True)
class PhaseProgress:
    reader_id: str
    phase: str
    rated: int
    total: int
    open_now: int
    locked: bool


@dataclass(frozen=True)
class StudySettings:
    scale: str
    washout_days: float
    seed: int
    diagnoses: tuple[str, ...]
    phases: tuple[str, ...]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------- case selection

def cases_from_run(run_dir: str | Path) -> pd.DataFrame:
    """Study cases from a run folder: truth, AI mean/std, flagged, image path, metadata, Grad-CAM if present."""
    run_dir = Path(run_dir)
    path = run_dir / "predictions.parquet"
    if not path.is_file():
        raise BsxError("no predictions.parquet: not a run folder", path=run_dir,
                       fix="point --from at a folder written by `bsx validate`, or at a cohort CSV")
    try:
        pred = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise BsxError(f"cannot read predictions ({exc.__class__.__name__})", path=path) from None
    for column in ("case_id", "truth"):
        if column not in pred.columns:
            raise BsxError(f"predictions lack column '{column}'", path=path)
    pred = pred[pred["truth"].notna()]
    frame = pd.DataFrame({
        "case_id": pred["case_id"].astype(str),
        "truth": pred["truth"],
        "image_path": pred["image_path"].astype(str) if "image_path" in pred else None,
        "ai_probability": pred["p_mean"] if "p_mean" in pred else np.nan,
        "ai_uncertainty": pred["p_std"] if "p_std" in pred else np.nan,
        "flagged": pred["flagged"].fillna(False).astype(bool) if "flagged" in pred else False,
    })
    gradcam = run_dir / "gradcam"
    frame["gradcam_path"] = [str(gradcam / f"{c}.png") if (gradcam / f"{c}.png").is_file() else None
                             for c in frame["case_id"]]
    frame["metadata"] = _metadata_json(pred)
    return frame.reset_index(drop=True)


def cases_from_cohort(frame: pd.DataFrame) -> pd.DataFrame:
    """Study cases from a cohort's cases frame (truth from `malignant`); no AI output."""
    for column in ("case_id", "malignant"):
        if column not in frame.columns:
            raise BsxError(f"cohort cases lack column '{column}'", column=column)
    frame = frame[frame["malignant"].notna()]
    return pd.DataFrame({
        "case_id": frame["case_id"].astype(str),
        "truth": frame["malignant"],
        "image_path": frame["image_path"].astype(str) if "image_path" in frame else None,
        "ai_probability": np.nan, "ai_uncertainty": np.nan, "flagged": False, "gradcam_path": None,
        "metadata": _metadata_json(frame),
    }).reset_index(drop=True)


def select_cases(cases: pd.DataFrame, *, sample: int | None = None, enrich_flagged: bool = False,
                 seed: int = 0) -> pd.DataFrame:
    """All cases, or N of them: flagged cases first when enriching, the rest stratified by truth."""
    if sample is None or sample >= len(cases):
        return cases.reset_index(drop=True)
    if sample < 2:
        raise BsxError("a study sample needs at least 2 cases (one of each class)", column="sample")
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    if enrich_flagged:
        flagged = np.flatnonzero(cases["flagged"].to_numpy(dtype=bool))
        chosen = list(rng.permutation(flagged)[:sample])
    rest = cases.drop(index=chosen)
    need = sample - len(chosen)
    if need > 0:
        chosen += _stratified(rest, need, rng)
    picked = cases.loc[sorted(chosen)]
    return picked.reset_index(drop=True)


def _stratified(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> list[int]:
    """Proportional allocation by truth, at least one of each class present (largest remainder)."""
    groups = {k: list(v) for k, v in frame.groupby("truth").groups.items()}
    sizes = np.array([len(v) for v in groups.values()], dtype=float)
    quota = sizes / sizes.sum() * n
    take = np.floor(quota).astype(int)
    take = np.maximum(take, np.minimum(1, sizes).astype(int))
    while take.sum() < n:
        take[np.argmax(quota - take)] += 1
    while take.sum() > n:
        take[np.argmax(take)] -= 1
    picked: list[int] = []
    for (_, index), k in zip(groups.items(), take):
        picked += list(rng.choice(index, size=min(k, len(index)), replace=False))
    return picked


def _metadata_json(frame: pd.DataFrame) -> list[str]:
    columns = [c for c in RUN_METADATA if c in frame.columns]
    records = frame[columns].astype(object).where(frame[columns].notna(), None).to_dict("records")
    return [json.dumps(r, default=str) for r in records]


# ---------------------------------------------------------------- the study file

def create_study(path: str | Path, cases: pd.DataFrame, *, readers: list[str] | tuple[str, ...] = (),
                 phases: tuple[str, ...] | list[str] = DEFAULT_PHASES, scale: str = "0-100", seed: int = 0,
                 washout_days: float = 0.0, diagnoses: tuple[str, ...] = DEFAULT_DIAGNOSES,
                 ai_phases: tuple[str, ...] | None = None) -> "Study":
    """Write a new study file (owner-only) and open it. Refuses to overwrite."""
    path = Path(path)
    if path.exists():
        raise BsxError("study file already exists", path=path, fix="choose another --out or remove the old file")
    if scale not in SCALES:
        raise BsxError(f"unknown scale '{scale}'", fix=f"use one of {', '.join(SCALES)}")
    phases = tuple(p.strip() for p in phases if p.strip())
    if not phases or len(set(phases)) != len(phases):
        raise BsxError("phases must be distinct, non-empty names", fix="e.g. --phases unaided,aided")
    if ai_phases is None:  # by name: "aided", "aided-2", ... show the AI; "unaided" never does
        ai_phases = tuple(p for p in phases if "aided" in p.lower() and "unaided" not in p.lower())
    _check_cases(cases, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.creating")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    try:
        con = sqlite3.connect(tmp, isolation_level=None)
        try:
            con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            con.executescript(_SCHEMA)
            con.execute("BEGIN")
            settings = {"scale": scale, "washout_days": float(washout_days), "seed": int(seed),
                        "diagnoses": list(diagnoses), "created_at": utc_now().isoformat()}
            con.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in settings.items()])
            con.executemany("INSERT INTO phases (name, position, shows_ai) VALUES (?, ?, ?)",
                            [(p, i, int(p in ai_phases)) for i, p in enumerate(phases)])
            con.executemany("INSERT INTO cases VALUES (?, ?, ?, ?, ?, ?, ?)", _case_rows(cases))
            con.execute("COMMIT")
        finally:
            con.close()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    study = Study(path)
    for reader in readers:
        study.add_reader(reader)
    return study


def _check_cases(cases: pd.DataFrame, path: Path) -> None:
    if cases.empty:
        raise BsxError("no cases to put in the study", path=path)
    truth = pd.to_numeric(cases["truth"], errors="coerce")
    if not truth.isin([0, 1]).all():
        raise BsxError("case truth must be 0 or 1 (binary malignant / benign)", path=path, column="truth")
    if cases["case_id"].duplicated().any():
        raise BsxError(f"duplicate case id {cases.loc[cases['case_id'].duplicated(), 'case_id'].iloc[0]}",
                       path=path, column="case_id")
    if truth.nunique() < 2:
        raise BsxError("all study cases have the same truth: the study cannot estimate an AUC", path=path,
                       fix="include both malignant and benign cases")


def _case_rows(cases: pd.DataFrame) -> Iterator[tuple]:
    for row in cases.itertuples(index=False):
        yield (str(row.case_id), int(row.truth), _opt_str(getattr(row, "image_path", None)),
               _opt_float(getattr(row, "ai_probability", None)), _opt_float(getattr(row, "ai_uncertainty", None)),
               _opt_str(getattr(row, "gradcam_path", None)), getattr(row, "metadata", None) or "{}")


def _opt_float(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) or value == "None" else str(value)


class Study:
    """An open study file. One instance per thread or process; every write is its own transaction."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise BsxError("study file not found", path=self.path)
        self._inspect()
        self._con = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        self._con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._con.execute("PRAGMA journal_mode = WAL")
        self._con.execute("PRAGMA synchronous = FULL")
        self._con.execute("PRAGMA foreign_keys = ON")
        self.settings = self._load_settings()

    def _inspect(self) -> None:
        """Refuse foreign or damaged files through a read-only, immutable connection that writes nothing
        (no -wal/-shm beside a file we are about to refuse)."""
        uri = f"{self.path.resolve().as_uri()}?mode=ro&immutable=1"
        try:
            con = sqlite3.connect(uri, uri=True)
        except sqlite3.DatabaseError as exc:
            raise BsxError(f"not a readable study file ({exc})", path=self.path,
                           fix="the file is damaged or not SQLite; restore it from a backup") from None
        try:
            app_id = con.execute("PRAGMA application_id").fetchone()[0]
            version = con.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            con.close()
            raise BsxError(f"not a readable study file ({exc})", path=self.path,
                           fix="the file is damaged or not SQLite; restore it from a backup") from None
        try:
            if app_id != APPLICATION_ID:
                raise BsxError("not a BioSignal-X reader study (foreign SQLite file)", path=self.path,
                               fix="create a study with `bsx reader create`")
            if version > SCHEMA_VERSION:
                raise BsxError(f"study schema v{version} is newer than this bsx (v{SCHEMA_VERSION})",
                               path=self.path, fix="upgrade BioSignal-X")
            check = con.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(check)
            con.execute("SELECT key, value FROM meta").fetchall()
            con.execute("SELECT name FROM phases").fetchall()
        except sqlite3.DatabaseError as exc:
            raise BsxError(f"study file is damaged ({exc})", path=self.path, fix="restore it from a backup") from None
        finally:
            con.close()

    # -- lifecycle
    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> "Study":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _load_settings(self) -> StudySettings:
        meta = {k: json.loads(v) for k, v in self._con.execute("SELECT key, value FROM meta")}
        phases = tuple(r[0] for r in self._con.execute("SELECT name FROM phases ORDER BY position"))
        return StudySettings(meta["scale"], float(meta["washout_days"]), int(meta["seed"]),
                             tuple(meta["diagnoses"]), phases)

    def _write(self, sql: str, params: tuple | list = ()) -> None:
        """One statement, one immediate transaction: committed before we return."""
        try:
            self._con.execute("BEGIN IMMEDIATE")
            try:
                self._con.execute(sql, params)
                self._con.execute("COMMIT")
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            raise BsxError(f"could not write to the study ({exc})", path=self.path,
                           fix="another process holds the study locked; try again") from None

    # -- readers and phases
    @property
    def readers(self) -> list[str]:
        return [r[0] for r in self._con.execute("SELECT reader_id FROM readers ORDER BY rowid")]

    @property
    def phases(self) -> list[str]:
        return list(self.settings.phases)

    def case_ids(self) -> list[str]:
        return [r[0] for r in self._con.execute("SELECT case_id FROM cases ORDER BY rowid")]

    def add_reader(self, reader: str) -> None:
        """Register a reader and fix their seeded random case order for every phase."""
        reader = reader.strip()
        if not reader:
            raise BsxError("reader name is empty")
        if reader in self.readers:
            raise BsxError(f"reader '{reader}' is already in the study", path=self.path)
        cases = self.case_ids()
        rows = []
        for p_index, phase in enumerate(self.phases):
            order = np.random.default_rng([self.settings.seed, _stable_int(reader), p_index]).permutation(len(cases))
            rows += [(reader, phase, pos, cases[k]) for pos, k in enumerate(order)]
        self._con.execute("BEGIN IMMEDIATE")
        try:
            self._con.execute("INSERT INTO readers VALUES (?, ?)", (reader, utc_now().isoformat()))
            self._con.executemany("INSERT INTO case_order VALUES (?, ?, ?, ?)", rows)
            self._con.execute("COMMIT")
        except BaseException:
            self._con.execute("ROLLBACK")
            raise

    def set_phase_locked(self, phase: str, locked: bool = True) -> None:
        """Admin: a locked phase takes no ratings (e.g. before the washout or after closing a round)."""
        self._phase_row(phase)
        self._write("UPDATE phases SET locked = ? WHERE name = ?", (int(locked), phase))

    def locked_phases(self) -> list[str]:
        """The phases an administrator has locked, in reading order."""
        return [r[0] for r in self._con.execute("SELECT name FROM phases WHERE locked ORDER BY position")]

    def _phase_row(self, phase: str) -> tuple[int, bool, bool]:
        row = self._con.execute("SELECT position, shows_ai, locked FROM phases WHERE name = ?", (phase,)).fetchone()
        if row is None:
            raise BsxError(f"unknown phase '{phase}'", path=self.path, fix=f"phases are {', '.join(self.phases)}")
        return int(row[0]), bool(row[1]), bool(row[2])

    def _check_reader(self, reader: str) -> None:
        if self._con.execute("SELECT 1 FROM readers WHERE reader_id = ?", (reader,)).fetchone() is None:
            raise BsxError(f"reader '{reader}' is not in the study", path=self.path,
                           fix=f"readers are {', '.join(self.readers) or '(none)'}")

    # -- reading
    def case_order(self, reader: str, phase: str) -> list[str]:
        self._check_reader(reader)
        self._phase_row(phase)
        return [r[0] for r in self._con.execute(
            "SELECT case_id FROM case_order WHERE reader_id = ? AND phase = ? ORDER BY position", (reader, phase))]

    def is_open(self, reader: str, case_id: str, phase: str, now: datetime | None = None) -> bool:
        """Can this reader rate this case in this phase now? (lock, prior-phase rating, washout)"""
        position, _, locked = self._phase_row(phase)
        if locked:
            return False
        if position == 0:
            return True
        previous = self.phases[position - 1]
        row = self._con.execute("SELECT rated_at FROM ratings WHERE reader_id = ? AND case_id = ? AND phase = ?",
                                (reader, case_id, previous)).fetchone()
        if row is None:
            return False
        waited = (now or utc_now()) - datetime.fromisoformat(row[0])
        return waited >= timedelta(days=self.settings.washout_days)

    def next_case(self, reader: str, phase: str, now: datetime | None = None) -> CaseView | None:
        """The first case in this reader's order not yet rated and open now; None when none is."""
        order = self.case_order(reader, phase)
        done = self._rated_ids(reader, phase)
        for position, case_id in enumerate(order):
            if case_id not in done and self.is_open(reader, case_id, phase, now):
                return self.case_view(reader, case_id, phase, position=position, total=len(order))
        return None

    def case_view(self, reader: str, case_id: str, phase: str, *, position: int | None = None,
                  total: int | None = None) -> CaseView:
        self._check_reader(reader)
        _, shows_ai, _ = self._phase_row(phase)
        row = self._con.execute("SELECT image_path, metadata, ai_probability, ai_uncertainty, gradcam_path "
                                "FROM cases WHERE case_id = ?", (case_id,)).fetchone()
        if row is None:
            raise BsxError(f"case '{case_id}' is not in the study", path=self.path)
        if position is None:
            order = self.case_order(reader, phase)
            position, total = order.index(case_id), len(order)
        return CaseView(case_id, phase, position, int(total), row[0], json.loads(row[1]),
                        row[2] if shows_ai else None, row[3] if shows_ai else None, row[4] if shows_ai else None)

    def rate(self, reader: str, case_id: str, phase: str, value: float, *, diagnosis: str | None = None,
             management: str | None = None, note: str | None = None, seconds: float | None = None,
             now: datetime | None = None) -> Rating:
        """Validate and commit one rating immediately. Ratings are final: a second one is refused."""
        self._check_reader(reader)
        _, _, locked = self._phase_row(phase)
        if locked:
            raise BsxError(f"phase '{phase}' is locked by the study administrator", path=self.path)
        if case_id not in self.case_order(reader, phase):
            raise BsxError(f"case '{case_id}' is not in the study", path=self.path)
        low, high = SCALES[self.settings.scale]
        if not (isinstance(value, (int, float)) and low <= float(value) <= high):
            raise BsxError(f"confidence {value!r} is outside the {self.settings.scale} scale", path=self.path)
        if diagnosis is not None and diagnosis not in self.settings.diagnoses:
            raise BsxError(f"diagnosis '{diagnosis}' is not in the study's list",
                           fix=f"choose one of: {', '.join(self.settings.diagnoses)}")
        if management is not None and management not in MANAGEMENT_CHOICES:
            raise BsxError(f"management '{management}' is not one of {', '.join(MANAGEMENT_CHOICES)}")
        if not self.is_open(reader, case_id, phase, now):
            raise BsxError(f"case '{case_id}' is not open in phase '{phase}' for reader '{reader}' yet",
                           path=self.path, fix="rate it in the previous phase first (and wait out any washout)")
        stamp = (now or utc_now()).isoformat()
        try:
            self._write("INSERT INTO ratings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (reader, case_id, phase, float(value), diagnosis, management, note,
                         None if seconds is None else float(seconds), stamp))
        except sqlite3.IntegrityError:
            raise BsxError(f"reader '{reader}' already rated case '{case_id}' in phase '{phase}'",
                           path=self.path, fix="ratings are final once entered") from None
        return Rating(reader, case_id, phase, float(value), diagnosis, management, note, seconds, stamp)

    def _rated_ids(self, reader: str, phase: str) -> set[str]:
        return {r[0] for r in self._con.execute(
            "SELECT case_id FROM ratings WHERE reader_id = ? AND phase = ?", (reader, phase))}

    def ratings_of(self, reader: str) -> list[Rating]:
        """Only this reader's ratings: what the reading pane may show back to them."""
        self._check_reader(reader)
        rows = self._con.execute("SELECT * FROM ratings WHERE reader_id = ? ORDER BY rated_at", (reader,))
        return [Rating(*row) for row in rows]

    def case_ratings(self, case_id: str) -> list[dict[str, Any]]:
        """Admin and analysis view: every reader's ratings of one case, in phase then reader order.

        Never for the reading pane, which shows a reader only their own ratings (`ratings_of`).
        """
        if self._con.execute("SELECT 1 FROM cases WHERE case_id = ?", (case_id,)).fetchone() is None:
            raise BsxError(f"case '{case_id}' is not in the study", path=self.path)
        rows = self._con.execute(
            "SELECT r.reader_id, r.phase, r.value, r.diagnosis, r.management, r.note, r.seconds, r.rated_at "
            "FROM ratings r JOIN phases p ON p.name = r.phase JOIN readers d ON d.reader_id = r.reader_id "
            "WHERE r.case_id = ? ORDER BY p.position, d.rowid", (case_id,))
        keys = ("reader", "phase", "value", "diagnosis", "management", "note", "seconds", "timestamp")
        return [dict(zip(keys, row)) for row in rows]

    def progress(self, now: datetime | None = None) -> list[PhaseProgress]:
        """Admin view: per reader and phase, rated / total and how many are open now."""
        total = len(self.case_ids())
        out = []
        for reader in self.readers:
            for phase in self.phases:
                _, _, locked = self._phase_row(phase)
                done = self._rated_ids(reader, phase)
                open_now = sum(1 for c in self.case_order(reader, phase)
                               if c not in done and self.is_open(reader, c, phase, now))
                out.append(PhaseProgress(reader, phase, len(done), total, open_now, locked))
        return out

    # -- analysis
    def ratings_frame(self, *, algorithm_reader: str | None = None,
                      phases: list[str] | tuple[str, ...] | None = None) -> pd.DataFrame:
        """All ratings as the long interchange frame; phases are the modalities.

        With `algorithm_reader`, the stored AI probability joins as one more
        reader (same score in every phase), for the algorithm-vs-readers test.
        `phases` keeps only those modalities (e.g. the phases every reader has
        finished, while a later one is still being read).
        """
        frame = pd.read_sql_query(
            "SELECT r.reader_id AS reader, r.phase AS modality, r.case_id AS 'case', c.truth AS truth, "
            "r.value AS rating FROM ratings r JOIN cases c USING (case_id) "
            "JOIN phases p ON p.name = r.phase JOIN readers d ON d.reader_id = r.reader_id "
            "ORDER BY p.position, d.rowid, c.rowid", self._con)
        if phases is not None:
            for phase in phases:
                self._phase_row(phase)
            frame = frame[frame["modality"].isin(list(phases))].reset_index(drop=True)
        if algorithm_reader is not None:
            if algorithm_reader in self.readers:
                raise BsxError(f"'{algorithm_reader}' is a human reader in this study",
                               fix="choose another name for the algorithm reader")
            ai = pd.read_sql_query("SELECT case_id AS 'case', truth, ai_probability AS rating FROM cases "
                                   "WHERE ai_probability IS NOT NULL ORDER BY rowid", self._con)
            if ai.empty:
                raise BsxError("the study has no AI probabilities (it was not created from a run)", path=self.path)
            rated = set(frame["case"])
            ai = ai[ai["case"].isin(rated)]
            extra = [ai.assign(reader=algorithm_reader, modality=m) for m in frame["modality"].unique()]
            frame = pd.concat([frame, *extra], ignore_index=True)
        if frame.empty:
            raise BsxError("the study has no ratings yet", path=self.path)
        return frame[["reader", "modality", "case", "truth", "rating"]]

    def analyze(self, *, algorithm_reader: str | None = None, drop_incomplete: bool = False,
                covariance: str = "jackknife", threshold: float | None = None,
                phases: list[str] | tuple[str, ...] | None = None):
        """MRMC analysis of the ratings entered so far (phases as modalities; `phases` to choose some)."""
        from engine.mrmc import analyze_mrmc
        from engine.readers.interchange import to_mrmc_data

        data = to_mrmc_data(self.ratings_frame(algorithm_reader=algorithm_reader, phases=phases),
                            drop_incomplete=drop_incomplete, source=self.path)
        return analyze_mrmc(data, covariance=covariance, algorithm_reader=algorithm_reader, threshold=threshold)

    def export(self, out: str | Path, fmt: str | None = None) -> Path:
        from engine.readers.interchange import write_ratings

        return write_ratings(self.ratings_frame(), out, fmt, title=f"BioSignal-X reader study {self.path.name}")


def _stable_int(text: str) -> int:
    """A process-independent integer for seeding (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def open_study(path: str | Path) -> Study:
    return Study(path)

