"""Where studies live, and keeping them true when processes die.

* An output folder holds one study file: ``study.db`` (SQLite, the default for one worker) or
  ``study.journal`` (Optuna's ``JournalStorage`` file backend, used for ``--workers N``: it appends
  under a file lock, so several processes never hit SQLite's "database is locked").
* A database URL (``postgresql://...``, any Optuna RDB URL) lets workers on several machines share a
  study. The URL may also come from an environment variable (``--storage env:NAME``), so that a
  password stays out of shell history and process lists; passwords never appear in messages.
* **Dead processes.** For database storages (SQLite files included) Optuna's own heartbeat is used
  (``RDBStorage(heartbeat_interval=..., grace_period=...)``: database time, and an atomic state
  change, so exactly one worker fails a stale trial); its callback here re-enqueues the trial's
  parameters once. Journal files have no Optuna heartbeat, so :class:`Heartbeat` stamps each
  running trial from a thread and :func:`fail_stale_trials` fails and re-enqueues trials silent
  for :data:`GRACE_SECONDS`.
* A journal file whose last record was cut off by a killed writer is repaired when opened (the
  broken record is set aside, with a warning and a copy of the original file); a broken record
  anywhere else is an error that leaves the file as it is.
* :func:`lock_folder` keeps a second ``autoft search`` out of a folder in use.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from autoft.errors import StudyError
from autoft.study.records import FOLLOWUP_ATTRS, INTERRUPTED_REASON, Attr

__all__ = [
    "GRACE_SECONDS",
    "HEARTBEAT_SECONDS",
    "STUDY_DB",
    "STUDY_JOURNAL",
    "FolderLock",
    "Heartbeat",
    "describe_storage",
    "fail_stale_trials",
    "hide_password",
    "is_interrupted",
    "holds_study_file",
    "lock_folder",
    "open_storage",
    "resolve_storage_url",
    "retry_trial",
]

logger = logging.getLogger(__name__)

STUDY_DB = "study.db"
STUDY_JOURNAL = "study.journal"
LOCK_FILE = ".autoft.lock"
#: Seconds between two heartbeats of a running trial.
HEARTBEAT_SECONDS = 10
#: A running trial whose last heartbeat is older than this many seconds belongs to a dead process.
GRACE_SECONDS = 60
#: User attribute holding the parameters a queued trial was enqueued with (for its retry).
PLANNED_PARAMS = Attr.PLANNED_PARAMS
_HEARTBEAT_ATTR = "autoft_heartbeat"
_SECRET_QUERY = re.compile(r"((?:^|[?&;])(?:password|passwd|pwd|pass)=)[^&;]*", re.IGNORECASE)


def hide_password(url: str) -> str:
    """``url`` with every password replaced by ``***``: the userinfo password (found by
    SQLAlchemy's URL parser, ``sqlalchemy.engine.make_url``) and ``password=`` values in the query
    or the database part. The rest of the URL stays as written."""
    text = str(url)
    secrets: list[str] = []
    try:
        from urllib.parse import quote

        from sqlalchemy.engine import make_url

        parsed = make_url(text)
        if parsed.password:
            secrets += [str(parsed.password), quote(str(parsed.password), safe="")]
        for key, value in parsed.query.items():
            if key.lower() in ("password", "passwd", "pwd", "pass"):
                secrets += [value] if isinstance(value, str) else list(value)
    except Exception:  # not a URL SQLAlchemy parses
        pass
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = re.sub(r"(://[^/?#@:]*:)[^@/?#]*@", r"\1***@", text)
    return _SECRET_QUERY.sub(r"\1***", text)


def resolve_storage_url(url: str | None) -> str | None:
    """The storage URL to open: ``url`` itself, or for ``env:NAME`` the value of the environment
    variable NAME (so the password stays out of shell history and ``ps`` output).

    Raises:
        StudyError: The named variable is not set.
    """
    if url is None or not str(url).startswith("env:"):
        return url
    name = str(url)[4:]
    value = os.environ.get(name)
    if not value:
        raise StudyError(f"--storage env:{name}: the environment variable {name} is not set; "
                         f"export {name}=postgresql://user:password@host/db first")
    return value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _on_stale(study: optuna.Study, trial: FrozenTrial) -> None:
    """Optuna's heartbeat failed ``trial`` (its process died): run its parameters once more."""
    logger.warning("trial %d was interrupted (its process stopped sending heartbeats); its "
                   "parameters are tried once more", trial.number)
    retry_trial(study, trial)


def _rdb(url: str, **kwargs: Any) -> optuna.storages.RDBStorage:
    import warnings

    with warnings.catch_warnings():  # heartbeat_interval is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
            heartbeat_stale_trial_callback=_on_stale, **kwargs)


