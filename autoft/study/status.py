"""Opening an earlier study, and where a (possibly running) study stands: light enough for
``autoft status`` (Optuna and the records only; no torch, no pandas)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import optuna

from autoft.errors import StudyError
from autoft.study.records import StudyAttr, trial_records
from autoft.study.storage import (
    hide_password,
    holds_study_file,
    last_heartbeat,
    open_storage,
)

__all__ = ["BACKBONES_DIR", "BACKBONES_FILE", "STUDY_NAME", "backbone_entry_dir",
           "chosen_backbone_dir", "load_study", "read_backbones_state", "screening_backbones",
           "study_runs", "study_status"]

#: Default study name.
STUDY_NAME = "autoft"


#: The file in a multi-backbone search's output folder that records its screening and choice
#: (see :mod:`autoft.searching.backbones`).
BACKBONES_FILE = "backbones.json"
#: The folder of a multi-backbone search's output folder that holds one study folder per backbone.
BACKBONES_DIR = "backbones"


def backbone_entry_dir(out_dir: str | Path, entry: dict[str, Any]) -> Path:
    """A backbone's study folder of a multi-backbone search: ``entry["folder"]``, relative to
    ``out_dir`` (so the folder can move)."""
    folder = Path(entry["folder"])
    return folder if folder.is_absolute() else Path(out_dir) / folder


def read_backbones_state(out_dir: str | Path) -> dict[str, Any] | None:
    """``OUT/backbones.json`` of a multi-backbone search, or None when ``out_dir`` holds none.

    Raises:
        StudyError: The file cannot be read or is not JSON.
    """
    state_path = Path(out_dir) / BACKBONES_FILE
    if not state_path.is_file():
        return None
    try:
        return dict(json.loads(state_path.read_text()))
    except (OSError, ValueError) as exc:
        raise StudyError(f"cannot read {str(state_path)!r}: {exc}") from None


def screening_backbones(out_dir: str | Path) -> list[dict[str, Any]] | None:
    """The backbones of a multi-backbone search that is still screening them (it writes
    ``OUT/backbones.json`` once every backbone is screened): one ``{"name", "folder"}`` per study
    folder under ``OUT/backbones/``, named by its folder (the backbone's slug). None when
    ``out_dir`` holds ``backbones.json`` or no such study folder."""
    folder = Path(out_dir) / BACKBONES_DIR
    if (Path(out_dir) / BACKBONES_FILE).is_file() or not folder.is_dir():
        return None
    found = [{"name": sub.name, "folder": f"{BACKBONES_DIR}/{sub.name}"}
             for sub in sorted(folder.iterdir()) if sub.is_dir() and holds_study_file(sub)]
    return found or None


def _chosen_entry(out_dir: str | Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    state = read_backbones_state(out_dir)
    if state is None:
        return None
    chosen = state.get("chosen")
    entry = next((e for e in state.get("backbones", []) if e.get("name") == chosen), None)
    return None if entry is None else (state, entry)


def chosen_backbone_dir(out_dir: str | Path) -> Path | None:
    """The chosen backbone's study folder when ``out_dir`` holds a multi-backbone search, else
    None (also when no backbone has been chosen yet)."""
    found = _chosen_entry(out_dir)
    return None if found is None else backbone_entry_dir(out_dir, found[1])


def load_study(
    out_dir: str | Path | None = None, study_name: str | None = None, storage: str | None = None
) -> optuna.Study:
    """Open the study of an earlier search.

    Args:
        out_dir: The search's output folder (holding ``study.db`` or ``study.journal``); for a
            multi-backbone search's folder, the chosen backbone's study.
        study_name: The study's name; None for the only study in the storage. Default None.
        storage: A database URL (or ``env:NAME``) instead of ``out_dir``. Default None.

    Raises:
        StudyError: No study file or storage, or no (unique) study in it.
    """
    if storage is None and out_dir is not None and not holds_study_file(out_dir):
        found = _chosen_entry(out_dir)
        if found is not None:
            state, entry = found
            if state.get("storage"):  # the studies are in a database: its URL is needed
                if "***" in str(state["storage"]):
                    raise StudyError(f"{str(out_dir)!r} holds a multi-backbone search kept in "
                                     f"{state['storage']}; give --storage URL --study "
                                     f"{entry.get('study_name')}")
                storage, study_name = state["storage"], entry.get("study_name")
            out_dir = backbone_entry_dir(out_dir, entry)
        elif (Path(out_dir) / BACKBONES_FILE).is_file():
            raise StudyError(f"{str(out_dir)!r} holds a multi-backbone search that has not chosen "
                             "a backbone yet; open one of its backbones/ folders")
    store = open_storage(out_dir, storage, create=False)
    names = [s.study_name for s in store.get_all_studies()]
    where = hide_password(storage) if storage else str(out_dir)
    if not names:
        raise StudyError(f"{where!r} holds no study; give the --out folder of an earlier "
                         "'autoft search'")
    if study_name is None:
        if len(names) != 1:
            raise StudyError(f"{where!r} holds studies {names}; name one with --study")
        study_name = names[0]
    if study_name not in names:
        raise StudyError(f"{where!r} has no study {study_name!r}; it holds {names}")
    return optuna.load_study(study_name=study_name, storage=store)


def study_runs(study: optuna.Study) -> list[dict[str, Any]]:
    """The records of every search run and worker of a study, oldest first.

    A record whose ``ended`` is None belongs to a run that never finished (killed or crashed).
    """
    runs = [dict(v) for k, v in study.user_attrs.items() if k.startswith(StudyAttr.RUN_PREFIX)]
    return sorted(runs, key=lambda r: str(r.get("started")))


def study_status(study: optuna.Study) -> dict[str, Any]:
    """Where a (possibly running) study stands, from its storage alone.

    Returns:
        A dict with ``study``, ``metric``, ``direction``, ``counts`` (trials by status: complete,
        pruned, budget, diverged, failed, interrupted, running, waiting), ``best`` (best score of
        a trial that finished training, or None), ``best_trial``, ``running``
        (``[{"number", "seconds", "heartbeat_age"}]``; the age is None for database storages,
        whose heartbeats Optuna keeps), ``seconds_left`` (of the newest unfinished run with a
        time budget, else None).
    """
    now = time.time()
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    records = trial_records(list(trials.values()))
    counts: dict[str, int] = {}
    for r in records:
        counts[r.status] = counts.get(r.status, 0) + 1
    info = study.user_attrs.get(StudyAttr.INFO, {})
    sign = -1.0 if info.get("direction") == "minimize" else 1.0
    done = [r for r in records if r.finished]
    best = max(done, key=lambda r: sign * float(r.score or 0.0), default=None)
    running = []
    for r in records:
        if r.status == "running":
            trial = trials[r.number]
            start = trial.datetime_start.timestamp() if trial.datetime_start else now
            beat = last_heartbeat(trial)
            running.append({"number": r.number, "seconds": round(now - start, 1),
                            "heartbeat_age": None if beat is None else round(now - beat, 1)})
    open_runs = [r for r in study_runs(study) if r.get("ended") is None and r.get("deadline_unix")]
    left = max((float(r["deadline_unix"]) - now for r in open_runs), default=None)
    return {
        "study": study.study_name,
        "metric": info.get("metric"),
        "direction": info.get("direction", "maximize"),
        "counts": counts,
        "best": None if best is None else best.score,
        "best_trial": None if best is None else best.number,
        "running": running,
        "seconds_left": None if left is None else max(0.0, left),
    }
