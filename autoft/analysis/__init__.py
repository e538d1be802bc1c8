"""The analysis stage: from trial records to a recommendation, a cost model, learning curves and
the size x budget table. Pure functions of :class:`~autoft.study.TrialRecord` lists and a study's
settings; nothing here trains or imports torch."""

from autoft.analysis.cost import CostModel, fit_cost_model
from autoft.analysis.curves import MAX_EXTRAPOLATION, LearningCurve, fit_learning_curves
from autoft.analysis.overview import analyse, budget_to_finish, recommend_from_info
from autoft.analysis.recommend import Group, Recommendation, group_runs, pooled_std, recommend
from autoft.analysis.table import DEFAULT_BUDGETS, pareto_front, rule_of_thumb, size_budget_table

__all__ = [
    "DEFAULT_BUDGETS",
    "MAX_EXTRAPOLATION",
    "CostModel",
    "Group",
    "LearningCurve",
    "Recommendation",
    "analyse",
    "budget_to_finish",
    "fit_cost_model",
    "fit_learning_curves",
    "group_runs",
    "pareto_front",
    "pooled_std",
    "recommend",
    "recommend_from_info",
    "rule_of_thumb",
    "size_budget_table",
]
