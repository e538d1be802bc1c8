"""``search(...)``: create or resume a study, run trial fine-tunes until the budget ends, report.

One search run:

1. checks every argument and the data, loads the backbone and resolves the search space (all errors
   are raised here, before any training);
2. opens the study in ``OUT/study.db`` (SQLite), creating it or resuming it (same data, backbone and
   metric required); trials left RUNNING by a killed run are marked failed and retried once;
3. on a new study, enqueues the space's baselines (full fine-tuning, linear probe, midpoint);
4. tokenizes every split once, then runs trials (:func:`autoft.finetune.train_strategy`) under an
   Optuna sampler and pruner until the time budget or the trial count is reached;
5. writes ``report.md``, ``report.json`` and ``trials.csv`` and returns a :class:`SearchResult`.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autoft import __version__
from autoft.backbone import load_backbone, locate_parts
from autoft.budget import Budget, format_duration
from autoft.data import TaskData, load_task_data
from autoft.errors import AutoftError, StudyError, TrialError
from autoft.finetune import METRICS, encode_split, resolve_device, train_strategy
from autoft.recommend import Recommendation, recommend, trial_records
from autoft.report import STUDY_NAME, load_study, storage_url, write_report
from autoft.space import SearchSpace
from autoft.strategy import Strategy, count_parameters

__all__ = ["PRUNERS", "ProgressHook", "SearchResult", "make_pruner", "search"]

logger = logging.getLogger(__name__)

#: Pruner names ``search`` accepts (or pass an ``optuna.pruners.BasePruner``).
PRUNERS = ("hyperband", "successive_halving", "median", "none")
#: Consecutive failed trials after which a search stops (the cause is systematic, not one trial's).
MAX_CONSECUTIVE_FAILURES = 3


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
        """A trial finished (complete, pruned or failed)."""

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
        out_dir: The output folder (holding ``study.db`` and the report). Default None.
        report_paths: Paths of the written report files. Default none.

    Attributes:
        study_: The Optuna study (a standard storage: optuna-dashboard opens it).
        recommendation_: The :class:`~autoft.recommend.Recommendation`, or None if no trial
            completed.
        best_strategy_: The recommended :class:`~autoft.Strategy` (None if no trial completed).
        best_score_: Its validation score (None if no trial completed).
        best_params_: Its fields as a flat dict (``Strategy.to_dict()``).
        best_trial_: Its ``optuna.trial.FrozenTrial``.
        trials_: Dict of equal-length column lists, one row per trial (loads straight into
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
        records = trial_records(study.get_trials(deepcopy=False))
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


@dataclass
class _RunState:
    """Bookkeeping of one search run."""

    stopped_because: str = ""
    failures: int = 0
    first_failure: str = ""
    trials_run: int = 0


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _path_or_none(value: Any) -> str | None:
    return str(Path(value).resolve()) if isinstance(value, (str, os.PathLike)) else None


def _counted(trial: FrozenTrial) -> bool:
    """Trials that count toward ``n_trials``: finished and not merely interrupted."""
    return trial.state.is_finished() and not trial.user_attrs.get("interrupted", False)


def _fail_stale_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Mark trials left RUNNING by a killed run as failed; enqueue each one's parameters once.

    autoft runs one worker per study file, so at the start of a run nothing else can be running.
    """
    storage = study._storage
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        storage.set_trial_user_attr(trial._trial_id, "interrupted", True)
        storage.set_trial_user_attr(
            trial._trial_id, "fail_reason",
            "interrupted: the search process ended while this trial was running",
        )
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    retried = set(study.user_attrs.get("retried_trials", []))
    to_retry = [
        t for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if t.user_attrs.get("interrupted") and t.number not in retried
        and t.user_attrs.get("retry_of") is None
    ]
    for trial in to_retry:
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
        retried.add(trial.number)
    if to_retry:
        study.set_user_attr("retried_trials", sorted(retried))
        logger.info("retrying interrupted trials %s", [t.number for t in to_retry])
    return stale


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
            f"{out_dir / 'study.db'} holds a study {study.study_name!r} not made by autoft; "
            "use another --out folder"
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
    max_length: int = 128,
    evals_per_epoch: int = 2,
    baselines: bool = True,
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
            trial starts after it, and a running trial stops at its next step (its best score so
            far counts). Default None, which means 30 minutes when ``n_trials`` is also None.
        n_trials: Total finished trials the study should reach, counting earlier runs of the same
            study (interrupted trials are not counted). Default None.
        trial_budget: Optional cap on each trial's wall-clock time (seconds or ``"5m"``).
        out: Output folder: the study file ``study.db`` and the report go here. Running again with
            the same folder resumes the study. Default ``"autoft-out"``.
        space: Search space: None for ``search_spaces/default.yaml``, a YAML path, a dict or a
            :class:`~autoft.SearchSpace`.
        metric: ``"accuracy"`` or ``"macro_f1"`` on the validation split (maximised).
            Default ``"accuracy"``.
        validation, test: Separate validation / labelled test data (any supported input type).
        text_column, text_pair_column, label_column, validation_size: See
            :func:`autoft.load_task_data`.
        seed: Seeds the validation split and the sampler; trial ``n`` trains with seed
            ``seed + n``. Default 0.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``.
        pruner: See :func:`make_pruner`. Default ``"hyperband"``.
        sampler: An Optuna sampler; None for ``TPESampler(seed=seed)``. Default None.
        study_name: Name of the study inside the study file. Default ``"autoft"``.
        max_length: Longest input kept, in tokens. Default 128.
        evals_per_epoch: Validation evaluations (pruning checkpoints) per epoch. Default 2.
        baselines: Enqueue the space's baseline strategies as the first trials of a new study.
            Default True.
        progress: Receives progress events (the CLI's display). Default None (logging only).
        callbacks: Optuna callbacks called after each trial.

    Returns:
        The :class:`SearchResult`; the report files are in ``out``.

    Raises:
        DataError: The data cannot be used (raised before any model is loaded).
        BackboneError: The backbone cannot be loaded or is unsupported.
        SearchSpaceError, BudgetError: Invalid space or budget.
        StudyError: ``out`` holds a study of other data, backbone or metric.
        TrialError: :data:`MAX_CONSECUTIVE_FAILURES` trials in a row failed (the message quotes the
            first failure); the report is written first.
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
    search_space = SearchSpace.load(space)
    if not isinstance(pruner, optuna.pruners.BasePruner) and pruner not in PRUNERS:
        raise AutoftError(f"pruner {pruner!r} is not one of {PRUNERS} or an optuna pruner")
    dev = resolve_device(device)
    task = load_task_data(
        data, validation=validation, test=test, text_column=text_column,
        text_pair_column=text_pair_column, label_column=label_column,
        validation_size=validation_size, seed=seed,
    )
    encoder, tokenizer, resolved = load_backbone(model)
    num_layers = locate_parts(encoder).num_layers
    search_space = search_space.resolved(num_layers)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)

    info = _study_info(
        task, None if model is None else str(model), resolved, encoder, search_space, metric, seed,
        max_length, evals_per_epoch, validation_size,
        {"data": _path_or_none(data), "validation": _path_or_none(validation),
         "test": _path_or_none(test)},
    )
    storage = optuna.storages.RDBStorage(storage_url(out_dir))
    existing = {s.study_name for s in storage.get_all_studies()}
    study = optuna.create_study(
        study_name=study_name, storage=storage, direction="maximize", load_if_exists=True,
        sampler=sampler or optuna.samplers.TPESampler(seed=seed),
        pruner=make_pruner(pruner, search_space.max_epochs * evals_per_epoch),
    )
    if study_name in existing:
        _check_resume(study, info, out_dir)
        stale = _fail_stale_trials(study)
        logger.info("resuming study %r: %d trials so far (%d were interrupted)",
                    study_name, len(study.get_trials(deepcopy=False)), len(stale))
    else:
        study.set_user_attr("autoft", info)
        if baselines:
            for params in search_space.baselines:
                study.enqueue_trial(params, user_attrs={"baseline": True})

    pad_id = int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else 0
    train_enc = encode_split(tokenizer, task.train, max_length)
    val_enc = encode_split(tokenizer, task.validation, max_length)
    deadline = limits.deadline(run_start)

    def objective(trial: optuna.Trial) -> float:
        strategy = search_space.suggest(trial, num_layers)
        trial_seed = seed + trial.number
        trial.set_user_attr("strategy", strategy.to_dict())
        trial.set_user_attr("description", strategy.describe(num_layers))
        trial.set_user_attr("seed", trial_seed)
        if progress is not None:
            progress.on_trial_start(trial.number, strategy)
        trial_deadline = deadline
        if limits.trial_seconds is not None:
            cap = time.monotonic() + limits.trial_seconds
            trial_deadline = cap if trial_deadline is None else min(trial_deadline, cap)

        def report(index: int, score: float) -> bool:
            trial.report(score, index)
            if progress is not None:
                progress.on_evaluation(trial.number, index, score)
            return trial.should_prune()

        try:
            outcome, model_ = train_strategy(
                encoder, strategy, train_enc, val_enc, task.num_labels, pad_id=pad_id,
                metric=metric, device=dev, seed=trial_seed, evals_per_epoch=evals_per_epoch,
                deadline=trial_deadline, report=report,
            )
            del model_
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            trial.set_user_attr("fail_reason", "interrupted (Ctrl-C) while this trial was running")
            raise
        except Exception as exc:
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}")
            raise
        for key, value in outcome.to_dict().items():
            trial.set_user_attr(key, value)
        if outcome.best_score is None:
            raise optuna.TrialPruned("the budget ended before the trial's first evaluation")
        if outcome.status == "pruned":
            raise optuna.TrialPruned(f"pruned after evaluation {len(outcome.scores)}")
        return float(outcome.best_score)

    state = _RunState()

    def target_reached() -> bool:
        return limits.n_trials is not None and sum(
            _counted(t) for t in study.get_trials(deepcopy=False)
        ) >= limits.n_trials

    def stopper(study_: optuna.Study, trial: FrozenTrial) -> None:
        state.trials_run += 1
        if progress is not None:
            progress.on_trial_end(trial)
        if trial.state == TrialState.FAIL:
            state.failures += 1
            if state.failures == 1:
                state.first_failure = str(trial.user_attrs.get("fail_reason", "unknown error"))
        else:
            state.failures = 0
        if state.failures >= MAX_CONSECUTIVE_FAILURES:
            state.stopped_because = f"{MAX_CONSECUTIVE_FAILURES} trials in a row failed"
            study_.stop()
        elif target_reached():
            state.stopped_because = f"the study reached {limits.n_trials} trials"
            study_.stop()
        elif deadline is not None and time.monotonic() >= deadline:
            state.stopped_because = f"the time budget ({format_duration(limits.seconds)}) ended"
            study_.stop()

    if progress is not None:
        done = [t for t in study.get_trials(deepcopy=False) if _counted(t)]
        scores = [float(t.user_attrs["best_score"]) for t in done
                  if t.state == TrialState.COMPLETE and t.user_attrs.get("best_score") is not None]
        progress.on_search_start({
            "deadline": deadline, "n_trials": limits.n_trials, "finished": len(done),
            "best": max(scores) if scores else None, "metric": metric,
            "train_size": len(task.train), "validation_size": len(task.validation),
        })
    logger.info(
        "searching %d training / %d validation examples, backbone %s (%d blocks), budget %s",
        len(task.train), len(task.validation), info["backbone"], num_layers, limits.describe(),
    )
    interrupted = False
    try:
        if target_reached():
            state.stopped_because = f"the study already had {limits.n_trials} trials"
        else:
            study.optimize(
                objective, callbacks=[stopper, *callbacks], catch=(Exception,),
                gc_after_trial=True,
            )
    except KeyboardInterrupt:
        interrupted = True
        state.stopped_because = "interrupted (Ctrl-C); rerun the same command to resume"
        raise
    finally:
        runs = list(study.user_attrs.get("runs", []))
        runs.append({
            "started": started_at, "ended": _now(),
            "seconds": round(time.monotonic() - run_start, 1),
            "budget": limits.describe(), "trials_run": state.trials_run,
            "stopped_because": state.stopped_because or "the sampler stopped",
        })
        study.set_user_attr("runs", runs)
        paths = write_report(study, out_dir)
        if progress is not None:
            progress.on_search_end(state.stopped_because)
        if not interrupted:
            logger.info("report written to %s", paths["markdown"])
    if state.failures >= MAX_CONSECUTIVE_FAILURES:
        raise TrialError(
            f"{MAX_CONSECUTIVE_FAILURES} trials in a row failed, so the search stopped; the first "
            f"failure: {state.first_failure}. The report in {str(out_dir)!r} lists them"
        )
    return SearchResult(study, out_dir, paths)
