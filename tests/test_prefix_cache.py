from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from autoft.backbone import load_backbone
from autoft.data import load_task_data
from autoft.finetune import EncodedSplit, encode_split, predict_logits, train_strategy
from autoft.prefix_cache import PrefixCache
from autoft.strategy import Strategy, build_classifier

from .helpers import synthetic_texts
from .test_backbone import _tiny

CPU = torch.device("cpu")


def _random_split(n: int = 24, vocab: int = 50, seed: int = 0, types: bool = True) -> EncodedSplit:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 20, size=n)
    ids = [np.concatenate([[2], rng.integers(5, vocab, size=t - 2), [3]]) for t in lengths]
    return EncodedSplit(ids, [np.zeros(t, dtype=np.int64) for t in lengths] if types else None,
                        rng.integers(0, 2, size=n), lengths.astype(np.int64))


@pytest.mark.parametrize("model_type", ["bert", "roberta", "distilbert", "mpnet", "electra"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_cached_outputs_match_uncached(model_type: str, k: int, tmp_path: Path) -> None:
    torch.manual_seed(0)
    encoder = _tiny(model_type).eval()
    split = _random_split(types=model_type in ("bert", "electra"))
    model, _ = build_classifier(copy.deepcopy(encoder), Strategy(frozen_layers=k,
                                                                 pooling="mean"), 3)
    model.eval()
    exact = PrefixCache(tmp_path / "f32", dtype="float32").get(encoder, k, split, 0, CPU)
    half = PrefixCache(tmp_path / "f16").get(encoder, k, split, 0, CPU)
    plain = predict_logits(model, split, 0, CPU)
    np.testing.assert_allclose(predict_logits(model, exact, 0, CPU), plain, atol=1e-5)
    np.testing.assert_allclose(predict_logits(model, half, 0, CPU), plain, atol=2e-2)


def test_keys_follow_weights_data_and_dtype(tmp_path: Path) -> None:
    encoder = _tiny("bert").eval()
    split, other = _random_split(seed=0), _random_split(seed=1)
    cache = PrefixCache(tmp_path)
    key = cache.key(encoder, 2, split)
    assert key != cache.key(encoder, 2, other)  # other data
    assert key != cache.key(encoder, 1, split)  # other k
    assert key != PrefixCache(tmp_path, dtype="float32").key(encoder, 2, split)
    changed = copy.deepcopy(encoder)
    with torch.no_grad():
        changed.encoder.layer[1].output.dense.weight.add_(1e-3)
    assert key != cache.key(changed, 2, split)  # a frozen block's weights changed
    changed_above = copy.deepcopy(encoder)
    with torch.no_grad():
        changed_above.encoder.layer[2].output.dense.weight.add_(1e-3)
    assert key == cache.key(changed_above, 2, split)  # blocks above k do not matter


def test_entries_are_reused_from_disk_and_evicted(tmp_path: Path) -> None:
    encoder = _tiny("bert").eval()
    split = _random_split()
    first = PrefixCache(tmp_path)
    a = first.get(encoder, 2, split, 0, CPU)
    assert (first.misses, first.hits) == (1, 0)
    first.get(encoder, 2, split, 0, CPU)
    assert first.hits == 1  # from memory
    second = PrefixCache(tmp_path)
    b = second.get(encoder, 2, split, 0, CPU)
    assert (second.misses, second.hits) == (0, 1)  # from disk
    assert isinstance(b.hidden, np.memmap) and np.array_equal(a.hidden, b.hidden)
    one_entry = first.size_bytes()
    small = PrefixCache(tmp_path, max_bytes=int(1.5 * one_entry))
    small.get(encoder, 1, split, 0, CPU)
    small.get(encoder, 3, split, 0, CPU)
    assert len(list(tmp_path.glob("*.npz"))) == 1 and small.size_bytes() <= 1.5 * one_entry


def test_training_with_cache_equals_training_without(tiny_bert: Path, tmp_path: Path) -> None:
    encoder, tokenizer, _ = load_backbone(tiny_bert)
    task = load_task_data(synthetic_texts(120), validation_size=30)
    train, val = encode_split(tokenizer, task.train), encode_split(tokenizer, task.validation)
    for k in (2, 4):
        strategy = Strategy(frozen_layers=k, learning_rate=5e-3, head_learning_rate=5e-3,
                            epochs=2, batch_size=8, pooling="mean")
        plain, _ = train_strategy(encoder, strategy, train, val, 2, pad_id=0, device="cpu", seed=1)
        cached, _ = train_strategy(encoder, strategy, train, val, 2, pad_id=0, device="cpu",
                                   seed=1, cache=PrefixCache(tmp_path, dtype="float32"))
        assert cached.scores == plain.scores
        assert cached.trainable_params == plain.trainable_params
