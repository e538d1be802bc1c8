from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from autoft.data import load_task_data
from autoft.models import load_backbone
from autoft.strategies import Strategy
from autoft.strategies.apply import build_classifier
from autoft.training import (
    EncodedSplit,
    PrefixCache,
    cache_pays,
    encode_split,
    predict_outputs,
    train_strategy,
)

from .helpers import synthetic_texts
from .test_models import _tiny

CPU = torch.device("cpu")


def _random_split(n: int = 24, vocab: int = 50, seed: int = 0, types: bool = True) -> EncodedSplit:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 20, size=n)
    ids = [np.concatenate([[2], rng.integers(5, vocab, size=t - 2), [3]]) for t in lengths]
    return EncodedSplit(ids, [np.zeros(t, dtype=np.int64) for t in lengths] if types else None,
                        rng.integers(0, 2, size=n), lengths.astype(np.int64))


def _classifier(encoder: torch.nn.Module, k: int, cached: bool) -> torch.nn.Module:
    model, _ = build_classifier(copy.deepcopy(encoder), Strategy(frozen_layers=k,
                                                                 pooling="mean"), 3)
    model.cached_layers = k if cached else 0
    return model.eval()


@pytest.mark.parametrize("model_type", ["bert", "roberta", "distilbert", "mpnet", "electra"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_cached_outputs_match_uncached(model_type: str, k: int, tmp_path: Path) -> None:
    torch.manual_seed(0)
    encoder = _tiny(model_type).eval()
    split = _random_split(types=model_type in ("bert", "electra"))
    model = _classifier(encoder, k, cached=True)
    exact = PrefixCache(tmp_path / "f32", dtype="float32").get(encoder, k, split, 0, CPU)
    half = PrefixCache(tmp_path / "f16").get(encoder, k, split, 0, CPU)
    plain = predict_outputs(_classifier(encoder, k, cached=False), split, 0, CPU)
    np.testing.assert_allclose(predict_outputs(model, exact, 0, CPU), plain, atol=1e-5)
    np.testing.assert_allclose(predict_outputs(model, half, 0, CPU), plain, atol=2e-2)


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
    first = PrefixCache(tmp_path, fill_all=False)
    a = first.get(encoder, 2, split, 0, CPU)
    assert (first.misses, first.hits) == (1, 0)
    first.get(encoder, 2, split, 0, CPU)
    assert first.hits == 1  # from memory
    second = PrefixCache(tmp_path)
    b = second.get(encoder, 2, split, 0, CPU)
    assert (second.misses, second.hits) == (0, 1)  # from disk
    assert isinstance(b.hidden, np.memmap) and np.array_equal(a.hidden, b.hidden)
    one_entry = first.size_bytes()
    small = PrefixCache(tmp_path, max_bytes=int(1.5 * one_entry), fill_all=False)
    small.get(encoder, 1, split, 0, CPU)
    small.get(encoder, 3, split, 0, CPU)
    assert len(list(tmp_path.glob("*.npz"))) == 1 and small.size_bytes() <= 1.5 * one_entry


def test_one_pass_fills_every_k_that_pays(tmp_path: Path) -> None:
    encoder = _tiny("bert").eval()  # 3 blocks: the cache pays at k = 2 and k = 3
    assert [k for k in range(4) if cache_pays(k, 3)] == [2, 3]
    split = _random_split()
    cache = PrefixCache(tmp_path)
    cache.get(encoder, 3, split, 0, CPU)
    assert cache.misses == 1 and cache.fill_examples == len(split)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    cache.get(encoder, 2, split, 0, CPU)  # filled by the same pass
    assert cache.misses == 1 and cache.hits == 1


def test_cache_pays_only_where_it_saves_compute() -> None:
    # MiniLM, 6 blocks: measured a loss at k = 1, a gain from k = 3 on (benchmarks/epoch_speed.py)
    assert [k for k in range(7) if cache_pays(k, 6)] == [3, 4, 5, 6]
    assert [k for k in range(13) if cache_pays(k, 12)] == [6, 7, 8, 9, 10, 11, 12]


def test_the_callers_encoder_is_not_moved_cast_or_switched(tmp_path: Path) -> None:
    encoder = _tiny("bert").double().train()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    split = _random_split()
    PrefixCache(tmp_path, dtype="float32").get(encoder, 2, split, 0, CPU)
    assert encoder.training  # its mode was restored
    for name, tensor in encoder.state_dict().items():
        assert tensor.dtype == torch.float64, name
        assert torch.equal(tensor, before[name])


def test_in_memory_entries_are_bounded_and_hold_no_labels(tmp_path: Path) -> None:
    encoder = _tiny("bert").eval()
    cache = PrefixCache(tmp_path, max_loaded=2, fill_all=False)
    for seed in range(4):
        cached = cache.get(encoder, 2, _random_split(seed=seed), 0, CPU)
        assert not hasattr(cached, "labels")
    assert len(cache._loaded) == 2


def test_subsets_are_served_from_their_parent_entry(tmp_path: Path) -> None:
    encoder = _tiny("bert").eval()
    split = _random_split(n=30)
    cache = PrefixCache(tmp_path, fill_all=False)
    full = cache.get(encoder, 2, split, 0, CPU)
    idx = np.array([3, 7, 11, 20])
    part = cache.get(encoder, 2, split.subset(idx), 0, CPU)
    assert cache.misses == 1  # no second fill for the subset
    assert part.lengths.tolist() == split.lengths[idx].tolist()
    batch = part.collate(np.arange(4), CPU)
    direct = full.collate(idx, CPU)
    assert torch.equal(batch["hidden"], direct["hidden"])


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
        assert cached.cached and not plain.cached
        assert cached.scores == plain.scores
        assert cached.trainable_params == plain.trainable_params
