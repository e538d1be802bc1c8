"""Everything the report says about a study, computed from its records and settings alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from autoft.analysis.cost import fit_cost_model
from autoft.analysis.curves import MAX_EXTRAPOLATION, fit_learning_curves
from autoft.analysis.recommend import Group, Recommendation, group_runs, pooled_std, recommend
from autoft.analysis.table import pareto_front, rule_of_thumb, size_budget_table
from autoft.strategies import Family, Strategy
from autoft.study.records import TrialRecord
from autoft.tasks import task_kind

__all__ = ["analyse", "budget_to_finish", "recommend_from_info"]

def recommend_from_info(records: Sequence[TrialRecord],
                        info: dict[str, Any], seeds: int | None = None) -> Recommendation | None:
    """:func:`~autoft.analysis.recommend.recommend` with a study's stored settings.

    Args:
        records: The study's records.
        info: The study's ``autoft`` attribute (metric, direction, num_layers, seeds).
        seeds: Runs a strategy needs to be confirmed; None for the study's ``--seeds``.
    """
    return recommend(
        records, metric=str(info.get("metric", "accuracy")),
        num_layers=int(info.get("num_layers") or 0),
        seeds=int(seeds if seeds is not None else info.get("seeds", 3)),
        direction=str(info.get("direction", "maximize")))


def budget_to_finish(records: Sequence[TrialRecord]) -> float | None:
    """Seconds the cheapest trial stopped by the budget would have needed to finish, from its
    seconds per step (None when no trial was stopped by the budget after a step)."""
    needs = [float(r.seconds or 0.0) * r.total_steps / r.steps for r in records
             if r.status == "budget" and r.steps and r.total_steps]
    return min(needs) if needs else None


def analyse(records: Sequence[TrialRecord], info: dict[str, Any]) -> dict[str, Any]:
    """The recommendation, cost model, learning curves, size x budget table, rule-of-thumb verdict
    and Pareto front of a study.

    Args:
        records: The study's records.
        info: The study's ``autoft`` attribute.

    Returns:
        A dict: ``recommendation`` (a :class:`Recommendation` or None), ``cost_model``,
        ``learning_curves``, ``size_budget_table``, ``rule_of_thumb``, ``pareto_front`` (trial
        numbers), ``no_trial_finished`` and ``budget_to_finish`` (seconds, when no trial
        finished). Everything but the recommendation is JSON-serialisable.
    """
    direction = str(info.get("direction", "maximize"))
    data = info.get("data", {})
    n_val = int(data.get("validation_size") or 0)
    n_train = int(data.get("train_size") or 0)
    rec = recommend_from_info(records, info)
    groups = group_runs(records, direction)
    cost = fit_cost_model(records, n_val)
    metric = str(info.get("metric", "accuracy"))
    kind = task_kind(str(info.get("task", "classification")))
    curves = fit_learning_curves(  # predictions clipped to the values the metric can take
        records, direction=direction, pooled_sigma=pooled_std(groups),
        bounds=kind.metric_bounds(metric) if metric in kind.metrics else None)
    best: dict[Family, Group] = {}
    level = min(int(info.get("seeds", 3)), max((g.n for g in groups), default=1))
    for g in sorted(groups, key=lambda g: g.n < level):  # stable: confirmed first, best first
        best.setdefault(Strategy.from_dict(g.strategy).family(), g)
    measured = {p[0] for c in curves.values() for p in c.points if len(c.points) > 1}
    sizes = sorted(measured | ({n_train, int(MAX_EXTRAPOLATION * n_train)} if n_train else set()))
    finished = any(r.finished for r in records)
    table = [] if not (cost.per_example and finished) else size_budget_table(
        curves, cost, best, sizes, validation_size=n_val,
        evals_per_epoch=int(info.get("evals_per_epoch", 2)))
    return {
        "recommendation": rec,
        "cost_model": cost.to_dict(),
        "learning_curves": [c.to_dict() for c in curves.values()],
        "size_budget_table": table,
        "rule_of_thumb": rule_of_thumb(table, int(info.get("num_layers") or 0)),
        "pareto_front": [g.trial_number for g in pareto_front(groups, direction)],
        "no_trial_finished": not finished,
        "budget_to_finish": None if finished else budget_to_finish(records),
    }
