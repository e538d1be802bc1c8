"""``search(...)``: create or resume a study, run trial fine-tunes until the budget ends, report.

One search run:

1. checks every argument and the data, loads the backbone and resolves the search space (all errors
   are raised here, before any training);
2. opens the study (``OUT/study.db``, ``OUT/study.journal`` for several workers, or a database
   URL), creating it or resuming it (same data, backbone and metric required); trials left RUNNING
   by a killed run are marked failed and retried once (see :mod:`autoft.storage`);
3. on a new study, enqueues the space's baselines (full fine-tuning, linear probe, midpoint);
4. tokenizes every split once, then runs trials (:func:`autoft.finetune.train_strategy`) under an
   Optuna sampler and pruner until the time budget or the trial count is reached;
5. writes ``report.md``, ``report.json`` and ``trials.csv`` and returns a :class:`SearchResult`.
"""

from __future__ import annotations

import datetime as _dt
import gc
import logging
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from autoft import __version__
from autoft.backbone import load_backbone, locate_parts
from autoft.budget import Budget, format_duration
from autoft.data import TaskData, load_task_data
from autoft.errors import AutoftError, DataError, StudyError, TrialError
from autoft.finetune import METRICS, encode_split, resolve_device, train_strategy
from autoft.followup import (
    estimate_seconds,
    is_duplicate_followup,
    nested_subset,
    plan_followups,
)
from autoft.prefix_cache import PrefixCache
from autoft.recommend import Recommendation, recommend, trial_records
from autoft.report import STUDY_NAME, load_study, write_report
from autoft.space import SearchSpace
from autoft.storage import GRACE_SECONDS, Heartbeat, describe_storage, fail_stale_trials, open_storage
from autoft.strategy import Strategy, count_parameters

__all__ = ["PRUNERS", "ProgressHook", "SearchResult", "make_pruner", "run_worker", "search"]

logger = logging.getLogger(__name__)

#: Pruner names ``search`` accepts (or pass an ``optuna.pruners.BasePruner``).
PRUNERS = ("hyperband", "successive_halving", "median", "none")
#: Consecutive failed trials after which a search stops (the cause is systematic, not one trial's).
MAX_CONSECUTIVE_FAILURES = 3

#: Largest share of a time budget the follow-up trials may claim (when their estimated cost is
#: larger than ``reserve``).
MAX_RESERVE = 0.5


class ProgressHook:
    """Receives a search's progress; the CLI's display implements it. Every method is optional.

    Times are ``time.monotonic()`` values; scores are in the search's metric.
    """

    def on_search_start(self, info: dict[str, Any]) -> None:
        """Called once before the first trial. ``info`` keys: ``deadline`` (or None),
        ``n_trials`` (target or None), ``finished`` (trials finished in earlier runs), ``best``
        (best score so far or None), ``metric``, ``train_size``, ``validation_size``."""

    def on_trial_start(self, number: int, strategy: Strategy) -> None:
        """A trial begins training ``strategy``."""

    def on_evaluation(self, number: int, index: int, score: float) -> None:
        """Trial ``number`` finished its ``index``-th (1-based) validation evaluation."""

    def on_trial_end(self, trial: FrozenTrial) -> None:
        """A trial finished (complete, pruned or failed; not for a skipped duplicate follow-up)."""

    def on_search_end(self, stopped_because: str) -> None:
        """The run ended; ``stopped_because`` says why."""


def make_pruner(pruner: str | optuna.pruners.BasePruner, max_resource: int) -> optuna.pruners.BasePruner:
    """Build the pruner. Steps are validation evaluations (1, 2, ...), ``evals_per_epoch`` per epoch.

    Args:
        pruner: ``"hyperband"`` (Li et al. 2018; Optuna's ``HyperbandPruner`` with min resource 1
            evaluation, reduction factor 3), ``"successive_halving"`` (asynchronous successive
            halving, Li et al. 2020), ``"median"`` (prune below the median of earlier trials at the
            same step, after 3 trials), ``"none"``, or any Optuna pruner instance.
        max_resource: Most evaluations a trial can report (max epochs x evals per epoch).

    Raises:
        AutoftError: Unknown pruner name.
    """
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max(1, max_resource), reduction_factor=3
        )
    if pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if pruner == "none":
        return optuna.pruners.NopPruner()
    raise AutoftError(f"pruner {pruner!r} is not one of {PRUNERS} or an optuna pruner")


