"""Tokenized splits and their batches: tokenize once, pad each batch to its longest example."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from autoft.data.task import Split

__all__ = ["EncodedSplit", "collate", "encode_split", "length_grouped_batches", "pad_id"]


@dataclass(frozen=True)
class EncodedSplit:
    """A split tokenized once, without padding.

    Attributes:
        input_ids: Token ids of each example, N arrays of shape ``(T_i,)``.
        token_type_ids: Segment ids of each example (same shapes), or None when the backbone does
            not use them.
        labels: Encoded labels, shape ``(N,)``.
        lengths: ``T_i`` of each example, shape ``(N,)``, in tokens.
        parent: The split this one is a :meth:`subset` of (None for a whole split).
        parent_index: Its examples' indices in ``parent``.
    """

    input_ids: list[np.ndarray]
    token_type_ids: list[np.ndarray] | None
    labels: np.ndarray
    lengths: np.ndarray
    parent: EncodedSplit | None = field(default=None, repr=False, compare=False)
    parent_index: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.input_ids)

    def subset(self, indices: np.ndarray) -> EncodedSplit:
        """The examples at ``indices`` as a new split (that remembers this one as its parent, so
        the prefix cache serves it from this split's entry)."""
        idx = np.asarray([int(i) for i in indices], dtype=np.int64)
        root = self if self.parent is None else self.parent
        root_index = idx if self.parent_index is None else self.parent_index[idx]
        return EncodedSplit(
            input_ids=[self.input_ids[i] for i in idx],
            token_type_ids=None if self.token_type_ids is None
            else [self.token_type_ids[i] for i in idx],
            labels=self.labels[idx],
            lengths=self.lengths[idx],
            parent=root,
            parent_index=root_index,
        )


def pad_id(tokenizer: Any) -> int:
    """The tokenizer's padding token id (0 when it has none)."""
    pad = getattr(tokenizer, "pad_token_id", None)
    return int(pad) if pad is not None else 0


def encode_split(tokenizer: Any, split: Split, max_length: int = 128,
                 resolution: int | None = None) -> Any:
    """Tokenize a split (text pairs as the tokenizer's pair encoding), truncating to max_length;
    for an image backbone, its images as pixels.

    Args:
        tokenizer: A Hugging Face fast tokenizer, or the
            :class:`~autoft.training.pixels.ImageInputs` of an image backbone.
        split: The split.
        max_length: Longest sequence kept, in tokens (longer ones are truncated). Default 128.
            Unused for images.
        resolution: For images, the side in pixels (a strategy's ``resolution``); None: the
            backbone's own. Default None.

    Returns:
        An :class:`EncodedSplit`, or a :class:`~autoft.training.pixels.PixelSplit` for images.
    """
    from autoft.training.pixels import ImageInputs

    if isinstance(tokenizer, ImageInputs):
        return tokenizer.encode(split, resolution)
    if resolution is not None:
        from autoft.errors import StrategyError

        raise StrategyError(f"resolution={resolution} is a field of image backbones; a text "
                            "backbone reads tokens: leave it out")
    enc = tokenizer(
        split.texts, split.text_pairs, truncation=True, max_length=max_length,
        return_attention_mask=False,
    )
    input_ids = [np.asarray(ids, dtype=np.int64) for ids in enc["input_ids"]]
    types = None
    if "token_type_ids" in getattr(tokenizer, "model_input_names", []) and "token_type_ids" in enc:
        types = [np.asarray(t, dtype=np.int64) for t in enc["token_type_ids"]]
    return EncodedSplit(
        input_ids=input_ids,
        token_type_ids=types,
        labels=np.asarray(split.labels),
        lengths=np.asarray([len(ids) for ids in input_ids], dtype=np.int64),
    )


def collate(
    split: EncodedSplit, indices: np.ndarray, pad: int, device: torch.device
) -> dict[str, torch.Tensor]:
    """Pad the examples at ``indices`` to their longest length (dynamic padding).

    Returns:
        ``input_ids``, ``attention_mask`` (and ``token_type_ids``), each ``(B, T)`` int64, and
        ``labels`` ``(B,)``.
    """
    width = int(split.lengths[indices].max())
    ids = np.full((len(indices), width), pad, dtype=np.int64)  # (B, T)
    mask = np.zeros((len(indices), width), dtype=np.int64)  # (B, T)
    types = None if split.token_type_ids is None else np.zeros_like(ids)
    for row, i in enumerate(indices):
        n = split.lengths[i]
        ids[row, :n] = split.input_ids[i]
        mask[row, :n] = 1
        if types is not None and split.token_type_ids is not None:
            types[row, :n] = split.token_type_ids[i]
    batch = {
        "input_ids": torch.from_numpy(ids).to(device),
        "attention_mask": torch.from_numpy(mask).to(device),
        "labels": torch.from_numpy(split.labels[indices]).to(device),
    }
    if types is not None:
        batch["token_type_ids"] = torch.from_numpy(types).to(device)
    return batch


def length_grouped_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator, group: int = 50
) -> list[np.ndarray]:
    """Shuffled batches of similar-length examples, to pad little.

    The examples are shuffled, cut into groups of ``batch_size * group``, sorted by length inside
    each group and cut into batches; the batch order is shuffled again. The idea is Hugging Face
    ``LengthGroupedSampler``'s ("megabatches" of 50 batches; ``transformers.trainer_pt_utils.
    get_length_grouped_indices``), written here for numpy generators.

    Args:
        lengths: Length of each example in tokens, shape ``(N,)``.
        batch_size: Examples per batch.
        rng: Source of the shuffles.
        group: Batches per sorted group. Default 50.

    Returns:
        Index arrays covering ``0..N-1`` once, each of at most ``batch_size`` indices.
    """
    perm = rng.permutation(len(lengths))
    mega = batch_size * group
    batches: list[np.ndarray] = []
    for start in range(0, len(perm), mega):
        chunk = perm[start:start + mega]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]
