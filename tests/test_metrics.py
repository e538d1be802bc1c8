"""Classification metrics: every one users report, over every training class, checked before any
model loads."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn import metrics as sk

import autoft
from autoft.errors import DataError
from autoft.tasks import task_kind

KIND = task_kind("classification")


def _onehot(predictions: list[int], k: int) -> np.ndarray:
    out = np.zeros((len(predictions), k))
    out[np.arange(len(predictions)), predictions] = 3.0
    return out


def test_every_metric_against_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 200)
    outputs = rng.normal(size=(200, 3)) + 1.5 * np.eye(3)[labels]
    predictions = outputs.argmax(axis=1)
    expected = {
        "accuracy": sk.accuracy_score(labels, predictions),
        "balanced_accuracy": sk.balanced_accuracy_score(labels, predictions),
        "macro_f1": sk.f1_score(labels, predictions, average="macro"),
        "weighted_f1": sk.f1_score(labels, predictions, average="weighted"),
        "macro_precision": sk.precision_score(labels, predictions, average="macro"),
        "macro_recall": sk.recall_score(labels, predictions, average="macro"),
        "weighted_precision": sk.precision_score(labels, predictions, average="weighted"),
        "weighted_recall": sk.recall_score(labels, predictions, average="weighted"),
    }
    for metric, value in expected.items():
        assert KIND.score(metric, labels, outputs) == pytest.approx(value), metric
        assert KIND.direction(metric) == "maximize"
    assert 0.5 < expected["accuracy"] < 0.95  # a case where the metrics differ
    assert len({round(v, 6) for v in expected.values()}) >= 4


def test_binary_f1_and_roc_auc() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 300)
    outputs = rng.normal(size=(300, 2)) + np.eye(2)[labels]
    probs = np.exp(outputs) / np.exp(outputs).sum(axis=1, keepdims=True)
    assert KIND.score("roc_auc", labels, outputs) == pytest.approx(
        sk.roc_auc_score(labels, probs[:, 1]))
    assert KIND.score("f1", labels, outputs) == pytest.approx(
        sk.f1_score(labels, outputs.argmax(axis=1)))
    # the positive class is the second: swapping the classes changes F1, not accuracy
    swapped = 1 - labels
    assert KIND.score("f1", swapped, outputs[:, ::-1]) != pytest.approx(
        KIND.score("f1", labels, outputs))


def test_a_class_missing_from_validation_counts_in_macro_averages() -> None:
    # the review's case: validation lacks class 2 of 3 training classes
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    into_missing = _onehot([2, 0, 0, 0, 1, 1, 1, 1], 3)  # one mistake into the absent class
    into_present = _onehot([1, 0, 0, 0, 1, 1, 1, 1], 3)  # the same mistake into a present one
    f1_0 = 2 * 1.0 * 0.75 / 1.75
    assert KIND.score("macro_f1", labels, into_missing) == pytest.approx((f1_0 + 1.0 + 0.0) / 3)
    assert KIND.score("macro_f1", labels, into_present) == pytest.approx(
        (f1_0 + 2 * 0.8 * 1.0 / 1.8 + 0.0) / 3)  # before: averaged over 2 classes only, 0.873
    perfect = _onehot(labels.tolist(), 3)
    assert KIND.score("macro_f1", labels, perfect) == pytest.approx(2 / 3)
    assert KIND.score("balanced_accuracy", labels, perfect) == pytest.approx(2 / 3)
    assert KIND.score("accuracy", labels, perfect) == 1.0


def test_a_binary_metric_on_three_classes_is_refused_before_a_model_loads() -> None:
    texts = [f"text number {i}" for i in range(30)]
    labels = ["a", "b", "c"] * 10
    with pytest.raises(DataError, match=r"metric 'roc_auc' needs exactly 2 classes; the "
                                        r"training data has 3 \(\['a', 'b', 'c'\]\)"):
        autoft.fine_tune((texts, labels), {"frozen_layers": 0}, metric="roc_auc",
                         model="/nonexistent/backbone")  # refused before the backbone loads
    with pytest.raises(Exception, match="metric 'top5' is not one of"):
        KIND.direction("top5")


def test_a_validation_split_without_a_class_is_warned_about(caplog: pytest.LogCaptureFixture) \
        -> None:
    train = ([f"train text {i}" for i in range(30)], ["cat", "dog", "eel"] * 10)
    validation = ([f"held out text {i}" for i in range(8)], ["cat", "dog"] * 4)
    with caplog.at_level(logging.WARNING, logger="autoft"):
        task = autoft.load_task_data(train, validation=validation)
    assert "the validation split has no example of class ['eel']" in caplog.text
    assert task.checks["validation_warnings"] == [
        r for r in caplog.messages if "no example of class" in r]
