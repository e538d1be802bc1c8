"""Helpers shared by the benchmark scripts: where the shared data is, machine facts, JSON output."""

from __future__ import annotations

import csv
import json
import os
import platform
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("AUTOFT_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results"


def read_tsv(path: Path) -> pd.DataFrame:
    """Read a GLUE-style TSV (quoting disabled: the sentences contain literal quotes)."""
    if not path.is_file():
        raise SystemExit(f"benchmark data {path} not found; set AUTOFT_SHARED_DATA to shared/data")
    return pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False)


def machine() -> dict[str, Any]:
    """Facts about the machine the numbers were measured on."""
    import torch

    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def save(name: str, payload: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/NAME.json`` and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def sst2_train(rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` rows of SST-2's train.tsv, sampled with ``seed`` (the benchmarks' usual data)."""
    return read_tsv(SHARED_DATA / "sst2" / "train.tsv").sample(n=rows, random_state=seed)


def encoded_task(train: Any, validation: Any, model: str | None = None) -> tuple[Any, ...]:
    """Load the task and the backbone and tokenize both splits, as a search does.

    Args:
        train, validation: Any input :func:`autoft.load_task_data` accepts (a DataFrame, a path).
        model: Backbone folder or name; None for the bundled all-MiniLM-L6-v2.

    Returns:
        ``(task, encoder, tokenizer, train_encoded, validation_encoded)``.
    """
    from autoft.data import load_task_data
    from autoft.models import load_backbone
    from autoft.training import encode_split

    task = load_task_data(train, validation=validation)
    encoder, tokenizer, _ = load_backbone(model)
    return (task, encoder, tokenizer, encode_split(tokenizer, task.train),
            encode_split(tokenizer, task.validation))