def _sqlite(path: Path, existing: bool = False) -> optuna.storages.RDBStorage:
    # A generous busy timeout: with one writer, SQLite never waits long. An existing study file
    # opened to be read (status, report) skips the table creation and schema check, which take
    # most of a second.
    try:
        return _rdb(f"sqlite:///{path.resolve()}",
                    engine_kwargs={"connect_args": {"timeout": 60}},
                    skip_table_creation=existing, skip_compatibility_check=existing)
    except Exception as exc:  # sqlalchemy's DatabaseError and friends
        raise StudyError(
            f"{str(path)!r} is not a readable SQLite study file ({_first_line(exc)}); move it "
            "away or use another --out folder"
        ) from None


def _broken_lines(raw: bytes) -> tuple[list[int], int]:
    """Numbers (0-based) of the lines of a journal that are not whole records, and the number of
    the last line with content. A last line without its newline is never whole: Optuna would
    append the next record onto it."""
    lines = raw.split(b"\n")
    bad = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if i == len(lines) - 1:  # no newline after it
            bad.append(i)
            continue
        try:
            json.loads(line)
        except ValueError:
            bad.append(i)
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    return bad, last


def _check_journal(path: Path) -> None:
    """Repair a journal whose last record was cut off; refuse one broken elsewhere.

    The check runs under the journal's own lock (``JournalFileOpenLock``, the one Optuna's
    writers take to append), so a live writer finishing its line is waited for, never cut.

    Raises:
        StudyError: A record before the last one is broken (the file is left unchanged).
    """
    from optuna.storages.journal import JournalFileOpenLock

    if not path.is_file() or not _broken_lines(path.read_bytes())[0]:
        return
    lock = JournalFileOpenLock(str(path), grace_period=30)
    lock.acquire()
    try:
        raw = path.read_bytes()
        bad, last = _broken_lines(raw)
        if not bad:
            return  # a live writer finished its line meanwhile
        if bad != [last]:
            raise StudyError(
                f"{str(path)!r} has broken records (line {bad[0] + 1} of {last + 1}), not only a "
                "cut-off last one, so it was left unchanged. Restore it from a backup, or keep the "
                f"lines before line {bad[0] + 1} in a copy and resume from that copy"
            )
        backup = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copy2(path, backup)
        lines = raw.split(b"\n")
        path.write_bytes(b"".join(line + b"\n" for line in lines[:last]))
        logger.warning(
            "the last record of %s was cut off (a process was killed while writing it) and was "
            "set aside; the original file is kept as %s, and every finished trial is kept",
            path, backup)
    finally:
        lock.release()


def _journal(path: Path) -> optuna.storages.JournalStorage:
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    _check_journal(path)
    try:
        return optuna.storages.JournalStorage(
            JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path), grace_period=30))
        )
    except Exception as exc:  # undecodable or truncated records
        raise StudyError(
            f"{str(path)!r} is not a readable Optuna journal ({_first_line(exc)}); move it away "
            "or use another --out folder"
        ) from None


