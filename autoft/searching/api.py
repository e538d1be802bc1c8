"""``search(...)``: create or resume a study, run trial fine-tunes until the budget ends, report.

One search run:

1. checks every argument (:class:`~autoft.searching.config.SearchConfig`), the space and the data,
   loads the backbone (all errors are raised here, before any training);
2. locks the output folder, opens the study (``OUT/study.db``, ``OUT/study.journal`` for several
   workers, or a database URL), creating it or resuming it (same data, backbone and every setting
   that changes a score); trials left RUNNING by a killed run are marked interrupted and retried;
3. runs the space's baselines (cheapest first), then sampled trials, and from the follow-up phase
   on the re-seeds and learning-curve probes (:mod:`autoft.searching.followups`), until the time
   budget or the trial count is reached;
4. writes ``report.md``, ``report.html``, ``report.json`` and ``trials.csv`` and returns a
   :class:`SearchResult`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from autoft._version import __version__
from autoft.analysis import Recommendation, recommend_from_info
from autoft.budget import Budget, plural
from autoft.data import TaskData, load_task_data
from autoft.errors import BackboneError, SearchSpaceError, StudyError, TrialError
from autoft.models.adapter import adapter_for, combine_digests
from autoft.models.backbone import (
    UNKNOWN_TOKEN_WARNING,
    backbone_for_data,
    load_backbone,
    locate_parts,
    unknown_token_rate,
)
from autoft.report import write_report
from autoft.searching.backbones import BackboneSearchResult, search_backbones
from autoft.searching.config import SearchConfig
from autoft.searching.followups import FollowupSettings, resolve_sizes
from autoft.searching.runner import (
    MAX_CONSECUTIVE_FAILURES,
    Interrupt,
    ProgressHook,
    RunState,
    WorkerConfig,
    cpu_threads,
    make_sampler,
    run_trials,
)
from autoft.searching.space import SearchSpace
from autoft.searching.workers import record_run, run_id, run_local_workers
from autoft.strategies import Strategy
from autoft.strategies.apply import count_parameters
from autoft.study import (
    BACKBONES_FILE,
    STUDY_NAME,
    StudyAttr,
    describe_storage,
    fail_stale_trials,
    load_study,
    lock_folder,
    open_storage,
    trial_records,
)
from autoft.study.info import check_resume, data_paths, now, stored_info
from autoft.study.records import table_rows
from autoft.study.storage import STUDY_DB, study_file, uses_optuna_heartbeat

__all__ = ["SearchResult", "search"]

logger = logging.getLogger(__name__)


class SearchResult:
    """The outcome of a search, read from its study (scikit-learn style ``_``-suffixed results).

    Args:
        study: The Optuna study.
        out_dir: The output folder (holding the study file and the report). Default None.
        report_paths: Paths of the written report files. Default none.

    Attributes:
        study_: The Optuna study (a standard storage: optuna-dashboard opens it).
        recommendation_: The :class:`~autoft.analysis.Recommendation`, or None if no trial
            trained its strategy to the end.
        recommended_strategy_: The recommended :class:`~autoft.Strategy` (None without one);
            ``best_strategy_`` is the same (scikit-learn's name).
        recommended_score_: Its validation score: the mean over its seeds (``best_score_``). It
            can be below the best single trial's score: a single run is not recommended over a
            strategy measured with several seeds.
        best_params_: The recommended strategy's fields as a flat dict (``Strategy.to_dict()``).
        best_trial_: The ``optuna.trial.FrozenTrial`` that first ran it.
        trials_: Dict of equal-length column lists, one row per trial that ran (loads straight into
            ``pandas.DataFrame(result.trials_)``); columns as in
            :meth:`autoft.study.TrialRecord.as_row` (``status`` says ``complete``, ``pruned``,
            ``budget`` (stopped by the budget), ``diverged``, ...).
        report_paths_: Written report files by kind (``"json"``, ``"markdown"``, ``"csv"``,
            ``"html"``).
        out_dir: The output folder.
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
        info = dict(stored_info(study))
        info.setdefault("seeds", FollowupSettings.from_dict(
            study.user_attrs.get(StudyAttr.FOLLOWUPS)).seeds)
        records = trial_records(study.get_trials(deepcopy=False))
        self.recommendation_: Recommendation | None = recommend_from_info(records, info)
        rows = table_rows([r for r in records if r.status != "waiting"],
                          int(info.get("num_layers") or 0) or None)
        columns = list(rows[0]) if rows else []
        self.trials_: dict[str, list[Any]] = {c: [r.get(c) for r in rows] for c in columns}

    @classmethod
    def from_dir(cls, out_dir: str | Path, study_name: str | None = None) -> SearchResult:
        """Load the result of an earlier search from its output folder."""
        return cls(load_study(out_dir, study_name), out_dir)

    @property
    def recommended_strategy_(self) -> Strategy | None:
        """The recommended strategy (None without one)."""
        return None if self.recommendation_ is None else self.recommendation_.strategy

    @property
    def recommended_score_(self) -> float | None:
        """The recommended strategy's mean validation score over its seeds (None without one)."""
        return None if self.recommendation_ is None else self.recommendation_.score

    @property
    def best_strategy_(self) -> Strategy | None:
        """Same as :attr:`recommended_strategy_`."""
        return self.recommended_strategy_

    @property
    def best_score_(self) -> float | None:
        """Same as :attr:`recommended_score_`."""
        return self.recommended_score_

    @property
    def best_params_(self) -> dict[str, Any] | None:
        """The recommended strategy as a flat dict (None without one)."""
        return None if self.recommendation_ is None else self.recommendation_.strategy.to_dict()

    @property
    def best_trial_(self) -> FrozenTrial | None:
        """The trial that first ran the recommended strategy (None without one)."""
        if self.recommendation_ is None:
            return None
        number = self.recommendation_.trial_number
        return next(t for t in self.study_.get_trials(deepcopy=False) if t.number == number)

    def __repr__(self) -> str:
        n = len(self.trials_.get("number", []))
        if self.recommendation_ is None:
            return f"SearchResult({plural(n, 'trial')}, none trained to the end)"
        return (f"SearchResult({plural(n, 'trial')}, recommended_score_={self.recommended_score_:.4f}, "
                f"recommended_strategy_={self.recommended_strategy_})")


def _draw_misclassified(study: optuna.Study, task_data: TaskData, out_dir: Path) -> None:
    """The report's grid of misclassified validation images; a failure only costs the grid."""
    try:
        from autoft.report.images import write_misclassified_grid

        write_misclassified_grid(study, task_data.validation.images or [], out_dir)
    except Exception:
        logger.warning("the grid of misclassified images could not be drawn", exc_info=True)


def _study_info(config: SearchConfig, task: TaskData, resolved: str, encoder: Any,
                space: SearchSpace, max_length: int, paths: dict[str, str | None]) -> dict[str, Any]:
    adapter = adapter_for(encoder)
    return {
        "version": __version__,
        "created": now(),
        "task": task.task,
        "metric": config.metric,
        "direction": config.direction,
        "backbone": config.model or "all-MiniLM-L6-v2",
        "backbone_path": resolved,
        "model_type": encoder.config.model_type,
        "num_layers": locate_parts(encoder).num_layers,
        "backbone_params": count_parameters(encoder),
        "backbone_fingerprint": combine_digests(adapter.module_digests(encoder),
                                                str(encoder.config.model_type)),
        "space": space.to_dict(),
        "seed": config.seed,
        "max_length": max_length,
        "evals_per_epoch": config.evals_per_epoch,
        "pruner": config.pruner_name,
        "baselines": config.baselines,
        "validation_size": config.validation_size,
        "encoding": config.encoding,
        "validation_split": config.validation_split,
        "test_split": config.test_split,
        "data": task.summary(),
        "data_paths": paths,
    }


def search(
    data: Any,
    *,
    model: str | Sequence[str] | None = None,
    budget: str | float | int | None = None,
    n_trials: int | None = None,
    trial_budget: str | float | int | None = None,
    out: str | Path = "autoft-out",
    space: str | Path | dict[str, Any] | SearchSpace | None = None,
    task: str | None = None,
    metric: str | None = None,
    validation: Any = None,
    test: Any = None,
    text_column: str | int | None = None,
    text_pair_column: str | int | None = None,
    label_column: str | int | None = None,
    validation_size: float | int = 0.2,
    validation_split: str | None = None,
    test_split: str | None = None,
    encoding: str = "utf-8",
    seed: int = 0,
    device: str = "auto",
    pruner: str | optuna.pruners.BasePruner = "successive_halving",
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
) -> SearchResult | BackboneSearchResult:
    """Search for the best way to fine-tune a backbone on a dataset.

    Args:
        data: Training data: a ``datasets.Dataset``/``DatasetDict``, a ``pandas.DataFrame``, a
            path to a CSV/TSV/JSONL/JSON/Parquet file, or ``(texts, labels)``; see
            :func:`autoft.load_task_data`.
        model: Backbone: None or ``"minilm"`` for the bundled all-MiniLM-L6-v2, ``"mpnet"`` for
            all-mpnet-base-v2 (see :data:`autoft.models.backbone.SHORT_NAMES`), a local Hugging
            Face folder, or a hub id. A list of two or more searches the backbone too: each gets
            its own study in ``OUT/backbones/<name>/``, screened by its linear probe, and the
            result is a :class:`~autoft.searching.backbones.BackboneSearchResult` naming the
            chosen backbone (see :mod:`autoft.searching.backbones`). Default None.
        budget: Wall-clock budget of this run: seconds or a string like ``"30m"``, ``"8h"``. No
            trial starts after it (nor one the cost model says cannot finish before it), a running
            trial stops at its next step or evaluation batch (it is then recorded as stopped by
            the budget, and not recommended), and the report is written within seconds. Default
            None, which means 30 minutes when ``n_trials`` is also None.
        n_trials: Total trials the study should reach, counting earlier runs and all workers
            (interrupted trials, skipped duplicate follow-ups and trials skipped for lack of time
            are not counted). Default None.
        trial_budget: Optional cap on each trial's wall-clock time (seconds or ``"5m"``).
        out: Output folder: the study file (``study.db``, or ``study.journal`` with several
            workers) and the report. Running again with the same folder resumes the study; a
            second search on a folder in use is refused. Default ``"autoft-out"``.
        space: Search space: None for ``search_spaces/default.yaml``, the name of a bundled space,
            a YAML path, a dict or a :class:`~autoft.SearchSpace`.
        task: The task kind (see :mod:`autoft.tasks`): ``"classification"`` or
            ``"regression"``. Default None: a metric of one kind only names it, else the labels
            do (regression when they are numbers and one is not an integer, see
            :func:`autoft.load_task_data`).
        metric: One of the task's metrics (classification: ``"accuracy"``,
            ``"balanced_accuracy"``, ``"macro_f1"``, ``"weighted_f1"``, ``"macro_precision"``,
            ``"macro_recall"``, ``"weighted_precision"``, ``"weighted_recall"``; for two
            classes also ``"f1"`` and ``"roc_auc"``, see
            :class:`autoft.tasks.classification.Classification`; regression: ``"rmse"``,
            ``"mae"``, ``"r2"``, ``"pearson"``, ``"spearman"``, see
            :class:`autoft.tasks.regression.Regression`); None for the task's default
            (``"accuracy"``; ``"rmse"``).
        validation, test: Separate validation / labelled test data (any supported input type).
        text_column, text_pair_column, label_column, validation_size, validation_split,
            test_split, encoding: See :func:`autoft.load_task_data`.
        seed: Seeds the validation split and the sampler; trial ``n`` trains with seed
            ``seed + n``; local worker ``i`` samples with seed ``seed + 1000 i``. Default 0.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``.
        pruner: See :func:`autoft.searching.runner.make_pruner`. Default
            ``"successive_halving"``.
        sampler: An Optuna sampler for a one-worker search; None for autoft's TPE (see
            :func:`autoft.searching.runner.make_sampler`). Ignored with ``workers > 1`` (a
            warning says so).
        study_name: Name of the study inside the storage. Default ``"autoft"``.
        storage: A database URL (e.g. ``postgresql://user:pw@host/db``, or ``env:NAME`` to read
            it from an environment variable) to keep the study in a database server that
            workers on other machines can join (``autoft worker``); None keeps it in ``out``.
        workers: Worker processes on this machine sharing the study, each with its own sampler
            seed and torch threads = CPUs / workers. Default 1.
        max_length: Longest input kept, in tokens; capped at what the backbone's position table
            allows. Default 128.
        evals_per_epoch: Validation evaluations (pruning checkpoints) per epoch. Default 2.
        baselines: Run the space's baselines first (cheapest first). Default True.
        seeds: Runs (seeds) each leading strategy needs before it can be recommended; the search
            re-seeds every strategy that becomes the leader once its follow-up phase begins.
            1 disables. Default 3.
        top_k: Most strategies re-seeded at once: the leader and, of the ``top_k`` best, those
            whose mean is within one pooled seed standard deviation of the leader's. Default 3.
        curve_sizes: Smaller training-set sizes the leading strategy families are re-run on, for
            the learning curves: fractions of the training split (floats < 1) or example counts
            (ints). Empty disables. Default (0.1, 0.3).
        reserve: Least share of the time budget kept for those follow-ups: the follow-up phase
            begins when this much is left, or earlier when their estimated cost needs more, up to
            half the budget; with only ``n_trials``, when the trials left equal the follow-ups
            planned (at most half of ``n_trials``). Default 0.25.
        cache: Reuse the frozen blocks' outputs across epochs and trials where it pays (see
            :mod:`autoft.training.prefix_cache`). Default True.
        cache_dir: Folder of that cache; None for ``$AUTOFT_CACHE_DIR`` or
            ``~/.cache/autoft/prefix``. Default None.
        refit: After the search, train the recommended strategy once more, score the test split
            and save the model to ``OUT/model`` (see :func:`autoft.refit`); this runs after the
            time budget. Default False.
        progress: Receives progress events (the CLI's display). Default None (logging only).
        callbacks: Optuna callbacks called after each trial (one-worker searches only).

    Returns:
        The :class:`SearchResult`; the report files are in ``out``. With several backbones a
        :class:`~autoft.searching.backbones.BackboneSearchResult`.

    Raises:
        DataError: The data cannot be used (raised before any model is loaded).
        BackboneError: The backbone cannot be loaded or is unsupported.
        SearchSpaceError, BudgetError: Invalid space or budget.
        StudyError: ``out`` holds a study of other data, backbone or settings, is in use by
            another search, or cannot be opened.
        TrialError: :data:`~autoft.searching.runner.MAX_CONSECUTIVE_FAILURES` trials in a row
            failed (the message quotes the first failure and its traceback); the report is
            written first.
        KeyboardInterrupt: Re-raised after the report is written; rerun to resume.
    """
    if isinstance(model, (list, tuple)):
        if not model:
            raise BackboneError("model=[]: give a backbone, or a list of two or more to choose "
                                "among")
        if len(model) > 1:
            return search_backbones(
                search, data, model, budget=budget, n_trials=n_trials, out=out, storage=storage,
                study_name=study_name, refit=refit, trial_budget=trial_budget, space=space,
                task=task, metric=metric, validation=validation, test=test,
                text_column=text_column, text_pair_column=text_pair_column,
                label_column=label_column, validation_size=validation_size,
                validation_split=validation_split, test_split=test_split, encoding=encoding,
                seed=seed, device=device, pruner=pruner, sampler=sampler, workers=workers,
                max_length=max_length, evals_per_epoch=evals_per_epoch, baselines=baselines,
                seeds=seeds, top_k=top_k, curve_sizes=curve_sizes, reserve=reserve, cache=cache,
                cache_dir=cache_dir, progress=progress, callbacks=callbacks)
        model = model[0]
    run_start = time.monotonic()
    started_at = now()
    # cheap checks first, then the space and the data, then the model: errors before expensive work
    config = SearchConfig(
        model=None if model is None else model, out=out, task=task, metric=metric,
        validation_size=validation_size, seed=seed, device=device, pruner=pruner,
        study_name=study_name, storage=storage, workers=workers, max_length=max_length,
        evals_per_epoch=evals_per_epoch, baselines=baselines, seeds=seeds, top_k=top_k,
        curve_sizes=tuple(curve_sizes) if isinstance(curve_sizes, (list, tuple)) else curve_sizes,
        reserve=reserve, cache=cache, cache_dir=cache_dir, refit=refit, encoding=encoding,
        validation_split=validation_split, test_split=test_split,
    )
    if budget is None and n_trials is None:
        budget = "30m"
    limits = Budget.from_args(budget, n_trials, trial_budget)
    search_space = SearchSpace.load(space)
    from autoft.training import resolve_device

    resolve_device(device)
    task_data = load_task_data(
        data, validation=validation, test=test, text_column=text_column,
        text_pair_column=text_pair_column, label_column=label_column,
        validation_size=validation_size, seed=seed, task=config.task, encoding=encoding,
        validation_split=validation_split, test_split=test_split,
    )
    if config.task != task_data.task:  # inferred from the labels: the metric's default follows
        config = dataclasses.replace(config, task=task_data.task)
    images = task_data.modality == "image"
    model = backbone_for_data(model, task_data.modality)
    if images:
        config = dataclasses.replace(config, model=str(model))
        if space is None:  # the bundled default is for text: image data get image.yaml
            search_space = SearchSpace.load("image")
    for name in ("resolution", "augment"):
        if not images and [v for v in search_space.field_values(name) if v != "none"]:
            raise SearchSpaceError(f"the search space sets {name!r}, a field of image "
                                   "backbones, but the data are texts: leave it out")
    task_data.kind.check_metric(str(config.metric), task_data.labels)
    task_data.kind.check_losses(search_space.field_values("loss"), "the search space")
    if not task_data.is_pair and search_space.field_values("pair_encoding"):
        search_space = search_space.for_single_texts()  # one text: nothing to split
    encoder, tokenizer, resolved = load_backbone(model)
    num_layers = locate_parts(encoder).num_layers
    unknown = None if images else unknown_token_rate(tokenizer, task_data.train.texts)
    if unknown is not None:
        task_data.checks["unknown_token_rate"] = round(unknown, 4)
        if unknown > UNKNOWN_TOKEN_WARNING:
            logger.warning(
                "%.0f%% of the training data's tokens are unknown to the backbone's tokenizer "
                "(%s): it cannot read much of this text. Use a backbone for the data's language "
                "with --model (model=), e.g. a multilingual one such as xlm-roberta-base or "
                "bert-base-multilingual-cased", 100 * unknown, tokenizer.unk_token)
    limit = adapter_for(encoder).max_length(encoder, tokenizer)
    if limit is not None and max_length > limit:
        logger.warning(
            "max_length=%d exceeds the %d tokens the backbone's position table allows; inputs are "
            "truncated to %d tokens", max_length, limit, limit)
        max_length = limit
    search_space = search_space.resolved(num_layers)
    if not search_space.searched:
        logger.warning(
            "the search space fixes every field, so every trial trains the same strategy (only "
            "the seed changes); give ranges or choices to search, or set n_trials=1")
    kept = resolve_sizes(config.curve_sizes, len(task_data.train))
    if len(kept) < len(config.curve_sizes):
        logger.warning(
            "curve sizes %s: only %s are between 32 examples and the %d training examples; the "
            "others are ignored", list(config.curve_sizes), kept, len(task_data.train))
    if sampler is not None and workers > 1:
        logger.warning("sampler= is ignored with workers=%d: each worker samples with autoft's "
                       "TPE and its own seed", workers)
    if callbacks and workers > 1:
        logger.warning("callbacks= are ignored with workers=%d", workers)
    out_dir = Path(out)
    if storage is None and (out_dir / BACKBONES_FILE).is_file():
        raise StudyError(f"{str(out_dir)!r} holds a multi-backbone search; give a one-backbone "
                         "search another --out folder, or repeat --model to resume it")
    lock = lock_folder(out_dir) if storage is None else nullcontext()
    with lock:
        store = open_storage(out_dir, storage, workers)
        info = _study_info(config, task_data, resolved, encoder, search_space, max_length,
                           data_paths(data, validation, test))
        info["storage"] = describe_storage(store)
        local_single = storage is None and workers == 1 and (out_dir / STUDY_DB).exists()
        followups = FollowupSettings(seeds=seeds, top_k=top_k, curve_sizes=config.curve_sizes,
                                     reserve=float(reserve))
        worker_config = WorkerConfig(
            task=task_data, backbone_path=resolved, space=search_space, num_layers=num_layers,
            metric=str(config.metric), direction=config.direction, max_length=max_length,
            evals_per_epoch=evals_per_epoch, device=device, seed=seed, pruner=pruner,
            local_single=local_single, followups=followups, baselines=baselines,
            cache_dir=None if cache_dir is None else str(cache_dir), use_cache=cache,
        )
        existing = {s.study_name for s in store.get_all_studies()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study = optuna.create_study(
                study_name=study_name, storage=store, direction=config.direction,
                load_if_exists=True, sampler=sampler or make_sampler(seed),
                pruner=worker_config.make_pruner(),
            )
        where = study_file(out_dir, store)
        if study_name in existing:
            old = stored_info(study)
            check_resume(old, info, where)
            search_space.check_against(study)
            if old.get("space") != info["space"]:
                logger.warning("the search space differs from the study's; new trials use the "
                               "new space")
            study.set_user_attr(StudyAttr.INFO, {**old, "space": info["space"],
                                                 "data": {**old["data"], **{
                                                     k: info["data"][k] for k in (
                                                         "test_size", "test_fingerprint")}}})
            # a local one-worker study holds the folder lock: every RUNNING trial is dead; a
            # journal file is watched by autoft's heartbeat; databases by Optuna's own
            stale = (fail_stale_trials(study, grace=None) if local_single
                     else [] if uses_optuna_heartbeat(store) else fail_stale_trials(study))
            logger.info("resuming study %r: %d trials so far (%d were interrupted)",
                        study_name, len(study.get_trials(deepcopy=False)), len(stale))
        else:
            study.set_user_attr(StudyAttr.INFO, info)
        # what `autoft worker` processes joining this study plan as follow-ups (the latest run's)
        study.set_user_attr(StudyAttr.FOLLOWUPS, followups.to_dict())
        deadline = limits.deadline(run_start)
        if progress is not None:
            records = trial_records(study.get_trials(deepcopy=False))
            done = [r for r in records if r.status not in ("running", "waiting", "interrupted")]
            sign = -1 if config.direction == "minimize" else 1
            scores = [sign * float(r.score) for r in done if r.finished]
            progress.on_search_start({
                "deadline": deadline, "n_trials": limits.n_trials,
                "finished": sum(r.counts for r in records),
                "pruned": sum(r.status in ("pruned", "budget", "diverged") for r in done),
                "failed": sum(r.status == "failed" for r in done),
                "best": sign * max(scores) if scores else None, "metric": config.metric,
                "direction": config.direction, "train_size": len(task_data.train),
                "validation_size": len(task_data.validation), "workers": workers,
                "backbone": info["backbone"],
            })
        logger.info(
            "searching %d training / %d validation examples, backbone %s (%d blocks), budget %s, "
            "%d worker(s)", len(task_data.train), len(task_data.validation), info["backbone"],
            num_layers, limits.describe(), workers)
        run = run_id()
        state = RunState()
        interrupted = False
        record_run(study, run, {"started": started_at, "ended": None,
                                "budget": limits.describe(), "workers": workers,
                                "deadline_unix": None if deadline is None
                                else time.time() + deadline - time.monotonic()})
        threads = None
        try:
            if workers == 1:
                import torch

                threads = torch.get_num_threads()
                if "OMP_NUM_THREADS" not in os.environ:
                    torch.set_num_threads(cpu_threads())
                with Interrupt() as interrupt:
                    state = run_trials(study, worker_config, limits, deadline, progress=progress,
                                       callbacks=callbacks, encoder=encoder, tokenizer=tokenizer,
                                       worker=run, interrupt=interrupt)
            else:
                state = run_local_workers(study, worker_config, limits, deadline, workers,
                                          out_dir, storage, run, progress)
        except KeyboardInterrupt:
            interrupted = True
            state.stopped_because = "interrupted (Ctrl-C); rerun the same command to resume"
            raise
        finally:
            if threads is not None:
                import torch

                torch.set_num_threads(threads)  # the caller's process keeps its own setting
            record_run(study, run, {
                "started": started_at, "ended": now(),
                "seconds": round(time.monotonic() - run_start, 1), "budget": limits.describe(),
                "workers": workers, "trials_run": state.trials_run,
                "stopped_because": state.stopped_because or "the sampler stopped",
                "study_file": where,
            })
            if images:
                _draw_misclassified(study, task_data, out_dir)
            paths = write_report(study, out_dir)
            if progress is not None:
                progress.on_search_end(state.stopped_because)
            if not interrupted:
                logger.info("report written to %s", paths["markdown"])
        if state.failures >= MAX_CONSECUTIVE_FAILURES:
            raise TrialError(
                f"{MAX_CONSECUTIVE_FAILURES} trials in a row failed, so the search stopped; the "
                f"first failure: {state.first_failure}. The report in {str(out_dir)!r} lists them."
                + (f"\nIts traceback:\n{state.first_traceback}" if state.first_traceback else "")
            )
        result = SearchResult(study, out_dir, paths)
        if refit and result.recommendation_ is not None:
            from autoft.searching.refit import refit as refit_study

            refit_study(out_dir if storage is None else None, storage=storage,
                        study_name=study_name, save_to=out_dir / "model", data=data,
                        validation=validation, test=test, device=device)
            paths = write_report(study, out_dir)
            result = SearchResult(study, out_dir, paths)
    return result
