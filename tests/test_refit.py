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
