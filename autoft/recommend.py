"""Turning a study's trials into a :class:`Recommendation`: which strategy, what score, what cost.

Everything here reads the trials' stored attributes (see :func:`trial_records`), so a
recommendation can be rebuilt from the study storage alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autoft.strategy import Strategy

__all__ = ["Recommendation", "recommend", "trial_records"]

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
    (complete/pruned/deadline), ``seed``, ``fail_reason``, ``retry_of``, ``description``.
    """
    records = []
    for t in trials:
        attrs = t.user_attrs
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
        )
        records.append(record)
    return records


@dataclass(frozen=True)
class Recommendation:
    """The strategy a study recommends, with its evidence.

    Attributes:
        trial_number: The trial that measured it.
        strategy: The recommended strategy.
        score: Its best validation score.
        seconds: Wall-clock seconds its fine-tune took on the search's machine.
        trainable_params: Parameters it trains.
        reason: Plain-language explanation: score and cost, compared with the other trials.
        cheaper_alternative: Record of the cheapest completed trial within ``tolerance`` of the
            best score, when it costs less than the recommended one; else None.
        comparisons: The best completed trial of full fine-tuning (``"full fine-tuning"``) and of
            the head-only strategies (``"head only"``; named a linear probe in the text when its
            head is linear), as records, when they were tried.
    """

    trial_number: int
    strategy: Strategy
    score: float
    seconds: float
    trainable_params: int
    reason: str
    cheaper_alternative: dict[str, Any] | None = None
    comparisons: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "trial_number": self.trial_number,
            "strategy": self.strategy.to_dict(),
            "score": self.score,
            "seconds": self.seconds,
            "trainable_params": self.trainable_params,
            "reason": self.reason,
            "cheaper_alternative": self.cheaper_alternative,
            "comparisons": self.comparisons,
        }


def _fmt_params(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / 1e6:.1f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def recommend(
    study: optuna.Study, metric: str, num_layers: int, tolerance: float = 0.005
) -> Recommendation | None:
    """Pick the strategy to recommend from a study's completed trials.

    The recommendation is the completed trial with the best validation score (pruned trials did
    not finish training, so they are never recommended). A cheaper alternative is named when a
    completed trial scores within ``tolerance`` of it at lower cost.

    Args:
        study: The study.
        metric: Name of the validation metric, for the explanation.
        num_layers: The backbone's block count L, for describing strategies.
        tolerance: Score difference treated as a tie, in metric units. Default 0.005 (half a point
            of accuracy).

    Returns:
        The recommendation, or None when no trial completed.
    """
    trials = study.get_trials(deepcopy=False)
    records = [r for r in trial_records(trials) if r["state"] == "COMPLETE" and r["score"] is not None]
    if not records:
        return None
    best = max(records, key=lambda r: (r["score"], -(r["seconds"] or 0.0)))
    finished = sum(1 for t in trials if t.state.is_finished())
    strategy = Strategy.from_dict(next(t for t in trials if t.number == best["number"])
                                  .user_attrs["strategy"])
    parts = [
        f"Trial {best['number']} scored {best['score']:.4f} {metric} on the validation split, "
        f"the best of {len(records)} completed trials ({finished} finished in all). Its fine-tune "
        f"took {best['seconds']:.0f} s on the search's machine and trains "
        f"{_fmt_params(best['trainable_params'])} of {_fmt_params(best['total_params'])} "
        "parameters."
    ]
    comparisons: dict[str, dict[str, Any]] = {}
    for label, pick in (("full fine-tuning", lambda r: r["frozen_layers"] == 0),
                        ("head only", lambda r: r["frozen_layers"] == num_layers)):
        group = [r for r in records if pick(r)]
        if group:
            top = max(group, key=lambda r: r["score"])
            comparisons[label] = top
            if label == "head only" and top["head"] == "linear":
                label = "linear probe"
            if top["number"] != best["number"]:
                parts.append(
                    f"The best {label} trial ({top['number']}) scored {top['score']:.4f} in "
                    f"{top['seconds']:.0f} s."
                )
    cheaper = [
        r for r in records
        if r["number"] != best["number"] and r["score"] >= best["score"] - tolerance
        and (r["seconds"] or 0.0) < (best["seconds"] or 0.0)
    ]
    alternative = None
    if cheaper:
        alternative = min(cheaper, key=lambda r: r["seconds"])
        ratio = alternative["seconds"] / max(best["seconds"], 1e-9)
        parts.append(
            f"Trial {alternative['number']} ({alternative['description']}) scored "
            f"{alternative['score']:.4f}, within {tolerance:g} of the best, at {ratio:.0%} of the "
            "cost: prefer it when training time matters more than the last fraction of a point."
        )
    return Recommendation(
        trial_number=best["number"],
        strategy=strategy,
        score=float(best["score"]),
        seconds=float(best["seconds"] or 0.0),
        trainable_params=int(best["trainable_params"] or 0),
        reason=" ".join(parts),
        cheaper_alternative=alternative,
        comparisons=comparisons,
    )
