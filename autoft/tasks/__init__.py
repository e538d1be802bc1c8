"""Task kinds: what is predicted, the loss and the metrics (see :mod:`autoft.tasks.base`).

Built in: ``"classification"`` (single-label classification) and ``"regression"`` (a numeric
target). A new kind is one module that
subclasses :class:`TaskKind` and calls :func:`register_task_kind`, plus one import line here.
"""

from autoft.tasks.base import (
    LabelInfo,
    TaskKind,
    register_task_kind,
    task_for_metric,
    task_kind,
    task_kinds,
)
from autoft.tasks.classification import Classification
from autoft.tasks.regression import Regression, looks_like_regression

__all__ = ["Classification", "LabelInfo", "Regression", "TaskKind", "looks_like_regression",
           "register_task_kind", "task_for_metric", "task_kind", "task_kinds"]
