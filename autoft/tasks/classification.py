"""Single-label classification: one class per example, cross-entropy, accuracy or macro-F1."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from autoft.errors import DataError
from autoft.tasks.base import LabelInfo, TaskKind, register_task_kind

__all__ = ["Classification"]

logger = logging.getLogger(__name__)

_INTEGER = re.compile(r"^-?\d+$")
_PLAIN_INTEGER = re.compile(r"^-?(0|[1-9]\d*)$")


class Classification(TaskKind):
    """Single-label classification.

    Labels are class names or integer ids, kept exactly as written: ``"007"`` stays ``"007"``; a
    number (from a DataFrame, JSON or Parquet) becomes its decimal string, so ``1`` and ``"1"`` are
    one class; surrounding spaces are removed (once reported as a count). Classes are ordered
    numerically when every label is an integer, else alphabetically (``ClassLabel`` order for
    ``datasets`` inputs). When every label is a plain integer (no leading zeros), predictions are
    returned as ints.

    Metrics, all maximised, computed with scikit-learn over every training class (``labels=``
    given, so a class the validation split lacks still counts: it is not silently dropped from a
    macro average): ``accuracy``, ``balanced_accuracy`` (mean per-class recall), ``macro_f1``,
    ``weighted_f1``, ``macro_precision``, ``macro_recall``, ``weighted_precision``,
    ``weighted_recall``; for two classes also ``f1`` (F1 of the positive class: the second class,
    e.g. ``1`` of 0/1 or ``pos`` of neg/pos) and ``roc_auc`` (from the softmax probability of the
    positive class). Loss: cross-entropy (``losses``: ``"cross_entropy"`` only).
    """

    name: ClassVar[str] = "classification"
    metrics: ClassVar[dict[str, str]] = {
        "accuracy": "maximize", "balanced_accuracy": "maximize", "macro_f1": "maximize",
        "weighted_f1": "maximize", "macro_precision": "maximize", "macro_recall": "maximize",
        "weighted_precision": "maximize", "weighted_recall": "maximize", "f1": "maximize",
        "roc_auc": "maximize",
    }
    losses: ClassVar[tuple[str, ...]] = ("cross_entropy",)
    #: Metrics defined for two classes only.
    BINARY_METRICS: ClassVar[tuple[str, ...]] = ("f1", "roc_auc")
    default_metric: ClassVar[str] = "accuracy"
    pipeline_task: ClassVar[str] = "text-classification"
    problem_type: ClassVar[str] = "single_label_classification"

    def parse(self, values: Sequence[Any], column: str, source: str,
              names: Sequence[str] | None = None) -> list[str]:
        out: list[str] = []
        padded = 0
        for row, value in enumerate(values):
            if isinstance(value, (bool, np.bool_)):
                text = str(int(value))
            elif isinstance(value, (int, np.integer)):
                text = str(int(value))
                if names is not None and 0 <= int(value) < len(names):
                    text = str(names[int(value)])
            elif isinstance(value, (float, np.floating)):
                if not float(value).is_integer():
                    raise DataError(
                        f"label column {column!r} of {source} holds the non-integer number "
                        f"{value!r} in row {row}; classification labels are class names or integer "
                        "class ids (for a numeric target use a regression task)"
                    )
                text = str(int(value))
            else:
                raw = str(value)
                text = raw.strip()
                padded += text != raw
            out.append(text)
        if padded:
            logger.warning(
                "label column %r of %s: %d labels had surrounding spaces, which were removed "
                "(so 'pos ' and 'pos' are one class)", column, source, padded)
        return out

    def fit(self, train: Sequence[Any], names: Sequence[str] | None = None) -> LabelInfo:
        present = set(train)
        if names is not None:
            order = [str(n) for n in names if str(n) in present]
            order += sorted(present - set(order))
        elif all(_INTEGER.match(v) for v in present):
            order = sorted(present, key=lambda v: (int(v), v))
        else:
            order = sorted(present)
        if len(order) < 2:
            raise DataError(
                f"the training data has a single class {order[0]!r}; classification needs at "
                "least 2 classes" if order else "the training data has no labels")
        plain = names is None and all(_PLAIN_INTEGER.match(v) for v in order)
        return LabelInfo(id2label=dict(enumerate(order)), label_type="int" if plain else "str")

    def encode(self, parsed: Sequence[Any], info: LabelInfo, source: str,
               role: str) -> np.ndarray:
        assert info.id2label is not None
        label2id = {name: i for i, name in info.id2label.items()}
        ids = np.empty(len(parsed), dtype=np.int64)
        for row, value in enumerate(parsed):
            if value not in label2id:
                raise DataError(
                    f"label {value!r} in row {row} of {source} does not occur in the training "
                    f"data, whose labels are {list(label2id)}; a {role} label must be one of the "
                    "training labels"
                )
            ids[row] = label2id[value]
        return ids

    def num_outputs(self, info: LabelInfo) -> int:
        return len(info.id2label or {})

    def loss(self, outputs: Any, labels: Any, name: str | None = None) -> Any:
        import torch

        self.check_losses([name])
        return torch.nn.functional.cross_entropy(outputs.float(), labels)

    def check_metric(self, metric: str, info: LabelInfo) -> None:
        self.direction(metric)
        k = self.num_outputs(info)
        if metric in self.BINARY_METRICS and k != 2:
            others = [m for m in self.metrics if m not in self.BINARY_METRICS]
            raise DataError(
                f"metric {metric!r} needs exactly 2 classes; the training data has {k} "
                f"({list((info.id2label or {}).values())[:10]}). Use one of {others}")

    def split_warnings(self, train: np.ndarray, validation: np.ndarray,
                       info: LabelInfo) -> list[str]:
        assert info.id2label is not None
        counts = np.bincount(validation, minlength=len(info.id2label))
        missing = [info.id2label[i] for i in range(len(info.id2label)) if counts[i] == 0]
        if not missing:
            return []
        return [f"the validation split has no example of class{'es' if len(missing) > 1 else ''} "
                f"{missing[:10]}: their recall cannot be measured and macro averages count them "
                "as 0; give a validation split with every class (or more validation_size)"]

    def score(self, metric: str, labels: np.ndarray, outputs: np.ndarray) -> float:
        from sklearn import metrics as sk

        self.direction(metric)
        outputs = np.asarray(outputs, dtype=np.float64)
        classes = np.arange(outputs.shape[1])
        predictions = outputs.argmax(axis=1)
        if metric == "accuracy":
            return float(sk.accuracy_score(labels, predictions))
        if metric == "balanced_accuracy":  # mean recall over every training class
            return float(sk.recall_score(labels, predictions, labels=classes, average="macro",
                                         zero_division=0))
        if metric == "roc_auc":
            if len(np.unique(labels)) < 2:
                # undefined with one class present (load time warned about such a split): chance
                return 0.5
            shifted = outputs - outputs.max(axis=1, keepdims=True)
            probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
            return float(sk.roc_auc_score(labels, probs[:, 1]))
        if metric == "f1":
            return float(sk.f1_score(labels, predictions, pos_label=1, average="binary",
                                     zero_division=0))
        average, name = metric.split("_", 1)
        fn = {"f1": sk.f1_score, "precision": sk.precision_score, "recall": sk.recall_score}[name]
        return float(fn(labels, predictions, labels=classes, average=average, zero_division=0))

    def decode(self, outputs: np.ndarray, info: LabelInfo) -> list[Any]:
        assert info.id2label is not None
        names = [info.id2label[int(i)] for i in np.asarray(outputs).argmax(axis=1)]
        return [int(n) for n in names] if info.label_type == "int" else names

    def metric_bounds(self, metric: str) -> tuple[float, float] | None:
        return (0.0, 1.0)

    def details(self, labels: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
        """The confusion matrix over every training class: ``confusion[i][j]`` counts examples
        of class ``i`` predicted as ``j``."""
        from sklearn.metrics import confusion_matrix

        k = np.asarray(outputs).shape[1]
        predictions = np.asarray(outputs).argmax(axis=1)
        return {"confusion": confusion_matrix(labels, predictions, labels=np.arange(k)).tolist()}

    def view(self, details: Sequence[dict[str, Any]], info: LabelInfo) -> dict[str, Any] | None:
        """Per-class precision, recall, F1 and support, and the confusion matrix, summed over
        the runs given (each run's validation predictions count once)."""
        matrices = [np.asarray(d["confusion"], dtype=np.int64) for d in details
                    if d.get("confusion") is not None]
        if not matrices or info.id2label is None:
            return None
        m = np.sum(matrices, axis=0)  # (K, K), rows true, columns predicted
        true, predicted, hits = m.sum(axis=1), m.sum(axis=0), np.diag(m)
        per_class = []
        for i, name in info.id2label.items():
            p = hits[i] / predicted[i] if predicted[i] else 0.0
            r = hits[i] / true[i] if true[i] else 0.0
            f = 2 * p * r / (p + r) if p + r else 0.0
            per_class.append({"label": name, "precision": float(p), "recall": float(r),
                              "f1": float(f), "support": int(true[i]) // len(matrices)})
        return {"type": "classification", "runs": len(matrices), "confusion": m.tolist(),
                "labels": list(info.id2label.values()), "per_class": per_class}

    def baseline(self, train: np.ndarray, n: int,
                 info: LabelInfo) -> tuple[str, np.ndarray] | None:
        """Always the training split's most frequent class (ties: the lowest id)."""
        assert info.id2label is not None
        k = self.num_outputs(info)
        majority = int(np.bincount(train, minlength=k).argmax())
        outputs = np.zeros((n, k), dtype=np.float32)
        outputs[:, majority] = 1.0
        return f"the majority class {info.id2label[majority]!r}", outputs

    def stratify(self, labels: np.ndarray) -> np.ndarray | None:
        return labels

    def summary(self, labels: np.ndarray, info: LabelInfo) -> list[int]:
        return np.bincount(labels, minlength=self.num_outputs(info)).tolist()


register_task_kind(Classification())