class SearchResult:
    """The outcome of a search, read from its study (scikit-learn style ``_``-suffixed results).

    Args:
        study: The Optuna study.
        out_dir: The output folder (holding the study file and the report). Default None.
        report_paths: Paths of the written report files. Default none.

    Attributes:
        study_: The Optuna study (a standard storage: optuna-dashboard opens it).
        recommendation_: The :class:`~autoft.recommend.Recommendation`, or None if no trial
            completed.
        best_strategy_: The recommended :class:`~autoft.Strategy` (None if no trial completed).
        best_score_: Its validation score (None if no trial completed).
        best_params_: Its fields as a flat dict (``Strategy.to_dict()``).
        best_trial_: Its ``optuna.trial.FrozenTrial``.
        trials_: Dict of equal-length column lists, one row per trial that ran (loads straight into
            ``pandas.DataFrame(result.trials_)``); columns as in :func:`autoft.recommend.trial_records`.
        report_paths_: Written report files by kind (``"json"``, ``"markdown"``, ``"csv"``).
    """

    def __init__(
        self,
        study: optuna.Study,
        out_dir: str | Path | None = None,
        report_paths: dict[str, Path] | None = None,
    ) -> None:
        self.study_ = study
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.report_paths_ = dict(report_paths or {})
        info = study.user_attrs.get("autoft", {})
        self.recommendation_: Recommendation | None = recommend(
            study, info.get("metric", "accuracy"), int(info.get("num_layers", 0))
        )
        records = [r for r in trial_records(study.get_trials(deepcopy=False))
                   if r["state"] != "WAITING"]  # queued, never run
        columns = list(records[0]) if records else []
        self.trials_: dict[str, list[Any]] = {c: [r[c] for r in records] for c in columns}

    @classmethod
    def from_dir(cls, out_dir: str | Path, study_name: str | None = None) -> SearchResult:
        """Load the result of an earlier search from its output folder."""
        return cls(load_study(out_dir, study_name), out_dir)

    @property
    def best_strategy_(self) -> Strategy | None:
        return None if self.recommendation_ is None else self.recommendation_.strategy

    @property
    def best_score_(self) -> float | None:
        return None if self.recommendation_ is None else self.recommendation_.score

    @property
    def best_params_(self) -> dict[str, Any] | None:
        return None if self.recommendation_ is None else self.recommendation_.strategy.to_dict()

    @property
    def best_trial_(self) -> FrozenTrial | None:
        if self.recommendation_ is None:
            return None
        number = self.recommendation_.trial_number
        return next(t for t in self.study_.get_trials(deepcopy=False) if t.number == number)

    def __repr__(self) -> str:
        n = len(self.trials_.get("number", []))
        if self.recommendation_ is None:
            return f"SearchResult({n} trials, none completed)"
        return (
            f"SearchResult({n} trials, best_score_={self.best_score_:.4f}, "
            f"best_strategy_={self.best_strategy_})"
        )


