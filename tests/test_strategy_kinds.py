"""The built-in strategy kinds beyond freeze-k: BitFit, LoRA (through peft) and layer-wise
learning-rate decay, applied to tiny random BERTs, trained, searched and exported."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import autoft
from autoft.errors import StrategyError
from autoft.models.hf_model import to_pretrained
from autoft.strategies import BitFitStrategy, FreezeStrategy, Head, LoraStrategy, Strategy
from autoft.strategies.apply import build_classifier, count_parameters

from .helpers import synthetic_texts
from .test_models import _tiny

L = 3  # blocks of the tiny BERT of tests/test_models.py


def _inputs() -> dict[str, torch.Tensor]:
    ids = torch.randint(5, 50, (4, 11), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[2, 7:] = 0
    return {"input_ids": ids, "attention_mask": mask}


# -- BitFit --------------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [0, 2, L])
@pytest.mark.parametrize("norm", ["no", "yes"])
def test_bitfit_trains_the_biases_above_k_and_the_head(k: int, norm: str) -> None:
    model, applied = build_classifier(_tiny("bert"), BitFitStrategy(frozen_layers=k,
                                                                    bitfit_norm=norm), 3)
    parts = model.parts
    tuned = list(parts.layers)[k:] + ([parts.embeddings] if k == 0 else [])
    expected = 0
    for part in tuned:
        for module in part.modules():
            for name, p in module.named_parameters(recurse=False):
                if name == "bias" or (norm == "yes" and isinstance(module, torch.nn.LayerNorm)):
                    expected += p.numel()
    head = count_parameters(model.head)
    assert applied.trainable_params == expected + head
    assert applied.frozen_layers == k  # the bottom k blocks are untouched: cacheable
    trained = {n for n, p in model.encoder.named_parameters() if p.requires_grad}
    assert all(n.endswith(".bias") or (norm == "yes" and "LayerNorm" in n) for n in trained)
    if k < L:
        assert any(n.endswith("intermediate.dense.bias") for n in trained)
        assert (norm == "yes") == any("LayerNorm.weight" in n for n in trained)


def test_bitfit_fields_learning_rate_and_description() -> None:
    s = BitFitStrategy(frozen_layers=1, bitfit_learning_rate=2e-3, head_learning_rate=1e-3)
    assert Strategy.from_dict(s.to_dict()) == s
    assert s.describe(L).startswith("BitFit (biases above 1/3 frozen blocks); lr 0.002")
    assert str(s.family()) == "bitfit k=1/linear"
    model, _ = build_classifier(_tiny("bert"), s, 2)
    assert sorted(g["lr"] for g in s.param_groups(model)) == [1e-3, 1e-3, 2e-3]
    assert not BitFitStrategy.uses("learning_rate", {"frozen_layers": 0}, L)
    assert BitFitStrategy.uses("bitfit_norm", {"frozen_layers": L - 1}, L)
    assert not BitFitStrategy.uses("bitfit_norm", {"frozen_layers": L}, L)
    with pytest.raises(StrategyError, match="bitfit_norm='maybe' must be one of"):
        BitFitStrategy(bitfit_norm="maybe")
    with pytest.raises(StrategyError, match="bitfit_learning_rate=0 must be a number > 0"):
        BitFitStrategy(bitfit_learning_rate=0)


# -- LoRA ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [0, 2])
@pytest.mark.parametrize("targets", ["attention", "attention_ffn"])
def test_lora_adapts_only_the_blocks_above_k(k: int, targets: str) -> None:
    from peft.tuners.lora import LoraLayer

    strategy = LoraStrategy(frozen_layers=k, lora_rank=4, lora_targets=targets)
    model, applied = build_classifier(_tiny("bert"), strategy, 3)
    adapted = [[n for n, m in block.named_modules() if isinstance(m, LoraLayer)]
               for block in model.parts.layers]
    per_block = {"attention": ["attention.self.query", "attention.self.key",
                               "attention.self.value", "attention.output.dense"],
                 "attention_ffn": ["attention.self.query", "attention.self.key",
                                   "attention.self.value", "attention.output.dense",
                                   "intermediate.dense", "output.dense"]}[targets]
    assert adapted == [[]] * k + [per_block] * (L - k)
    # r (in + out) per adapted layer: the tiny BERT is 16 wide with a 32-wide feed-forward
    width = {"attention.self.query": 16 + 16, "attention.self.key": 16 + 16,
             "attention.self.value": 16 + 16, "attention.output.dense": 16 + 16,
             "intermediate.dense": 16 + 32, "output.dense": 32 + 16}
    per_layer = sum(4 * width[name] for name in per_block)
    assert applied.trainable_params == (L - k) * per_layer + count_parameters(model.head)
    assert applied.frozen_layers == k and applied.embeddings_frozen


def test_lora_starts_as_the_backbone_and_merges_into_it_for_export() -> None:
    torch.manual_seed(0)
    lora = LoraStrategy(frozen_layers=1, lora_rank=4, lora_alpha=8, lora_dropout=0.0,
                        lora_targets="attention_ffn", head=Head("linear"), pooling="mean")
    plain = FreezeStrategy(frozen_layers=1, head=Head("linear"), pooling="mean")
    encoder = _tiny("bert")
    model, _ = build_classifier(encoder, lora, 2, seed=3)
    base, _ = build_classifier(_tiny("bert"), plain, 2, seed=3)
    base.encoder.load_state_dict({k.replace(".base_layer", ""): v for k, v in
                                  model.encoder.state_dict().items() if "lora_" not in k})
    model.eval()
    base.eval()
    with torch.no_grad():  # B = 0 at initialisation: LoRA starts as the plain backbone
        torch.testing.assert_close(model(**_inputs()), base(**_inputs()))
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn_like(p) * 0.1)  # as if trained
        before = model(**_inputs())
        assert not torch.allclose(before, base(**_inputs()), atol=1e-3)
        exported = to_pretrained(lora.export(model), {0: "a", 1: "b"}, lora.to_dict())
        after = exported(**_inputs()).logits
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
    keys = set(exported.state_dict())
    assert not any("lora_" in k or "base_layer" in k for k in keys)


def test_lora_fields_and_errors() -> None:
    s = LoraStrategy(frozen_layers=2, lora_rank=16, lora_alpha=32, lora_targets="attention_ffn",
                     lora_learning_rate=1e-3)
    assert Strategy.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert s.describe(L).startswith("LoRA r=16 alpha=32 on attention + FFN above 2/3 frozen "
                                    "blocks; lr 0.001")
    assert str(s.family()) == "lora k=2/linear attn+ffn"
    assert s.cached_layers(L) == 2
    assert LoraStrategy.uses("lora_rank", {"frozen_layers": 0}, L)
    assert not LoraStrategy.uses("learning_rate", {"frozen_layers": 0}, L)
    for bad, message in (({"lora_rank": 0}, "lora_rank=0 must be an integer >= 1"),
                         ({"lora_targets": "all"}, "lora_targets='all' must be one of"),
                         ({"lora_dropout": 1.0}, r"lora_dropout=1.0 must be in \[0, 1\)"),
                         ({"lora_alpha": -1}, "lora_alpha=-1 must be a number > 0")):
        with pytest.raises(StrategyError, match=message):
            LoraStrategy(**bad)  # type: ignore[arg-type]
    model, applied = build_classifier(_tiny("bert"), LoraStrategy(frozen_layers=L), 2)
    assert applied.trainable_params == count_parameters(model.head)  # k = L: the head only


# -- layer-wise learning-rate decay --------------------------------------------------------------

def test_layer_decay_scales_each_blocks_learning_rate() -> None:
    s = FreezeStrategy(frozen_layers=0, learning_rate=1e-4, head_learning_rate=1e-3,
                       layer_decay=0.5)
    model, _ = build_classifier(_tiny("bert"), s, 2)
    rate = {id(p): g["lr"] for g in s.param_groups(model) for p in g["params"]}
    parts = model.parts
    for i, block in enumerate(parts.layers):
        assert [rate[id(p)] for p in block.parameters()] == pytest.approx(
            [1e-4 * 0.5 ** (L - 1 - i)] * len(list(block.parameters())))
    embeddings = [rate[id(p)] for p in parts.embeddings.parameters()]
    assert embeddings == pytest.approx([1e-4 * 0.5 ** L] * len(embeddings))
    assert {rate[id(p)] for p in model.head.parameters()} == {1e-3}
    assert len(rate) == sum(1 for p in model.parameters() if p.requires_grad)
    decayed = {id(p) for g in s.param_groups(model) if g["weight_decay"] > 0 for p in g["params"]}
    assert all(p.ndim >= 2 for p in model.parameters() if id(p) in decayed)
    # k = 1: only blocks 1 and 2 train, at lr d^1 and d^0
    s2 = FreezeStrategy(frozen_layers=1, learning_rate=1e-4, head_learning_rate=1e-3,
                        layer_decay=0.5)
    model2, _ = build_classifier(_tiny("bert"), s2, 2)
    backbone = {g["lr"] for g in s2.param_groups(model2)} - {s2.effective_head_learning_rate}
    assert sorted(backbone) == pytest.approx([5e-5, 1e-4])
    assert s.describe(L).startswith("full fine-tuning, layer-wise LR decay 0.5; lr 0.0001")
    assert FreezeStrategy.uses("layer_decay", {"frozen_layers": L - 2}, L)
    assert not FreezeStrategy.uses("layer_decay", {"frozen_layers": L - 1}, L)
    with pytest.raises(StrategyError, match=r"layer_decay=1.5 must be a number in \(0, 1\]"):
        FreezeStrategy(layer_decay=1.5)


def test_a_run_stored_before_layer_decay_is_a_seed_of_the_same_strategy() -> None:
    from autoft.study.records import strategy_key

    new = FreezeStrategy(frozen_layers=2, learning_rate=3e-5).to_dict()
    old = {k: v for k, v in new.items() if k != "layer_decay"}
    assert strategy_key(old) == strategy_key(new)
    assert strategy_key({**new, "layer_decay": 0.9}) != strategy_key(new)


# -- searched, trained from the cache, exported -------------------------------------------------

def test_a_search_over_all_kinds(tiny_bert: Path, tmp_path: Path) -> None:
    result = autoft.search(synthetic_texts(160), model=str(tiny_bert), space="all",
                           out=tmp_path / "out", n_trials=7, seeds=1, curve_sizes=(),
                           device="cpu", validation_size=40, seed=2)
    trials = result.trials_
    assert set(trials["status"]) <= {"complete", "pruned"}  # no kind failed
    # the space's baselines, most frozen first: probe, half frozen, BitFit and LoRA above the half
    assert trials["kind"][:5] == ["freeze", "freeze", "bitfit", "lora", "freeze"]
    assert trials["frozen_layers"][:5] == [4, 2, 2, 2, 0]
    for kind, rank, rate in zip(trials["kind"], trials["lora_rank"],
                                trials["bitfit_learning_rate"]):
        assert (rank is not None) == (kind == "lora")  # a kind's fields only for it
        assert rate is None or kind == "bitfit"


def test_a_lora_recommendation_refits_from_the_cache_into_a_pipeline_folder(
        tiny_bert: Path, tmp_path: Path) -> None:
    from transformers import pipeline

    space = {"kind": "lora", "frozen_layers": 2, "lora_rank": 4, "lora_targets": "attention_ffn",
             "lora_learning_rate": 5e-3, "head_learning_rate": 5e-3, "head": "linear",
             "pooling": "mean", "epochs": 3, "batch_size": 8}
    test_texts, test_labels = synthetic_texts(60, 5)
    out = tmp_path / "out"
    result = autoft.search(synthetic_texts(200), test=(test_texts, test_labels),
                           model=str(tiny_bert), space=space, out=out, n_trials=1, seeds=1,
                           curve_sizes=(), device="cpu", validation_size=40, refit=True)
    trial = result.study_.trials[0]
    assert trial.user_attrs["strategy"]["kind"] == "lora"
    assert trial.user_attrs["outcome"]["cached"]  # trained above 2 cached blocks
    refit = json.loads((out / "report.json").read_text())["refit"]
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["strategy"]["kind"] == "lora"
    clf = pipeline("text-classification", model=str(out / "model"), device="cpu")
    predicted = [p["label"] for p in clf(test_texts)]
    accuracy = float(np.mean([p == y for p, y in zip(predicted, test_labels)]))
    assert accuracy == refit["test_score"]  # the merged export is the trained classifier


def test_a_lora_adapter_saved_alone_rebuilds_the_encoder_with_peft(tiny_bert: Path,
                                                                   tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoModelForSequenceClassification

    space = {"kind": "lora", "frozen_layers": 2, "lora_rank": 4, "lora_targets": "attention",
             "lora_learning_rate": 5e-3, "head_learning_rate": 5e-3, "head": "linear",
             "pooling": "mean", "epochs": 1, "batch_size": 8}
    out = tmp_path / "out"
    data = synthetic_texts(120)
    autoft.search(data, model=str(tiny_bert), space=space, out=out, n_trials=1,
                  seeds=1, curve_sizes=(), device="cpu", validation_size=40)
    result = autoft.refit(out, device="cpu", adapter=True, data=data)
    adapter = Path(result.path) / "adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["r"] == 4 and config["base_model_name_or_path"] == str(tiny_bert)
    assert sorted({t.split(".")[2] for t in config["target_modules"]}) == ["2", "3"]
    # peft rebuilds the fine-tuned encoder from the backbone and the adapter alone
    encoder = PeftModel.from_pretrained(AutoModel.from_pretrained(tiny_bert), adapter).eval()
    merged = AutoModelForSequenceClassification.from_pretrained(result.path).eval()
    ids = torch.tensor([[2, 7, 8, 9, 10, 3]])
    with torch.no_grad():
        want = merged.encoder(input_ids=ids).last_hidden_state
        got = encoder(input_ids=ids).last_hidden_state
    assert torch.allclose(got, want, atol=1e-5)
    base = AutoModel.from_pretrained(tiny_bert).eval()
    with torch.no_grad():
        assert not torch.allclose(base(input_ids=ids).last_hidden_state, want, atol=1e-4)
    head = load_file(adapter / "autoft_head.safetensors")
    assert head and all(torch.equal(head[k], v) for k, v in
                        merged.head.state_dict().items() if k in head)
    described = json.loads((adapter / "autoft_head.json").read_text())
    assert described["strategy"]["kind"] == "lora" and described["task"] == "classification"
    assert described["output_transform"] == [1.0, 0.0] and described["max_length"] == 64


def test_adapter_export_refused_for_a_kind_without_adapters(tiny_bert: Path,
                                                            tmp_path: Path) -> None:
    space = {"frozen_layers": 2, "learning_rate": 5e-3, "head_learning_rate": 5e-3,
             "epochs": 1, "batch_size": 16}
    out = tmp_path / "out"
    data = synthetic_texts(80)
    autoft.search(data, model=str(tiny_bert), space=space, out=out, n_trials=1,
                  seeds=1, curve_sizes=(), device="cpu", validation_size=20)
    with pytest.raises(autoft.AutoftError, match="trains no adapter to save alone"):
        autoft.refit(out, device="cpu", adapter=True, data=data)
    assert not (out / "model").exists()  # refused before training or saving
