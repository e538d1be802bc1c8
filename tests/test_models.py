from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

from autoft.errors import BackboneError, UnsupportedArchitectureError
from autoft.models import (
    adapter_for,
    default_backbone_path,
    load_backbone,
    locate_parts,
    resolve_backbone,
    supported_model_types,
)


def _tiny(model_type: str) -> nn.Module:
    import transformers as tf

    common = {"vocab_size": 50, "max_position_embeddings": 40}
    if model_type == "bert":
        return tf.BertModel(tf.BertConfig(hidden_size=16, num_hidden_layers=3,
                                          num_attention_heads=2, intermediate_size=32, **common))
    if model_type == "roberta":
        return tf.RobertaModel(tf.RobertaConfig(hidden_size=16, num_hidden_layers=3,
                                                num_attention_heads=2, intermediate_size=32,
                                                **common))
    if model_type == "distilbert":
        return tf.DistilBertModel(tf.DistilBertConfig(dim=16, n_layers=3, n_heads=2,
                                                      hidden_dim=32, **common))
    if model_type == "mpnet":
        return tf.MPNetModel(tf.MPNetConfig(hidden_size=16, num_hidden_layers=3,
                                            num_attention_heads=2, intermediate_size=32, **common))
    if model_type == "electra":
        return tf.ElectraModel(tf.ElectraConfig(embedding_size=8, hidden_size=16,
                                                num_hidden_layers=3, num_attention_heads=2,
                                                intermediate_size=32, **common))
    raise AssertionError(model_type)


@pytest.mark.parametrize("model_type", ["bert", "roberta", "distilbert", "mpnet", "electra"])
def test_locate_parts_per_architecture(model_type: str) -> None:
    model = _tiny(model_type)
    parts = locate_parts(model)
    assert parts.num_layers == 3
    assert isinstance(parts.layers, nn.ModuleList)
    embedding_params = {id(p) for p in parts.embeddings.parameters()}
    # every parameter of the encoder is in exactly one of: embeddings (+extra), a block
    owned = [id(p) for block in parts.layers for p in block.parameters()]
    owned += list(embedding_params)
    owned += [id(p) for m in parts.extra for p in m.parameters()]
    pooler = getattr(model, "pooler", None)
    pooled = {id(p) for p in pooler.parameters()} if pooler is not None else set()
    all_params = {id(p) for p in model.parameters()} - pooled
    assert sorted(owned) == sorted(all_params)
    if model_type == "mpnet":
        assert parts.extra and parts.extra[0] is model.encoder.relative_attention_bias


def test_unsupported_architecture_names_supported_ones() -> None:
    import transformers as tf

    gpt2 = tf.GPT2Model(tf.GPT2Config(n_embd=16, n_layer=2, n_head=2, vocab_size=50))
    with pytest.raises(UnsupportedArchitectureError, match="'gpt2' is not supported") as info:
        locate_parts(gpt2)
    for name in ("bert", "distilbert", "mpnet", "roberta"):
        assert name in str(info.value)
    assert set(supported_model_types()) >= {"bert", "roberta", "distilbert", "mpnet"}


def test_default_backbone_is_bundled_minilm() -> None:
    path = default_backbone_path()
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    assert resolve_backbone(None) == str(path)
    assert resolve_backbone("all-MiniLM-L6-v2") == str(path)


def test_folder_without_config_rejected(tmp_path: Path) -> None:
    with pytest.raises(BackboneError, match="no config.json"):
        resolve_backbone(tmp_path)


def test_load_tiny_folder_drops_pooler(tiny_bert: Path) -> None:
    encoder, tokenizer, resolved = load_backbone(tiny_bert)
    assert resolved == str(tiny_bert.resolve())
    assert getattr(encoder, "pooler", None) is None
    assert locate_parts(encoder).num_layers == 4
    assert tokenizer("good movie")["input_ids"][0] == tokenizer.cls_token_id


def test_unreachable_hub_id_gives_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneError, match="cannot load backbone 'no-such-org/no-such-model'"):
        load_backbone("no-such-org/no-such-model")


@pytest.mark.parametrize(("model_type", "limit"), [("bert", 40), ("roberta", 38), ("mpnet", 38),
                                                   ("distilbert", 40), ("electra", 40)])
def test_max_length_is_the_usable_positions(model_type: str, limit: int) -> None:
    # RoBERTa-type position ids start after the padding index (1): 40 - 1 - 1 usable positions
    model = _tiny(model_type)
    assert adapter_for(model).max_length(model) == limit


def test_max_length_of_real_roberta_sizes() -> None:
    import transformers as tf

    config = tf.RobertaConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                              intermediate_size=32, vocab_size=50, max_position_embeddings=514)
    model = tf.RobertaModel(config)
    assert adapter_for(model).max_length(model) == 512

    class Tok:
        model_max_length = 128

    assert adapter_for(model).max_length(model, Tok()) == 128


@pytest.mark.parametrize("model_type", ["bert", "roberta", "distilbert", "mpnet", "electra"])
def test_hidden_states_and_suffix_reproduce_the_forward_pass(model_type: str) -> None:
    import torch

    torch.manual_seed(0)
    model = _tiny(model_type).eval()
    adapter = adapter_for(model)
    ids = torch.randint(5, 50, (3, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask).last_hidden_state
        states = adapter.hidden_states(model, {"input_ids": ids, "attention_mask": mask}, [1, 2])
        for k, hidden in states.items():
            out = adapter.suffix(model, k)(hidden, mask)
            torch.testing.assert_close(out[mask.bool()], full[mask.bool()], atol=1e-5, rtol=1e-5)


def test_suffix_view_follows_the_mode_it_is_given() -> None:
    model = _tiny("bert").eval()
    view = adapter_for(model).suffix(model, 1)
    view.train(True)
    assert all(shell.training for shell in view.shells)
    view.train(False)
    assert not any(shell.training for shell in view.shells)
    assert not model.training  # the encoder itself is not switched
