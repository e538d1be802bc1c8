"""The one trial-record schema: the Optuna attribute keys autoft writes, and :class:`TrialRecord`.

The search writes what a trial did as Optuna user attributes (so a study is a standard Optuna
storage that optuna-dashboard opens, and a report can be rebuilt from it alone). Everything
downstream (the recommendation, the follow-up plan, the cost model and learning curves, the
reports, the CLI) reads :class:`TrialRecord` objects made by :func:`trial_records`, never raw
``user_attrs``; the attribute names live here, in :class:`Attr` and :class:`StudyAttr`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna.trial import BaseTrial, FrozenTrial

__all__ = [
    "STATUSES",
    "STRATEGY_COLUMNS",
    "Attr",
    "StudyAttr",
    "TrialRecord",
    "strategy_key",
    "table_rows",
    "trial_records",
    "write_outcome",
]


class Attr:
    """Names of the trial user attributes autoft writes."""

    STRATEGY = "strategy"  #: the strategy it trained, ``Strategy.to_dict()``
    DESCRIPTION = "description"  #: one-line description of the strategy
    SEED = "seed"  #: training seed
    DATA_FINGERPRINT = "data_fingerprint"
    VERSIONS = "versions"  #: library versions
    WORKER = "worker"  #: the run or worker process that ran it
    TRAIN_SIZE = "train_size"  #: training examples it used (smaller for learning-curve probes)
    BASELINE = "baseline"  #: True for the space's baselines
    PURPOSE = "purpose"  #: None, "reseed" or "learning_curve"
    RESEED_OF = "reseed_of"  #: the trial a re-seed repeats
    CURVE_OF = "curve_of"  #: the trial a learning-curve probe repeats on fewer examples
    FOLLOWUP_ID = "followup_id"  #: "reseed:N:i" or "curve:N:n[:i]"
    DUPLICATE_OF = "duplicate_of"  #: a follow-up skipped because an earlier trial has its id
    INTERRUPTED = "interrupted"  #: its process ended while it ran (Ctrl-C, kill, crash)
    RETRY_OF = "retry_of"  #: the interrupted trial it runs again
    FAIL_REASON = "fail_reason"
    TRACEBACK = "traceback"
    PLANNED_PARAMS = "planned_params"  #: parameters a queued trial was enqueued with
    PLANNED_STRATEGY = "planned_strategy"  #: a probe's strategy (probes suggest no parameters)
    #: the measurements, ``autoft.training.TrialOutcome.to_dict()`` (one attribute: one write)
    OUTCOME = "outcome"
    BEST_SCORE = "best_score"  #: (inside OUTCOME; a top-level key in studies of autoft 0.1)
    STATUS = "status"  #: "complete", "pruned", "budget", "diverged" or "skipped"


#: Attributes a retried follow-up keeps.
FOLLOWUP_ATTRS = (Attr.PURPOSE, Attr.RESEED_OF, Attr.CURVE_OF, Attr.TRAIN_SIZE, Attr.FOLLOWUP_ID,
                  Attr.BASELINE, Attr.PLANNED_STRATEGY)


class StudyAttr:
    """Names of the study user attributes autoft writes."""

    INFO = "autoft"  #: data summary, backbone, space, settings (see autoft.study.info)
    FOLLOWUPS = "autoft_followups"  #: the follow-up settings of the latest search run
    RUN_PREFIX = "run:"  #: one record per search run or worker: "run:<id>"
    REFIT = "refit"  #: the latest refit's result


#: What a trial's ``status`` can be: trained as specified, stopped by the pruner, stopped by the
#: time budget (or ``--trial-budget``), stopped because its loss diverged, not started because the
#: cost model said it could not finish in the time left, failed with an error, interrupted by the
#: end of its process, still running, queued.
STATUSES = ("complete", "pruned", "budget", "diverged", "skipped", "failed", "interrupted",
            "running", "waiting")

#: The reason shown for an interrupted trial.
INTERRUPTED_REASON = "interrupted: the process running this trial ended (killed or crashed)"

#: Strategy fields shown as table columns, in order (a kind's own fields follow them).
STRATEGY_COLUMNS = (
    "kind", "frozen_layers", "learning_rate", "head_learning_rate", "head", "head_width",
    "head_depth", "head_dropout", "pooling", "epochs", "batch_size", "weight_decay",
    "warmup_ratio",
)


def strategy_key(strategy: dict[str, Any]) -> str:
    """Identity of a strategy (every field, canonical JSON): runs with equal keys are seeds of
    one strategy. A kind's own fields are part of it, so no field is ever merged away. The
    strategy is completed with its kind's defaults first, so a run stored before a kind gained a
    field (e.g. freeze's ``layer_decay``) is a seed of the same strategy with the default."""
    from autoft.errors import StrategyError
    from autoft.strategies import Strategy

    values = dict(strategy)
    values.setdefault("kind", "freeze")
    try:
        values = Strategy.from_dict(values).to_dict()
    except (StrategyError, TypeError, ValueError):  # a kind this process does not know
        pass
    return json.dumps(values, sort_keys=True, default=str)


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class TrialRecord:
    """What one trial was and did, read from the study.

    Attributes:
        number: Optuna's trial number.
        state: Optuna's state name (COMPLETE, PRUNED, FAIL, RUNNING, WAITING).
        status: One of :data:`STATUSES`: ``"complete"`` (trained as specified), ``"pruned"``,
            ``"budget"`` (stopped by the time budget or ``--trial-budget``), ``"diverged"``,
            ``"failed"``, ``"interrupted"``, ``"running"``, ``"waiting"``.
        strategy: The strategy's flat fields (``Strategy.to_dict()``); empty before it started.
        description: One-line description of the strategy.
        score: Best validation score of the trial (also for pruned and budget-stopped trials).
        scores: Validation score of each evaluation.
        examples_at_eval: Training examples seen before each evaluation.
        seconds: Wall-clock seconds of the fine-tune, cache fill included.
        train_seconds, eval_seconds: Seconds in training steps and in evaluations.
        cache_seconds: Seconds it spent filling the frozen-prefix cache (0 when warm or unused).
        cache_examples: Examples it forwarded to fill the cache.
        cached: Whether it trained from the prefix cache.
        trainable_params, total_params: Parameter counts read back from the model.
        examples_trained: Training examples processed, repeats over epochs included.
        steps, total_steps: Optimizer steps taken, and asked for by the strategy.
        train_size: Training examples it used.
        seed: Its training seed.
        purpose: None for search trials, ``"reseed"`` or ``"learning_curve"`` for follow-ups.
        reseed_of, curve_of: The trial a follow-up repeats.
        followup_id: The follow-up's id (see :mod:`autoft.searching.followups`).
        baseline: Whether it is one of the space's baselines.
        retry_of: The interrupted trial it runs again.
        fail_reason: Why it failed, diverged or was interrupted.
        traceback: The traceback of its error (failed trials).
        worker: The run or worker process that ran it.
        params: Its Optuna parameters, with those it was enqueued with (a queued trial's, or a
            trial that died before they were suggested), to run it again.
    """

    number: int
    state: str
    status: str
    strategy: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    score: float | None = None
    scores: tuple[float, ...] = ()
    examples_at_eval: tuple[int, ...] = ()
    seconds: float | None = None
    train_seconds: float | None = None
    eval_seconds: float | None = None
    cache_seconds: float = 0.0
    cache_examples: int = 0
    cached: bool = False
    trainable_params: int | None = None
    total_params: int | None = None
    examples_trained: int | None = None
    steps: int | None = None
    total_steps: int | None = None
    train_size: int | None = None
    seed: int | None = None
    purpose: str | None = None
    reseed_of: int | None = None
    curve_of: int | None = None
    followup_id: str | None = None
    baseline: bool = False
    retry_of: int | None = None
    fail_reason: str | None = None
    traceback: str | None = None
    worker: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_trial(cls, trial: FrozenTrial) -> TrialRecord | None:
        """The record of ``trial``, or None for a skipped duplicate follow-up (it ran nothing)."""
        a = trial.user_attrs
        if a.get(Attr.DUPLICATE_OF) is not None:
            return None
        m = a.get(Attr.OUTCOME) or a  # autoft 0.1 stored the measurements as top-level keys
        state = trial.state.name
        status = str(a.get(Attr.STATUS) or m.get(Attr.STATUS) or "")
        if status == "deadline":  # the name in studies of autoft 0.1
            status = "budget"
        reason = a.get(Attr.FAIL_REASON) or trial.system_attrs.get("fail_reason")
        if state == "FAIL":
            # autoft records a reason for every error; a failure without one is a process that
            # ended while the trial ran (Optuna's heartbeat failed it)
            status = "interrupted" if a.get(Attr.INTERRUPTED) or not reason else "failed"
            reason = reason or INTERRUPTED_REASON
        elif state == "RUNNING":
            status = "running"
        elif state == "WAITING":
            status = "waiting"
        elif state == "PRUNED" and status not in ("budget", "diverged", "skipped"):
            status = "pruned"
        elif state == "COMPLETE" and not status:
            status = "complete"
        retry = a.get(Attr.RETRY_OF, trial.system_attrs.get("failed_trial"))
        return cls(
            number=trial.number,
            state=state,
            status=status,
            strategy=dict(a.get(Attr.STRATEGY) or {}),
            description=a.get(Attr.DESCRIPTION),
            score=_finite(m.get(Attr.BEST_SCORE)),
            scores=tuple(float(s) for s in m.get("scores") or ()),
            examples_at_eval=tuple(int(n) for n in m.get("examples_at_eval") or ()),
            seconds=_finite(m.get("wall_seconds")),
            train_seconds=_finite(m.get("train_seconds")),
            eval_seconds=_finite(m.get("eval_seconds")),
            cache_seconds=float(m.get("cache_seconds") or 0.0),
            cache_examples=int(m.get("cache_examples") or 0),
            cached=bool(m.get("cached", False)),
            trainable_params=m.get("trainable_params"),
            total_params=m.get("total_params"),
            examples_trained=m.get("examples_trained"),
            steps=m.get("steps"),
            total_steps=m.get("total_steps"),
            train_size=a.get(Attr.TRAIN_SIZE),
            seed=a.get(Attr.SEED),
            purpose=a.get(Attr.PURPOSE),
            reseed_of=a.get(Attr.RESEED_OF),
            curve_of=a.get(Attr.CURVE_OF),
            followup_id=a.get(Attr.FOLLOWUP_ID),
            baseline=bool(a.get(Attr.BASELINE, False)),
            retry_of=None if retry is None else int(retry),
            fail_reason=reason,
            traceback=a.get(Attr.TRACEBACK),
            worker=a.get(Attr.WORKER),
            params={**a.get(Attr.PLANNED_PARAMS, {}), **trial.params},
            details=dict(m.get("details") or {}),
        )

    # -- derived facts -----------------------------------------------------------------------

    @property
    def key(self) -> str:
        """The strategy's identity (see :func:`strategy_key`)."""
        return strategy_key(self.strategy)

    @property
    def frozen_layers(self) -> int | None:
        """``frozen_layers`` of its strategy."""
        value = self.strategy.get("frozen_layers")
        return None if value is None else int(value)

    @property
    def head(self) -> str:
        """The head kind of its strategy."""
        return str(self.strategy.get("head") or "linear")

    @property
    def epochs(self) -> int:
        """Epochs its strategy asks for."""
        return int(self.strategy.get("epochs") or 1)

    @property
    def evaluations(self) -> int:
        """Number of validation evaluations it made."""
        return len(self.scores)

    @property
    def finished(self) -> bool:
        """Whether it trained its strategy as specified, to the end."""
        return self.state == "COMPLETE" and self.status == "complete" and self.score is not None

    @property
    def cost_seconds(self) -> float | None:
        """Seconds of training and evaluation, without the one-off cache fill: what the same
        fine-tune costs again on this machine once the cache is warm."""
        if self.train_seconds is None:
            return self.seconds
        return float(self.train_seconds) + float(self.eval_seconds or 0.0)

    @property
    def counts(self) -> bool:
        """Whether it counts toward ``n_trials``: it ended and trained (not interrupted, not
        skipped for lack of time; skipped duplicate follow-ups have no record)."""
        return self.status in ("complete", "pruned", "budget", "diverged", "failed")

    @property
    def is_probe(self) -> bool:
        """Whether it is a learning-curve probe (trained on a subset)."""
        return self.purpose == "learning_curve"

    def family(self) -> Any:
        """Its strategy's :class:`~autoft.strategies.Family`."""
        from autoft.strategies import Strategy

        return Strategy.from_dict(self.strategy).family()

    def as_row(self, extra_fields: tuple[str, ...] = (),
               num_layers: int | None = None) -> dict[str, Any]:
        """A flat row for tables (``SearchResult.trials_``, ``trials.csv``, the report): number,
        state, status, the strategy columns (and ``extra_fields``), then the measurements. With
        ``num_layers``, a field the strategy did not use (e.g. the backbone learning rate of a
        head-only trial) is None."""
        row: dict[str, Any] = {"number": self.number, "state": self.state, "status": self.status}
        uses = None
        if num_layers and self.strategy:
            from autoft.strategies import strategy_class

            try:
                uses = strategy_class(str(self.strategy.get("kind", "freeze"))).uses
            except Exception:  # a kind this process does not know: show what was stored
                uses = None
        for name in STRATEGY_COLUMNS + extra_fields:
            value = self.strategy.get(name)
            if uses is not None and not uses(name, self.strategy, num_layers):
                value = None
            row[name] = value
        for f in fields(self):
            if f.name in ("number", "state", "status", "strategy", "params", "traceback"):
                continue
            value = getattr(self, f.name)
            row[f.name] = list(value) if isinstance(value, tuple) else value
        row["evaluations"] = self.evaluations
        return row


def table_rows(records: list[TrialRecord], num_layers: int | None = None) -> list[dict[str, Any]]:
    """:meth:`TrialRecord.as_row` of each record, with every strategy field any record has (a
    kind's own fields after the common ones), so the rows share their columns; with
    ``num_layers``, fields a strategy did not use are None."""
    extra = tuple(sorted({k for r in records for k in r.strategy} - set(STRATEGY_COLUMNS)))
    return [r.as_row(extra, num_layers) for r in records]


def trial_records(trials: list[FrozenTrial] | tuple[FrozenTrial, ...]) -> list[TrialRecord]:
    """The records of ``trials`` (skipped duplicate follow-ups left out), in trial order."""
    records = (TrialRecord.from_trial(t) for t in sorted(trials, key=lambda t: t.number))
    return [r for r in records if r is not None]


def write_outcome(trial: BaseTrial, outcome: dict[str, Any]) -> None:
    """Store a fine-tune's measurements (``TrialOutcome.to_dict()``) as the trial's
    ``outcome`` attribute (one write), and its status (``status``) beside it."""
    trial.set_user_attr(Attr.OUTCOME, outcome)
    trial.set_user_attr(Attr.STATUS, outcome.get("status", "complete"))
