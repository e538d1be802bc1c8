"""Task kinds: what is predicted, the loss and the metrics (see :mod:`autoft.tasks.base`).

Built in: ``"classification"`` (single-label classification). A new kind is one module that
subclasses :class:`TaskKind` and calls :func:`register_task_kind`, plus one import line here.
"""

from autoft.tasks.base import LabelInfo, TaskKind, register_task_kind, task_kind, task_kinds
from autoft.tasks.classification import Classification

__all__ = ["Classification", "LabelInfo", "TaskKind", "register_task_kind", "task_kind",
           "task_kinds"]
