"""The frozen-prefix cache: a trial pays only for the blocks it trains.

With ``frozen_layers = k >= 1`` the embeddings and the bottom k blocks are frozen and run in eval
mode, so their output depends only on the input. :class:`PrefixCache` computes the hidden states
after block k once per (backbone weights, k, tokenized split) and keeps them on disk (a NumPy file
per entry, float16 by default, memory-mapped when read), so later epochs and later trials run only
blocks k+1..L and the head; a head-only trial (k = L) trains from cached features alone.

Entries are keyed by SHA-256 hashes of the prefix's weights, k, the token ids and the storage
dtype, so a changed model or dataset never reads a stale entry. The folder is bounded
(``max_bytes``): the least recently used entries are evicted first.

To run only the top blocks, the encoder is viewed through a shallow copy whose block list is a
slice and whose embedding module passes given hidden states through: the model's own ``forward``
then builds its attention mask (and MPNet its relative position bias) exactly as it always does,
whatever the transformers version.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from autoft.backbone import _LAYOUTS, locate_parts

__all__ = ["CachedSplit", "PrefixCache", "default_cache_dir", "prefix_view", "suffix_view"]

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$AUTOFT_CACHE_DIR``, else ``$XDG_CACHE_HOME/autoft/prefix``, else ``~/.cache/...``."""
    if os.environ.get("AUTOFT_CACHE_DIR"):
        return Path(os.environ["AUTOFT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "autoft" / "prefix"


class _Passthrough(nn.Module):
    """Stands in for the embeddings: returns the hidden states given as ``inputs_embeds``."""

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        embeds = kwargs.get("inputs_embeds")
        if embeds is None:  # DistilBERT passes (input_ids, inputs_embeds, ...) positionally
            embeds = next((a for a in args if torch.is_tensor(a) and a.dim() == 3), None)
        if embeds is None:
            raise RuntimeError("the cached suffix needs hidden states as inputs_embeds")
        return embeds


def _shallow(module: nn.Module) -> nn.Module:
    """A copy of ``module`` sharing its parameters and submodules, with its own module table."""
    view = object.__new__(type(module))
    view.__dict__ = module.__dict__.copy()
    view._modules = dict(module._modules)  # type: ignore[assignment]
    return view


#: Modules between the embeddings and the first block, bypassed (with the embeddings) when the
#: suffix is fed cached hidden states.
_BYPASS = {"electra": ("embeddings_project",)}


def _view(encoder: nn.Module, start: int, stop: int, passthrough: bool) -> nn.Module:
    config: Any = encoder.config
    model_type = str(config.model_type)
    emb_path, layers_path, _ = _LAYOUTS[model_type]
    layers = locate_parts(encoder).layers
    root = _shallow(encoder)
    *parents, name = layers_path.split(".")
    holder = root
    for part in parents:  # copy the path down to the block list, so the original is untouched
        child = _shallow(getattr(holder, part))
        holder._modules[part] = child
        holder = child
    holder._modules[name] = nn.ModuleList(list(layers)[start:stop])
    if passthrough:
        root._modules[emb_path] = _Passthrough()
        for name in _BYPASS.get(model_type, ()):
            if name in root._modules:
                root._modules[name] = nn.Identity()
    return root


def prefix_view(encoder: nn.Module, k: int) -> nn.Module:
    """The encoder's embeddings and bottom ``k`` blocks, callable like the encoder."""
    return _view(encoder, 0, k, passthrough=False)


def suffix_view(encoder: nn.Module, k: int) -> nn.Module:
    """The encoder's blocks ``k..L-1``; call it with ``inputs_embeds`` = hidden states after
    block k and the attention mask. Shares its parameters with ``encoder``."""
    return _view(encoder, k, len(locate_parts(encoder).layers), passthrough=True)


@dataclass(frozen=True)
class CachedSplit:
    """Hidden states after block k for every example of a split.

    Attributes:
        hidden: All examples' states stacked, shape ``(sum T_i, H)``, float16 or float32 (a
            memory map when read from disk).
        offsets: Start row of each example in ``hidden``, shape ``(N + 1,)``.
        labels: Class ids, shape ``(N,)``.
        lengths: ``T_i`` of each example in tokens, shape ``(N,)``.
    """

    hidden: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.lengths)

    def subset(self, indices: np.ndarray) -> CachedSplit:
        """The examples at ``indices`` (copied into memory)."""
        idx = [int(i) for i in indices]
        parts = [self.hidden[self.offsets[i]:self.offsets[i + 1]] for i in idx]
        lengths = self.lengths[idx]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        hidden = np.concatenate(parts) if parts else self.hidden[:0]
        return CachedSplit(np.ascontiguousarray(hidden), offsets, self.labels[idx], lengths)

    def collate(self, indices: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        """Pad the examples at ``indices``: ``hidden`` ``(B, T, H)`` float32,
        ``attention_mask`` ``(B, T)`` int64, ``labels`` ``(B,)``."""
        width = int(self.lengths[indices].max())
        batch = np.zeros((len(indices), width, self.hidden.shape[1]), dtype=np.float32)
        mask = np.zeros((len(indices), width), dtype=np.int64)
        for row, i in enumerate(indices):
            n = self.lengths[i]
            batch[row, :n] = self.hidden[self.offsets[i]:self.offsets[i] + n]
            mask[row, :n] = 1
        return {
            "hidden": torch.from_numpy(batch).to(device),
            "attention_mask": torch.from_numpy(mask).to(device),
            "labels": torch.from_numpy(self.labels[indices]).to(device),
        }


def _hash_prefix(encoder: nn.Module, k: int) -> str:
    parts = locate_parts(encoder)
    h = hashlib.sha256(f"{encoder.config.model_type}:{k}".encode())  # type: ignore[union-attr]
    for module in (parts.embeddings, *parts.extra, *list(parts.layers)[:k]):
        for name, tensor in module.state_dict().items():
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _hash_split(split: Any) -> str:
    h = hashlib.sha256()
    for ids in split.input_ids:
        h.update(np.asarray(ids, dtype=np.int64).tobytes())
        h.update(b"|")
    if split.token_type_ids is not None:
        for types in split.token_type_ids:
            h.update(np.asarray(types, dtype=np.int64).tobytes())
    return h.hexdigest()


class PrefixCache:
    """Disk cache of frozen-prefix hidden states, bounded in size (least recently used evicted).

    Args:
        folder: Where entries live. Default :func:`default_cache_dir`.
        max_bytes: Largest total size of the entries, in bytes. Default 4 GiB.
        dtype: Storage precision, ``"float16"`` (default, half the size) or ``"float32"``
            (bit-faithful to the uncached forward pass).
        batch_size: Examples per forward pass when filling an entry. Default 128.

    ``get(encoder, k, split, pad_id, device)`` returns the :class:`CachedSplit`, computing and
    storing it the first time. Counters ``hits`` and ``misses`` say what happened.
    """

    def __init__(self, folder: str | Path | None = None, max_bytes: int = 4 << 30,
                 dtype: str = "float16", batch_size: int = 128) -> None:
        if dtype not in ("float16", "float32"):
            raise ValueError(f"dtype={dtype!r} must be 'float16' or 'float32'")
        self.folder = Path(folder) if folder is not None else default_cache_dir()
        self.max_bytes = int(max_bytes)
        self.dtype = dtype
        self.batch_size = batch_size
        self.hits = 0
        self.misses = 0
        self._prefix_hashes: dict[tuple[int, int], str] = {}
        self._loaded: dict[str, CachedSplit] = {}

    def key(self, encoder: nn.Module, k: int, split: Any) -> str:
        """The entry's key: hash of prefix weights, k, token ids and dtype."""
        memo = (id(encoder), k)
        if memo not in self._prefix_hashes:
            self._prefix_hashes[memo] = _hash_prefix(encoder, k)
        h = hashlib.sha256(f"{self._prefix_hashes[memo]}:{_hash_split(split)}:{self.dtype}"
                           .encode())
        return h.hexdigest()[:40]

    def get(self, encoder: nn.Module, k: int, split: Any, pad_id: int,
            device: torch.device) -> CachedSplit:
        """The hidden states after block ``k`` of every example of ``split`` (an
        :class:`~autoft.finetune.EncodedSplit`), from memory, disk, or computed now."""
        key = self.key(encoder, k, split)
        if key in self._loaded:
            self.hits += 1
            return self._loaded[key]
        path = self.folder / f"{key}.npz"
        cached = self._read(path, split)
        if cached is None:
            self.misses += 1
            cached = self._compute(encoder, k, split, pad_id, device)
            self._write(path, cached)
        else:
            self.hits += 1
        self._loaded[key] = cached
        return cached

    def _read(self, path: Path, split: Any) -> CachedSplit | None:
        hidden_path = path.with_suffix(".hidden.npy")
        if not (path.is_file() and hidden_path.is_file()):
            return None
        try:
            meta = np.load(path)
            hidden = np.load(hidden_path, mmap_mode="r")
            os.utime(path)  # recently used: evicted last
            return CachedSplit(hidden, meta["offsets"], np.asarray(split.labels), meta["lengths"])
        except (OSError, ValueError, KeyError):
            logger.warning("unreadable cache entry %s is recomputed", path)
            return None

    @torch.inference_mode()
    def _compute(self, encoder: nn.Module, k: int, split: Any, pad_id: int,
                 device: torch.device) -> CachedSplit:
        from autoft.finetune import collate

        prefix = prefix_view(encoder, k).to(device)
        was_training = encoder.training
        prefix.eval()
        lengths = np.asarray(split.lengths)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        config: Any = encoder.config
        width = int(config.hidden_size)
        hidden = np.empty((int(offsets[-1]), width), dtype=self.dtype)
        order = np.argsort(lengths, kind="stable")
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            batch = collate(split, idx, pad_id, device)
            batch.pop("labels")
            states = prefix(**batch).last_hidden_state.float().cpu().numpy()  # (B, T, H)
            for row, i in enumerate(idx):
                hidden[offsets[i]:offsets[i + 1]] = states[row, :lengths[i]]
        encoder.train(was_training)
        return CachedSplit(hidden, offsets, np.asarray(split.labels), lengths)

    def _write(self, path: Path, cached: CachedSplit) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            hidden_path = path.with_suffix(".hidden.npy")
            tmp = hidden_path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, cached.hidden)
            tmp.replace(hidden_path)
            tmp_meta = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp_meta, offsets=cached.offsets, lengths=cached.lengths)
            tmp_meta.replace(path)  # the meta file last: its presence marks a complete entry
            self._evict()
        except OSError as exc:  # a full or read-only disk only costs speed
            logger.warning("prefix cache not written to %s: %s", self.folder, exc)

    def _evict(self) -> None:
        entries = []
        for meta in self.folder.glob("*.npz"):
            hidden = meta.with_suffix(".hidden.npy")
            size = meta.stat().st_size + (hidden.stat().st_size if hidden.exists() else 0)
            entries.append((meta.stat().st_mtime, size, meta, hidden))
        total = sum(e[1] for e in entries)
        for _, size, meta, hidden in sorted(entries, key=lambda e: e[0]):
            if total <= self.max_bytes:
                break
            for p in (meta, hidden):
                p.unlink(missing_ok=True)
            total -= size
            logger.info("evicted prefix cache entry %s", meta.name)

    def size_bytes(self) -> int:
        """Total size of the entries on disk, in bytes."""
        return sum(p.stat().st_size for p in self.folder.glob("*.np[yz]")) if self.folder.exists() \
            else 0
