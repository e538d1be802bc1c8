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


def animal_mnist() -> tuple[Any, Any]:
    """Animal-MNIST (``pip install --no-deps animal-mnist``; MIT): 10,000 uint8 silhouettes
    ``(N, 28, 28)`` and their labels 0-9 (1,000 per class), read from the package's two gzip
    pickles (its own loader imports TensorFlow)."""
    import gzip
    import importlib.util
    import pickle

    spec = importlib.util.find_spec("animal_mnist")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("animal-mnist is not installed: pip install --no-deps animal-mnist")
    folder = Path(list(spec.submodule_search_locations)[0]) / "data" / "Animal_MNIST"
    with gzip.open(folder / "animal_data_version_3.gz") as f:
        images = pickle.load(f)
    with gzip.open(folder / "animal_label_version_3.gz") as f:
        labels = pickle.load(f)
    return images, labels


def image_folder(images: Any, labels: Any, folder: Path) -> Path:
    """Write images as PNG files in one subfolder per class (``folder/<label>/<i>.png``), the
    layout users keep photos in; an existing folder with as many files is reused."""
    from PIL import Image

    if folder.is_dir() and sum(1 for _ in folder.rglob("*.png")) == len(images):
        return folder
    for i, (image, label) in enumerate(zip(images, labels)):
        target = folder / str(label)
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(target / f"{i:05d}.png")
    return folder