def open_storage(
    out_dir: str | Path | None = None,
    url: str | None = None,
    workers: int = 1,
    create: bool = True,
) -> BaseStorage:
    """Open the storage of a study.

    Args:
        out_dir: Output folder holding ``study.db`` or ``study.journal``. Ignored when ``url``
            is given.
        url: An Optuna RDB URL (``postgresql://user:pw@host/db``, ``sqlite:///path``), or
            ``env:NAME`` for the URL in environment variable NAME, or None.
        workers: Worker processes that will share the study; a new local study with more than one
            gets a journal file. Default 1.
        create: Create a new study file when the folder has none. Default True.

    Raises:
        StudyError: Both study files in one folder, no study file when ``create`` is False, an
            SQLite study asked to take several workers, a broken journal, or a URL that cannot be
            opened (the message never shows its password).
    """
    url = resolve_storage_url(url)
    if url is not None:
        try:
            return _rdb(url, engine_kwargs={"pool_pre_ping": True})
        except Exception as exc:  # sqlalchemy raises many types; all mean "cannot open"
            hint = ""
            if "import" in str(exc).lower() and url.startswith("postgres"):
                hint = "; PostgreSQL needs its driver: pip install 'autoft[postgres]'"
            reason = hide_password(_first_line(exc)).replace(url, hide_password(url))
            raise StudyError(f"cannot open study storage {hide_password(url)!r}: "
                             f"{reason}{hint}") from None
    if out_dir is None:
        raise StudyError("give an output folder or a storage URL")
    out = Path(out_dir)
    db, journal = out / STUDY_DB, out / STUDY_JOURNAL
    if db.exists() and journal.exists():
        raise StudyError(f"{str(out)!r} holds both {STUDY_DB} and {STUDY_JOURNAL}; keep one")
    if journal.exists():
        return _journal(journal)
    if db.exists():
        if workers > 1:
            raise StudyError(
                f"the study in {str(out)!r} is an SQLite file ({STUDY_DB}) for one worker, which "
                "locks under several writers; continue it with one worker (autoft search ... "
                "--workers 1), or start a new --out folder with --workers N (or --storage URL) to "
                "have several workers"
            )
        return _sqlite(db, existing=not create)
    if not create:
        raise StudyError(
            f"no study in {str(out)!r} (no {STUDY_DB} or {STUDY_JOURNAL}); give the --out folder "
            "of an earlier 'autoft search'"
        )
    out.mkdir(parents=True, exist_ok=True)
    return _journal(journal) if workers > 1 else _sqlite(db)


def holds_study_file(out_dir: str | Path) -> bool:
    """Whether ``out_dir`` holds a one-backbone search's study file (``study.db`` or
    ``study.journal``)."""
    return any((Path(out_dir) / f).exists() for f in (STUDY_DB, STUDY_JOURNAL))


def study_file(out_dir: str | Path, storage: BaseStorage) -> str:
    """Where the study of ``storage`` lives, for messages: the file in ``out_dir``, or the
    database URL without its password."""
    if isinstance(storage, optuna.storages.JournalStorage):
        return str(Path(out_dir) / STUDY_JOURNAL)
    if isinstance(storage, optuna.storages.RDBStorage) and str(storage.url).startswith("sqlite"):
        return str(Path(out_dir) / STUDY_DB)
    return describe_storage(storage)


def describe_storage(storage: BaseStorage) -> str:
    """A short name of the storage for reports (passwords hidden)."""
    if isinstance(storage, optuna.storages.RDBStorage):
        return hide_password(str(storage.url))
    if isinstance(storage, optuna.storages.JournalStorage):
        return "journal file"
    return type(storage).__name__


def uses_optuna_heartbeat(storage: BaseStorage) -> bool:
    """Whether Optuna's own heartbeat watches this storage's running trials (database storages
    opened by :func:`open_storage`); else :class:`Heartbeat` does."""
    return isinstance(storage, optuna.storages.RDBStorage) and \
        storage.get_heartbeat_interval() is not None


