"""Turning a study's trial records into a :class:`Recommendation`: which strategy, what score,
what cost.

**The rule.** Runs that trained their strategy to the end on the full training split are grouped
by strategy (a trial and its re-seeded runs). Only strategies that were *re-seeded* (2 runs or
more; with ``seeds=1``, every strategy) are compared when any was: a strategy with a single run
never outranks a mean over several seeds, because the best of many single runs is biased upwards
(the winner's curse). Among them the lower bound ``mean - s / sqrt(n)`` ranks (``s`` the pooled
seed standard deviation, below), so that of two means the one over fewer runs must be higher to
lead. A strategy is *confirmed* once it has ``seeds`` runs (the search's ``--seeds``, 3 by
default); a recommendation that is not confirmed is marked provisional, and strategies that scored
higher on fewer runs are reported as *unconfirmed leaders*. The search re-seeds every leader while
it has time (see :mod:`autoft.searching.followups`).

A compared strategy that costs at most 2/3 as much is recommended instead of the best one when
its mean is within the noise of the best one's: one standard error of the difference of the two
means, from the *pooled* seed standard deviation of all re-seeded strategies (they share the data,
the backbone and the machine, so their seed noise is alike; the pooled estimate is the one of the
two-sample t-test, e.g. Montgomery, "Design and Analysis of Experiments", 2.4) -- or
``tolerance`` when no strategy was re-seeded. Among several cheaper candidates the best mean wins,
and the step repeats from it.

Costs are the median over a strategy's runs of their training and evaluation seconds, without
the one-off fill of the frozen-prefix cache (reported apart). Pruned trials, trials stopped by the
budget, diverged trials and learning-curve probes are never recommended.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from autoft.budget import plural
from autoft.strategies import Strategy
from autoft.study.records import TrialRecord

__all__ = ["Group", "Recommendation", "group_runs", "pooled_std", "recommend"]

#: A cheaper strategy must cost at most this share of the best one to replace it.
CHEAPER = 2 / 3


def _fmt_params(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / 1e6:.1f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


@dataclass(frozen=True)
class Group:
    """The full-size runs of one strategy (a trial and its re-seeds) that trained to the end.

    Attributes:
        trial_number: The first run's trial.
        trials: All runs' trials.
        scores: Each run's best validation score.
        mean: Their mean; ``std``: their sample standard deviation (None with one run).
        seconds: Median training and evaluation seconds of a run, without the cache fill.
        cache_seconds: Seconds a fresh fine-tune of it spends filling the frozen-prefix cache:
            the largest fill a run of it paid, else (every run found the cache warm) the largest
            fill of the study, since one fill serves every frozen depth; 0 when it is uncached.
        cached: Whether its runs trained from the frozen-prefix cache.
        strategy: The strategy's flat fields.
        description, frozen_layers, head, trainable_params, total_params: Of the first run.
    """

    trial_number: int
    trials: tuple[int, ...]
    scores: tuple[float, ...]
    mean: float
    std: float | None
    seconds: float
    cache_seconds: float
    cached: bool
    strategy: dict[str, Any]
    description: str | None
    frozen_layers: int | None
    head: str
    trainable_params: int | None
    total_params: int | None

    @property
    def n(self) -> int:
        """Number of runs."""
        return len(self.scores)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {"trial_number": self.trial_number, "trials": list(self.trials),
                "scores": list(self.scores), "mean": self.mean, "std": self.std, "n": self.n,
                "seconds": self.seconds, "cache_seconds": self.cache_seconds,
                "cached": self.cached, "description": self.description,
                "frozen_layers": self.frozen_layers, "head": self.head,
                "trainable_params": self.trainable_params, "total_params": self.total_params}


def group_runs(records: Sequence[TrialRecord], direction: str = "maximize") -> list[Group]:
    """Full-size runs that trained to the end, grouped by strategy, best mean first.

    Args:
        records: Trial records (:func:`autoft.study.trial_records`).
        direction: ``"maximize"`` or ``"minimize"``: which means are better.
    """
    by_key: dict[str, list[TrialRecord]] = {}
    for r in sorted(records, key=lambda r: r.number):
        if r.finished and not r.is_probe:
            by_key.setdefault(r.key, []).append(r)
    sign = -1.0 if direction == "minimize" else 1.0
    # one fill serves every frozen depth, so a strategy whose runs all found the cache warm would
    # pay the study's fill in a fresh fine_tune
    any_fill = max((r.cache_seconds for rs in by_key.values() for r in rs), default=0.0)
    out = []
    for runs in by_key.values():
        scores = tuple(float(r.score) for r in runs if r.score is not None)
        first = runs[0]
        out.append(Group(
            trial_number=first.number, trials=tuple(r.number for r in runs), scores=scores,
            mean=statistics.fmean(scores),
            std=statistics.stdev(scores) if len(scores) > 1 else None,
            # the median: one run slowed by other work on the machine does not skew the cost
            seconds=statistics.median(float(r.cost_seconds or 0.0) for r in runs),
            cache_seconds=max(r.cache_seconds for r in runs) or (
                any_fill if any(r.cached for r in runs) else 0.0),
            cached=any(r.cached for r in runs),
            strategy=first.strategy, description=first.description,
            frozen_layers=first.frozen_layers, head=first.head,
            trainable_params=first.trainable_params, total_params=first.total_params,
        ))
    return sorted(out, key=lambda g: (-sign * g.mean, g.seconds))


def pooled_std(groups: Sequence[Group]) -> float | None:
    """The pooled sample standard deviation of the groups' seed scores:
    ``sqrt(sum (n_i - 1) s_i^2 / sum (n_i - 1))`` over groups with 2+ runs (None without any)."""
    dof = sum(g.n - 1 for g in groups if g.n > 1)
    if dof == 0:
        return None
    return math.sqrt(sum((g.n - 1) * (g.std or 0.0) ** 2 for g in groups if g.n > 1) / dof)


@dataclass(frozen=True)
class Recommendation:
    """The strategy a study recommends, with its evidence.

    Attributes:
        trial_number: The trial that first measured it.
        strategy: The recommended strategy.
        score: Its validation score: the mean over its runs (seeds).
        seconds: Median seconds of training and evaluation of one fine-tune on the search's
            machine, without the frozen-prefix cache fill.
        cache_seconds: Seconds one fill of the frozen-prefix cache took (paid once per backbone,
            data and k; 0 when the strategy does not use the cache or every run found it warm).
        cached: Whether the strategy trains from the frozen-prefix cache.
        trainable_params: Parameters it trains.
        reason: Plain-language explanation: score and cost, compared with the other strategies.
        seeds: Runs behind ``score``; ``score_std`` their standard deviation (None with one).
        confirmed: Whether it has the runs the search asked for (``--seeds``); False when the
            budget ended first: then the recommendation is provisional.
        noise: The score difference treated as noise when comparing it with a cheaper strategy.
        unconfirmed: Strategies that scored higher on fewer runs (best first), as group dicts.
        passed_over: Trials stopped by the budget that scored higher, as ``{"number", "score",
            "description", "evaluations"}``: they did not train their strategy to the end.
        cheaper_alternative: A cheaper strategy within the noise or the tolerance that was not
            picked (fewer runs), or the better, dearer one when the cheaper one was picked.
        comparisons: The best full fine-tuning (``"full fine-tuning"``) and head-only
            (``"head only"``) strategies, as group dicts, when they were tried.
        groups: Every strategy that trained to the end at full size, best first, as group dicts.
        direction: ``"maximize"`` or ``"minimize"``.
    """

    trial_number: int
    strategy: Strategy
    score: float
    seconds: float
    trainable_params: int
    reason: str
    cache_seconds: float = 0.0
    cached: bool = False
    seeds: int = 1
    score_std: float | None = None
    confirmed: bool = True
    noise: float | None = None
    unconfirmed: list[dict[str, Any]] = field(default_factory=list)
    passed_over: list[dict[str, Any]] = field(default_factory=list)
    cheaper_alternative: dict[str, Any] | None = None
    comparisons: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: list[dict[str, Any]] = field(default_factory=list)
    direction: str = "maximize"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "trial_number": self.trial_number, "strategy": self.strategy.to_dict(),
            "score": self.score, "score_std": self.score_std, "seeds": self.seeds,
            "confirmed": self.confirmed, "noise": self.noise, "seconds": self.seconds,
            "cache_seconds": self.cache_seconds, "cached": self.cached,
            "trainable_params": self.trainable_params, "reason": self.reason,
            "unconfirmed": self.unconfirmed, "passed_over": self.passed_over,
            "cheaper_alternative": self.cheaper_alternative, "comparisons": self.comparisons,
            "groups": self.groups, "direction": self.direction,
        }


def recommend(
    records: Sequence[TrialRecord],
    *,
    metric: str = "accuracy",
    num_layers: int = 0,
    seeds: int = 3,
    direction: str = "maximize",
    tolerance: float = 0.005,
) -> Recommendation | None:
    """Pick the strategy to recommend from a study's trial records (see the module doc).

    Args:
        records: The study's records (:func:`autoft.study.trial_records`).
        metric: Name of the validation metric, for the explanation. Default ``"accuracy"``.
        num_layers: The backbone's block count L, for describing strategies.
        seeds: Runs a strategy needs to be confirmed (the search's ``--seeds``). Default 3.
        direction: ``"maximize"`` or ``"minimize"`` (the metric's direction).
        tolerance: Score difference treated as a tie when no strategy was re-seeded, in metric
            units. Default 0.005 (half a point of accuracy).

    Returns:
        The recommendation, or None when no trial trained its strategy to the end.
    """
    sign = -1.0 if direction == "minimize" else 1.0
    groups = group_runs(records, direction)
    if not groups:
        return None
    spread = pooled_std(groups)
    level = min(max(1, seeds), 2)  # re-seeded at least once
    pool = [g for g in groups if g.n >= level] or list(groups)

    def bound(g: Group) -> float:  # a lower bound of the score (in the maximise direction)
        return sign * g.mean - (spread or 0.0) / math.sqrt(g.n)

    pool.sort(key=lambda g: (-bound(g), g.seconds))
    leader = pool[0]

    def noise(a: Group, b: Group) -> float:
        if spread is None:
            return tolerance
        return spread * math.sqrt(1 / a.n + 1 / b.n)

    pick, step_note = leader, ""
    while True:  # step down to cheaper confirmed strategies while they stay within the noise
        eligible = [g for g in pool if g is not pick and g.seconds <= CHEAPER * pick.seconds
                    and sign * (leader.mean - g.mean) <= noise(leader, g)]
        if not eligible:
            break
        g = max(eligible, key=lambda e: (sign * e.mean, -e.seconds))
        band = noise(leader, g)
        pick = g
        step_note = (
            f"Trial {leader.trial_number} ({leader.description}) scored {leader.mean:.4f} on "
            f"average, better by {abs(leader.mean - g.mean):.4f}, which is within the noise "
            f"({band:.4f}, "
            + ("one standard error of the difference, from the pooled seed standard deviation "
               f"{spread:.4f}" if spread is not None else "the tie tolerance")
            + f") while costing {leader.seconds / max(g.seconds, 1e-9):.1f}x as much; so the "
            "cheaper strategy is recommended."
        )
    strategy = Strategy.from_dict(pick.strategy)
    finished = sum(1 for r in records if r.counts)  # trained, not skipped for lack of time
    confirmed = pick.n >= seeds
    runs = (f" (mean of {pick.n} seeds, standard deviation {pick.std:.4f})" if pick.n > 1
            else " (a single run)")
    parts = [
        f"Trial {pick.trial_number} scored {pick.mean:.4f} {metric} on the validation split"
        f"{runs}; {plural(len(groups), 'strategy', 'strategies')} trained to the end "
        f"({plural(finished, 'trial')} run in all). "
        f"Its fine-tune took {pick.seconds:.0f} s of training and evaluation on the search's "
        f"machine"
        + (f", plus {pick.cache_seconds:.0f} s once to fill the frozen-prefix cache"
           if pick.cached and pick.cache_seconds > 0 else "")
        + f", and trains {_fmt_params(pick.trainable_params)} of "
        f"{_fmt_params(pick.total_params)} parameters."
    ]
    if not confirmed:
        parts.append(
            f"This is provisional: it has {pick.n} of the {seeds} runs asked for (the budget ended "
            "first), so its score may be lucky; resume the search to confirm it.")
    if step_note:
        parts.append(step_note)
    unconfirmed = [g for g in groups if g is not pick and g.n < seeds
                   and sign * (g.mean - pick.mean) > 0]
    for g in unconfirmed[:3]:
        parts.append(
            f"Trial {g.trial_number} ({g.description}) scored {g.mean:.4f} in "
            f"{'a single run' if g.n == 1 else f'{g.n} runs'}, above the recommendation's mean"
            + (f" at {g.seconds / max(pick.seconds, 1e-9):.0%} of its cost"
               if g.seconds < pick.seconds else "")
            + f", but was not confirmed with {seeds} seeds before the budget ended (the best of many "
            "single runs is biased upwards); resume the search to confirm it.")
    best_known = leader.mean
    passed = [r for r in records if r.status == "budget" and r.score is not None and not r.is_probe
              and sign * (r.score - best_known) > 0]
    for r in passed[:2]:
        parts.append(
            f"Trial {r.number} reached {r.score:.4f} but was stopped by the budget after "
            f"{plural(r.evaluations, 'evaluation')}, before finishing its "
            f"{plural(r.epochs, 'epoch')}, so it is not recommended: a strategy is recommended "
            "only when it trained to the end.")
    comparisons: dict[str, dict[str, Any]] = {}
    for label, match in (("full fine-tuning", lambda g: g.frozen_layers == 0
                          and g.strategy.get("kind", "freeze") == "freeze"),
                         ("head only", lambda g: g.frozen_layers == num_layers)):
        matching = [g for g in groups if match(g)]
        if matching:
            top = max(matching, key=lambda g: (g.n >= level, sign * g.mean))
            comparisons[label] = top.to_dict()
            if label == "head only" and top.head == "linear":
                label = "linear probe"
            if top is not pick:
                parts.append(f"The best {label} strategy (trial {top.trial_number}) scored "
                             f"{top.mean:.4f}" + (f" over {top.n} seeds" if top.n > 1 else "")
                             + f" in {top.seconds:.0f} s.")
    alternative = None
    if step_note:
        alternative = leader.to_dict()
    else:
        cheaper = [g for g in groups if g is not pick and g not in pool
                   and sign * (pick.mean - g.mean) <= tolerance and g.seconds < pick.seconds]
        if cheaper:
            alt = min(cheaper, key=lambda g: g.seconds)
            alternative = alt.to_dict()
            if not any(alt is g for g in unconfirmed):  # else named above, with its cost
                parts.append(
                    f"Trial {alt.trial_number} ({alt.description}) scored {alt.mean:.4f} "
                    + ("in a single run" if alt.n == 1 else f"over {alt.n} runs")
                    + f", within {tolerance:g} of it, at "
                    f"{alt.seconds / max(pick.seconds, 1e-9):.0%} of the cost, but with less "
                    "evidence; consider it when training time matters more than the last "
                    "fraction of a point.")
    return Recommendation(
        trial_number=pick.trial_number,
        strategy=strategy,
        score=float(pick.mean),
        seconds=float(pick.seconds),
        cache_seconds=float(pick.cache_seconds),
        cached=pick.cached,
        trainable_params=int(pick.trainable_params or 0),
        reason=" ".join(parts),
        seeds=pick.n,
        score_std=pick.std,
        confirmed=confirmed,
        noise=None if len(pool) < 2 else noise(leader, pool[1]),
        unconfirmed=[g.to_dict() for g in unconfirmed],
        passed_over=[{"number": r.number, "score": r.score, "description": r.description,
                      "evaluations": r.evaluations} for r in passed],
        cheaper_alternative=alternative,
        comparisons=comparisons,
        groups=[g.to_dict() for g in groups],
        direction=direction,
    )