class _Interrupt:
    """Turns Ctrl-C into a flag checked at safe points (every training step, after each trial).

    A ``KeyboardInterrupt`` raised wherever Python happens to be can land in a garbage-collection
    callback of a library, where it is printed and swallowed, and the search runs on. With this
    handler installed (main thread only), the first Ctrl-C sets the flag and the next training step
    raises ``KeyboardInterrupt`` from autoft's own code; a second Ctrl-C interrupts at once.
    """

    def __init__(self) -> None:
        self.hit = False
        self._previous: Any = None

    def __enter__(self) -> _Interrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.hit = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C: right now

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if Ctrl-C was pressed."""
        if self.hit:
            raise KeyboardInterrupt

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


@dataclass
class _RunState:
    """Bookkeeping of one search run."""

    stopped_because: str = ""
    failures: int = 0
    first_failure: str = ""
    first_traceback: str = ""
    trials_run: int = 0
    followups_enqueued: bool = False


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _path_or_none(value: Any) -> str | None:
    return str(Path(value).resolve()) if isinstance(value, (str, os.PathLike)) else None


def _counted(trial: FrozenTrial) -> bool:
    """Trials that count toward ``n_trials``: finished, not merely interrupted, not a skipped
    duplicate follow-up."""
    return (trial.state.is_finished() and not trial.user_attrs.get("interrupted", False)
            and trial.user_attrs.get("duplicate_of") is None)


def _study_info(
    task: TaskData, backbone: str | None, resolved: str, encoder: Any, space: SearchSpace,
    metric: str, seed: int, max_length: int, evals_per_epoch: int, validation_size: float | int,
    paths: dict[str, str | None],
) -> dict[str, Any]:
    return {
        "version": __version__,
        "created": _now(),
        "metric": metric,
        "backbone": backbone or "all-MiniLM-L6-v2",
        "backbone_path": resolved,
        "model_type": encoder.config.model_type,
        "num_layers": locate_parts(encoder).num_layers,
        "backbone_params": count_parameters(encoder),
        "space": space.to_dict(),
        "seed": seed,
        "max_length": max_length,
        "evals_per_epoch": evals_per_epoch,
        "validation_size": validation_size,
        "data": task.summary(),
        "data_paths": paths,
    }


def _check_resume(study: optuna.Study, info: dict[str, Any], out_dir: Path) -> None:
    old = study.user_attrs.get("autoft")
    if not isinstance(old, dict):
        raise StudyError(
            f"the storage of {str(out_dir)!r} holds a study {study.study_name!r} not made by "
            "autoft; use another --out folder or --study name"
        )
    checks = [
        ("data (fingerprint of texts and labels)", old["data"]["fingerprint"],
         info["data"]["fingerprint"]),
        ("backbone", (old["model_type"], old["num_layers"], old["backbone_params"]),
         (info["model_type"], info["num_layers"], info["backbone_params"])),
        ("metric", old["metric"], info["metric"]),
    ]
    for what, before, now in checks:
        if before != now:
            raise StudyError(
                f"the study in {str(out_dir)!r} was made with a different {what} "
                f"({before!r}, now {now!r}); resume it with the same arguments, or use another "
                "--out folder for a new study"
            )
    if old.get("space") != info["space"]:
        logger.warning("the search space differs from the study's; new trials use the new space")
        study.set_user_attr("autoft", {**old, "space": info["space"]})


@dataclass
class _Context:
    """What a worker needs to run trials of a study; picklable, so worker processes get it."""

    task: TaskData
    backbone_path: str
    space: SearchSpace
    num_layers: int
    metric: str
    max_length: int
    evals_per_epoch: int
    device: str
    seed: int
    pruner: str | optuna.pruners.BasePruner
    local_single: bool  # one worker on a local study file: every RUNNING trial at start is stale
    seeds: int = 3
    top_k: int = 3
    curve_sizes: tuple[float | int, ...] = (0.1, 0.3)
    reserve: float = 0.25
    cache_dir: str | None = None
    use_cache: bool = True

    def make_pruner(self) -> optuna.pruners.BasePruner:
        return make_pruner(self.pruner, self.space.max_epochs * self.evals_per_epoch)


def _versions() -> dict[str, str]:
    import platform

    import numpy
    import torch
    import transformers

    return {"autoft": __version__, "torch": torch.__version__,
            "transformers": transformers.__version__, "optuna": optuna.__version__,
            "numpy": numpy.__version__, "python": platform.python_version()}


def _run_id() -> str:
    return f"{int(time.time() * 1000)}-{socket.gethostname()}-{os.getpid()}"


def _record_run(study: optuna.Study, run_id: str, record: dict[str, Any]) -> None:
    """Store one run's record under its own key (workers never overwrite each other's)."""
    study.set_user_attr(f"run:{run_id}", record)


def _trial_slots_taken(study: optuna.Study) -> int:
    """Trials that count toward n_trials now: counted finished ones plus running ones."""
    return sum(
        _counted(t) or t.state == TrialState.RUNNING for t in study.get_trials(deepcopy=False)
    )


def _run_trials(
    study: optuna.Study,
    ctx: _Context,
    limits: Budget,
    deadline: float | None,
    *,
    progress: ProgressHook | None = None,
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (),
    encoder: Any = None,
    tokenizer: Any = None,
    worker: str = "main",
    interrupt: _Interrupt | None = None,
) -> _RunState:
    """Run trials of ``study`` until the budget, the trial count or repeated failures stop it."""
    if encoder is None or tokenizer is None:
        encoder, tokenizer, _ = load_backbone(ctx.backbone_path)
    dev = resolve_device(ctx.device)
    pad_id = int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else 0
    train_enc = encode_split(tokenizer, ctx.task.train, ctx.max_length)
    val_enc = encode_split(tokenizer, ctx.task.validation, ctx.max_length)
    versions = _versions()
    fingerprint = ctx.task.fingerprint()
    cache = PrefixCache(ctx.cache_dir) if ctx.use_cache else None
    storage = study._storage

    full_size = len(train_enc)

    def objective(trial: optuna.Trial) -> float:
        try:
            return _objective(trial)
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            trial.set_user_attr("fail_reason", "interrupted (Ctrl-C) while this trial was running")
            raise
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}")
            trial.set_user_attr("traceback", traceback.format_exc(limit=20))
            raise

    def _objective(trial: optuna.Trial) -> float:
        twin = None if "followup_id" not in trial.user_attrs else (
            is_duplicate_followup(trial, study.get_trials(deepcopy=False)))
        if twin is not None:  # another worker enqueued the same follow-up
            trial.set_user_attr("duplicate_of", twin)
            raise optuna.TrialPruned(f"duplicate of follow-up trial {twin}; skipped")
        strategy = ctx.space.suggest(trial, ctx.num_layers)
        trial_seed = ctx.seed + trial.number
        purpose = trial.user_attrs.get("purpose")
        unprunable = purpose is not None or bool(trial.user_attrs.get("baseline"))
        size = int(trial.user_attrs.get("train_size") or full_size)
        train_part = train_enc if size >= full_size else train_enc.subset(
            nested_subset(train_enc.labels, size, ctx.seed))
        trial.set_user_attr("train_size", min(size, full_size))
        for key, value in (("strategy", strategy.to_dict()),
                           ("description", strategy.describe(ctx.num_layers)),
                           ("seed", trial_seed), ("data_fingerprint", fingerprint),
                           ("versions", versions), ("worker", worker)):
            trial.set_user_attr(key, value)
        if progress is not None:
            progress.on_trial_start(trial.number, strategy)
        trial_deadline = deadline
        if limits.trial_seconds is not None:
            cap = time.monotonic() + limits.trial_seconds
            trial_deadline = cap if trial_deadline is None else min(trial_deadline, cap)

        def report(index: int, score: float) -> bool:
            if interrupt is not None:
                interrupt.check()
            trial.report(score, index)
            if progress is not None:
                progress.on_evaluation(trial.number, index, score)
            # baselines and follow-ups run to the end: the report compares against them
            return not unprunable and trial.should_prune()

        try:
            with Heartbeat(storage, trial._trial_id):
                outcome, model_ = train_strategy(
                    encoder, strategy, train_part, val_enc, ctx.task.num_labels, pad_id=pad_id,
                    metric=ctx.metric, device=dev, seed=trial_seed,
                    evals_per_epoch=ctx.evals_per_epoch, deadline=trial_deadline, report=report,
                    cache=cache, on_step=None if interrupt is None else interrupt.check,
                )
            del model_
        finally:
            _release_memory(dev)
        for key, value in outcome.to_dict().items():
            trial.set_user_attr(key, value)
        if outcome.best_score is None:
            raise optuna.TrialPruned("the budget ended before the trial's first evaluation")
        if outcome.status == "pruned":
            raise optuna.TrialPruned(f"pruned after evaluation {len(outcome.scores)}")
        return float(outcome.best_score)

    state = _RunState()

    def should_stop() -> str:
        if limits.n_trials is not None and _trial_slots_taken(study) >= limits.n_trials:
            return f"the study reached {limits.n_trials} trials"
        if deadline is not None and time.monotonic() >= deadline:
            return f"the time budget ({format_duration(limits.seconds)}) ended"
        return ""

    def stopper(study_: optuna.Study, trial: FrozenTrial) -> None:
        if interrupt is not None:
            interrupt.check()
        if trial.user_attrs.get("duplicate_of") is not None:  # skipped; it ran nothing
            state.stopped_because = should_stop()
            if state.stopped_because:
                study_.stop()
            return
        state.trials_run += 1
        if progress is not None:
            progress.on_trial_end(trial)
        if trial.state == TrialState.FAIL:
            state.failures += 1
            if state.failures == 1:
                state.first_failure = str(trial.user_attrs.get("fail_reason", "unknown error"))
                state.first_traceback = str(trial.user_attrs.get("traceback", ""))
        else:
            state.failures = 0
        if not ctx.local_single:
            fail_stale_trials(study_)  # a dead worker's trial is failed and retried by the living
        if not state.followups_enqueued and _followups_due(study_, ctx, limits, deadline):
            state.followups_enqueued = True
            _enqueue_followups(study_, ctx)
        if state.failures >= MAX_CONSECUTIVE_FAILURES:
            state.stopped_because = f"{MAX_CONSECUTIVE_FAILURES} trials in a row failed"
        else:
            state.stopped_because = should_stop()
        if state.stopped_because:
            study_.stop()

    state.stopped_because = should_stop()
    if not state.stopped_because:
        study.optimize(
            objective, callbacks=[stopper, *callbacks], catch=(Exception,), gc_after_trial=True,
        )
    return state


def _followups_due(
    study: optuna.Study, ctx: _Context, limits: Budget, deadline: float | None
) -> bool:
    """Whether to enqueue the follow-up trials now.

    With a time budget: once the time left is no more than what they need, i.e. the larger of
    the ``reserve`` share of the budget and their estimated cost plus 15% (see
    :func:`autoft.followup.estimate_seconds`), the latter capped at :data:`MAX_RESERVE` of the
    budget. With ``n_trials``: when the trials left equal the follow-ups planned (after 6
    completed trials).
    """
    if ctx.seeds <= 1 and not ctx.curve_sizes:
        return False
    if study.user_attrs.get("followups_enqueued"):
        return False
    if deadline is not None and limits.seconds is not None:
        left = deadline - time.monotonic()
        if left <= ctx.reserve * limits.seconds:
            return True
        if left <= MAX_RESERVE * limits.seconds:
            needed = 1.15 * estimate_seconds(study, _plan(study, ctx), len(ctx.task.train))
            if left <= min(needed, MAX_RESERVE * limits.seconds):
                return True
    if limits.n_trials is not None:
        trials = study.get_trials(deepcopy=False)
        completed = sum(t.state == TrialState.COMPLETE for t in trials)
        left = limits.n_trials - _trial_slots_taken(study)
        if completed >= 6 and left <= len(_plan(study, ctx)):
            return True
    return False


def _plan(study: optuna.Study, ctx: _Context) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return plan_followups(study, ctx.num_layers, len(ctx.task.train), seeds=ctx.seeds,
                          top_k=ctx.top_k, curve_sizes=ctx.curve_sizes)


def _enqueue_followups(study: optuna.Study, ctx: _Context) -> None:
    study.set_user_attr("followups_enqueued", True)
    plans = _plan(study, ctx)
    for params, attrs in plans:
        study.enqueue_trial(params, user_attrs=attrs)
    logger.info("enqueued %d follow-up trials (re-seeds and learning-curve probes)", len(plans))


def _release_memory(device: torch.device) -> None:
    """Give a finished trial's memory back (model, optimizer state, activations)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _worker_process(
    storage_spec: dict[str, Any], study_name: str, ctx: _Context, limits: Budget,
    deadline_wall: float | None, index: int, threads: int, run_id: str,
) -> None:
    """Entry point of one local worker process of ``search(..., workers=N)``."""
    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(threads)
    storage = open_storage(storage_spec["out_dir"], storage_spec["url"], storage_spec["workers"])
    seed = ctx.seed + 1000 * index
    study = optuna.load_study(study_name=study_name, storage=storage,
                              sampler=optuna.samplers.TPESampler(seed=seed),
                              pruner=ctx.make_pruner())
    deadline = None if deadline_wall is None else time.monotonic() + deadline_wall - time.time()
    started, t0 = _now(), time.monotonic()
    worker = f"{run_id}/worker-{index}"
    state = _RunState()
    try:
        with _Interrupt() as interrupt:
            state = _run_trials(study, ctx, limits, deadline, worker=worker, interrupt=interrupt)
    except KeyboardInterrupt:
        state.stopped_because = "interrupted (Ctrl-C)"
    finally:
        _record_run(study, f"{run_id}-w{index}", {
            "started": started, "ended": _now(), "seconds": round(time.monotonic() - t0, 1),
            "budget": limits.describe(), "trials_run": state.trials_run, "worker": worker,
            "stopped_because": state.stopped_because or "the sampler stopped",
            "first_failure": state.first_failure, "first_traceback": state.first_traceback,
        })


