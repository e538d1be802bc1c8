"""Running the trials of a study: the sampler and pruner, the objective, and the callback that
plans follow-ups and stops the run.

**Sampler and pruner.** The default sampler is Optuna's TPE with 5 start-up trials (the 3
baselines and 2 random ones), ``multivariate=True`` and ``group=True`` (one model of the joint
distribution per set of parameters that occur together, so the conditional fields, e.g. the
backbone learning rate that only a strategy with trained blocks has, are modelled jointly with
the rest; Falkner et al. 2018 and Optuna's documentation recommend multivariate TPE), and
``constant_liar=True`` (running trials count as bad guesses, so several workers do not sample the
same point; Optuna's recommendation for parallel TPE). The default pruner is asynchronous
successive halving (ASHA, Li et al. 2020) with one bracket: a trial is stopped after two thirds
of its epochs (2 of 3) unless it is among the best third of the trials at that point (an earlier
rung ranks learning rates wrongly, see :func:`first_rung_epochs`). Unlike Hyperband, which gives
TPE only the trials of its own bracket (so at a budget of 20-40 trials TPE never leaves its random
start-up), one bracket lets TPE model the whole study from its sixth trial on.
``benchmarks/search_vs_random.py`` measures the pairing against random search.

**What the sampler is told.** A trial stopped by the budget or by ``--trial-budget`` is pruned (not
complete), a trial whose loss diverged is pruned (it does not count among the failures that stop a
search), follow-ups never report to the pruner, and learning-curve probes suggest no parameters.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import statistics
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial

from autoft.analysis import fit_cost_model
from autoft.budget import Budget, format_duration, plural
from autoft.data import TaskData
from autoft.errors import AutoftError, DivergedError
from autoft.models.backbone import load_backbone
from autoft.searching.followups import (
    MAX_SHARE,
    FollowupSettings,
    enqueue_followups,
    estimate_seconds,
    fit_in_time,
    fit_to_reserve,
    followup_room,
    followups_due,
    is_duplicate_followup,
    nested_subset,
    plan_followups,
)
from autoft.searching.space import SearchSpace
from autoft.strategies import Strategy
from autoft.study.info import versions
from autoft.study.records import Attr, StudyAttr, TrialRecord, trial_records, write_outcome
from autoft.study.storage import Heartbeat, fail_stale_trials, uses_optuna_heartbeat
from autoft.training import (
    PrefixCache,
    encode_split,
    eval_steps,
    pad_id,
    resolve_device,
    train_strategy,
)

__all__ = [
    "DEFAULT_PRUNER",
    "MAX_CONSECUTIVE_FAILURES",
    "PRUNERS",
    "Interrupt",
    "ProgressHook",
    "RunState",
    "SearchStopper",
    "TrialRunner",
    "WorkerConfig",
    "enqueue_next_baseline",
    "first_rung_epochs",
    "make_pruner",
    "make_sampler",
    "run_trials",
]

logger = logging.getLogger(__name__)

#: Pruner names ``search`` accepts (or pass an ``optuna.pruners.BasePruner``).
PRUNERS = ("successive_halving", "hyperband", "median", "none")
DEFAULT_PRUNER = "successive_halving"
#: Consecutive failed trials after which a search stops (the cause is systematic, not one trial's).
MAX_CONSECUTIVE_FAILURES = 3
#: Consecutive trials skipped for lack of time after which a run stops.
MAX_CONSECUTIVE_SKIPS = 5
#: TPE's random start-up trials (the baselines count among them).
STARTUP_TRIALS = 5


def first_rung_epochs(max_epochs: int) -> int:
    """Epochs a trial trains before successive halving first compares it: two thirds of the
    longest schedule, rounded up (2 of 3; at least 1).

    An earlier rung does not tell learning rates apart. A linear-decay schedule with warm-up is
    still near its peak after one of three epochs, where a high learning rate scores no better,
    or worse, than a lower one that it beats at the end (the short-horizon bias of Wu et al. 2018,
    "Understanding Short-Horizon Bias in Stochastic Meta-Optimization", ICLR).
    ``benchmarks/short_horizon.py`` measured it on SST-2 (2,000 rows, MiniLM, 2 blocks frozen,
    mean of 2 seeds): after epoch 1 the learning rates 3e-5 .. 3e-4 scored 0.760-0.788, the
    highest lowest (it ended at 0.820, 0.002 from the best) and 3e-5 mid-field (it ended last,
    0.808); after epoch 2, 3e-5 was last by 0.014 as at the end.

    Args:
        max_epochs: Most epochs a trial of the space trains (>= 1).
    """
    return max(1, -(-2 * max_epochs // 3))


def make_pruner(pruner: str | optuna.pruners.BasePruner, evals_per_epoch: int,
                max_epochs: int) -> optuna.pruners.BasePruner:
    """Build the pruner. Steps are validation evaluations (1, 2, ...), ``evals_per_epoch`` per
    epoch.

    Args:
        pruner: ``"successive_halving"`` (the default: asynchronous successive halving, Li et al.
            2020, one bracket, minimum resource :func:`first_rung_epochs` epochs (2 of 3),
            reduction factor 3),
            ``"hyperband"`` (Li et al. 2018; min resource 1 evaluation, reduction factor 3),
            ``"median"`` (prune below the median of earlier trials at the same step, after 3
            trials), ``"none"``, or any Optuna pruner instance.
        evals_per_epoch: Evaluations per epoch.
        max_epochs: Most epochs a trial can train.

    Raises:
        AutoftError: Unknown pruner name.
    """
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    if pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=max(1, evals_per_epoch) * first_rung_epochs(max_epochs),
            reduction_factor=3)
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max(1, evals_per_epoch * max_epochs), reduction_factor=3)
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if pruner == "none":
        return optuna.pruners.NopPruner()
    raise AutoftError(f"pruner {pruner!r} is not one of {PRUNERS} or an optuna pruner")


def make_sampler(seed: int | None) -> optuna.samplers.BaseSampler:
    """The default sampler: TPE with :data:`STARTUP_TRIALS` start-up trials, multivariate and
    grouped, with the constant liar (see the module doc)."""
    import warnings

    with warnings.catch_warnings():  # group=True is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            n_startup_trials=STARTUP_TRIALS, multivariate=True, group=True, constant_liar=True,
            seed=seed)


class ProgressHook:
    """Receives a search's progress; the CLI's display implements it. Every method is optional.

    Times are ``time.monotonic()`` values; scores are in the search's metric.
    """

    def on_search_start(self, info: dict[str, Any]) -> None:
        """Called once before the first trial. ``info`` keys: ``deadline`` (or None),
        ``n_trials`` (target or None), ``finished``, ``pruned``, ``failed`` (trials of earlier
        runs), ``best`` (best score so far or None), ``metric``, ``direction``, ``train_size``,
        ``validation_size``, ``workers``, ``backbone`` (its name or folder)."""

    def on_trial_start(self, number: int, strategy: Strategy) -> None:
        """A trial begins training ``strategy``."""

    def on_evaluation(self, number: int, index: int, score: float) -> None:
        """Trial ``number`` finished its ``index``-th (1-based) validation evaluation."""

    def on_trial_end(self, record: TrialRecord) -> None:
        """A trial ended (any status but a skipped duplicate follow-up)."""

    def on_search_end(self, stopped_because: str) -> None:
        """The run ended; ``stopped_because`` says why."""


class Interrupt:
    """Turns Ctrl-C into a flag checked at safe points (every training step, after each trial).

    A ``KeyboardInterrupt`` raised wherever Python happens to be can land in a garbage-collection
    callback of a library, where it is printed and swallowed, and the search runs on. With this
    handler installed (main thread only), the first Ctrl-C sets the flag and the next training step
    raises ``KeyboardInterrupt`` from autoft's own code; a second Ctrl-C interrupts at once.
    """

    def __init__(self) -> None:
        self.hit = False
        self._previous: Any = None

    def __enter__(self) -> Interrupt:
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
class RunState:
    """Bookkeeping of one search run (or worker).

    Attributes:
        stopped_because: Why the run stopped.
        failures: Consecutive failed trials (errors; not divergences or interruptions).
        first_failure, first_traceback: The first of them.
        trials_run: Trials this run trained (skipped ones not counted).
        followups_active: Whether the follow-up phase has begun in this run.
        skips: Consecutive trials skipped for lack of time.
        skipped_ids: Follow-up and baseline ids skipped in this run (not planned again in it).
        followups: The follow-up settings this run uses: the configured ones until
            :func:`~autoft.searching.followups.fit_to_reserve` scales them down; None until then.
        reseed_seconds: Estimated seconds of the re-seeds planned after the last trial (with
            the 15% margin, at most :data:`~autoft.searching.followups.MAX_SHARE` of the
            budget; 0 when none are planned): the time a new strategy must leave free
            (:meth:`TrialRunner._keeps_reseed_time`).
    """

    stopped_because: str = ""
    failures: int = 0
    first_failure: str = ""
    first_traceback: str = ""
    trials_run: int = 0
    followups_active: bool = False
    skips: int = 0
    skipped_ids: set[str] = field(default_factory=set)
    followups: FollowupSettings | None = None
    reseed_seconds: float = 0.0


@dataclass
class WorkerConfig:
    """What a process needs to run trials of a study; picklable, so worker processes get it.

    Attributes:
        task: The data.
        backbone_path: The backbone's folder or hub id.
        space: The resolved search space.
        num_layers: The backbone's block count L.
        metric, direction: The validation metric and its direction.
        max_length: Tokens per input.
        evals_per_epoch: Validation evaluations per epoch (the pruner's steps).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        seed: The study's seed (trial n trains with seed + n).
        pruner: The pruner's name or instance.
        local_single: One process on a local SQLite study, holding the folder lock: every
            RUNNING trial found at start belongs to a dead process.
        followups: The follow-up settings.
        baselines: Whether to run the space's baselines first.
        cache_dir: Folder of the prefix cache (None: the default).
        use_cache: Whether to use the prefix cache.
    """

    task: TaskData
    backbone_path: str
    space: SearchSpace
    num_layers: int
    metric: str
    direction: str
    max_length: int
    evals_per_epoch: int
    device: str
    seed: int
    pruner: str | optuna.pruners.BasePruner
    local_single: bool
    followups: FollowupSettings = field(default_factory=FollowupSettings)
    baselines: bool = True
    cache_dir: str | None = None
    use_cache: bool = True

    def make_pruner(self) -> optuna.pruners.BasePruner:
        """This study's pruner."""
        return make_pruner(self.pruner, self.evals_per_epoch, self.space.max_epochs)


def enqueue_next_baseline(study: optuna.Study, space: SearchSpace,
                          skipped: set[str] | None = None) -> bool:
    """Enqueue the next baseline that has not run, when nothing else waits (baselines go one at
    a time, so a retried interrupted trial runs before the remaining baselines). Baselines run
    cheapest first: most frozen blocks first. Returns whether one was enqueued."""
    records = trial_records(study.get_trials(deepcopy=False))
    if any(r.status == "waiting" for r in records):
        return False
    # a baseline that failed is not run again (an interrupted one is, by its retry)
    taken = {r.followup_id for r in records if r.status != "skipped"}
    order = sorted(range(len(space.baselines)),
                   key=lambda i: -int(space.baselines[i].get("frozen_layers", 0)))
    for i in order:
        key = f"baseline:{i}"
        if key in taken or key in (skipped or set()):
            continue
        params = dict(space.baselines[i])
        study.enqueue_trial(params, user_attrs={Attr.BASELINE: True, Attr.FOLLOWUP_ID: key,
                                                Attr.PLANNED_PARAMS: params})
        return True
    return False


def _release_memory(device: torch.device) -> None:
    """Give a finished trial's memory back (model, optimizer state, activations)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


class TrialRunner:
    """The objective: trains one trial's strategy and records what it did.

    Args:
        study: The study.
        config: The worker configuration.
        limits: The run's budget.
        deadline: The run's ``time.monotonic()`` deadline (None: none).
        state: The run's bookkeeping (shared with :class:`SearchStopper`).
        progress: Receives progress events. Default None.
        encoder, tokenizer: The loaded backbone (loaded here when None).
        worker: The name of this run or worker process, stored with each trial.
        interrupt: The Ctrl-C flag, checked at every step. Default None.
    """

    def __init__(self, study: optuna.Study, config: WorkerConfig, limits: Budget,
                 deadline: float | None, state: RunState, *, progress: ProgressHook | None = None,
                 encoder: Any = None, tokenizer: Any = None, worker: str = "main",
                 interrupt: Interrupt | None = None) -> None:
        if encoder is None or tokenizer is None:
            encoder, tokenizer, _ = load_backbone(config.backbone_path)
        self.study, self.config, self.limits, self.deadline = study, config, limits, deadline
        self.state, self.progress, self.worker, self.interrupt = state, progress, worker, interrupt
        self.encoder = encoder
        self.device = resolve_device(config.device)
        self.pad_id = pad_id(tokenizer)
        self.tokenizer = tokenizer
        self.train = encode_split(tokenizer, config.task.train, config.max_length)
        self.validation = encode_split(tokenizer, config.task.validation, config.max_length)
        self._by_resolution: dict[int, tuple[Any, Any]] = {}
        self.versions = versions()
        self.fingerprint = config.task.fingerprint()
        self.cache = PrefixCache(config.cache_dir) if config.use_cache else None
        self.heartbeat = not uses_optuna_heartbeat(study._storage)
        self.stratify = config.task.kind.stratify(self.train.labels) is not None
        # everything loaded so far lives as long as the run: keep it out of the garbage
        # collector's scans, so the collection after each trial takes milliseconds, not seconds
        gc.collect()
        gc.freeze()

    def __call__(self, trial: optuna.Trial) -> float:
        try:
            return self._run(trial)
        except KeyboardInterrupt:
            trial.set_user_attr(Attr.INTERRUPTED, True)
            trial.set_user_attr(Attr.FAIL_REASON, "interrupted (Ctrl-C) while this trial was running")
            raise
        except optuna.TrialPruned:
            raise
        except DivergedError as exc:
            trial.set_user_attr(Attr.STATUS, "diverged")
            trial.set_user_attr(Attr.FAIL_REASON, f"diverged: {exc}")
            raise optuna.TrialPruned(str(exc)) from None
        except Exception as exc:
            trial.set_user_attr(Attr.FAIL_REASON, f"{type(exc).__name__}: {exc}")
            trial.set_user_attr(Attr.TRACEBACK, traceback.format_exc(limit=20))
            raise

    def _splits(self, resolution: int | None) -> tuple[Any, Any]:
        """The training and validation splits encoded for a strategy: the run's own, or for an
        image strategy with its own ``resolution``, those pixels (made once, then kept)."""
        if resolution is None:
            return self.train, self.validation
        if resolution not in self._by_resolution:
            task = self.config.task
            self._by_resolution[resolution] = (
                encode_split(self.tokenizer, task.train, resolution=resolution),
                encode_split(self.tokenizer, task.validation, resolution=resolution))
        return self._by_resolution[resolution]

    def _predicted_seconds(self, strategy: Strategy, size: int) -> float | None:
        """What the cost model says this fine-tune takes (None before any trial trained)."""
        records = trial_records(self.study.get_trials(deepcopy=False))
        if not any(r.finished for r in records):
            return None
        model = fit_cost_model(records, len(self.validation))
        if not model.per_example:
            return None
        return model.predict(strategy.family(), size, strategy.epochs, len(self.validation),
                             self.config.evals_per_epoch)

    def _keeps_reseed_time(self, purpose: Any, predicted: float | None, left: float) -> str:
        """Why a new strategy (a sampled trial or a baseline) must not start now ("" when it
        may): it would end with less time left than the planned re-seeds of the leader need
        (while they still fit; the follow-up phase then begins at once), or than one re-seed of
        itself would need (were it to lead, it could not be confirmed, and an unconfirmed run
        is never recommended over a confirmed one). Each need is the estimate plus 15%, at most
        :data:`~autoft.searching.followups.MAX_SHARE` of the budget. Why: on all-mpnet-base-v2
        with a 19-minute share, one more strategy ran just before the phase and a 323 s leader
        went unconfirmed; in the next run a 408 s full fine-tune started with 650 s left, led,
        and could not be re-seeded (``benchmarks/results/backbone_choice.json``)."""
        state = self.state
        settings = state.followups or self.config.followups
        if purpose is not None or predicted is None or settings.seeds < 2:
            return ""
        cap = MAX_SHARE * self.limits.seconds if self.limits.seconds else float("inf")
        leader = state.reseed_seconds if state.reseed_seconds <= left else 0.0
        own = min(1.15 * predicted, cap)
        if left - 1.1 * predicted >= max(leader, own):
            return ""
        if leader >= own:
            state.followups_active = True
            return (f"the cost model predicts {predicted:.0f} s, and the {left:.0f} s left are "
                    f"kept for re-seeding the leader (about {leader:.0f} s)")
        return (f"the cost model predicts {predicted:.0f} s, and the {left:.0f} s left could "
                f"not also hold a re-seed of it (about {own:.0f} s) to confirm it")

    def _surplus(self, number: int) -> str:
        """Why this trial should not run under ``n_trials`` ("" when it may). Each worker checks
        the count after its trial ends and then asks the storage for a new trial; two workers
        finishing together both see room for one more, and a study of 6 trials ran 7 (seen on
        PostgreSQL). Trial numbers are handed out by the storage in order, so the trials with a
        lower number that counted or are running decide, and the later one yields."""
        if self.limits.n_trials is None or self.config.local_single:
            return ""
        earlier = [t for t in self.study.get_trials(deepcopy=False) if t.number < number]
        taken = sum(1 for r in trial_records(earlier)
                    if r.counts or r.status == "running")
        if taken < self.limits.n_trials:
            return ""
        return (f"the study already had {plural(self.limits.n_trials, 'trial')} "
                "(another worker took the last one)")

    def _run(self, trial: optuna.Trial) -> float:
        cfg = self.config
        attrs = trial.user_attrs
        trial.set_user_attr(Attr.WORKER, self.worker)  # first: a skipped duplicate names its worker
        if attrs.get(Attr.FOLLOWUP_ID) is not None or attrs.get(Attr.RETRY_OF) is not None:
            twin = is_duplicate_followup(trial,
                                         trial_records(self.study.get_trials(deepcopy=False)))
            if twin is not None:  # another worker enqueued the same follow-up or retry
                trial.set_user_attr(Attr.DUPLICATE_OF, twin)
                raise optuna.TrialPruned(f"duplicate of trial {twin}; skipped")
        surplus = self._surplus(trial.number)
        if surplus:  # another worker took the last trial between our check and this trial
            trial.set_user_attr(Attr.STATUS, "skipped")
            trial.set_user_attr(Attr.FAIL_REASON, f"not started: {surplus}")
            raise optuna.TrialPruned(surplus)
        planned = attrs.get(Attr.PLANNED_STRATEGY)
        if planned is not None:  # a probe: its strategy is stored, the sampler is not asked
            strategy = Strategy.from_dict(dict(planned))
        else:
            strategy = cfg.space.suggest(trial, cfg.num_layers)
        purpose = attrs.get(Attr.PURPOSE)
        full = len(self.train)
        size = min(int(attrs.get(Attr.TRAIN_SIZE) or full), full)
        trial_seed = cfg.seed + trial.number
        for key, value in ((Attr.STRATEGY, strategy.to_dict()),
                           (Attr.DESCRIPTION, strategy.describe(cfg.num_layers)),
                           (Attr.SEED, trial_seed), (Attr.DATA_FINGERPRINT, self.fingerprint),
                           (Attr.VERSIONS, self.versions), (Attr.TRAIN_SIZE, size)):
            trial.set_user_attr(key, value)
        if self.deadline is not None:
            predicted = self._predicted_seconds(strategy, size)
            left = self.deadline - time.monotonic()
            if predicted is not None and 1.1 * predicted > left:
                trial.set_user_attr(Attr.STATUS, "skipped")
                trial.set_user_attr(
                    Attr.FAIL_REASON, f"not started: the cost model predicts {predicted:.0f} s, "
                    f"and {max(0.0, left):.0f} s of the budget were left")
                raise optuna.TrialPruned("would not finish in the time left")
            kept = self._keeps_reseed_time(purpose, predicted, left)
            if kept:
                trial.set_user_attr(Attr.STATUS, "skipped")
                trial.set_user_attr(Attr.FAIL_REASON, f"not started: {kept}")
                raise optuna.TrialPruned(kept)
        train_all, validation = self._splits(strategy.resolution)
        train_part = train_all if size >= full else train_all.subset(
            nested_subset(self.train.labels, size, cfg.seed, stratify=self.stratify))
        if self.progress is not None:
            self.progress.on_trial_start(trial.number, strategy)
        trial_deadline = self.deadline
        if self.limits.trial_seconds is not None:
            cap = time.monotonic() + self.limits.trial_seconds
            trial_deadline = cap if trial_deadline is None else min(trial_deadline, cap)
        # A linear-probe baseline runs to the end: it is the reference every rung starts from
        # and costs seconds. The other baselines face the pruner like any trial: on STS-B the
        # cross-encoder baselines scored 0.42-0.45 Spearman after one epoch against the probe's
        # 0.78 and, run to the end, took 6 of a 20-minute budget's 15 minutes, so no sampled
        # trial ever ran. Follow-ups do not report to the pruner at all (a probe's score on part
        # of the data, or a second seed of a trial already reported, would distort its rungs).
        probe = strategy.frozen_layers >= cfg.num_layers
        prunable = purpose is None and not (attrs.get(Attr.BASELINE) and probe)
        reports = purpose is None
        # the last evaluation ends the training anyway: pruning there would only throw away a
        # trial that trained to the end
        last = len(eval_steps(-(-len(train_part) // strategy.batch_size), strategy.epochs,
                              cfg.evals_per_epoch))

        def report(index: int, score: float) -> bool:
            if self.interrupt is not None:
                self.interrupt.check()
            if self.progress is not None:
                self.progress.on_evaluation(trial.number, index, score)
            if not reports:
                return False
            trial.report(score, index)
            if index >= last:
                return False
            # asked even when the answer is ignored: Optuna's successive halving records a
            # trial's rung value only when it is asked, and a probe that never registers leaves
            # the rungs to the trials after it
            verdict = trial.should_prune()
            return prunable and verdict

        try:
            beat = Heartbeat(self.study._storage, trial._trial_id) if self.heartbeat else None
            if beat is not None:
                beat.__enter__()
            try:
                outcome, model = train_strategy(
                    self.encoder, strategy, train_part, validation, cfg.task.num_labels,
                    pad_id=self.pad_id, metric=cfg.metric, task=cfg.task.kind, device=self.device,
                    seed=trial_seed, evals_per_epoch=cfg.evals_per_epoch, deadline=trial_deadline,
                    report=report, cache=self.cache,
                    on_step=None if self.interrupt is None else self.interrupt.check,
                )
                del model
            finally:
                if beat is not None:
                    beat.__exit__(None, None, None)
        finally:
            _release_memory(self.device)
        write_outcome(trial, outcome.to_dict())
        if outcome.best_score is None:
            trial.set_user_attr(Attr.STATUS, "budget")
            raise optuna.TrialPruned("the budget ended before the trial's first evaluation")
        if outcome.status == "pruned":
            raise optuna.TrialPruned(f"pruned after evaluation {len(outcome.scores)}")
        if outcome.status == "budget":  # partial training is not a finished trial
            if outcome.steps >= outcome.total_steps:  # trained, but its last evaluation was cut
                raise optuna.TrialPruned("stopped by the budget during its last evaluation")
            raise optuna.TrialPruned(f"stopped by the budget after {outcome.steps} of "
                                     f"{outcome.total_steps} steps")
        return float(outcome.best_score)


class SearchStopper:
    """Optuna callback run after each trial: progress, failure counting, stale trials of dead
    workers, the follow-up plan, the next baseline, and whether the run stops.

    Args:
        runner: The run's :class:`TrialRunner` (its study, configuration, budget and state).
    """

    def __init__(self, runner: TrialRunner) -> None:
        self.runner = runner

    def should_stop(self, study: optuna.Study) -> str:
        """Why the run should stop now ("" to go on)."""
        limits, deadline = self.runner.limits, self.runner.deadline
        if limits.n_trials is not None and sum(
                r.counts or r.status == "running"
                for r in trial_records(study.get_trials(deepcopy=False))) >= limits.n_trials:
            return f"the study reached {plural(limits.n_trials, 'trial')}"
        if deadline is not None and time.monotonic() >= deadline:
            return f"the time budget ({format_duration(limits.seconds)}) ended"
        return ""

    def followup_settings(self, study: optuna.Study,
                          records: list[TrialRecord]) -> FollowupSettings:
        """The follow-up settings of this run: the configured ones, scaled down once to the
        trials' cost when re-seeding as asked would not fit in the reserve (time budgets only;
        stored in the study, so the report says so and the recommendation asks for that many
        seeds)."""
        runner, cfg, state = self.runner, self.runner.config, self.runner.state
        current = state.followups or cfg.followups
        if runner.limits.seconds is None or current.scaled_from is not None:
            return current
        scaled = fit_to_reserve(records, current, num_layers=cfg.num_layers,
                                train_size=len(runner.train),
                                budget_seconds=runner.limits.seconds, direction=cfg.direction)
        if scaled is not current:
            asked = scaled.scaled_from or {}
            logger.info(
                "re-seeding %s to %d seeds would take about %s, more than the %s kept for "
                "follow-ups: the leader alone gets %s", plural(int(asked.get("top_k", 0)),
                                                             "strategy", "strategies"),
                int(asked.get("seeds", 0)), format_duration(asked.get("estimated_seconds", 0)),
                format_duration(asked.get("allowed_seconds", 0)), plural(scaled.seeds, "run"))
            state.followups = scaled
            study.set_user_attr(StudyAttr.FOLLOWUPS, scaled.to_dict())
        return scaled

    def plan(self, study: optuna.Study) -> None:
        """Enter the follow-up phase when due, then enqueue the missing follow-ups; else enqueue
        the next baseline."""
        runner, cfg, state = self.runner, self.runner.config, self.runner.state
        records = trial_records(study.get_trials(deepcopy=False))
        if cfg.followups.enabled:
            settings = self.followup_settings(study, records)
            plans = [p for p in plan_followups(records, cfg.num_layers, len(runner.train),
                                               settings, cfg.direction)
                     if p[1][Attr.FOLLOWUP_ID] not in state.skipped_ids]
            if not state.followups_active and plans:
                state.followups_active = followups_due(
                    records, plans, settings=settings, train_size=len(runner.train),
                    budget_seconds=runner.limits.seconds, deadline=runner.deadline,
                    n_trials=runner.limits.n_trials)
            reseeds = [p for p in plans if p[1].get(Attr.PURPOSE) == "reseed"]
            if runner.limits.seconds is not None:
                state.reseed_seconds = min(
                    1.15 * estimate_seconds(records, reseeds, len(runner.train)),
                    MAX_SHARE * runner.limits.seconds) if reseeds else 0.0
            if reseeds:
                # confirmation first: probes queued now would run before the re-seeds of a
                # leader that the pending ones may still uncover (the queue is first in, first out)
                plans = reseeds
            if state.followups_active and runner.deadline is not None:
                # follow-ups that cannot finish in the time left, together with those queued
                # before them, would only wait or be skipped
                plans = fit_in_time(records, plans, len(runner.train),
                                    runner.deadline - time.monotonic())
            if state.followups_active and plans:
                enqueue_followups(study, plans,
                                  followup_room(records, runner.limits.n_trials, len(plans)))
        if cfg.baselines:
            enqueue_next_baseline(study, cfg.space, state.skipped_ids)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        runner, state = self.runner, self.runner.state
        if runner.interrupt is not None:
            runner.interrupt.check()
        record = TrialRecord.from_trial(trial)
        if record is not None:
            if record.status == "skipped":
                state.skips += 1
                if record.followup_id:
                    state.skipped_ids.add(record.followup_id)
            else:
                state.skips = 0
                state.trials_run += 1
            if runner.progress is not None:
                runner.progress.on_trial_end(record)
            if record.status == "failed":
                state.failures += 1
                if state.failures == 1:
                    state.first_failure = str(record.fail_reason or "unknown error")
                    state.first_traceback = str(record.traceback or "")
            elif record.status not in ("skipped", "interrupted"):
                state.failures = 0
        if not runner.config.local_single and runner.heartbeat:
            fail_stale_trials(study)  # a dead worker's trial is failed and retried by the living
        self.plan(study)
        if state.failures >= MAX_CONSECUTIVE_FAILURES:
            state.stopped_because = f"{MAX_CONSECUTIVE_FAILURES} trials in a row failed"
        elif state.skips >= MAX_CONSECUTIVE_SKIPS:
            state.stopped_because = (f"the time budget's remainder could not fit the last "
                                     f"{state.skips} strategies tried (the cost model's "
                                     "prediction)")
        else:
            state.stopped_because = self.should_stop(study)
        if state.stopped_because:
            study.stop()


def run_trials(
    study: optuna.Study,
    config: WorkerConfig,
    limits: Budget,
    deadline: float | None,
    *,
    progress: ProgressHook | None = None,
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (),
    encoder: Any = None,
    tokenizer: Any = None,
    worker: str = "main",
    interrupt: Interrupt | None = None,
) -> RunState:
    """Run trials of ``study`` until the budget, the trial count or repeated failures stop it.

    Returns:
        The run's :class:`RunState`.
    """
    state = RunState()
    runner = TrialRunner(study, config, limits, deadline, state, progress=progress,
                         encoder=encoder, tokenizer=tokenizer, worker=worker, interrupt=interrupt)
    try:
        stopper = SearchStopper(runner)
        stopper.plan(study)
        state.stopped_because = stopper.should_stop(study)
        if not state.stopped_because:
            study.optimize(runner, callbacks=[stopper, *callbacks], catch=(Exception,))
    finally:
        gc.unfreeze()  # what the run froze (see TrialRunner) is collectable again afterwards
    return state


def median_trial_seconds(study: optuna.Study) -> float | None:
    """Median seconds of the study's trials that trained (None without any)."""
    costs = [r.cost_seconds for r in trial_records(study.get_trials(deepcopy=False))
             if r.cost_seconds]
    return statistics.median(costs) if costs else None


def cpu_threads(workers: int = 1) -> int:
    """Torch threads per worker: the CPUs this process may run on (``os.sched_getaffinity``,
    which respects CPU affinity and cgroup cpusets, unlike ``os.cpu_count``), shared among
    ``workers``."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus // max(1, workers))
