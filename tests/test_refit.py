from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import autoft
from autoft.cli import main

from .helpers import synthetic_texts

SPACE = {"frozen_layers": {"type": "int", "low": 0, "high": "L"}, "learning_rate": 5e-3,
         "head_learning_rate": 5e-3, "head": {"type": "categorical", "choices": ["linear", "mlp"]},
         "head_width": 16, "pooling": "mean", "epochs": 4, "batch_size": 8}


def _files(tmp_path: Path) -> tuple[Path, Path]:
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    for path, (texts, labels) in ((train, synthetic_texts(200)), (test, synthetic_texts(60, 5))):
        path.write_text("text,label\n" + "".join(f"{t},{lab}\n" for t, lab in zip(texts, labels)))
    return train, test


def test_refit_saves_a_pipeline_model_matching_the_report(tiny_bert: Path, tmp_path: Path) -> None:
    from transformers import pipeline

    train, test = _files(tmp_path)
    out = tmp_path / "out"
    result = autoft.search(train, test=test, model=str(tiny_bert), space=SPACE, out=out,
                           n_trials=2, device="cpu", refit=True, validation_size=40)
    refit = json.loads((out / "report.json").read_text())["refit"]
    assert refit["trial_number"] == result.recommendation_.trial_number
    assert refit["test_size"] == 60 and refit["test_score"] >= 0.6
    saved = out / "model"
    config = json.loads((saved / "config.json").read_text())
    assert config["model_type"] == "autoft" and config["id2label"] == {"0": "neg", "1": "pos"}
    assert config["strategy"] == result.best_params_
    clf = pipeline("text-classification", model=str(saved), device="cpu")
    texts, labels = synthetic_texts(60, 5)
    predicted = [p["label"] for p in clf(texts)]
    accuracy = float(np.mean([p == y for p, y in zip(predicted, labels)]))
    assert accuracy == pytest.approx(refit["test_score"], abs=0.005)
    assert "test accuracy" in (out / "report.md").read_text()


def test_refit_command_and_missing_study(tiny_bert: Path, tmp_path: Path) -> None:
    train, test = _files(tmp_path)
    out = tmp_path / "out"
    autoft.search(train, test=test, model=str(tiny_bert), space=SPACE, out=out, n_trials=1,
                  device="cpu", validation_size=40)
    result = CliRunner().invoke(main, ["refit", str(out), "--save-to", str(tmp_path / "m"),
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m" / "model.safetensors").is_file()
    assert "transformers.pipeline" in result.output
    missing = CliRunner().invoke(main, ["refit", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "no study in" in missing.output
    # a study whose files moved (e.g. copied from another machine): the message names the option
    # that the command has, and the option finds them
    moved = tmp_path / "moved"
    moved.mkdir()
    train.rename(moved / "train.csv")
    test.rename(moved / "test.csv")
    lost = CliRunner().invoke(main, ["refit", str(out), "--device", "cpu"])
    assert lost.exit_code == 2 and "does not exist here; pass it with --data" in lost.output
    found = CliRunner().invoke(main, ["refit", str(out), "--device", "cpu", "--data",
                                      str(moved / "train.csv"), "--test", str(moved / "test.csv"),
                                      "--save-to", str(tmp_path / "m2")])
    assert found.exit_code == 0, found.output
    assert (tmp_path / "m2" / "model.safetensors").is_file()


@pytest.mark.parametrize("model_type", ["bert", "roberta", "distilbert"])
@pytest.mark.parametrize("head", [{"kind": "linear"}, {"kind": "mlp", "width": 8, "depth": 2}])
def test_exported_logits_equal_the_classifiers(model_type: str, head: dict[str, object]) -> None:
    import torch

    from autoft.models.hf_model import to_pretrained
    from autoft.strategies import Head, Strategy
    from autoft.strategies.apply import build_classifier

    from .test_models import _tiny

    torch.manual_seed(0)
    strategy = Strategy(frozen_layers=1, head=Head(**head, dropout=0.2), pooling="mean")
    model, _ = build_classifier(_tiny(model_type), strategy, 3, seed=1)
    model.eval()
    exported = to_pretrained(model, {0: "a", 1: "b", 2: "c"}, strategy.to_dict())
    ids = torch.randint(5, 50, (4, 11))
    mask = torch.ones_like(ids)
    mask[2, 7:] = 0
    inputs = {"input_ids": ids, "attention_mask": mask}
    if model_type == "bert":  # segment ids reach the backbone in both
        inputs["token_type_ids"] = (torch.arange(11) > 5).long().expand(4, 11)
    with torch.no_grad():
        expected = model(**inputs)
        got = exported(**inputs).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert exported.config.head == ({"kind": "linear", "dropout": 0.2} if head["kind"] == "linear"
                                    else {"kind": "mlp", "width": 8, "depth": 2, "dropout": 0.2})


@pytest.mark.parametrize("frozen", [0, 3])
def test_the_reports_snippet_reproduces_its_trials_score(tiny_bert: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         frozen: int) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the search keeps the test's one thread
    train, _ = _files(tmp_path)
    space = {**SPACE, "frozen_layers": frozen, "head": "linear", "epochs": 2}
    out = tmp_path / "out"
    result = autoft.search(train, model=str(tiny_bert), space=space, out=out, n_trials=1,
                           seeds=1, curve_sizes=(), device="cpu", validation_size=40)
    report = json.loads((out / "report.json").read_text())
    namespace: dict[str, object] = {}
    exec(report["snippet"], namespace)  # noqa: S102 - the report's own code
    reproduced = namespace["result"]
    trial = result.study_.trials[result.recommendation_.trial_number]
    assert reproduced.validation_score == trial.value  # type: ignore[attr-defined]
    assert reproduced.outcome.cached == (frozen == 3)  # type: ignore[attr-defined]


def test_the_model_folder_a_user_gets(tiny_bert: Path, tmp_path: Path) -> None:
    import os
    import stat
    import subprocess
    import sys

    from transformers import pipeline

    train, test = _files(tmp_path)
    out = tmp_path / "out"
    autoft.search(train, test=test, model=str(tiny_bert), space={**SPACE, "frozen_layers": 2},
                  out=out, n_trials=1, seeds=1, curve_sizes=(), device="cpu",
                  validation_size=40)
    result = autoft.refit(out, device="cpu", portable=True)
    folder = Path(result.path)
    mask = os.umask(0)
    os.umask(mask)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    assert set(modes.values()) == {0o666 & ~mask}, modes  # model.safetensors like the rest
    card = (folder / "README.md").read_text()
    assert "pipeline_tag: text-classification" in card and "## Scores" in card
    assert "freeze embeddings + 2/4 blocks" in card and "trust_remote_code=True" in card
    # a text longer than the position table is cut to the length trained with, no arguments
    clf = pipeline("text-classification", model=str(folder), device="cpu")
    long_text = " ".join(["good"] + ["movie"] * 300)
    assert clf(long_text)[0]["label"] in ("neg", "pos")
    assert clf(long_text, truncation=True)[0] == clf(long_text)[0]
    # the portable folder loads where autoft cannot be imported
    code = ("import sys; sys.modules['autoft'] = None\n"
            "import transformers\n"
            f"clf = transformers.pipeline('text-classification', model={str(folder)!r}, "
            "device='cpu', trust_remote_code=True)\n"
            "print('LABEL', clf('a good film')[0]['label'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert "LABEL pos" in done.stdout or "LABEL neg" in done.stdout, done.stderr[-2000:]
