"""The strategy to use by dataset size and budget, what it says about the usual rule of thumb, and
the Pareto front of score against cost."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from autoft.analysis.cost import CostModel
from autoft.analysis.curves import LearningCurve
from autoft.analysis.recommend import Group
from autoft.strategies import Family

__all__ = ["DEFAULT_BUDGETS", "pareto_front", "rule_of_thumb", "size_budget_table"]

#: Budgets of the size x budget table: 10 minutes, 1 hour, 8 hours (seconds).
DEFAULT_BUDGETS = (600.0, 3600.0, 28800.0)


def size_budget_table(
    curves: dict[Family, LearningCurve],
    cost: CostModel,
    best: dict[Family, Group],
    sizes: Sequence[int],
    budgets: Sequence[float] = DEFAULT_BUDGETS,
    *,
    validation_size: int,
    evals_per_epoch: int = 2,
    tolerance: float = 0.005,
) -> list[dict[str, Any]]:
    """The recommended family for each (training size, budget), with expected score and cost.

    For each size, each family's expected score (and 80% interval) comes from its learning curve
    and its cost from the cost model: one fine-tune of its best strategy (its epochs), plus the
    prefix-cache fill when the family trains from the cache. Among the families whose cost fits the
    budget, the best expected score wins, and a cheaper one within ``tolerance`` of it is preferred.
    Sizes beyond a curve's reach (:data:`~autoft.analysis.curves.MAX_EXTRAPOLATION` times its
    largest measured size) get no prediction from it.

    Args:
        curves: Learning curves by family.
        cost: The cost model.
        best: The best full-size strategy (group) of each family.
        sizes: Training-set sizes (examples).
        budgets: Seconds available for the fine-tune. Default 10 min, 1 h, 8 h.
        validation_size: Validation examples (their evaluation is part of the cost).
        evals_per_epoch: Evaluations per epoch. Default 2.
        tolerance: Score difference treated as a tie. Default 0.005.

    Returns:
        One row per (size, budget): ``train_size``, ``budget_seconds``, ``family``, ``kind``,
        ``frozen_layers``, ``head``, ``trial_number``, ``description``, ``expected_score``,
        ``interval`` (``[low, high]`` or None), ``expected_seconds`` (training and evaluation),
        ``fill_seconds``, ``extrapolated`` (beyond the largest size its curve measured); the
        family fields are None when nothing fits the budget.
    """
    rows = []
    for n in sizes:
        options = []
        for fam, curve in curves.items():
            group = best.get(fam)
            expected = curve.predict(n)
            if group is None or expected is None:
                continue
            epochs = int(group.strategy.get("epochs") or 1)
            seconds = cost.predict(fam, n, epochs, validation_size, evals_per_epoch)
            fill = cost.fill_seconds(n, validation_size) if group.cached else 0.0
            options.append((curve.sign * expected, seconds + fill, fam, curve, seconds, fill))
        for budget in budgets:
            fits = [o for o in options if o[1] <= budget]
            row: dict[str, Any] = {
                "train_size": int(n), "budget_seconds": float(budget), "family": None,
                "kind": None, "frozen_layers": None, "head": None, "trial_number": None,
                "description": None, "expected_score": None, "interval": None,
                "expected_seconds": None, "fill_seconds": None, "extrapolated": False}
            if fits:
                top = max(o[0] for o in fits)
                _, _, fam, curve, seconds, fill = min(
                    (o for o in fits if o[0] >= top - tolerance), key=lambda o: o[1])
                group = best[fam]
                interval = curve.interval(n)
                row.update(
                    family=str(fam), kind=fam.kind, frozen_layers=fam.frozen_layers,
                    head=fam.head, trial_number=group.trial_number,
                    description=group.description,
                    expected_score=round(float(curve.predict(n) or 0.0), 4),
                    interval=None if interval is None else [round(v, 4) for v in interval],
                    expected_seconds=round(seconds, 1), fill_seconds=round(fill, 1),
                    extrapolated=n > curve.max_size)
            rows.append(row)
    return rows


def _verdict(k_first: int, k_second: int, rule: str, tie: str) -> str:
    """A rule that says the first case should freeze more blocks than the second, judged."""
    if k_first > k_second:
        return f"confirms {rule}"
    if k_first < k_second:
        return f"contradicts {rule}"
    return f"neither confirms nor contradicts {rule}: {tie}"


def rule_of_thumb(table: Sequence[dict[str, Any]], num_layers: int) -> str:
    """What the table says about "small data: freeze more; large data: full fine-tuning; little
    compute: freeze more", with its numbers. Empty when the table has too little to compare."""
    rows = [r for r in table if r["frozen_layers"] is not None]
    if not rows:
        return ""
    sizes = sorted({r["train_size"] for r in rows})
    budgets = sorted({r["budget_seconds"] for r in rows})

    def cell(n: int, b: float) -> dict[str, Any] | None:
        return next((r for r in rows if r["train_size"] == n and r["budget_seconds"] == b), None)

    parts = []
    big_budget = budgets[-1]
    small, large = cell(sizes[0], big_budget), cell(sizes[-1], big_budget)
    if small and large and sizes[0] != sizes[-1]:
        ks, kl = small["frozen_layers"], large["frozen_layers"]
        verdict = _verdict(ks, kl, "the rule of thumb 'small data: freeze more; large data: full "
                           "fine-tuning'", "the same number of frozen blocks wins at both sizes")
        parts.append(
            f"Data size: with ample compute ({big_budget / 3600:g} h), {sizes[0]} examples call for "
            f"k={ks} of {num_layers} frozen blocks (expected {small['expected_score']:.3f}) and "
            f"{sizes[-1]} examples for k={kl} (expected {large['expected_score']:.3f}"
            + (", extrapolated" if large["extrapolated"] else "") + f"). This {verdict}."
        )
    mid = sizes[len(sizes) // 2]
    tight, ample = cell(mid, budgets[0]), cell(mid, budgets[-1])
    if tight and ample and budgets[0] != budgets[-1]:
        kt, ka = tight["frozen_layers"], ample["frozen_layers"]
        verdict = _verdict(kt, ka, "'little compute: freeze more'",
                           "the budget does not change the choice here")
        parts.append(
            f"Compute: at {mid} examples, {budgets[0] / 60:g} minutes call for k={kt} (expected "
            f"{tight['expected_score']:.3f}, {tight['expected_seconds']:.0f} s) and "
            f"{budgets[-1] / 3600:g} hours for k={ka} (expected {ample['expected_score']:.3f}). "
            f"This {verdict}."
        )
    return " ".join(parts)


def pareto_front(groups: Sequence[Group], direction: str = "maximize") -> list[Group]:
    """Strategies no other strategy beats on both mean score and cost, cheapest first."""
    sign = -1.0 if direction == "minimize" else 1.0
    front: list[Group] = []
    best = float("-inf")
    for g in sorted(groups, key=lambda g: (g.seconds, -sign * g.mean)):
        if sign * g.mean > best:
            front.append(g)
            best = sign * g.mean
    return front