def _followup_settings(stored: Any) -> dict[str, Any]:
    """The follow-up settings a search stored in its study, as :class:`_Context` fields (the
    defaults for a study made before they were stored)."""
    if not isinstance(stored, dict):
        return {}
    out: dict[str, Any] = {k: stored[k] for k in ("seeds", "top_k", "reserve") if k in stored}
    if "curve_sizes" in stored:
        out["curve_sizes"] = tuple(stored["curve_sizes"])
    return out


def _poll_workers(
    study: optuna.Study, procs: list[Any], progress: ProgressHook | None, seen: set[int]
) -> None:
    """Wait for worker processes, feeding finished trials to the progress display."""
    while True:
        alive = any(p.is_alive() for p in procs)
        if progress is not None:
            for trial in study.get_trials(deepcopy=False):
                if trial.state.is_finished() and trial.number not in seen:
                    seen.add(trial.number)
                    if trial.user_attrs.get("duplicate_of") is None:
                        progress.on_trial_end(trial)
        if not alive:
            return
        time.sleep(1.0)


def physical_cores() -> int:
    """Physical CPU cores: psutil when installed, else the distinct (package, core) pairs of
    ``/proc/cpuinfo``, else ``os.cpu_count()``. Hyper-threads share a core's arithmetic units, so
    torch's intra-op threads are set to this count."""
    try:
        import psutil

        n = psutil.cpu_count(logical=False)
        if n:
            return int(n)
    except ImportError:
        pass
    try:
        cores, package = set(), "0"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "physical id":
                package = value.strip()
            elif key.strip() == "core id":
                cores.add((package, value.strip()))
        if cores:
            return len(cores)
    except OSError:
        pass
    return max(1, os.cpu_count() or 1)


