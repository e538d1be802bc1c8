"""Several processes on one study: local worker processes of ``search(workers=N)``, and
``autoft worker`` joining a study from anywhere (through a database or a shared journal file)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import optuna

from autoft.budget import Budget
from autoft.errors import AutoftError, StudyError, TrialError
from autoft.models.backbone import load_backbone
from autoft.searching.followups import FollowupSettings
from autoft.searching.runner import (
    MAX_CONSECUTIVE_FAILURES,
    PRUNERS,
    Interrupt,
    ProgressHook,
    RunState,
    WorkerConfig,
    cpu_threads,
    make_sampler,
    run_trials,
)
from autoft.searching.space import SearchSpace
from autoft.study.info import now, stored_info, task_from_study
from autoft.study.records import StudyAttr, TrialRecord
from autoft.study.status import STUDY_NAME
from autoft.study.storage import hide_password, open_storage

__all__ = ["record_run", "run_local_workers", "run_worker"]

logger = logging.getLogger(__name__)


def run_id() -> str:
    """A unique id of this run: milliseconds, host and process."""
    import socket

    return f"{int(time.time() * 1000)}-{socket.gethostname()}-{os.getpid()}"


def record_run(study: optuna.Study, run: str, record: dict[str, Any]) -> None:
    """Store one run's record under its own key (workers never overwrite each other's)."""
    study.set_user_attr(f"{StudyAttr.RUN_PREFIX}{run}", record)


def _worker_process(
    storage_spec: dict[str, Any], study_name: str, config: WorkerConfig, limits: Budget,
    deadline_wall: float | None, index: int, threads: int, run: str,
) -> None:
    """Entry point of one local worker process of ``search(..., workers=N)``."""
    import torch

    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(threads)
    storage = open_storage(storage_spec["out_dir"], storage_spec["url"], storage_spec["workers"])
    study = optuna.load_study(study_name=study_name, storage=storage,
                              sampler=make_sampler(config.seed + 1000 * index),
                              pruner=config.make_pruner())
    deadline = None if deadline_wall is None else time.monotonic() + deadline_wall - time.time()
    started, t0 = now(), time.monotonic()
    worker = f"{run}/worker-{index}"
    state = RunState()
    try:
        with Interrupt() as interrupt:
            state = run_trials(study, config, limits, deadline, worker=worker, interrupt=interrupt)
    except KeyboardInterrupt:
        state.stopped_because = "interrupted (Ctrl-C)"
    finally:
        record_run(study, f"{run}-w{index}", {
            "started": started, "ended": now(), "seconds": round(time.monotonic() - t0, 1),
            "budget": limits.describe(), "trials_run": state.trials_run, "worker": worker,
            "stopped_because": state.stopped_because or "the sampler stopped",
            "first_failure": state.first_failure, "first_traceback": state.first_traceback,
        })


def _poll_workers(study: optuna.Study, procs: list[Any], progress: ProgressHook | None,
                  seen: set[int]) -> None:
    """Wait for worker processes, feeding finished trials to the progress display."""
    while True:
        alive = any(p.is_alive() for p in procs)
        if progress is not None:
            for trial in study.get_trials(deepcopy=False):
                if trial.state.is_finished() and trial.number not in seen:
                    seen.add(trial.number)
                    record = TrialRecord.from_trial(trial)
                    if record is not None:
                        progress.on_trial_end(record)
        if not alive:
            return
        time.sleep(1.0)


def run_local_workers(
    study: optuna.Study, config: WorkerConfig, limits: Budget, deadline: float | None,
    workers: int, out_dir: Path, url: str | None, run: str, progress: ProgressHook | None,
) -> RunState:
    """Run ``workers`` processes on this machine against the study and wait for them.

    Each samples with seed ``config.seed + 1000 i`` and uses ``cpu_threads(workers)`` torch
    threads. Returns the combined :class:`RunState` of the workers.
    """
    import multiprocessing

    mp = multiprocessing.get_context("spawn")
    deadline_wall = None if deadline is None else time.time() + deadline - time.monotonic()
    spec = {"out_dir": str(out_dir), "url": url, "workers": workers}
    seen = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
    procs = [
        mp.Process(target=_worker_process, name=f"autoft-worker-{i}",
                   args=(spec, study.study_name, config, limits, deadline_wall, i,
                         cpu_threads(workers), run))
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    try:
        _poll_workers(study, procs, progress, seen)
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
    state = RunState()
    records = [v for k, v in study.user_attrs.items()
               if k.startswith(f"{StudyAttr.RUN_PREFIX}{run}-w")]
    state.trials_run = sum(int(r.get("trials_run", 0)) for r in records)
    failed = [r for r in records if "in a row failed" in str(r.get("stopped_because"))]
    if failed:
        state.failures = MAX_CONSECUTIVE_FAILURES
        state.first_failure = failed[0].get("first_failure", "")
        state.first_traceback = failed[0].get("first_traceback", "")
    reasons = sorted({str(r.get("stopped_because")) for r in records})
    state.stopped_because = "; ".join(reasons) if reasons else "workers ended"
    return state


def config_from_study(study: optuna.Study, *, device: str = "auto", data: Any = None,
                      validation: Any = None, test: Any = None) -> tuple[WorkerConfig, Any, Any]:
    """The worker configuration a study stored: its data (read again and checked), backbone,
    space, pruner, follow-up settings and every setting that changes a score.

    Returns:
        ``(config, encoder, tokenizer)``.

    Raises:
        StudyError: Not an autoft study, or one searched with a pruner instance (a worker
            rebuilds the pruner from its name).
        DataError: The data cannot be found or differ from the study's.
    """
    info = stored_info(study)
    pruner = info.get("pruner", "hyperband")  # studies of autoft 0.1 stored none
    if pruner not in PRUNERS:
        raise StudyError(f"the study was searched with a pruner instance ({pruner}), which a "
                         "worker cannot rebuild; join it from Python with the same search() "
                         f"call, or start a study with a named pruner ({', '.join(PRUNERS)})")
    task = task_from_study(info, data=data, validation=validation, test=test)
    try:
        encoder, tokenizer, resolved = load_backbone(info.get("backbone"))
    except AutoftError:
        encoder, tokenizer, resolved = load_backbone(info["backbone_path"])
    num_layers = int(info["num_layers"])
    config = WorkerConfig(
        task=task, backbone_path=resolved,
        space=SearchSpace.load(info["space"]).resolved(num_layers), num_layers=num_layers,
        metric=info["metric"], direction=info.get("direction", "maximize"),
        max_length=int(info["max_length"]), evals_per_epoch=int(info["evals_per_epoch"]),
        device=device, seed=int(info["seed"]), pruner=pruner,
        local_single=False,
        followups=FollowupSettings.from_dict(study.user_attrs.get(StudyAttr.FOLLOWUPS)),
        baselines=bool(info.get("baselines", True)),
    )
    return config, encoder, tokenizer


def run_worker(
    storage: str | None,
    study_name: str = STUDY_NAME,
    *,
    out: str | Path | None = None,
    budget: str | float | int | None = None,
    n_trials: int | None = None,
    trial_budget: str | float | int | None = None,
    seed: int | None = None,
    device: str = "auto",
    data: Any = None,
    validation: Any = None,
    test: Any = None,
) -> RunState:
    """Join an existing study as one more worker (``autoft worker``), e.g. from another machine.

    The data are read from the paths stored in the study unless given here, and must have the
    study's fingerprint; the backbone is loaded by the study's name or path. The worker uses the
    study's pruner, space, follow-up settings and every setting that changes a score.

    Args:
        storage: The study's database URL (``postgresql://...``, or ``env:NAME``), or None with
            ``out``.
        study_name: The study's name. Default ``"autoft"``.
        out: Output folder of a local journal study (instead of ``storage``).
        budget, n_trials, trial_budget: As for :func:`autoft.search`; ``n_trials`` is the study's
            total. Default: a 30-minute budget.
        seed: This worker's sampler seed; None draws one from the process id and time.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        data, validation, test: The study's data, when the stored paths do not exist here.

    Returns:
        What the run did (trials run, why it stopped).

    Raises:
        StudyError: No such study, or not an autoft study.
        DataError: The data cannot be found or differ from the study's (fingerprint).
        TrialError: :data:`MAX_CONSECUTIVE_FAILURES` trials in a row failed.
    """
    started_at = time.monotonic()
    if budget is None and n_trials is None:
        budget = "30m"
    limits = Budget.from_args(budget, n_trials, trial_budget)
    if not storage and not out:
        raise StudyError("give the study's storage URL (--storage) or its output folder (--out)")
    store = open_storage(out, storage, workers=2, create=False)
    names = [s.study_name for s in store.get_all_studies()]
    if study_name not in names:
        where = hide_password(storage) if storage else str(out)
        raise StudyError(f"no study {study_name!r} in {where!r}; it holds {names}")
    probe = optuna.load_study(study_name=study_name, storage=store)
    config, encoder, tokenizer = config_from_study(probe, device=device, data=data,
                                                   validation=validation, test=test)
    worker_seed = seed if seed is not None else (os.getpid() * 7919 + int(time.time())) % 2**31
    study = optuna.load_study(study_name=study_name, storage=store,
                              sampler=make_sampler(worker_seed), pruner=config.make_pruner())
    run, started = run_id(), now()
    state = RunState()
    try:
        state = run_trials(study, config, limits, limits.deadline(started_at),
                           encoder=encoder, tokenizer=tokenizer, worker=run)
    finally:
        record_run(study, run, {
            "started": started, "ended": now(),
            "seconds": round(time.monotonic() - started_at, 1), "budget": limits.describe(),
            "trials_run": state.trials_run, "worker": run,
            "stopped_because": state.stopped_because or "interrupted",
        })
    if state.failures >= MAX_CONSECUTIVE_FAILURES:
        raise TrialError(
            f"{MAX_CONSECUTIVE_FAILURES} trials in a row failed; the first: {state.first_failure}"
        )
    return state
