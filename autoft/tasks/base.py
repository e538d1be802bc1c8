"""The task-kind seam: what a task's labels are, how a model is trained and scored on them.

A task kind (single-label classification today; regression and image classification next) owns
everything that depends on what is predicted, and nothing that depends on how the input is read
(that is the backbone adapter's) or how the backbone is fine-tuned (the strategy kind's):

* reading and checking label values (:meth:`TaskKind.parse`), the label vocabulary fit on the
  training split (:meth:`TaskKind.fit`) and label encoding (:meth:`TaskKind.encode`);
* the number of model outputs, the training loss and the validation metrics with their
  directions (maximise or minimise);
* stratification of splits and of the learning-curve subsets;
* how predictions are turned back into labels, and the ``transformers`` pipeline task and
  ``problem_type`` of an exported model.

Kinds register themselves with :func:`register_task_kind` and are looked up by name with
:func:`task_kind`; the name is stored with each study. Modelled on Optuna's samplers and PEFT's
tuners: one class per method behind one interface, and a registry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from autoft.errors import AutoftError

__all__ = ["LabelInfo", "TaskKind", "register_task_kind", "task_for_metric", "task_kind",
           "task_kinds"]


@dataclass(frozen=True)
class LabelInfo:
    """What the labels of a task are, fit on its training split.

    Attributes:
        id2label: Label name of each class id ``0..K-1``; None for a task without classes.
        label_type: ``"int"`` when every label is written as a plain integer (predictions are then
            returned as ints), else ``"str"``; ``"float"`` for numeric targets.
        extra: Kind-specific facts (e.g. a regression target's range), JSON-serialisable.
    """

    id2label: dict[int, str] | None = None
    label_type: str = "str"
    extra: dict[str, Any] = field(default_factory=dict)


class TaskKind(ABC):
    """Interface of a task kind. Subclass it, set the class attributes, implement the methods and
    register an instance with :func:`register_task_kind`.

    Class attributes:
        name: The kind's registry name (stored in the study).
        metrics: Validation metrics this kind can optimise, each with its direction
            (``"maximize"`` or ``"minimize"``).
        default_metric: The metric used when the user names none.
        pipeline_task: The ``transformers.pipeline`` task of an exported model.
        problem_type: The ``problem_type`` of the exported model's config.
        losses: The training losses a strategy may name (its ``loss`` field); the first is the
            default, used when a strategy names none. Default empty: the kind has one loss, and
            a strategy may not name any.
    """

    name: ClassVar[str]
    metrics: ClassVar[Mapping[str, str]]
    default_metric: ClassVar[str]
    losses: ClassVar[tuple[str, ...]] = ()
    pipeline_task: ClassVar[str]
    problem_type: ClassVar[str]

    def direction(self, metric: str) -> str:
        """``"maximize"`` or ``"minimize"`` for ``metric``.

        Raises:
            AutoftError: ``metric`` is not one of this kind's metrics.
        """
        if metric not in self.metrics:
            raise AutoftError(
                f"metric {metric!r} is not one of {tuple(self.metrics)} (the metrics of the "
                f"{self.name!r} task)")
        return self.metrics[metric]

    def check_losses(self, names: Sequence[str | None], where: str = "the strategy") -> None:
        """Check loss names a strategy or a search space gives (None: the default loss), before
        any model loads.

        Raises:
            AutoftError: A name that is not one of :attr:`losses` (the message lists them).
        """
        bad = [name for name in names if name is not None and name not in self.losses]
        if bad:
            have = (f"its losses are {list(self.losses)} (leave 'loss' out for "
                    f"{self.losses[0]!r})" if self.losses else "it has one loss: leave 'loss' out")
            raise AutoftError(f"{where} names the loss {bad[0]!r}, which the {self.name!r} task "
                              f"does not have; {have}")

    @abstractmethod
    def parse(self, values: Sequence[Any], column: str, source: str,
              names: Sequence[str] | None = None) -> list[Any]:
        """Check raw label values of one split and return them in canonical form.

        Args:
            values: One raw value per row (never missing: the reader checked that).
            column: The label column's name, for messages.
            source: Where the rows came from, for messages.
            names: Label names of a ``datasets`` ``ClassLabel`` column (ids map to them).

        Raises:
            DataError: A value this kind cannot take (the message names row and value).
        """

    @abstractmethod
    def fit(self, train: Sequence[Any], names: Sequence[str] | None = None) -> LabelInfo:
        """The label vocabulary of the training split (parsed values).

        Raises:
            DataError: Too few classes or values to learn from.
        """

    @abstractmethod
    def encode(self, parsed: Sequence[Any], info: LabelInfo, source: str, role: str) -> np.ndarray:
        """Encode parsed labels for training: shape ``(N,)``.

        Raises:
            DataError: A label the training split does not have (classification).
        """

    @abstractmethod
    def num_outputs(self, info: LabelInfo) -> int:
        """Width of the model's output (classes, or 1 for a scalar target)."""

    @abstractmethod
    def loss(self, outputs: Any, labels: Any, name: str | None = None) -> Any:
        """The training loss ``name`` (one of :attr:`losses`; None for the first) as a scalar
        tensor, of ``outputs`` ``(B, num_outputs)`` against ``labels`` ``(B,)``."""

    @abstractmethod
    def score(self, metric: str, labels: np.ndarray, outputs: np.ndarray) -> float:
        """``metric`` of model ``outputs`` ``(N, num_outputs)`` against ``labels`` ``(N,)``."""

    @abstractmethod
    def decode(self, outputs: np.ndarray, info: LabelInfo) -> list[Any]:
        """Predictions as labels in the user's form (class names, ints or numbers)."""

    def check_metric(self, metric: str, info: LabelInfo) -> None:
        """Check that ``metric`` (one of :attr:`metrics`) can score a task with these labels,
        before any model loads (e.g. ROC AUC needs two classes). Default: any of its metrics can.

        Raises:
            AutoftError: ``metric`` is not one of this kind's metrics.
            DataError: It cannot score these labels (the message says which metrics can).
        """
        self.direction(metric)

    def split_warnings(self, train: np.ndarray, validation: np.ndarray,
                       info: LabelInfo) -> list[str]:
        """Warnings about a validation split that scores these labels badly (e.g. a class it
        lacks), each one sentence naming the problem; logged when the data is loaded."""
        return []

    def for_labels(self, info: LabelInfo) -> TaskKind:
        """This kind bound to one task's labels (what :attr:`autoft.data.TaskData.kind`
        returns). A kind whose loss, scores or predictions depend on facts of the training labels
        (regression's standardisation) returns a configured copy; the default returns itself."""
        return self

    def metric_bounds(self, metric: str) -> tuple[float, float] | None:
        """The values ``metric`` can take, ``(low, high)`` (either may be infinite), used to clip
        learning-curve predictions; None when unbounded. Default None."""
        return None

    def details(self, labels: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
        """What the report shows of one evaluation beside its score (JSON-serialisable, small:
        it is stored with each trial), e.g. a confusion matrix. Default: nothing."""
        return {}

    def view(self, details: Sequence[dict[str, Any]], info: LabelInfo) -> dict[str, Any] | None:
        """The task's own view of a strategy for the report, from the :meth:`details` of its
        runs (one per seed): e.g. per-class precision, recall and F1 from their summed confusion
        matrices. Default None (no view)."""
        return None

    def baseline(self, train: np.ndarray, n: int,
                 info: LabelInfo) -> tuple[str, np.ndarray] | None:
        """The trivial predictor fit on the training labels ``(N,)`` (the majority class, the
        mean), scored as the report's floor: its description and its outputs
        ``(n, num_outputs)`` for ``n`` examples; None when there is none."""
        return None

    def output_transform(self) -> tuple[float, float]:
        """``(scale, shift)`` that turns the model's outputs into the exported model's
        (``scale * output + shift``, folded into the head's last layer on export). Default
        ``(1.0, 0.0)``: exported as trained."""
        return 1.0, 0.0

    def export_labels(self, info: LabelInfo, label_column: str) -> dict[int, str]:
        """``id2label`` of an exported model: the class names; a kind without classes names
        its one output after the label column."""
        return dict(info.id2label or {0: label_column})

    def stratify(self, labels: np.ndarray) -> np.ndarray | None:
        """Strata for stratified splits and subsets (None: split at random)."""
        return None

    def summary(self, labels: np.ndarray, info: LabelInfo) -> Any:
        """A JSON-serialisable description of one split's labels for the report."""
        return None

    @property
    def label_dtype(self) -> type:
        """NumPy dtype of encoded labels."""
        return np.int64


_KINDS: dict[str, TaskKind] = {}


def register_task_kind(kind: TaskKind) -> TaskKind:
    """Add a task kind to the registry under ``kind.name`` and return it.

    Raises:
        AutoftError: Another kind already has that name.
    """
    existing = _KINDS.get(kind.name)
    if existing is not None and type(existing) is not type(kind):
        raise AutoftError(f"task kind {kind.name!r} is already registered")
    _KINDS[kind.name] = kind
    return kind


def task_kinds() -> dict[str, TaskKind]:
    """The registered task kinds by name (the package's ``__init__``, which Python runs before
    this module, imports the built-in kinds, so they are always registered)."""
    return dict(_KINDS)


def task_kind(name: str) -> TaskKind:
    """The registered task kind called ``name``.

    Raises:
        AutoftError: No such kind (the message lists the known ones).
    """
    kinds = task_kinds()
    if name not in kinds:
        raise AutoftError(f"task {name!r} is not one of {sorted(kinds)}")
    return kinds[name]


def task_for_metric(task: str | None, metric: str | None) -> str | None:
    """The task kind a call names: ``task`` when given, else the one kind that has ``metric``
    (``"spearman"`` names regression), else None (the labels decide, see
    :func:`autoft.load_task_data`).

    Raises:
        AutoftError: ``task`` is unknown, or ``metric`` is no kind's metric (the message lists
            the known ones).
    """
    if task is not None:
        task_kind(task)
        return task
    if metric is None:
        return None
    owners = [k.name for k in task_kinds().values() if metric in k.metrics]
    if not owners:
        known = sorted({m for k in task_kinds().values() for m in k.metrics})
        raise AutoftError(f"metric {metric!r} is not one of {known}")
    return owners[0] if len(owners) == 1 else None
