"""Regression: the task kind's metrics and standardisation, task inference from the labels, a
search that minimises RMSE, its report, and the exported model through ``transformers.pipeline``;
and the classification report's own view (per-class table, confusion matrix, baseline)."""

from __future__ import annotations

import json
import logging
import math
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics as sk

import autoft
from autoft.data import load_task_data
from autoft.errors import AutoftError, DataError
from autoft.searching.config import SearchConfig
from autoft.tasks import Regression, task_kind

from .helpers import DATA, synthetic_texts

KIND = task_kind("regression")
SPACE = {"frozen_layers": {"type": "int", "low": 0, "high": "L"}, "learning_rate": 5e-3,
         "head_learning_rate": 5e-3, "head": "linear", "pooling": "mean", "epochs": 4,
         "batch_size": 8}


def synthetic_scores(n: int, seed: int = 0) -> tuple[list[str], list[float]]:
    """:func:`synthetic_texts` with a score: about 4 for a positive sentence, 1 for a negative
    one, plus noise (non-integer numbers, so the task is inferred as regression)."""
    texts, labels = synthetic_texts(n, seed)
    rng = random.Random(seed)
    return texts, [round((4.0 if y == "pos" else 1.0) + rng.uniform(-0.4, 0.4), 2)
                   for y in labels]


def test_metrics_against_scikit_learn_and_scipy_in_the_targets_units() -> None:
    rng = np.random.default_rng(0)
    y = rng.uniform(0, 5, 300)
    predicted = y + rng.normal(0, 0.7, 300)
    kind = KIND.for_labels(KIND.fit(list(y)))
    assert isinstance(kind, Regression)
    assert kind.shift == pytest.approx(y.mean()) and kind.scale == pytest.approx(y.std())
    outputs = ((predicted - y.mean()) / y.std())[:, None]  # the model predicts standardised
    expected = {"rmse": math.sqrt(sk.mean_squared_error(y, predicted)),
                "mae": sk.mean_absolute_error(y, predicted), "r2": sk.r2_score(y, predicted),
                "pearson": stats.pearsonr(y, predicted)[0],
                "spearman": stats.spearmanr(y, predicted)[0]}
    for metric, value in expected.items():
        assert kind.score(metric, y, outputs) == pytest.approx(value), metric
    assert 0.5 < expected["rmse"] < 0.9 and 0.5 < expected["spearman"] < 0.99
    assert [KIND.direction(m) for m in expected] == ["minimize", "minimize", "maximize",
                                                     "maximize", "maximize"]
    assert kind.decode(outputs[:3], KIND.fit(list(y))) == pytest.approx(predicted[:3].tolist())
    # a constant prediction has no correlation (not NaN), and R^2 0 at the mean
    constant = np.zeros((300, 1))
    assert kind.score("spearman", y, constant) == 0.0
    assert kind.score("r2", y, constant) == pytest.approx(0.0, abs=1e-12)
    assert KIND.metric_bounds("pearson") == (-1.0, 1.0)
    assert KIND.metric_bounds("rmse") == (0.0, math.inf)


def test_the_loss_is_on_the_standardised_target() -> None:
    import torch

    kind = Regression(shift=10.0, scale=2.0)
    outputs = torch.tensor([[0.0], [1.0]])
    labels = torch.tensor([10.0, 14.0])  # standardised: 0 and 2
    assert kind.loss(outputs, labels).item() == pytest.approx((0 + 1) / 2)
    assert kind.loss(outputs, labels, "mse").item() == pytest.approx((0 + 1) / 2)


def test_huber_loss_is_linear_beyond_one_standard_deviation() -> None:
    import torch

    kind = Regression(shift=10.0, scale=2.0)
    outputs = torch.tensor([[0.25], [4.0]])
    labels = torch.tensor([10.0, 12.0])  # standardised: 0 and 1; errors 0.25 and 3
    # squared (0.5 e^2) within delta = 1, linear (delta (|e| - delta / 2)) beyond it
    assert kind.loss(outputs, labels, "huber").item() == pytest.approx((0.5 * 0.0625 + 2.5) / 2)
    assert kind.loss(outputs, labels).item() == pytest.approx((0.0625 + 9.0) / 2)
    with pytest.raises(AutoftError, match=r"loss 'l1'.*losses are \['mse', 'huber'\]"):
        kind.loss(outputs, labels, "l1")
    with pytest.raises(AutoftError, match=r"'classification' task does not have.*cross_entropy"):
        task_kind("classification").check_losses(["huber"], "the search space")


