"""Test helpers: tiny random backbones saved as Hugging Face folders, synthetic data."""

from __future__ import annotations

import random
from pathlib import Path

DATA = Path(__file__).parent / "data"
POSITIVE = ["good", "great", "fine", "nice", "lovely"]
NEGATIVE = ["bad", "awful", "poor", "sad", "dull"]
FILLER = ["the", "movie", "was", "a", "film", "plot", "very", "and", "it", "story", "acting",
          "quite", "really", "this", "that", "one"]


def synthetic_texts(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n`` short sentences labelled "pos"/"neg" by the sentiment word they contain."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        positive = i % 2 == 0
        words = rng.sample(FILLER, rng.randint(3, 8))
        words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if positive else NEGATIVE))
        texts.append(" ".join(words))
        labels.append("pos" if positive else "neg")
    return texts, labels


def synthetic_csv(path: Path, header: str = "text,label", n: int = 120) -> Path:
    """Write :func:`synthetic_texts` as a CSV file at ``path`` with the given header line."""
    texts, labels = synthetic_texts(n)
    path.write_text(header + "\n" + "".join(f"{t},{lab}\n" for t, lab in zip(texts, labels)))
    return path


def _write_vocab(folder: Path) -> Path:
    words = sorted(set(POSITIVE + NEGATIVE + FILLER))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    path = folder / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n")
    return path


def make_tiny_bert(folder: Path, num_layers: int = 4, hidden: int = 32, seed: int = 0) -> Path:
    """Save a tiny random BERT and a word-level BERT tokenizer in ``folder``."""
    import torch
    import transformers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = _write_vocab(folder)
    words = vocab.read_text().split()
    if int(transformers.__version__.split(".")[0]) >= 5:  # v5 takes the vocabulary itself
        tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(words)})
    else:  # v4 takes a vocab file
        tokenizer = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=hidden, num_hidden_layers=num_layers,
        num_attention_heads=2, intermediate_size=2 * hidden, max_position_embeddings=64,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
