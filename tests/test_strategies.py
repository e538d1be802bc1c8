from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from autoft.data import load_task_data
from autoft.errors import StrategyError
from autoft.models import load_backbone
from autoft.models.heads import build_head
from autoft.strategies import FreezeStrategy, Head, Strategy, strategy_class
from autoft.strategies.apply import build_classifier, count_parameters, inspect_frozen_layers
from autoft.training import encode_split, train_strategy

from .helpers import make_tiny_bert, synthetic_texts


def _n(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("k", [0, 1, 2, 3, 4])
def test_trainable_count_matches_strategy(tiny_bert: Path, k: int) -> None:
    encoder, _, _ = load_backbone(tiny_bert)
    blocks = encoder.encoder.layer
    model, applied = build_classifier(copy.deepcopy(encoder), Strategy(frozen_layers=k), 2)
    head = _n(model.head)
    expected = head + sum(_n(b) for b in blocks[k:]) + (_n(encoder.embeddings) if k == 0 else 0)
    assert applied.trainable_params == expected
    assert applied.frozen_layers == k
    assert applied.embeddings_frozen == (k > 0)
    assert applied.total_params == _n(encoder) + head


def test_freezing_layer_1_leaves_layer_10_trainable(tmp_path: Path) -> None:
    encoder, _, _ = load_backbone(make_tiny_bert(tmp_path / "deep", num_layers=12, hidden=16))
    model, _ = build_classifier(encoder, Strategy(frozen_layers=2), 2)
    layers = model.parts.layers
    assert all(not p.requires_grad for b in layers[:2] for p in b.parameters())
    for i in (2, 10, 11):
        assert all(p.requires_grad for p in layers[i].parameters()), f"block {i} frozen"


def test_frozen_modules_stay_in_eval_mode(tiny_bert: Path) -> None:
    encoder, _, _ = load_backbone(tiny_bert)
    model, _ = build_classifier(encoder, Strategy(frozen_layers=2), 2)
    model.train()
    assert not model.parts.embeddings.training
    assert not model.parts.layers[1].training
    assert model.parts.layers[2].training and model.head.training


def test_frozen_tensors_bit_identical_after_training(tiny_bert: Path) -> None:
    encoder, tokenizer, _ = load_backbone(tiny_bert)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    texts, labels = synthetic_texts(64)
    task = load_task_data((texts, labels), validation_size=16)
    train, val = (encode_split(tokenizer, s) for s in (task.train, task.validation))
    strategy = Strategy(frozen_layers=2, learning_rate=1e-2, head_learning_rate=1e-2, epochs=2,
                        batch_size=8)
    outcome, model = train_strategy(encoder, strategy, train, val, 2, pad_id=0, device="cpu")
    after = model.encoder.state_dict()
    assert outcome.steps == 12
    for name, tensor in before.items():
        frozen = name.startswith("embeddings.") or name.startswith(("encoder.layer.0.",
                                                                     "encoder.layer.1."))
        if frozen:
            assert torch.equal(after[name], tensor), f"frozen {name} changed"
        elif name.endswith("weight") and "LayerNorm" not in name:
            assert not torch.equal(after[name], tensor), f"trainable {name} did not change"
    # the encoder passed in is never modified
    assert all(torch.equal(encoder.state_dict()[k], v) for k, v in before.items())


def test_linear_and_mlp_head_shapes() -> None:
    linear = build_head(32, 3, Head(kind="linear", dropout=0.2))
    shapes = [tuple(m.weight.shape) for m in linear if isinstance(m, nn.Linear)]
    assert shapes == [(3, 32)]
    mlp = build_head(32, 3, Head(kind="mlp", width=16, depth=2, dropout=0.0))
    shapes = [tuple(m.weight.shape) for m in mlp if isinstance(m, nn.Linear)]
    assert shapes == [(16, 32), (16, 16), (3, 16)]
    assert mlp(torch.zeros(5, 32)).shape == (5, 3)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_forward_logits_shape_and_mean_pooling_ignores_padding(tiny_bert: Path,
                                                               pooling: str) -> None:
    encoder, tokenizer, _ = load_backbone(tiny_bert)
    model, _ = build_classifier(encoder, Strategy(pooling=pooling), 3)
    model.eval()
    ids = torch.tensor(tokenizer("good film")["input_ids"]).unsqueeze(0)  # (1, T)
    padded = torch.cat([ids, torch.zeros(1, 5, dtype=torch.long)], dim=1)  # (1, T + 5)
    mask = torch.cat([torch.ones_like(ids), torch.zeros(1, 5, dtype=torch.long)], dim=1)
    with torch.no_grad():
        a = model(ids, torch.ones_like(ids))
        b = model(padded, mask)
    assert a.shape == (1, 3)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_frozen_layers_beyond_backbone_rejected(tiny_bert: Path) -> None:
    encoder, _, _ = load_backbone(tiny_bert)
    with pytest.raises(StrategyError, match="out of range for a backbone of 4 blocks"):
        build_classifier(encoder, Strategy(frozen_layers=5), 2)


def test_inspect_rejects_non_prefix_freezing(tiny_bert: Path) -> None:
    encoder, _, _ = load_backbone(tiny_bert)
    model, _ = build_classifier(encoder, Strategy(frozen_layers=0), 2)
    model.parts.layers[2].requires_grad_(False)
    with pytest.raises(StrategyError, match="not a bottom prefix"):
        inspect_frozen_layers(model)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"frozen_layers": -1}, "frozen_layers"), ({"learning_rate": 0}, "learning_rate"),
     ({"head_learning_rate": -1e-3}, "head_learning_rate"), ({"pooling": "max"}, "pooling"),
     ({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size"),
     ({"weight_decay": -0.1}, "weight_decay"), ({"warmup_ratio": 1.0}, "warmup_ratio")],
)
def test_strategy_rejects_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(StrategyError, match=message):
        Strategy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"kind": "cnn"}, "head kind"), ({"kind": "mlp", "width": 0}, "width"),
     ({"kind": "mlp", "depth": 0}, "depth"), ({"dropout": 1.0}, "dropout")],
)
def test_head_rejects_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(StrategyError, match=message):
        Head(**kwargs)  # type: ignore[arg-type]


