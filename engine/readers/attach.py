"""Which reader study belongs to a run, so the workstation and the PDF report find it.

Why run.json: a study often lives outside the run folder (somewhere every
reader can reach), so a fixed file name is not enough. run.json is not one of
the hashed artifacts, so recording the study does not disturb the integrity
check; the ledger keeps the trace. A study saved as `<run>/reader_study.sqlite`
is found without any record.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from cohorts.errors import BsxError
from engine.runfolder import RunFolder

STUDY_FILE = "reader_study.sqlite"
RUN_KEY = "reader_study"


def attach_study(run_dir: str | Path, study_path: str | Path) -> Path:
    """Record a study in the run (absolute path in run.json, plus a ledger entry); returns that path.

    The study is opened first, so a foreign or damaged file is refused before
    the run is touched.
    """
    from engine.readers.study import Study

    folder = RunFolder(run_dir)
    study_path = Path(study_path).resolve()
    with Study(study_path) as study:
        readers, phases = study.readers, study.phases
    info = folder.run_info()
    previous = info.get(RUN_KEY)
    info[RUN_KEY] = str(study_path)
    folder.write_json("run", info)
    extra = {"replaces": previous} if previous and previous != str(study_path) else {}
    folder.append_ledger("reader-study-created", path=str(study_path), readers=readers, phases=phases, **extra)
    return study_path


def attached_study(run_dir: str | Path, info: dict[str, Any] | None = None) -> Path | None:
    """The run's study file: the one run.json names, else `<run>/reader_study.sqlite`; None if neither exists.

    `info` is run.json when the caller has already read it; an unreadable
    run.json only means there is no record to follow.
    """
    folder = RunFolder(run_dir)
    if info is None:
        try:
            info = folder.run_info()
        except BsxError:
            info = {}
    named = info.get(RUN_KEY)
    if isinstance(named, str) and named:
        path = Path(named)
        path = path if path.is_absolute() else folder.path / path
        if path.is_file():
            return path
    default = folder.path / STUDY_FILE
    return default if default.is_file() else None