class Heartbeat:
    """Stamps a running trial every ``interval`` seconds from a daemon thread (a context manager),
    for storages without Optuna's heartbeat (journal files).

    Args:
        storage: The study's storage.
        trial_id: The storage's id of the trial.
        interval: Seconds between stamps. Default :data:`HEARTBEAT_SECONDS`.
    """

    def __init__(self, storage: BaseStorage, trial_id: int,
                 interval: float = HEARTBEAT_SECONDS) -> None:
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="autoft-heartbeat", daemon=True)

    def _beat(self) -> None:
        try:
            self.storage.set_trial_system_attr(self.trial_id, _HEARTBEAT_ATTR, time.time())
        except Exception:  # the trial finished meanwhile, or the storage blinked: try again later
            logger.debug("heartbeat of trial %d not written", self.trial_id, exc_info=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._beat()

    def __enter__(self) -> Heartbeat:
        self._beat()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def last_heartbeat(trial: FrozenTrial) -> float | None:
    """The ``time.time()`` of a running trial's last :class:`Heartbeat` stamp (None without one)."""
    beat = trial.system_attrs.get(_HEARTBEAT_ATTR)
    return None if beat is None else float(beat)


def is_interrupted(trial: FrozenTrial) -> bool:
    """Whether a failed trial was interrupted (its process ended) rather than failing itself: it
    is marked so, or it failed without the reason autoft records for every error."""
    return trial.state == TrialState.FAIL and (
        bool(trial.user_attrs.get(Attr.INTERRUPTED)) or not trial.user_attrs.get(Attr.FAIL_REASON))


def retry_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    """Enqueue an interrupted trial's parameters once more (a retry is never retried, and a
    trial already retried is not retried again). A retried follow-up stays a follow-up. Two
    workers may both enqueue a retry between the check and the enqueue; the later copy is skipped
    when it starts (``autoft.searching.followups.is_duplicate_followup``)."""
    trials = study.get_trials(deepcopy=False)
    if trial.user_attrs.get(Attr.RETRY_OF) is not None or any(
            t.user_attrs.get(Attr.RETRY_OF) == trial.number for t in trials):
        return
    kept = {k: trial.user_attrs[k] for k in FOLLOWUP_ATTRS if k in trial.user_attrs}
    # a trial can die before its parameters were suggested; the planned ones stand
    params = {**trial.user_attrs.get(PLANNED_PARAMS, {}), **trial.params}
    study.enqueue_trial(params, user_attrs={**kept, PLANNED_PARAMS: params,
                                            Attr.RETRY_OF: trial.number})


def fail_stale_trials(
    study: optuna.Study, grace: float | None = GRACE_SECONDS, retry: bool = True
) -> list[FrozenTrial]:
    """Mark RUNNING trials of dead processes as failed (interrupted) and enqueue each one's
    parameters once.

    Args:
        study: The study.
        grace: A RUNNING trial whose last :class:`Heartbeat` stamp (or start, without one) is
            older than this many seconds is stale. None treats every RUNNING trial as stale
            (right when a process holds the folder lock of a one-worker study and is starting).
            Default :data:`GRACE_SECONDS`.
        retry: Enqueue the parameters of each trial failed here, and of interrupted trials
            that have no retry yet.

    Returns:
        The trials that were marked failed now.
    """
    storage = study._storage
    now = time.time()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        beat = last_heartbeat(trial)
        if beat is None and trial.datetime_start is not None:
            beat = trial.datetime_start.timestamp()
        if grace is not None and beat is not None and now - beat <= grace:
            continue
        try:
            trial_id = trial._trial_id
            storage.set_trial_user_attr(trial_id, Attr.INTERRUPTED, True)
            storage.set_trial_user_attr(trial_id, Attr.FAIL_REASON, INTERRUPTED_REASON)
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
            failed.append(trial)
        except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
            continue  # another worker finished or failed it first
    if retry:
        for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
            if is_interrupted(trial):
                retry_trial(study, trial)
                logger.info("trial %d was interrupted; its parameters are tried once more",
                            trial.number)
    return failed


class FolderLock:
    """An exclusive lock on an output folder for one ``autoft search`` (``filelock``, an
    OS-level lock released when the process ends, however it ends)."""

    def __init__(self, out_dir: Path) -> None:
        from filelock import FileLock

        self.path = Path(out_dir) / LOCK_FILE
        self._lock = FileLock(str(self.path))

    def acquire(self) -> None:
        """Take the lock.

        Raises:
            StudyError: Another process holds it.
        """
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise StudyError(
                f"{str(self.path.parent)!r} is in use by another autoft search; wait for it to "
                "end (autoft status shows it), or use another --out folder. To add workers to a "
                "running search, use autoft worker"
            ) from None

    def release(self) -> None:
        """Release the lock."""
        self._lock.release()

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def lock_folder(out_dir: str | Path) -> FolderLock:
    """Lock ``out_dir`` for this process (see :class:`FolderLock`); use as a context manager.

    Raises:
        StudyError: Another ``autoft search`` uses the folder.
    """
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return FolderLock(Path(out_dir))