def test_strategy_dict_roundtrip_and_unknown_field() -> None:
    strategy = Strategy(frozen_layers=3, learning_rate=4e-5, head_learning_rate=1e-3,
                        head=Head("mlp", width=64, depth=2, dropout=0.2), pooling="mean")
    flat = strategy.to_dict()
    assert flat["head"] == "mlp" and flat["head_width"] == 64
    assert Strategy.from_dict(flat) == strategy
    with pytest.raises(StrategyError, match="unknown strategy fields \\['lora_rank'\\] for kind"):
        Strategy.from_dict({**flat, "lora_rank": 8})
    assert "freeze embeddings + 3/6 blocks" in strategy.describe(6)
    assert Strategy(frozen_layers=6).describe(6).startswith("linear probe")
    assert Strategy(epochs=1).describe(6).endswith("; 1 epoch, batch 32")  # not "1 epochs"
    assert Strategy(epochs=3).describe(6).endswith("; 3 epochs, batch 32")


def test_count_parameters(tiny_bert: Path) -> None:
    encoder, _, _ = load_backbone(tiny_bert)
    model, applied = build_classifier(encoder, Strategy(frozen_layers=4), 2)
    assert count_parameters(model, trainable_only=True) == applied.trainable_params == 32 * 2 + 2


def test_strategy_builds_the_default_kind_and_round_trips_by_kind() -> None:
    strategy = Strategy(frozen_layers=2)
    assert type(strategy) is FreezeStrategy and strategy.kind == "freeze"
    assert strategy == FreezeStrategy(frozen_layers=2)
    flat = strategy.to_dict()
    assert flat["kind"] == "freeze"
    assert Strategy.from_dict(flat) == strategy
    legacy = {k: v for k, v in flat.items() if k != "kind"}  # studies of autoft 0.1
    assert Strategy.from_dict(legacy) == strategy
    assert strategy_class("freeze") is FreezeStrategy
    with pytest.raises(StrategyError, match="strategy kind 'dora' is not one of"):
        Strategy.from_dict({**flat, "kind": "dora"})
    with pytest.raises(StrategyError, match=r"unknown strategy fields \['layer_decay'\] for kind "
                                            "'lora'"):  # freeze's own field is not LoRA's
        Strategy.from_dict({**flat, "kind": "lora"})
    import copy
    import pickle

    assert pickle.loads(pickle.dumps(strategy)) == strategy == copy.deepcopy(strategy)


def test_family_and_cached_layers() -> None:
    strategy = Strategy(frozen_layers=3, head=Head("mlp", width=8))
    assert str(strategy.family()) == "k=3/mlp"
    assert strategy.cached_layers(6) == 3 and Strategy(frozen_layers=9).cached_layers(6) == 6