def test_a_huber_strategy_trains_and_a_wrong_loss_stops_before_a_model_loads(
        tiny_bert: Path, tmp_path: Path) -> None:
    from autoft.study.records import strategy_key

    texts, scores = synthetic_scores(80)
    strategy = autoft.Strategy.from_dict(SPACE | {"frozen_layers": 0, "loss": "huber"})
    assert strategy.describe(2).endswith("huber loss")
    result = autoft.fine_tune((texts, scores), strategy, model=str(tiny_bert), metric="spearman",
                              device="cpu", validation_size=20, seed=1)
    assert result.validation_score is not None and result.validation_score > 0.3
    # a run stored before strategies had a loss is a seed of the default-loss strategy
    old = {k: v for k, v in strategy.to_dict().items() if k != "loss"}
    assert strategy_key(old) == strategy_key(old | {"loss": None}) != strategy_key(
        strategy.to_dict())
    labels = ["pos" if s > 2.5 else "neg" for s in scores]
    missing = str(tmp_path / "no-such-backbone")  # the check must come before the backbone loads
    with pytest.raises(AutoftError, match="search space names the loss 'huber'"):
        autoft.search((texts, labels), model=missing, n_trials=1, storage=None,
                      space=SPACE | {"loss": {"type": "categorical", "choices": ["huber"]}})
    with pytest.raises(AutoftError, match="strategy names the loss 'mse'"):
        autoft.fine_tune((texts, labels), strategy.to_dict() | {"loss": "mse"}, model=missing)


def test_the_task_is_inferred_from_the_labels(caplog: pytest.LogCaptureFixture) -> None:
    texts, scores = synthetic_scores(60)
    with caplog.at_level(logging.INFO, logger="autoft"):
        task = load_task_data((texts, scores), validation_size=20)
    assert task.task == "regression" and task.num_labels == 1
    assert "holds non-integer numbers: a regression task" in caplog.text
    assert task.train.labels.dtype == np.float32
    assert task.labels.extra["mean"] == pytest.approx(float(np.mean(task.train.labels)), abs=1e-5)
    summary = task.summary()
    assert summary["task"] == "regression" and summary["id2label"] == {}
    assert set(summary["train_class_counts"]) == {"mean", "std", "min", "max"}
    # the mean predictor as the report's floor: R^2 of the training mean is just below 0
    base = summary["baseline"]
    assert base["predictor"].startswith("the training mean")
    assert base["validation"]["r2"] <= 0.0 and base["validation"]["pearson"] == 0.0
    # integer labels stay classes unless task= says otherwise
    stars = [1, 2, 3, 4, 5] * 12
    assert load_task_data((texts, stars), validation_size=20).task == "classification"
    as_numbers = load_task_data((texts, stars), validation_size=20, task="regression")
    assert as_numbers.task == "regression" and as_numbers.labels.extra["max"] == 5.0
    # numbers written as strings (a TSV read without type inference) count as numbers
    assert load_task_data((texts, [str(s) for s in scores]), validation_size=20).task == (
        "regression")


def test_stsb_sample_is_a_pair_regression_task() -> None:
    task = load_task_data(DATA / "stsb_train_120.tsv", validation=DATA / "stsb_dev_60.tsv")
    assert task.task == "regression" and task.is_pair
    assert (task.text_column, task.text_pair_column, task.label_column) == (
        "sentence1", "sentence2", "score")
    assert len(task.train) == 120 and len(task.validation) == 60
    assert 0.0 <= task.labels.extra["min"] and task.labels.extra["max"] <= 5.0


def test_bad_regression_labels_are_named() -> None:
    texts, scores = synthetic_scores(40)
    bad = list(scores)
    bad[7] = "high"
    with pytest.raises(DataError, match=r"holds 'high' in row 7.*finite number"):
        load_task_data((texts, bad), validation_size=10, task="regression")
    with pytest.raises(DataError, match="targets are all equal"):
        load_task_data((texts, [2.5] * 40), validation_size=10, task="regression")
    with pytest.raises(DataError, match="not one of"):
        load_task_data((texts, scores), task="ranking")


def test_a_metric_of_one_kind_names_the_task() -> None:
    assert SearchConfig(metric="spearman").task == "regression"
    assert SearchConfig(metric="macro_f1").task == "classification"
    config = SearchConfig()
    assert config.task is None and config.metric is None  # the data decides
    with pytest.raises(AutoftError, match="'rsme' is not one of"):
        SearchConfig(metric="rsme")
    with pytest.raises(AutoftError, match="not one of"):
        SearchConfig(task="regression", metric="accuracy")


