"""The frozen-prefix cache: a trial pays only for the blocks it trains.

A strategy that leaves the embeddings and the bottom k blocks untouched (see
:meth:`autoft.Strategy.cached_layers`) runs them in eval mode, so their output depends only on the
input. :class:`PrefixCache` computes the hidden states after block k once per (prefix weights, k,
tokenized split) and keeps them on disk (a NumPy file per entry, float16 by default, written and
read as a memory map, so entries do not sit in RAM); later epochs and later trials run only blocks
k+1..L and the head, and a head-only trial (k = L) trains from cached features alone.

**Where it pays.** A training step costs about ``k f`` for the frozen prefix (forward only) plus
``3 (L - k) f`` for the trained blocks (forward and backward, about twice the forward), so the
cache saves the share ``k / (k + 3 (L - k))`` of a step, less the cost of copying cached states
into each batch. :func:`cache_pays` uses the cache when that share is at least
:data:`MIN_SAVING`. Measured on this project's 2-core CPU with MiniLM (6 blocks,
``benchmarks/epoch_speed.py``): at k = 1 (share 0.06) a cached epoch on 2,000 SST-2 rows took
12.3 s against 11.8 s uncached; at k = 3 (share 0.25) on 8,000 rows 23.1 s against 28.7 s; at
k = 5, 8.4 s against 17.3 s.

**Filling.** One forward pass with ``output_hidden_states`` gives the states after every block,
so a miss fills every k for which the cache pays, in one pass over the split (when they fit in
half the folder's size bound; else only the k asked for). The fill is priced apart from training
(its seconds and examples are counted, and the cost model reports them separately).

**Keys** are SHA-256 hashes of the prefix's weights (per block, so the entries for k = 1..L of
one backbone share the work), k, the token ids and the storage dtype: a changed model or dataset
never reads a stale entry. Labels are not stored (the training loop takes them from the tokenized
split). The folder is bounded (``max_bytes``): the least recently used entries are evicted first.
The caller's encoder is never moved, cast or left in another mode.

**Images.** For an image backbone the states after stage k have one shape per example (``(C, h,
w)`` for a CNN, ``(T, H)`` for a ViT); an entry stores each example as one row of that size and
:meth:`CachedSplit.collate` gives them back in that shape. The key hashes the pixels, so each
input resolution has its own entries.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from autoft.models.adapter import adapter_for, combine_digests
from autoft.training.batching import EncodedSplit, collate
from autoft.training.pixels import PixelSplit

__all__ = ["MIN_SAVING", "CachedSplit", "PrefixCache", "cache_pays", "default_cache_dir"]

logger = logging.getLogger(__name__)

#: Least share of a training step's compute the cache must save to be used (see the module doc).
MIN_SAVING = 0.2


def cache_pays(k: int, num_layers: int) -> bool:
    """Whether a strategy with ``k`` untouched bottom blocks of ``num_layers`` should train from
    cached hidden states: k = L always; 0 < k < L when ``k / (k + 3 (L - k)) >= MIN_SAVING``
    (k >= 3 of 6 blocks, k >= 6 of 12)."""
    if k <= 0 or num_layers <= 0:
        return False
    if k >= num_layers:
        return True
    return k / (k + 3 * (num_layers - k)) >= MIN_SAVING


def default_cache_dir() -> Path:
    """``$AUTOFT_CACHE_DIR``, else ``$XDG_CACHE_HOME/autoft/prefix``, else ``~/.cache/...``."""
    if os.environ.get("AUTOFT_CACHE_DIR"):
        return Path(os.environ["AUTOFT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "autoft" / "prefix"


@dataclass(frozen=True)
class CachedSplit:
    """Hidden states after block k for the examples of a split.

    Attributes:
        hidden: All examples' states stacked, shape ``(sum T_i, H)``, float16 or float32 (a
            memory map when it lives on disk).
        offsets: Start row of each example in ``hidden``, shape ``(N + 1,)``.
        all_lengths: ``T_i`` of each stored example, shape ``(N,)``.
        select: The stored examples this split holds, in order (None: all of them).
        shape: For images, the shape of one example's states (``(C, h, w)`` or ``(T, H)``);
            each example is then one row of ``hidden``. None for text.
    """

    hidden: np.ndarray
    offsets: np.ndarray
    all_lengths: np.ndarray
    select: np.ndarray | None = None
    shape: tuple[int, ...] | None = None

    def _rows(self, indices: np.ndarray) -> np.ndarray:
        return np.asarray(indices) if self.select is None else self.select[np.asarray(indices)]

    def __len__(self) -> int:
        return len(self.all_lengths) if self.select is None else len(self.select)

    @property
    def lengths(self) -> np.ndarray:
        """``T_i`` of each example of this split, shape ``(len(self),)``."""
        return self.all_lengths if self.select is None else self.all_lengths[self.select]

    def subset(self, indices: np.ndarray) -> CachedSplit:
        """The examples at ``indices`` (a view: nothing is copied)."""
        return CachedSplit(self.hidden, self.offsets, self.all_lengths,
                           self._rows(np.asarray(indices, dtype=np.int64)), self.shape)

    def collate(self, indices: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        """Pad the examples at ``indices``: ``hidden`` ``(B, T, H)`` float32 and
        ``attention_mask`` ``(B, T)`` int64; for images ``hidden`` ``(B, *shape)`` alone."""
        rows = self._rows(indices)
        if self.shape is not None:
            order = np.argsort(rows, kind="stable")  # memory maps read fastest in order
            batch = np.empty((len(rows), *self.shape), dtype=np.float32)
            batch[order] = np.asarray(self.hidden[rows[order]], dtype=np.float32).reshape(
                len(rows), *self.shape)
            return {"hidden": torch.from_numpy(batch).to(device)}
        lengths = self.all_lengths[rows]
        width = int(lengths.max())
        batch = np.zeros((len(rows), width, self.hidden.shape[1]), dtype=np.float32)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for b, (i, n) in enumerate(zip(rows, lengths)):
            batch[b, :n] = self.hidden[self.offsets[i]:self.offsets[i] + n]
            mask[b, :n] = 1
        return {"hidden": torch.from_numpy(batch).to(device),
                "attention_mask": torch.from_numpy(mask).to(device)}


def _hash_split(split: EncodedSplit | PixelSplit) -> str:
    h = hashlib.sha256()
    if isinstance(split, PixelSplit):  # the pixels, and how they are normalised
        h.update(f"pixels{split.pixels.shape}{split.mean}{split.std}".encode())
        h.update(np.ascontiguousarray(split.pixels).tobytes())
        return h.hexdigest()
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
        batch_size: Examples per forward pass when filling. Default 128.
        max_loaded: Entries kept open in this process (memory maps, or arrays when the disk
            cannot be written), least recently used dropped first. Default 16.
        fill_all: On a miss, fill every k for which the cache pays in the same pass. Default True.

    ``get(encoder, k, split, pad_id, device)`` returns the :class:`CachedSplit`, computing and
    storing it the first time. Counters: ``hits``, ``misses``, ``fill_seconds`` and
    ``fill_examples`` (examples forwarded to fill entries).

    Raises:
        ValueError: An unknown dtype.
    """

    def __init__(self, folder: str | Path | None = None, max_bytes: int = 4 << 30,
                 dtype: str = "float16", batch_size: int = 128, max_loaded: int = 16,
                 fill_all: bool = True) -> None:
        if dtype not in ("float16", "float32"):
            raise ValueError(f"dtype={dtype!r} must be 'float16' or 'float32'")
        self.folder = Path(folder) if folder is not None else default_cache_dir()
        self.max_bytes = int(max_bytes)
        self.dtype = dtype
        self.batch_size = batch_size
        self.max_loaded = max(1, int(max_loaded))
        self.fill_all = fill_all
        self.hits = 0
        self.misses = 0
        self.fill_seconds = 0.0
        self.fill_examples = 0
        self._digests: weakref.WeakKeyDictionary[nn.Module, list[str]] = (
            weakref.WeakKeyDictionary())
        self._loaded: OrderedDict[str, CachedSplit] = OrderedDict()

    def key(self, encoder: nn.Module, k: int, split: EncodedSplit) -> str:
        """The entry's key: hash of the prefix's weights, k, the token ids and the dtype.

        The weights' digests are computed once per encoder object; do not change an encoder's
        weights between calls (autoft only caches pristine backbones).
        """
        return self._key(self._prefix(encoder, k), _hash_split(split))

    def _prefix(self, encoder: nn.Module, k: int) -> str:
        if encoder not in self._digests:
            self._digests[encoder] = adapter_for(encoder).module_digests(encoder)
        model_type = getattr(encoder.config, "model_type", "")
        return combine_digests(self._digests[encoder][: 1 + k], f"{model_type}:{k}")

    def _key(self, prefix: str, split_hash: str) -> str:
        return hashlib.sha256(f"{prefix}:{split_hash}:{self.dtype}".encode()).hexdigest()[:40]

    def get(self, encoder: nn.Module, k: int, split: EncodedSplit, pad_id: int,
            device: torch.device) -> CachedSplit:
        """The hidden states after block ``k`` of every example of ``split``: from memory, from
        disk, or computed now. A split made by :meth:`EncodedSplit.subset` is served from its
        parent's entry (no recomputation for the learning-curve subsets)."""
        if split.parent is not None and split.parent_index is not None:
            return self.get(encoder, k, split.parent, pad_id, device).subset(split.parent_index)
        split_hash = _hash_split(split)
        key = self._key(self._prefix(encoder, k), split_hash)
        cached = self._loaded.get(key)
        if cached is not None:
            self._loaded.move_to_end(key)
            self.hits += 1
            return cached
        cached = self._read(key)
        if cached is not None:
            self.hits += 1
        else:
            self.misses += 1
            cached = self._fill(encoder, k, split, split_hash, pad_id, device)[k]
        self._remember(key, cached)
        return cached

    def _remember(self, key: str, cached: CachedSplit) -> None:
        self._loaded[key] = cached
        self._loaded.move_to_end(key)
        while len(self._loaded) > self.max_loaded:
            self._loaded.popitem(last=False)

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.folder / f"{key}.npz", self.folder / f"{key}.hidden.npy"

    def _read(self, key: str) -> CachedSplit | None:
        meta_path, hidden_path = self._paths(key)
        if not (meta_path.is_file() and hidden_path.is_file()):
            return None
        try:
            meta = np.load(meta_path)
            hidden = np.load(hidden_path, mmap_mode="r")
            os.utime(meta_path)  # recently used: evicted last
            shape = tuple(int(v) for v in meta["shape"]) if "shape" in meta else None
            return CachedSplit(hidden, meta["offsets"], meta["lengths"], shape=shape)
        except (OSError, ValueError, KeyError):
            logger.warning("unreadable cache entry %s is recomputed", meta_path)
            return None

    @torch.inference_mode()
    def _fill(self, encoder: nn.Module, k: int, split: EncodedSplit, split_hash: str,
              pad_id: int, device: torch.device) -> dict[int, CachedSplit]:
        started = time.monotonic()
        adapter = adapter_for(encoder)
        num_layers = adapter.parts(encoder).num_layers
        lengths = np.asarray(split.lengths, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        runner, was_training = encoder, encoder.training
        param = next(encoder.parameters(), None)
        if param is not None and param.device != device:
            runner = copy.deepcopy(encoder).to(device)  # the caller's encoder stays where it is
        runner.eval()
        candidates = [k] + [j for j in range(1, num_layers + 1) if self.fill_all and j != k
                            and cache_pays(j, num_layers)
                            and self._read(self._key(self._prefix(encoder, j), split_hash)) is None]
        images = isinstance(split, PixelSplit)
        if images:  # one example through the prefix tells each k's shape
            probe = adapter.hidden_states(runner, split.collate(np.arange(1), device), candidates)
            shapes = {j: tuple(int(d) for d in t.shape[1:]) for j, t in probe.items()}
        else:
            shapes = {j: (int(encoder.config.hidden_size),) for j in candidates}
        rows = len(split) if images else int(offsets[-1])
        width = {j: int(np.prod(shape)) for j, shape in shapes.items()}
        itemsize = np.dtype(self.dtype).itemsize
        ks = {k}
        if sum(rows * width[j] * itemsize for j in candidates) <= self.max_bytes // 2:
            ks.update(candidates)
        targets = {j: self._open(self._key(self._prefix(encoder, j), split_hash),
                                 (rows, width[j])) for j in sorted(ks)}
        try:
            order = np.argsort(lengths, kind="stable")
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                if images:
                    batch = split.collate(idx, device)
                else:
                    batch = collate(split, idx, pad_id, device)
                    batch.pop("labels")
                states = adapter.hidden_states(runner, batch, sorted(ks))
                for j, tensor in states.items():
                    values = tensor.float().cpu().numpy()  # (B, T, H), or (B, *shape) for images
                    out = targets[j][1]
                    if images:
                        out[idx] = values.reshape(len(idx), -1)
                        continue
                    for row, i in enumerate(idx):
                        out[offsets[i]:offsets[i + 1]] = values[row, :lengths[i]]
        finally:
            encoder.train(was_training)
        result = {}
        for j, (key, hidden, tmp) in targets.items():
            result[j] = self._commit(key, hidden, tmp, offsets, lengths,
                                     shapes[j] if images else None)
            if j != k:
                self._remember(key, result[j])
        self._evict()
        self.fill_seconds += time.monotonic() - started
        self.fill_examples += len(split)
        logger.debug("prefix cache filled k=%s for %d examples in %.1f s", sorted(ks), len(split),
                     time.monotonic() - started)
        return result

    def _open(self, key: str, shape: tuple[int, int]) -> tuple[str, np.ndarray, Path | None]:
        """A writable array for an entry: a memory map in a temporary file, or (when the folder
        cannot be written) an in-memory array."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f"{key}.{os.getpid()}.tmp.npy"
            array = np.lib.format.open_memmap(tmp, mode="w+", dtype=self.dtype, shape=shape)
            return key, array, tmp
        except OSError as exc:  # a full or read-only disk only costs speed
            logger.warning("prefix cache kept in memory, not written to %s: %s", self.folder, exc)
            return key, np.empty(shape, dtype=self.dtype), None

    def _commit(self, key: str, hidden: np.ndarray, tmp: Path | None, offsets: np.ndarray,
                lengths: np.ndarray, shape: tuple[int, ...] | None = None) -> CachedSplit:
        if tmp is None:
            return CachedSplit(hidden, offsets, lengths, shape=shape)
        meta_path, hidden_path = self._paths(key)
        try:
            if isinstance(hidden, np.memmap):
                hidden.flush()
            tmp.replace(hidden_path)
            tmp_meta = meta_path.with_suffix(f".{os.getpid()}.tmp.npz")
            extra = {} if shape is None else {"shape": np.asarray(shape, dtype=np.int64)}
            np.savez(tmp_meta, offsets=offsets, lengths=lengths, **extra)
            tmp_meta.replace(meta_path)  # the meta file last: its presence marks a whole entry
            return CachedSplit(np.load(hidden_path, mmap_mode="r"), offsets, lengths, shape=shape)
        except OSError as exc:  # the filled array is still readable where it is
            logger.warning("prefix cache entry not written to %s: %s", self.folder, exc)
            return CachedSplit(hidden, offsets, lengths, shape=shape)

    def _evict(self) -> None:
        entries = []
        for meta in self.folder.glob("*.npz"):
            if ".tmp" in meta.name:
                continue
            hidden = meta.with_suffix(".hidden.npy")
            try:
                size = meta.stat().st_size + (hidden.stat().st_size if hidden.exists() else 0)
                entries.append((meta.stat().st_mtime, size, meta, hidden))
            except OSError:  # another process evicted it meanwhile
                continue
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
        if not self.folder.exists():
            return 0
        return sum(p.stat().st_size for p in self.folder.glob("*.np[yz]") if ".tmp" not in p.name)
