from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from autoft.data import load_task_data
from autoft.errors import DivergedError, TrialError
from autoft.models import load_backbone
from autoft.models.classifier import AutoftClassifier
from autoft.strategies import Strategy
from autoft.tasks import task_kind
from autoft.training import (
    PrefixCache,
    collate,
    encode_split,
    eval_steps,
    fine_tune,
    length_grouped_batches,
    train_strategy,
)

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


def test_eval_steps() -> None:
    assert eval_steps(10, 3, 2) == [5, 10, 15, 20, 25, 30]
    assert eval_steps(1, 2, 4) == [1, 2]


def test_classification_scores() -> None:
    y = np.array([0, 0, 1, 1])
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [0.1, 0.3], [-1.0, 1.0]])  # predicts 0, 1, 1, 1
    kind = task_kind("classification")
    assert kind.score("accuracy", y, logits) == 0.75
    assert kind.score("macro_f1", y, logits) == pytest.approx((2 / 3 + 0.8) / 2)
    assert kind.direction("accuracy") == "maximize"


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
    assert outcome.status == "budget" and outcome.steps == 1 and outcome.best_score is None


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

    def nan_forward(self, input_ids=None, attention_mask=None, token_type_ids=None, hidden=None):  # type: ignore[no-untyped-def]
        return torch.full((attention_mask.shape[0], 2), float("nan"), requires_grad=True)

    monkeypatch.setattr(AutoftClassifier, "forward", nan_forward)
    with pytest.raises(DivergedError, match="training loss became nan at step 1") as info:
        train_strategy(encoder, FAST, train, val, 2, pad_id=0, device="cpu")
    assert isinstance(info.value, TrialError)


def test_fine_tune_one_call(tiny_bert: Path) -> None:
    texts, labels = synthetic_texts(200)
    test = synthetic_texts(40, seed=9)
    result = fine_tune((texts, labels), FAST, model=str(tiny_bert), test=test, device="cpu")
    assert result.validation_score is not None and result.validation_score >= 0.9
    assert result.test_score is not None and result.test_score >= 0.85
    assert result.predict(["a good film", "a dull story"]) == ["pos", "neg"]


def test_fine_tune_reports_progress_and_returns_labels_in_their_type(tiny_bert: Path,
                                                                     caplog) -> None:  # type: ignore[no-untyped-def]
    texts, labels = synthetic_texts(120)
    ints = [1 if lab == "pos" else 0 for lab in labels]
    seen: list[tuple[int, int, float]] = []
    with caplog.at_level("INFO", logger="autoft"):
        result = fine_tune((texts, ints), FAST, model=str(tiny_bert), device="cpu",
                           progress=lambda i, n, s: seen.append((i, n, s)), cache=False)
    assert [i for i, _, _ in seen] == list(range(1, 9)) and {n for _, n, _ in seen} == {8}
    assert "fine_tune: evaluation 8/8" in caplog.text
    assert result.predict(["a good film", "a dull story"]) == [1, 0]  # ints, as given
    with pytest.raises(autoft_errors().DataError, match="single texts"):
        result.predict(["a"], text_pairs=["b"])


def autoft_errors():  # type: ignore[no-untyped-def]
    import autoft.errors

    return autoft.errors


def test_fine_tune_uses_the_prefix_cache_and_reports_its_fill(tiny_bert: Path, tmp_path: Path) -> None:
    texts, labels = synthetic_texts(120)
    head_only = Strategy(frozen_layers=4, head_learning_rate=5e-3, epochs=2, batch_size=8,
                         pooling="mean")
    cache = PrefixCache(tmp_path)
    cold = fine_tune((texts, labels), head_only, model=str(tiny_bert), device="cpu", cache=cache)
    warm = fine_tune((texts, labels), head_only, model=str(tiny_bert), device="cpu", cache=cache)
    assert cold.outcome.cached and cold.outcome.cache_seconds > 0
    assert cold.outcome.cache_examples == 120  # 96 training + 24 validation examples, once
    assert warm.outcome.cached and warm.outcome.cache_seconds == 0.0
    assert warm.outcome.scores == cold.outcome.scores  # the same features, the same training


def test_autocast_only_on_cuda() -> None:
    from autoft.training import autocast

    with autocast(torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_on_cuda_with_bf16_autocast(encoded) -> None:  # type: ignore[no-untyped-def]
    encoder, _, train, val = encoded
    outcome, model = train_strategy(encoder, FAST, train, val, 2, pad_id=0, device="cuda")
    assert outcome.best_score is not None and outcome.best_score >= 0.9
    assert next(model.parameters()).is_cuda and not next(encoder.parameters()).is_cuda
