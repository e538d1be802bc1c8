"""Shared fixtures: tiny random backbones saved as Hugging Face folders, and small datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if "AUTOFT_CACHE_DIR" not in os.environ:  # the prefix cache of the tests never touches ~/.cache
    import tempfile

    os.environ["AUTOFT_CACHE_DIR"] = tempfile.mkdtemp(prefix="autoft-test-cache-")

from .helpers import make_tiny_bert, synthetic_texts


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a 4-block, width-32 random BERT with its tokenizer."""
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def synthetic() -> tuple[list[str], list[str]]:
    """240 labelled sentences ("pos"/"neg")."""
    return synthetic_texts(240)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)
