from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

from autoft.backbone import (
    SUPPORTED_MODEL_TYPES,
    default_backbone_path,
    load_backbone,
    locate_parts,
    resolve_backbone,
)
from autoft.errors import BackboneError, UnsupportedArchitectureError


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
    assert set(SUPPORTED_MODEL_TYPES) >= {"bert", "roberta", "distilbert", "mpnet"}


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
