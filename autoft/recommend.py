"""Turning a study's trials into a :class:`Recommendation`: which strategy, what score, what cost.

Everything here reads the trials' stored attributes (see :func:`trial_records`), so a
recommendation can be rebuilt from the study storage alone.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autoft.strategy import Strategy

__all__ = ["Recommendation", "recommend", "strategy_key", "trial_records"]

#: Strategy fields shown as table columns, in order.
STRATEGY_COLUMNS = (
    "frozen_layers", "learning_rate", "head_learning_rate", "head", "head_width", "head_depth",
    "head_dropout", "pooling", "epochs", "batch_size", "weight_decay", "warmup_ratio",
)


def trial_records(trials: Sequence[FrozenTrial]) -> list[dict[str, Any]]:
    """One flat record per trial: number, state, strategy fields, score, cost, reasons.

    Keys: ``number``, ``state`` (COMPLETE/PRUNED/FAIL/RUNNING/WAITING), ``pruned``, the
    :data:`STRATEGY_COLUMNS`, ``score`` (best validation score of the trial, also for pruned
    trials), ``value`` (Optuna's value), ``seconds`` (wall-clock seconds of the fine-tune),
    ``trainable_params``, ``total_params``, ``examples_trained``, ``evaluations``, ``status``
    (complete/pruned/deadline), ``seed``, ``fail_reason``, ``retry_of``, ``description``,
    ``purpose`` (None for search trials, ``"reseed"`` or ``"learning_curve"`` for follow-ups),
    ``reseed_of``, ``curve_of``, ``followup_id`` (see :func:`autoft.followup.plan_followups`),
    ``train_size`` (training examples the trial used),
    ``train_seconds``, ``eval_seconds``. Skipped duplicate follow-ups (``duplicate_of`` set)
    have no record.
    """
    records = []
    for t in trials:
        attrs = t.user_attrs
        if attrs.get("duplicate_of") is not None:
            continue  # a follow-up two workers enqueued at once, skipped when it started
        strategy = attrs.get("strategy", {})
        record: dict[str, Any] = {
            "number": t.number,
            "state": t.state.name,
            "pruned": t.state == TrialState.PRUNED,
        }
        for name in STRATEGY_COLUMNS:
            record[name] = strategy.get(name)
        record.update(
            score=attrs.get("best_score"),
            value=t.value if t.state in (TrialState.COMPLETE, TrialState.PRUNED) else None,
            seconds=attrs.get("wall_seconds"),
            trainable_params=attrs.get("trainable_params"),
            total_params=attrs.get("total_params"),
            examples_trained=attrs.get("examples_trained"),
            evaluations=len(attrs.get("scores", [])),
            status=attrs.get("status"),
            seed=attrs.get("seed"),
            fail_reason=attrs.get("fail_reason") or t.system_attrs.get("fail_reason"),
            retry_of=attrs.get("retry_of"),
            description=attrs.get("description"),
            purpose=attrs.get("purpose"),
            reseed_of=attrs.get("reseed_of"),
            followup_id=attrs.get("followup_id"),
            curve_of=attrs.get("curve_of"),
            train_size=attrs.get("train_size"),
            train_seconds=attrs.get("train_seconds"),
            eval_seconds=attrs.get("eval_seconds"),
        )
        records.append(record)
    return records


@dataclass(frozen=True)
class Recommendation:
    """The strategy a study recommends, with its evidence.

    Attributes:
        trial_number: The trial that measured it (the first run of the strategy).
        strategy: The recommended strategy.
        score: Its validation score: the mean over its seeds when it was re-seeded.
        seconds: Median wall-clock seconds of its fine-tunes on the search's machine.
        trainable_params: Parameters it trains.
        reason: Plain-language explanation: score and cost, compared with the other trials.
        seeds: Runs of the strategy (different seeds) behind ``score``.
        score_std: Standard deviation of its score over the seeds (None with one seed).
        cheaper_alternative: Record of a cheaper strategy within the noise (or ``tolerance``) of
            the best, when there is one; else None.
        comparisons: The best completed trial of full fine-tuning (``"full fine-tuning"``) and of
            the head-only strategies (``"head only"``; named a linear probe in the text when its
            head is linear), as records, when they were tried.
        groups: Every completed strategy at full size with its seeds: ``trial_number``, ``scores``,
            ``mean``, ``std``, ``seconds``, ``description``, best first.
    """

    trial_number: int
    strategy: Strategy
    score: float
    seconds: float
    trainable_params: int
    reason: str
    seeds: int = 1
    score_std: float | None = None
    cheaper_alternative: dict[str, Any] | None = None
    comparisons: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "trial_number": self.trial_number,
            "strategy": self.strategy.to_dict(),
            "score": self.score,
            "score_std": self.score_std,
            "seeds": self.seeds,
            "seconds": self.seconds,
            "trainable_params": self.trainable_params,
            "reason": self.reason,
            "cheaper_alternative": self.cheaper_alternative,
            "comparisons": self.comparisons,
            "groups": self.groups,
        }


def strategy_key(record: dict[str, Any]) -> tuple[Any, ...]:
    """Identity of a record's strategy (its strategy fields), to group re-seeded runs."""
    return tuple(record.get(name) for name in STRATEGY_COLUMNS)


def _fmt_params(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / 1e6:.1f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def _groups(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Completed full-size runs grouped by strategy (a trial and its re-seeds), best mean first."""
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in sorted(records, key=lambda r: r["number"]):
        g = groups.setdefault(strategy_key(r), {"trial_number": r["number"], "records": []})
        g["records"].append(r)
    out = []
    for g in groups.values():
        rs = g["records"]
        scores = [float(r["score"]) for r in rs]
        mean = sum(scores) / len(scores)
        std = (math.sqrt(sum((x - mean) ** 2 for x in scores) / (len(scores) - 1))
               if len(scores) > 1 else None)
        first = rs[0]
        out.append({
            "trial_number": g["trial_number"], "trials": [r["number"] for r in rs],
            "scores": scores, "mean": mean, "std": std,
            # the median: one run slowed by other work on the machine does not skew the cost
            "seconds": statistics.median(float(r["seconds"] or 0.0) for r in rs),
            "description": first["description"], "frozen_layers": first["frozen_layers"],
            "head": first["head"], "trainable_params": first["trainable_params"],
            "total_params": first["total_params"],
        })
    return sorted(out, key=lambda g: (-g["mean"], g["seconds"]))


def recommend(
    study: optuna.Study, metric: str, num_layers: int, tolerance: float = 0.005
) -> Recommendation | None:
    """Pick the strategy to recommend from a study's completed trials.

    Completed full-size trials (not cut short by the budget, unless nothing else completed) are
    grouped by strategy (a trial and its re-seeded runs); the group
    with the best mean score leads. Pruned trials and learning-curve probes are never
    recommended. A cheaper strategy (at most 2/3 of the cost) is recommended instead when its mean
    is within the noise of the leader: the larger standard deviation of the two when both were
    re-seeded, ``tolerance`` when neither was. A single run never displaces a re-seeded leader:
    the best of many single runs is biased upwards, while the leader's mean is not; such a run is
    only named as an alternative. Among several cheaper candidates the best mean wins, and the
    step repeats from it (a candidate at most 2/3 of its cost, still within the leader's noise).

    Args:
        study: The study.
        metric: Name of the validation metric, for the explanation.
        num_layers: The backbone's block count L, for describing strategies.
        tolerance: Score difference treated as a tie without seed statistics, in metric units.
            Default 0.005 (half a point of accuracy).

    Returns:
        The recommendation, or None when no trial completed.
    """
    trials = study.get_trials(deepcopy=False)
    records = [r for r in trial_records(trials) if r["state"] == "COMPLETE"
               and r["score"] is not None and r.get("purpose") != "learning_curve"]
    # a trial cut short by the budget did not train its strategy as specified: it is ranked only
    # when nothing else completed
    full = [r for r in records if r.get("status") != "deadline"] or [
        r for r in records if not r.get("purpose")]
    if not full:
        return None
    groups = _groups(full)
    leader = groups[0]
    pick, noise_note = leader, ""
    while True:  # step down to cheaper strategies while they stay within the leader's noise
        eligible = []
        for g in groups[1:]:
            if g is pick or g["seconds"] > (2 / 3) * pick["seconds"]:
                continue
            if leader["std"] is not None and g["std"] is None:
                # one lucky run of the cheaper strategy against a re-seeded mean: not the same
                # evidence (the winner's curse), so no switch; it may still be named an alternative
                continue
            both = leader["std"] is not None and g["std"] is not None
            noise = max(leader["std"], g["std"]) if both else tolerance
            if g["mean"] >= leader["mean"] - noise:
                eligible.append((g, noise, both))
        if not eligible:
            break
        # the best of the cheaper candidates, not merely the cheapest
        g, noise, both = max(eligible, key=lambda e: (e[0]["mean"], -e[0]["seconds"]))
        pick = g
        noise_note = (
            f"Trial {leader['trial_number']} ({leader['description']}) scored "
            f"{leader['mean']:.4f} on average, higher by {leader['mean'] - g['mean']:.4f}, "
            f"which is within the noise ({noise:.4f}"
            + (", the larger standard deviation over seeds" if both else ", the tie "
               "tolerance") + f") while costing {leader['seconds'] / g['seconds']:.1f}x "
            "as much; so the cheaper strategy is recommended."
        )
    finished = sum(1 for t in trials if t.state.is_finished()
                   and t.user_attrs.get("duplicate_of") is None)
    by_number = {t.number: t for t in trials}
    strategy = Strategy.from_dict(by_number[pick["trial_number"]].user_attrs["strategy"])
    n = len(pick["scores"])
    score_text = (f"{pick['mean']:.4f} {metric} on the validation split"
                  + (f" (mean of {n} seeds, standard deviation {pick['std']:.4f})" if n > 1 else ""))
    plural = "strategy" if len(groups) == 1 else "strategies"
    parts = [
        f"Trial {pick['trial_number']} scored {score_text}; {len(groups)} {plural} completed "
        f"({finished} trials finished in all). Its fine-tune took {pick['seconds']:.0f} s on the "
        f"search's machine and trains {_fmt_params(pick['trainable_params'])} of "
        f"{_fmt_params(pick['total_params'])} parameters."
    ]
    if noise_note:
        parts.append(noise_note)
    comparisons: dict[str, dict[str, Any]] = {}
    for label, match in (("full fine-tuning", lambda g: g["frozen_layers"] == 0),
                         ("head only", lambda g: g["frozen_layers"] == num_layers)):
        group = [g for g in groups if match(g)]
        if group:
            top = group[0]
            comparisons[label] = top
            if label == "head only" and top["head"] == "linear":
                label = "linear probe"
            if top is not pick:
                parts.append(f"The best {label} strategy (trial {top['trial_number']}) scored "
                             f"{top['mean']:.4f} in {top['seconds']:.0f} s.")
    alternative = None
    if not noise_note:
        cheaper = [g for g in groups if g is not pick and g["mean"] >= pick["mean"] - tolerance
                   and g["seconds"] < pick["seconds"]]
        if cheaper:
            alternative = min(cheaper, key=lambda g: g["seconds"])
            runs = len(alternative["scores"])
            parts.append(
                f"Trial {alternative['trial_number']} ({alternative['description']}) scored "
                f"{alternative['mean']:.4f}"
                + (f" (mean of {runs} seeds)" if runs > 1 else " in a single run")
                + f", within {tolerance:g} of it, at "
                f"{alternative['seconds'] / max(pick['seconds'], 1e-9):.0%} of the cost: prefer it "
                "when training time matters more than the last fraction of a point."
            )
    else:
        alternative = leader
    return Recommendation(
        trial_number=pick["trial_number"],
        strategy=strategy,
        score=float(pick["mean"]),
        seconds=float(pick["seconds"]),
        trainable_params=int(pick["trainable_params"] or 0),
        reason=" ".join(parts),
        seeds=n,
        score_std=pick["std"],
        cheaper_alternative=alternative,
        comparisons=comparisons,
        groups=groups,
    )
