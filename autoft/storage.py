"""Where studies live, and keeping them true when processes die.

* An output folder holds one study file: ``study.db`` (SQLite, the default for one worker) or
  ``study.journal`` (Optuna's ``JournalStorage`` file backend, used for ``--workers N``: it appends
  under a file lock, so several processes never hit SQLite's "database is locked").
* A database URL (``postgresql://...``, any Optuna RDB URL) lets workers on several machines share a
  study.
* Each running trial has a heartbeat: a thread stamps the trial every :data:`HEARTBEAT_SECONDS`.
  A RUNNING trial whose stamp is older than :data:`GRACE_SECONDS` belongs to a dead process
  (``kill -9``, a crash, a lost machine): :func:`fail_stale_trials` marks it failed with the reason
  and enqueues its parameters once more. Optuna's own heartbeat exists only for RDB storages; this
  one works on every storage.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from autoft.errors import StudyError
from autoft.followup import FOLLOWUP_ATTRS

__all__ = [
    "GRACE_SECONDS",
    "HEARTBEAT_SECONDS",
    "STUDY_DB",
    "STUDY_JOURNAL",
    "Heartbeat",
    "describe_storage",
    "fail_stale_trials",
    "open_storage",
]

logger = logging.getLogger(__name__)

STUDY_DB = "study.db"
STUDY_JOURNAL = "study.journal"
#: Seconds between two heartbeats of a running trial.
HEARTBEAT_SECONDS = 10.0
#: A running trial whose last heartbeat is older than this many seconds belongs to a dead process.
GRACE_SECONDS = 60.0
_HEARTBEAT_ATTR = "autoft_heartbeat"


def _sqlite(path: Path) -> optuna.storages.RDBStorage:
    # A generous busy timeout: with one writer, SQLite never waits long.
    try:
        return optuna.storages.RDBStorage(
            f"sqlite:///{path.resolve()}", engine_kwargs={"connect_args": {"timeout": 60}}
        )
    except Exception as exc:  # sqlalchemy's DatabaseError and friends
        raise StudyError(
            f"{str(path)!r} is not a readable SQLite study file ({_first_line(exc)}); move it "
            "away or use another --out folder"
        ) from exc


def _journal(path: Path) -> optuna.storages.JournalStorage:
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    try:
        return optuna.storages.JournalStorage(
            JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path), grace_period=30))
        )
    except Exception as exc:  # undecodable or truncated records
        raise StudyError(
            f"{str(path)!r} is not a readable Optuna journal ({_first_line(exc)}); move it away "
            "or use another --out folder"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


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
        url: An Optuna RDB URL (``postgresql://user:pw@host/db``, ``sqlite:///path``), or None.
        workers: Worker processes that will share the study; a new local study with more than one
            gets a journal file. Default 1.
        create: Create a new study file when the folder has none. Default True.

    Raises:
        StudyError: Both study files in one folder, no study file when ``create`` is False, an
            SQLite study asked to take several workers, or a URL that cannot be opened.
    """
    if url is not None:
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
        except Exception as exc:  # sqlalchemy raises many types; all mean "cannot open"
            hint = ""
            if "import" in str(exc).lower() and url.startswith("postgres"):
                hint = "; PostgreSQL needs its driver: pip install 'autoft[postgres]'"
            raise StudyError(f"cannot open study storage {url!r}: {_first_line(exc)}{hint}") from exc
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
        return _sqlite(db)
    if not create:
        raise StudyError(
            f"no study in {str(out)!r} (no {STUDY_DB} or {STUDY_JOURNAL}); give the --out folder "
            "of an earlier 'autoft search'"
        )
    out.mkdir(parents=True, exist_ok=True)
    return _journal(journal) if workers > 1 else _sqlite(db)


def describe_storage(storage: BaseStorage) -> str:
    """A short name of the storage for reports (passwords removed)."""
    if isinstance(storage, optuna.storages.RDBStorage):
        url = str(storage.url)
        if "@" in url and "://" in url:
            scheme, rest = url.split("://", 1)
            url = f"{scheme}://***@{rest.split('@', 1)[1]}"
        return url
    if isinstance(storage, optuna.storages.JournalStorage):
        return "journal file"
    return type(storage).__name__


class Heartbeat:
    """Stamps a running trial every ``interval`` seconds from a daemon thread (a context manager).

    Args:
        storage: The study's storage.
        trial_id: The storage's id of the trial (``trial._trial_id``).
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


def _last_beat(trial: FrozenTrial) -> float:
    beat = trial.system_attrs.get(_HEARTBEAT_ATTR)
    if beat is not None:
        return float(beat)
    start = trial.datetime_start
    return start.timestamp() if start is not None else 0.0


def fail_stale_trials(
    study: optuna.Study, grace: float | None = GRACE_SECONDS, retry: bool = True
) -> list[FrozenTrial]:
    """Mark RUNNING trials of dead processes as failed, and enqueue each one's parameters once.

    Args:
        study: The study.
        grace: A RUNNING trial whose last heartbeat is older than this many seconds is stale.
            None treats every RUNNING trial as stale (right when only one worker uses the study and
            it is starting). Default :data:`GRACE_SECONDS`.
        retry: Enqueue the parameters of each interrupted trial once (never a retry's retry).

    Returns:
        The trials that were marked failed now.
    """
    storage = study._storage
    now = time.time()
    stale = [
        t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if grace is None or now - _last_beat(t) > grace
    ]
    failed = []
    for trial in stale:
        try:
            storage.set_trial_user_attr(trial._trial_id, "interrupted", True)
            storage.set_trial_user_attr(
                trial._trial_id, "fail_reason",
                "interrupted: the process running this trial ended (killed or crashed)",
            )
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            failed.append(trial)
        except RuntimeError:  # another worker finished or failed it first
            continue
    if not retry:
        return failed
    retried = set(study.user_attrs.get("retried_trials", []))
    for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if (trial.user_attrs.get("interrupted") and trial.number not in retried
                and trial.user_attrs.get("retry_of") is None):
            retried.add(trial.number)
            study.set_user_attr("retried_trials", sorted(retried))
            kept = {k: trial.user_attrs[k] for k in FOLLOWUP_ATTRS + ("baseline",)
                    if k in trial.user_attrs}  # a retried follow-up stays a follow-up
            # a trial can die before suggest() recorded its params; the enqueued ones stand
            params = {**trial.system_attrs.get("fixed_params", {}), **trial.params}
            study.enqueue_trial(params, user_attrs={**kept, "retry_of": trial.number})
            logger.info("trial %d was interrupted; its parameters are tried once more", trial.number)
    return failed