def test_multi_label_columns_are_refused_with_their_names() -> None:
    texts, _ = synthetic_texts(40)
    frame = pd.DataFrame({"comment_text": texts, "toxic": [i % 2 for i in range(40)],
                          "obscene": [(i // 2) % 2 for i in range(40)],
                          "insult": [int(i % 3 == 0) for i in range(40)]})
    with pytest.raises(DataError, match=r"3 columns of 0/1 values \(\['toxic', 'obscene', "
                                        r"'insult'\]\).*multi-label.*label_column="):
        load_task_data(frame)
    task = load_task_data(frame, label_column="toxic", validation_size=10)
    assert task.label_column == "toxic" and task.num_labels == 2


def test_regression_search_refit_and_pipeline(tiny_bert: Path, tmp_path: Path) -> None:
    from transformers import pipeline

    texts, scores = synthetic_scores(160)
    test_texts, test_scores = synthetic_scores(40, seed=5)
    out = tmp_path / "out"
    result = autoft.search((texts, scores), test=(test_texts, test_scores), model=str(tiny_bert),
                           space=SPACE, out=out, n_trials=3, device="cpu", refit=True,
                           validation_size=40, seeds=1, curve_sizes=())
    report = json.loads((out / "report.json").read_text())
    assert report["task"] == "regression" and report["metric"] == "rmse"
    assert report["direction"] == "minimize"
    import optuna

    study = optuna.load_study(study_name="autoft", storage=f"sqlite:///{out / 'study.db'}")
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    finished = [t.value for t in study.trials if t.value is not None]
    assert result.recommended_score_ == pytest.approx(min(finished))
    # the tiny model learns the sentiment word: far better than always predicting the mean
    mean_rmse = report["data"]["baseline"]["validation"]["rmse"]
    assert result.recommended_score_ < 0.6 * mean_rmse
    view = report["task_view"]
    assert view["type"] == "regression" and len(view["points"]) == 40
    assert abs(view["residual_mean"]) < 0.5
    markdown = (out / "report.md").read_text()
    assert "trivial baseline on validation (always the training mean" in markdown
    assert "residual (predicted - true)" in markdown
    assert "data-plot='predictions'" in (out / "report.html").read_text()

    saved = out / "model"
    config = json.loads((saved / "config.json").read_text())
    assert config["problem_type"] == "regression" and config["id2label"] == {"0": "label"}
    refit = report["refit"]
    assert refit["test_view"]["type"] == "regression"
    scorer = pipeline("text-classification", model=str(saved), device="cpu")
    got = np.array([p["score"] for p in scorer(test_texts, function_to_apply="none")])
    assert got.mean() == pytest.approx(np.mean(test_scores), abs=0.6)  # the target's units
    rmse = math.sqrt(float(np.mean((got - np.array(test_scores)) ** 2)))
    assert rmse == pytest.approx(refit["test_score"], abs=1e-4)


def test_fine_tune_predicts_in_the_targets_units(tiny_bert: Path) -> None:
    texts, scores = synthetic_scores(120)
    result = autoft.fine_tune((texts, scores), SPACE | {"frozen_layers": 0}, model=str(tiny_bert),
                              metric="spearman", device="cpu", validation_size=30, seed=1)
    assert result.task.task == "regression"
    assert result.validation_score is not None and result.validation_score > 0.5
    predicted = result.predict(["the movie was great", "the movie was awful"])
    assert all(isinstance(p, float) for p in predicted)
    assert predicted[0] > predicted[1] and 0.0 < predicted[1] < predicted[0] < 5.5


def test_classification_report_shows_classes_confusion_and_baseline(
        tiny_bert: Path, tmp_path: Path) -> None:
    texts, labels = synthetic_texts(200)
    # imbalanced: keep 1 negative in 5
    kept = [(t, y) for i, (t, y) in enumerate(zip(texts, labels)) if y == "pos" or i % 10 == 1]
    out = tmp_path / "out"
    autoft.search(([t for t, _ in kept], [y for _, y in kept]), model=str(tiny_bert),
                  space=SPACE, out=out, n_trials=2, device="cpu", validation_size=30, seeds=1,
                  curve_sizes=())
    report = json.loads((out / "report.json").read_text())
    view = report["task_view"]
    assert view["type"] == "classification" and view["labels"] == ["neg", "pos"]
    confusion = np.array(view["confusion"])
    assert confusion.sum() == 30 and [c["support"] for c in view["per_class"]] == (
        confusion.sum(axis=1).tolist())
    hits = np.diag(confusion)
    assert view["per_class"][1]["recall"] == pytest.approx(hits[1] / confusion[1].sum())
    base = report["data"]["baseline"]
    assert base["predictor"] == "the majority class 'pos'"
    assert base["validation"]["accuracy"] == pytest.approx(confusion[1].sum() / 30)
    assert base["validation"]["macro_f1"] < base["validation"]["accuracy"]
    markdown = (out / "report.md").read_text()
    assert "| label | precision | recall | F1 | support |" in markdown
    assert "Confusion matrix (rows: true class" in markdown
    assert "the classes are imbalanced" in markdown and "--metric macro_f1" in markdown
    assert "data-plot='confusion'" in (out / "report.html").read_text()