def search(
    data: Any,
    *,
    model: str | None = None,
    budget: str | float | int | None = None,
    n_trials: int | None = None,
    trial_budget: str | float | int | None = None,
    out: str | Path = "autoft-out",
    space: str | Path | dict[str, Any] | SearchSpace | None = None,
    metric: str = "accuracy",
    validation: Any = None,
    test: Any = None,
    text_column: str | int | None = None,
    text_pair_column: str | int | None = None,
    label_column: str | int | None = None,
    validation_size: float | int = 0.2,
    seed: int = 0,
    device: str = "auto",
    pruner: str | optuna.pruners.BasePruner = "hyperband",
    sampler: optuna.samplers.BaseSampler | None = None,
    study_name: str = STUDY_NAME,
    storage: str | None = None,
    workers: int = 1,
    max_length: int = 128,
    evals_per_epoch: int = 2,
    baselines: bool = True,
    seeds: int = 3,
    top_k: int = 3,
    curve_sizes: Sequence[float | int] = (0.1, 0.3),
    reserve: float = 0.25,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    refit: bool = False,
    progress: ProgressHook | None = None,
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (),
) -> SearchResult:
    """Search for the best way to fine-tune a backbone on a dataset.

    Args:
        data: Training data: a ``datasets.Dataset``/``DatasetDict``, a ``pandas.DataFrame``, a
            path to a CSV/TSV/JSONL/Parquet file, or ``(texts, labels)``; see
            :func:`autoft.load_task_data`.
        model: Backbone: None for the bundled all-MiniLM-L6-v2, a local Hugging Face folder, or a
            hub id. Default None.
        budget: Wall-clock budget of this run: seconds or a string like ``"30m"``, ``"8h"``. No
            trial starts after it, a running trial stops at its next step or evaluation batch (its
            best score so far counts), and the report is written within seconds. Default None,
            which means 30 minutes when ``n_trials`` is also None.
        n_trials: Total finished trials the study should reach, counting earlier runs and all
            workers (interrupted trials and skipped duplicate follow-ups are not counted).
            Default None.
        trial_budget: Optional cap on each trial's wall-clock time (seconds or ``"5m"``).
        out: Output folder: the study file (``study.db``, or ``study.journal`` with several
            workers) and the report. Running again with the same folder resumes the study.
            Default ``"autoft-out"``.
        space: Search space: None for ``search_spaces/default.yaml``, a YAML path, a dict or a
            :class:`~autoft.SearchSpace`.
        metric: ``"accuracy"`` or ``"macro_f1"`` on the validation split (maximised).
            Default ``"accuracy"``.
        validation, test: Separate validation / labelled test data (any supported input type).
        text_column, text_pair_column, label_column, validation_size: See
            :func:`autoft.load_task_data`.
        seed: Seeds the validation split and the sampler; trial ``n`` trains with seed
            ``seed + n``; local worker ``i`` samples with seed ``seed + 1000 i``. Default 0.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``.
        pruner: See :func:`make_pruner`. Default ``"hyperband"``.
        sampler: An Optuna sampler for a one-worker search; None for ``TPESampler(seed=seed)``.
        study_name: Name of the study inside the storage. Default ``"autoft"``.
        storage: An Optuna RDB URL (e.g. ``postgresql://user:pw@host/db``) to keep the study in
            a database server that workers on other machines can join (``autoft worker``);
            None keeps it in ``out``. Default None.
        workers: Worker processes on this machine sharing the study, each with its own sampler
            seed and ``torch`` threads = physical cores / workers. Default 1.
        max_length: Longest input kept, in tokens. Default 128.
        evals_per_epoch: Validation evaluations (pruning checkpoints) per epoch. Default 2.
        baselines: Enqueue the space's baseline strategies as the first trials of a new study.
            Default True.
        seeds: Runs (seeds) of each of the ``top_k`` best strategies, enqueued near the end of
            the search so the report can separate wins from seed noise. 1 disables. Default 3.
        top_k: Strategies re-seeded. Default 3.
        curve_sizes: Smaller training-set sizes the leading strategy families are re-run on, for
            the learning curves: fractions of the training split (floats < 1) or example counts
            (ints). Empty disables. Default (0.1, 0.3).
        reserve: Least share of the time budget kept for those follow-ups: they are enqueued when
            this much is left, or earlier when their estimated cost (the seconds of the trials
            they repeat) needs more, up to half the budget; with only ``n_trials``, when the
            trials left equal the follow-ups planned. Default 0.25.
        cache: Reuse the frozen blocks' outputs across epochs and trials (see
            :mod:`autoft.prefix_cache`): a trial with k frozen blocks then runs only the blocks above
            them. Default True.
        cache_dir: Folder of that cache; None for ``$AUTOFT_CACHE_DIR`` or
            ``~/.cache/autoft/prefix``. Default None.
        refit: After the search, train the recommended strategy once more, score the test split
            and save the model to ``OUT/model`` (see :func:`autoft.refit`); this runs after the
            time budget. Default False.
        progress: Receives progress events (the CLI's display). Default None (logging only).
        callbacks: Optuna callbacks called after each trial (one-worker searches only).

    Returns:
        The :class:`SearchResult`; the report files are in ``out``.

    Raises:
        DataError: The data cannot be used (raised before any model is loaded).
        BackboneError: The backbone cannot be loaded or is unsupported.
        SearchSpaceError, BudgetError: Invalid space or budget.
        StudyError: ``out`` holds a study of other data, backbone or metric, or cannot be opened.
        TrialError: :data:`MAX_CONSECUTIVE_FAILURES` trials in a row failed (the message quotes the
            first failure and its traceback); the report is written first.
        KeyboardInterrupt: Re-raised after the report is written; rerun to resume.
    """
    run_start = time.monotonic()
    started_at = _now()
    # Cheap argument checks first, then the data, then the model: errors before expensive work.
    if metric not in METRICS:
        raise AutoftError(f"metric {metric!r} is not one of {METRICS}")
    if budget is None and n_trials is None:
        budget = "30m"
    limits = Budget.from_args(budget, n_trials, trial_budget)
    if not isinstance(evals_per_epoch, int) or evals_per_epoch < 1:
        raise AutoftError(f"evals_per_epoch={evals_per_epoch!r} must be an integer >= 1")
    if not isinstance(max_length, int) or max_length < 8:
        raise AutoftError(f"max_length={max_length!r} must be an integer >= 8 (tokens)")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise AutoftError(f"workers={workers!r} must be an integer >= 1")
    for name, value in (("seeds", seeds), ("top_k", top_k)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise AutoftError(f"{name}={value!r} must be an integer >= 1")
    if not 0.0 <= float(reserve) < 1.0:
        raise AutoftError(f"reserve={reserve!r} must be in [0, 1)")
    if isinstance(curve_sizes, (str, bytes)) or not isinstance(curve_sizes, Sequence):
        raise AutoftError(f"curve_sizes must be a list of numbers, got {curve_sizes!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32 - 2000:
        raise AutoftError(f"seed={seed!r} must be an integer in 0..{2**32 - 2001}")
    for name, given in (("model", model), ("storage", storage)):
        if given is not None and not isinstance(given, (str, os.PathLike)):
            raise AutoftError(f"{name}={given!r} must be a string (a folder path, hub id or URL)")
    if not isinstance(out, (str, os.PathLike)):
        raise AutoftError(f"out={out!r} must be a folder path")
    for size in curve_sizes:
        if isinstance(size, bool) or not isinstance(size, (int, float)) or size <= 0:
            raise AutoftError(
                f"curve size {size!r} must be a fraction in (0, 1) or a positive example count"
            )
    search_space = SearchSpace.load(space)
    if not isinstance(pruner, optuna.pruners.BasePruner) and pruner not in PRUNERS:
        raise AutoftError(f"pruner {pruner!r} is not one of {PRUNERS} or an optuna pruner")
    resolve_device(device)
    task = load_task_data(
        data, validation=validation, test=test, text_column=text_column,
        text_pair_column=text_pair_column, label_column=label_column,
        validation_size=validation_size, seed=seed,
    )
    encoder, tokenizer, resolved = load_backbone(model)
    num_layers = locate_parts(encoder).num_layers
    positions = getattr(encoder.config, "max_position_embeddings", None)
    if isinstance(positions, int) and max_length > positions:
        logger.warning(
            "max_length=%d exceeds the backbone's %d positions (max_position_embeddings); "
            "inputs are truncated to %d tokens", max_length, positions, positions)
        max_length = positions
    search_space = search_space.resolved(num_layers)
    if not search_space.searched:
        logger.warning(
            "the search space fixes every field, so every trial trains the same strategy (only "
            "the seed changes); give ranges or choices to search, or set n_trials=1")
    from autoft.followup import resolve_sizes

    kept = resolve_sizes(curve_sizes, len(task.train))
    if len(kept) < len(curve_sizes):
        logger.warning(
            "curve sizes %s: only %s are between 32 examples and the %d training examples; the "
            "others are ignored", list(curve_sizes), kept, len(task.train))
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    store = open_storage(out_dir, storage, workers)

    info = _study_info(
        task, None if model is None else str(model), resolved, encoder, search_space, metric, seed,
        max_length, evals_per_epoch, validation_size,
        {"data": _path_or_none(data), "validation": _path_or_none(validation),
         "test": _path_or_none(test)},
    )
    info["storage"] = describe_storage(store)
    ctx = _Context(
        task=task, backbone_path=resolved, space=search_space, num_layers=num_layers,
        metric=metric, max_length=max_length, evals_per_epoch=evals_per_epoch, device=device,
        seed=seed, pruner=pruner, local_single=storage is None and workers == 1,
        seeds=seeds, top_k=top_k, curve_sizes=tuple(curve_sizes), reserve=reserve,
        cache_dir=None if cache_dir is None else str(cache_dir), use_cache=cache,
    )
    existing = {s.study_name for s in store.get_all_studies()}
    study = optuna.create_study(
        study_name=study_name, storage=store, direction="maximize", load_if_exists=True,
        sampler=sampler or optuna.samplers.TPESampler(seed=seed), pruner=ctx.make_pruner(),
    )
    if study_name in existing:
        _check_resume(study, info, out_dir)
        stale = fail_stale_trials(study, grace=None if ctx.local_single else GRACE_SECONDS)
        logger.info("resuming study %r: %d trials so far (%d were interrupted)",
                    study_name, len(study.get_trials(deepcopy=False)), len(stale))
    else:
        study.set_user_attr("autoft", info)
        if baselines:
            for params in search_space.baselines:
                study.enqueue_trial(params, user_attrs={"baseline": True})

    # what `autoft worker` processes joining this study plan as follow-ups (the latest run's)
    study.set_user_attr("autoft_followups", {"seeds": seeds, "top_k": top_k,
                                             "curve_sizes": list(curve_sizes), "reserve": reserve})
    deadline = limits.deadline(run_start)
    if progress is not None:
        done = [t for t in study.get_trials(deepcopy=False) if _counted(t)]
        scores = [float(t.user_attrs["best_score"]) for t in done
                  if t.state == TrialState.COMPLETE and t.user_attrs.get("best_score") is not None]
        progress.on_search_start({
            "deadline": deadline, "n_trials": limits.n_trials, "finished": len(done),
            "pruned": sum(t.state == TrialState.PRUNED for t in done),
            "failed": sum(t.state == TrialState.FAIL for t in done),
            "best": max(scores) if scores else None, "metric": metric,
            "train_size": len(task.train), "validation_size": len(task.validation),
            "workers": workers,
        })
    logger.info(
        "searching %d training / %d validation examples, backbone %s (%d blocks), budget %s, "
        "%d worker(s)", len(task.train), len(task.validation), info["backbone"], num_layers,
        limits.describe(), workers,
    )
    if workers == 1 and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(physical_cores())
    run_id = _run_id()
    state = _RunState()
    interrupted = False
    _record_run(study, run_id, {"started": started_at, "ended": None, "budget": limits.describe(),
                                "workers": workers, "deadline_unix": None if deadline is None
                                else time.time() + deadline - time.monotonic()})
    try:
        if workers == 1:
            with _Interrupt() as interrupt:
                state = _run_trials(study, ctx, limits, deadline, progress=progress,
                                    callbacks=callbacks, encoder=encoder, tokenizer=tokenizer,
                                    worker=run_id, interrupt=interrupt)
        else:
            state = _run_local_workers(study, ctx, limits, deadline, workers, out_dir, storage,
                                       run_id, progress)
    except KeyboardInterrupt:
        interrupted = True
        state.stopped_because = "interrupted (Ctrl-C); rerun the same command to resume"
        raise
    finally:
        _record_run(study, run_id, {
            "started": started_at, "ended": _now(),
            "seconds": round(time.monotonic() - run_start, 1), "budget": limits.describe(),
            "workers": workers, "trials_run": state.trials_run,
            "stopped_because": state.stopped_because or "the sampler stopped",
        })
        paths = write_report(study, out_dir)
        if progress is not None:
            progress.on_search_end(state.stopped_because)
        if not interrupted:
            logger.info("report written to %s", paths["markdown"])
    if state.failures >= MAX_CONSECUTIVE_FAILURES:
        raise TrialError(
            f"{MAX_CONSECUTIVE_FAILURES} trials in a row failed, so the search stopped; the first "
            f"failure: {state.first_failure}. The report in {str(out_dir)!r} lists them."
            + (f"\nIts traceback:\n{state.first_traceback}" if state.first_traceback else "")
        )
    if refit and recommend(study, metric, num_layers) is not None:
        from autoft.refit import refit as refit_study

        refit_study(out_dir if storage is None else None, storage=storage,
                    study_name=study_name, save_to=out_dir / "model", data=data,
                    validation=validation, test=test, device=device)
        paths = write_report(study, out_dir)
    return SearchResult(study, out_dir, paths)


def _run_local_workers(
    study: optuna.Study, ctx: _Context, limits: Budget, deadline: float | None, workers: int,
    out_dir: Path, url: str | None, run_id: str, progress: ProgressHook | None,
) -> _RunState:
    """Run ``workers`` processes on this machine against the study; wait for them."""
    import multiprocessing

    mp = multiprocessing.get_context("spawn")
    threads = max(1, physical_cores() // workers)
    deadline_wall = None if deadline is None else time.time() + deadline - time.monotonic()
    spec = {"out_dir": str(out_dir), "url": url, "workers": workers}
    seen = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
    procs = [
        mp.Process(target=_worker_process, name=f"autoft-worker-{i}",
                   args=(spec, study.study_name, ctx, limits, deadline_wall, i, threads, run_id))
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
    state = _RunState()
    records = [v for k, v in study.user_attrs.items() if k.startswith(f"run:{run_id}-w")]
    state.trials_run = sum(int(r.get("trials_run", 0)) for r in records)
    failed = [r for r in records if "in a row failed" in str(r.get("stopped_because"))]
    if failed:
        state.failures = MAX_CONSECUTIVE_FAILURES
        state.first_failure = failed[0].get("first_failure", "")
        state.first_traceback = failed[0].get("first_traceback", "")
    reasons = sorted({str(r.get("stopped_because")) for r in records})
    state.stopped_because = "; ".join(reasons) if reasons else "workers ended"
    return state


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
) -> _RunState:
    """Join an existing study as one more worker (``autoft worker``), e.g. from another machine.

    The data are read from the paths stored in the study unless given here, and must have the
    study's fingerprint; the backbone is loaded by the study's name or path.

    Args:
        storage: The study's RDB URL (e.g. ``postgresql://...``), or None with ``out``.
        study_name: The study's name. Default ``"autoft"``.
        out: Output folder of a local study (instead of ``storage``).
        budget, n_trials, trial_budget: As for :func:`search`; ``n_trials`` is the study's total.
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
    run_start = time.monotonic()
    if budget is None and n_trials is None:
        budget = "30m"
    limits = Budget.from_args(budget, n_trials, trial_budget)
    store = open_storage(out, storage, workers=2, create=False) if storage or out else None
    if store is None:
        raise StudyError("give the study's storage URL (--storage) or its output folder (--out)")
    names = [s.study_name for s in store.get_all_studies()]
    if study_name not in names:
        raise StudyError(f"no study {study_name!r} in the storage; it holds {names}")
    probe = optuna.load_study(study_name=study_name, storage=store)
    info = probe.user_attrs.get("autoft")
    if not isinstance(info, dict):
        raise StudyError(f"study {study_name!r} was not made by autoft search")
    task = task_from_study(info, data=data, validation=validation, test=test)
    backbone = info.get("backbone")
    try:
        encoder, tokenizer, resolved = load_backbone(backbone)
    except AutoftError:
        encoder, tokenizer, resolved = load_backbone(info["backbone_path"])
    space = SearchSpace.load(info["space"]).resolved(int(info["num_layers"]))
    worker_seed = seed if seed is not None else (os.getpid() * 7919 + int(time.time())) % 2**31
    ctx = _Context(
        task=task, backbone_path=resolved, space=space, num_layers=int(info["num_layers"]),
        metric=info["metric"], max_length=int(info["max_length"]),
        evals_per_epoch=int(info["evals_per_epoch"]), device=device, seed=int(info["seed"]),
        pruner="hyperband", local_single=False,
        **_followup_settings(probe.user_attrs.get("autoft_followups")),
    )
    study = optuna.load_study(study_name=study_name, storage=store,
                              sampler=optuna.samplers.TPESampler(seed=worker_seed),
                              pruner=ctx.make_pruner())
    fail_stale_trials(study)
    run_id, started = _run_id(), _now()
    state = _RunState()
    try:
        state = _run_trials(study, ctx, limits, limits.deadline(run_start),
                            encoder=encoder, tokenizer=tokenizer, worker=run_id)
    finally:
        _record_run(study, run_id, {
            "started": started, "ended": _now(), "seconds": round(time.monotonic() - run_start, 1),
            "budget": limits.describe(), "trials_run": state.trials_run, "worker": run_id,
            "stopped_because": state.stopped_because or "interrupted",
        })
    if state.failures >= MAX_CONSECUTIVE_FAILURES:
        raise TrialError(
            f"{MAX_CONSECUTIVE_FAILURES} trials in a row failed; the first: {state.first_failure}"
        )
    return state


def task_from_study(
    info: dict[str, Any], data: Any = None, validation: Any = None, test: Any = None
) -> TaskData:
    """Load a study's data again: from the paths it stored, or from the given data.

    Args:
        info: The study's ``autoft`` user attribute.
        data, validation, test: Replacements for the stored paths (any supported input type).

    Raises:
        DataError: A stored path is missing here, or the data differ from the study's
            (fingerprint of texts and labels).
    """
    paths = info.get("data_paths", {})
    summary = info["data"]
    task = load_task_data(
        data if data is not None else _stored_path(paths.get("data"), "data"),
        validation=validation if validation is not None else paths.get("validation"),
        test=test if test is not None else paths.get("test"),
        text_column=summary["text_column"], text_pair_column=summary["text_pair_column"],
        label_column=summary["label_column"], validation_size=info["validation_size"],
        seed=info["seed"],
    )
    if task.fingerprint() != summary["fingerprint"]:
        raise DataError(
            "the data found here differ from the study's (fingerprint of texts and labels); give "
            "the study's exact files with --data/--validation/--test"
        )
    return task


def _stored_path(path: str | None, what: str) -> str:
    if not path:
        raise DataError(
            f"the study's {what} was not a file, so this worker cannot read it; pass it with --data"
        )
    if not Path(path).exists():
        raise DataError(f"the study's {what} file {path!r} does not exist here; pass it with --data")
    return path
