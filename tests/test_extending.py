"""The README's worked example of a new strategy kind, run as written."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import autoft
from autoft.models import load_backbone
from autoft.strategies import Head, Strategy, strategy_kinds
from autoft.strategies.apply import build_classifier

from .helpers import synthetic_texts

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture(scope="module")
def example() -> Iterator[types.ModuleType]:
    text = README.read_text()
    block = re.search(r"<!-- extending-example-start -->\s*```python\n(.*?)```", text, re.S)
    assert block is not None, "the README lost its worked example"
    module = types.ModuleType("readme_example")
    sys.modules[module.__name__] = module
    exec(compile(block.group(1), str(README), "exec"), module.__dict__)  # noqa: S102
    yield module
    from autoft.strategies import base

    base._KINDS.pop("layernorm", None)
    del sys.modules[module.__name__]


def test_the_kind_registers_and_round_trips(example: types.ModuleType) -> None:
    assert strategy_kinds()["layernorm"] is example.LayerNormStrategy
    strategy = example.LayerNormStrategy(frozen_layers=2, norm_learning_rate=3e-3)
    flat = strategy.to_dict()
    assert flat["kind"] == "layernorm" and flat["norm_learning_rate"] == 3e-3
    assert Strategy.from_dict(flat) == strategy
    assert str(strategy.family()) == "layernorm k=2/linear"
    assert strategy.describe(4).startswith("LayerNorm tuning above 2/4 blocks")


@pytest.mark.parametrize("k", [0, 2, 4])
def test_only_layernorm_weights_above_k_and_the_head_train(example: types.ModuleType,
                                                           tiny_bert: Path, k: int) -> None:
    encoder, _, _ = load_backbone(tiny_bert)
    strategy = example.LayerNormStrategy(frozen_layers=k, head=Head("linear"))
    model, applied = build_classifier(encoder, strategy, 2)
    parts = model.parts
    tuned = list(parts.layers)[k:] + ([parts.embeddings] if k == 0 else [])
    norms = sum(p.numel() for part in tuned for m in part.modules()
                if isinstance(m, torch.nn.LayerNorm) for p in m.parameters())
    head = sum(p.numel() for p in model.head.parameters())
    assert applied.trainable_params == norms + head
    assert applied.frozen_layers == k  # the bottom k blocks are untouched: cacheable
    groups = strategy.param_groups(model)
    assert [g["lr"] for g in groups] == [strategy.norm_learning_rate,
                                         strategy.effective_head_learning_rate]


def test_a_search_over_both_kinds(example: types.ModuleType, tiny_bert: Path,
                                  tmp_path: Path) -> None:
    space = {"kind": {"type": "categorical", "choices": ["freeze", "layernorm"]},
             "frozen_layers": {"type": "categorical", "choices": [2, 3]},
             "learning_rate": 5e-3, "head_learning_rate": 5e-3, "head": "linear",
             "norm_learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
             "pooling": "mean", "epochs": 2, "batch_size": 16,
             "baselines": [{"kind": "layernorm", "frozen_layers": 2}]}
    result = autoft.search(synthetic_texts(120), model=str(tiny_bert), space=space, out=tmp_path,
                           n_trials=6, seeds=1, curve_sizes=(), device="cpu",
                           validation_size=30, seed=1)
    kinds = result.trials_["kind"]
    assert kinds[0] == "layernorm" and set(kinds) == {"freeze", "layernorm"}
    for kind, rate in zip(kinds, result.trials_["norm_learning_rate"]):
        assert (rate is not None) == (kind == "layernorm")  # its field only for its kind
    assert result.trials_["description"][0].startswith("LayerNorm tuning above 2/4 blocks")
    report = (tmp_path / "report.md").read_text()
    assert "| layernorm k=2/linear |" in report  # its own cost family
