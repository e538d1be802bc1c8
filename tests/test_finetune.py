from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from autoft.backbone import load_backbone
from autoft.data import load_task_data
from autoft.errors import TrialError
from autoft.finetune import (
    collate,
    encode_split,
    eval_steps,
    fine_tune,
    length_grouped_batches,
    lr_factor,
    score_predictions,
    train_strategy,
)
from autoft.strategy import AutoftClassifier, Strategy

from .helpers import synthetic_texts

FAST = Strategy(frozen_layers=0, learning_rate=5e-3, head_learning_rate=5e-3, epochs=4,
                batch_size=8, pooling="mean")


@pytest.fixture(scope="module")
def encoded(tiny_bert: Path):  # type: ignore[no-untyped-def]
    encoder, tokenizer, _ = load_backbone(tiny_bert)
    texts, labels = synthetic_texts(240)
    task = load_task_data((texts, labels), validation_size=60)
    return encoder, tokenizer, encode_split(tokenizer, task.train), encode_split(
        tokenizer, task.validation)


def test_length_grouped_batches_cover_every_example_once() -> None:
    lengths = np.random.default_rng(0).integers(1, 50, size=1003)
    batches = length_grouped_batches(lengths, 32, np.random.default_rng(1), group=4)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1003))
    assert max(len(b) for b in batches) == 32
    # inside a batch lengths are close: sorted groups pad far less than random batches
    padded = sum(len(b) * lengths[b].max() for b in batches)
    random_padded = sum(32 * lengths[i:i + 32].max() for i in range(0, 1003, 32))
    assert padded < 0.8 * random_padded


def test_collate_pads_dynamically(encoded) -> None:  # type: ignore[no-untyped-def]
    _, tokenizer, train, _ = encoded
    idx = np.array([0, 1, 2])
    batch = collate(train, idx, 0, torch.device("cpu"))
    width = int(train.lengths[idx].max())
    assert batch["input_ids"].shape == (3, width)
    assert batch["attention_mask"].sum(1).tolist() == train.lengths[idx].tolist()
    assert batch["labels"].tolist() == train.labels[idx].tolist()


def test_eval_steps_and_schedule() -> None:
    assert eval_steps(10, 3, 2) == [5, 10, 15, 20, 25, 30]
    assert eval_steps(1, 2, 4) == [1, 2]
    assert lr_factor(0, 10, 100) == pytest.approx(1 / 11)
    assert lr_factor(10, 10, 100) == 1.0
    assert lr_factor(55, 10, 100) == pytest.approx(0.5)
    assert lr_factor(100, 10, 100) == 0.0


def test_score_predictions() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0, 1, 1, 1])
    assert score_predictions("accuracy", y, p) == 0.75
    assert score_predictions("macro_f1", y, p) == pytest.approx((2 / 3 + 0.8) / 2)


def test_training_learns_the_synthetic_task(encoded) -> None:  # type: ignore[no-untyped-def]
    encoder, _, train, val = encoded
    outcome, model = train_strategy(encoder, FAST, train, val, 2, pad_id=0, device="cpu",
                                    evals_per_epoch=2)
    assert outcome.status == "complete"
    assert len(outcome.scores) == 8 and outcome.examples_at_eval[-1] == 4 * 180
    assert outcome.best_score is not None and outcome.best_score >= 0.95
    assert outcome.examples_trained == 720 and outcome.steps == 4 * 23
    assert isinstance(model, AutoftClassifier)


def test_same_seed_same_scores(encoded) -> None:  # type: ignore[no-untyped-def]
    encoder, _, train, val = encoded
    short = Strategy(frozen_layers=2, learning_rate=1e-3, epochs=1, batch_size=16)
    a, _ = train_strategy(encoder, short, train, val, 2, pad_id=0, device="cpu", seed=5)
    b, _ = train_strategy(encoder, short, train, val, 2, pad_id=0, device="cpu", seed=5)
    assert a.scores == b.scores


def test_deadline_stops_at_next_step(encoded) -> None:  # type: ignore[no-untyped-def]
    encoder, _, train, val = encoded
    outcome, _ = train_strategy(encoder, FAST, train, val, 2, pad_id=0, device="cpu",
                                deadline=time.monotonic())
    assert outcome.status == "deadline" and outcome.steps == 1 and outcome.best_score is None


def test_report_callback_prunes(encoded) -> None:  # type: ignore[no-untyped-def]
    encoder, _, train, val = encoded
    calls: list[tuple[int, float]] = []

    def report(index: int, score: float) -> bool:
        calls.append((index, score))
        return index == 2

    outcome, _ = train_strategy(encoder, FAST, train, val, 2, pad_id=0, device="cpu",
                                report=report)
    assert outcome.status == "pruned" and [c[0] for c in calls] == [1, 2]
    assert outcome.steps == 23  # stopped after the 2nd evaluation, the end of epoch 1


def test_non_finite_loss_raises_trial_error(encoded, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    encoder, _, train, val = encoded

    def nan_forward(self, input_ids, attention_mask, token_type_ids=None):  # type: ignore[no-untyped-def]
        return torch.full((input_ids.shape[0], 2), float("nan"), requires_grad=True)

    monkeypatch.setattr(AutoftClassifier, "forward", nan_forward)
    with pytest.raises(TrialError, match="training loss became nan at step 1"):
        train_strategy(encoder, FAST, train, val, 2, pad_id=0, device="cpu")


def test_fine_tune_one_call(tiny_bert: Path) -> None:
    texts, labels = synthetic_texts(200)
    test = synthetic_texts(40, seed=9)
    result = fine_tune((texts, labels), FAST, model=str(tiny_bert), test=test, device="cpu")
    assert result.validation_score is not None and result.validation_score >= 0.9
    assert result.test_score is not None and result.test_score >= 0.85
    assert result.predict(["a good film", "a dull story"]) == ["pos", "neg"]
