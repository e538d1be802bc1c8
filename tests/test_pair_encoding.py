"""Separate pair encoding (a bi-encoder): splitting a tokenized pair into its two texts, the
features the head reads, training, the exported model through ``transformers.pipeline``, and
where the field applies (pairs only)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import autoft
from autoft.errors import StrategyError
from autoft.models.modeling_autoft import pool, pooled_features, split_pair

from .helpers import DATA, synthetic_texts

SPACE = {"frozen_layers": 0, "learning_rate": 5e-3, "head_learning_rate": 5e-3,
         "head": "linear", "pooling": "mean", "epochs": 3, "batch_size": 8,
         "pair_encoding": "separate"}


def _tokenizer(folder: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def test_split_pair_gives_each_text_as_the_tokenizer_encodes_it_alone(tiny_bert: Path) -> None:
    tok = _tokenizer(tiny_bert)
    firsts = ["the movie was great", "bad", "a film"]
    seconds = ["awful", "the plot was good and fun", "great"]
    joint = tok(firsts, seconds, padding=True, return_tensors="pt")
    first, second = split_pair(joint["input_ids"], joint["attention_mask"])
    for part, texts in ((first, firsts), (second, seconds)):
        alone = tok(texts, padding=True, return_tensors="pt")
        assert torch.equal(part["attention_mask"], alone["attention_mask"])
        kept = alone["attention_mask"].bool()
        assert torch.equal(part["input_ids"][kept], alone["input_ids"][kept])
    # RoBERTa's layout, <s> a </s></s> b </s> then padding: the double separator is skipped
    ids = torch.tensor([[0, 5, 6, 2, 2, 7, 8, 9, 2, 1], [0, 5, 2, 2, 7, 2, 1, 1, 1, 1]])
    mask = (ids != 1).long()
    first, second = split_pair(ids, mask)
    assert first["input_ids"][0][first["attention_mask"][0].bool()].tolist() == [0, 5, 6, 2]
    assert first["input_ids"][1][first["attention_mask"][1].bool()].tolist() == [0, 5, 2]
    assert second["input_ids"][0][second["attention_mask"][0].bool()].tolist() == [0, 7, 8, 9, 2]
    assert second["input_ids"][1][second["attention_mask"][1].bool()].tolist() == [0, 7, 2]


def test_separate_features_are_the_texts_encoded_alone(tiny_bert: Path) -> None:
    from transformers import AutoModel

    tok = _tokenizer(tiny_bert)
    encoder = AutoModel.from_pretrained(str(tiny_bert)).eval()
    firsts, seconds = ["the movie was great", "bad"], ["awful plot", "the plot was good and fun"]
    joint = tok(firsts, seconds, padding=True, return_tensors="pt")
    with torch.no_grad():
        features = pooled_features(encoder, dict(joint), "mean", "separate")  # (B, 4H)
        alone = [pool(encoder(**tok(t, padding=True, return_tensors="pt")).last_hidden_state,
                      tok(t, padding=True, return_tensors="pt")["attention_mask"], "mean")
                 for t in (firsts, seconds)]
    h = encoder.config.hidden_size
    assert features.shape == (2, 4 * h)
    u, v = alone
    torch.testing.assert_close(features[:, :h], u, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(features[:, h:2 * h], v, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(features[:, 2 * h:3 * h], (u - v).abs(), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(features[:, 3 * h:], u * v, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("encoding", ["separate", "cosine"])
def test_a_separate_pair_search_refits_and_loads_with_pipeline(tiny_bert: Path, tmp_path: Path,
                                                               encoding: str) -> None:
    import pandas as pd
    from transformers import pipeline

    strategy = autoft.Strategy.from_dict(SPACE | {"pair_encoding": encoding})
    assert strategy.cached_layers(4) == 0 and strategy.family().variant == encoding
    assert "texts of a pair encoded apart" in strategy.describe(4)
    assert ("cosine-similarity head" in strategy.describe(4)) == (encoding == "cosine")
    assert autoft.Strategy(frozen_layers=4).cached_layers(4) == 4
    out = tmp_path / "out"
    dev = pd.read_csv(DATA / "stsb_dev_60.tsv", sep="\t", quoting=3)
    autoft.search(DATA / "stsb_train_120.tsv", validation=DATA / "stsb_dev_60.tsv",
                  test=DATA / "stsb_dev_60.tsv", model=str(tiny_bert), out=out,
                  space=SPACE | {"pair_encoding": encoding}, n_trials=1, device="cpu",
                  refit=True, seeds=1, curve_sizes=(), baselines=False)
    report = json.loads((out / "report.json").read_text())
    assert [t["pair_encoding"] for t in report["trials"]] == [encoding]
    saved = out / "model"
    config = json.loads((saved / "config.json").read_text())
    assert config["pair_encoding"] == encoding
    scorer = pipeline("text-classification", model=str(saved), device="cpu")
    inputs = [{"text": a, "text_pair": b} for a, b in zip(dev["sentence1"], dev["sentence2"])]
    got = np.array([p["score"] for p in scorer(inputs, function_to_apply="none")])
    rmse = math.sqrt(float(np.mean((got - dev["score"].to_numpy()) ** 2)))
    assert rmse == pytest.approx(report["refit"]["test_score"], abs=1e-4)


def test_an_untrained_cosine_head_predicts_the_standardised_cosine(tiny_bert: Path) -> None:
    from transformers import AutoModel

    from autoft.models.classifier import AutoftClassifier
    from autoft.strategies import Head

    tok = _tokenizer(tiny_bert)
    encoder = AutoModel.from_pretrained(str(tiny_bert))
    model = AutoftClassifier(encoder, 1, Head(), "mean", "cosine")
    firsts, seconds = ["the movie was great", "bad", "a film"], ["awful", "good fun", "great"]
    joint = tok(firsts, seconds, padding=True, return_tensors="pt")
    model.train()
    model.encoder.eval()  # no dropout: both passes below see the same features
    with torch.no_grad():
        out = model(**joint)[:, 0]  # (B,) batch statistics in training
        features = pooled_features(model.encoder, {k: joint[k] for k in ("input_ids",
                                                                          "attention_mask")},
                                   "mean", "cosine")
    h = encoder.config.hidden_size
    cos = torch.nn.functional.cosine_similarity(features[:, :h], features[:, h:2 * h])
    expected = (cos - cos.mean()) / torch.sqrt(cos.var(unbiased=False) + 1e-5)
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=1e-4)
    # the running statistics took the batch's; a batch of one uses them in training too
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(**joint)[:, 0], expected, atol=1e-4, rtol=1e-4)
    model.train()
    one = tok(firsts[:1], seconds[:1], return_tensors="pt")
    with torch.no_grad():
        assert torch.isfinite(model(**one)).all()
    with pytest.raises(StrategyError, match="must be one of"):
        autoft.Strategy(pair_encoding="dot")


def test_single_texts_neither_search_nor_take_pair_encoding(tiny_bert: Path,
                                                            tmp_path: Path) -> None:
    import optuna

    texts, labels = synthetic_texts(80)
    with pytest.raises(StrategyError, match="pair_encoding='separate' needs sentence pairs"):
        autoft.fine_tune((texts, labels), SPACE, model=str(tiny_bert), device="cpu")
    out = tmp_path / "single"
    autoft.search((texts, labels), model=str(tiny_bert), n_trials=1, out=out, device="cpu",
                  seeds=1, curve_sizes=(), baselines=False,
                  space=SPACE | {"pair_encoding": {"type": "categorical",
                                                   "choices": ["joint", "separate"]}})
    study = optuna.load_study(study_name="autoft", storage=f"sqlite:///{out / 'study.db'}")
    assert all("pair_encoding" not in t.params for t in study.trials)
    report = json.loads((out / "report.json").read_text())
    assert [t["pair_encoding"] for t in report["trials"]] == ["joint"]


def test_the_default_space_searches_pair_encoding_for_pairs_only() -> None:
    from autoft.searching.space import SearchSpace

    space = SearchSpace.load(None)
    assert set(space.field_values("pair_encoding")) == {"joint", "separate", "cosine"}
    baselines = space.resolved(6).baselines
    assert [(b["frozen_layers"], b["pair_encoding"]) for b in baselines] == [
        (6, "separate"), (3, "joint"), (0, "joint"), (0, "cosine")]
    single = space.for_single_texts()
    assert single.field_values("pair_encoding") == []
    assert [b["frozen_layers"] for b in single.resolved(6).baselines] == [6, 3, 0]
    assert all("pair_encoding" not in b for b in single.baselines)
    # the cosine head has no shape to choose: its head fields are not suggested
    from autoft.strategies import Strategy

    assert not Strategy.uses("head", {"pair_encoding": "cosine"}, 6)
    assert Strategy.uses("head", {"pair_encoding": "separate"}, 6)
