"""The backbone-adapter seam: where a backbone's parts are, and how to run part of it.

autoft needs three things from a backbone family, and a :class:`BackboneAdapter` gives them:

* **its parts** (:class:`BackboneParts`): the embeddings, the stack of L blocks (bottom first),
  modules that belong with the embeddings (frozen with them) and modules after the blocks, so a
  strategy can freeze "the embeddings and the bottom k blocks" by module structure, never by name
  substrings (freezing ``layer.1`` never also freezes ``layer.10``);
* **the hidden states after block k** for a batch (:meth:`BackboneAdapter.hidden_states`), to fill
  the frozen-prefix cache, and a **suffix** that runs blocks k+1..L from such hidden states
  (:meth:`BackboneAdapter.suffix`), so a trial with k frozen blocks runs only the blocks it trains;
* the **longest input** its position table allows (:meth:`BackboneAdapter.max_length`).

Adapters register for Hugging Face ``model_type`` values with :func:`register_adapter`;
:func:`adapter_for` finds the one for a loaded model. Modelled on PEFT's per-architecture target
module tables, with the structure lookup in one place.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from autoft.errors import UnsupportedArchitectureError

if TYPE_CHECKING:  # torch is imported by whoever holds a model
    import torch
    from torch import nn

__all__ = [
    "BackboneAdapter",
    "BackboneParts",
    "adapter_for",
    "has_module",
    "module_at",
    "register_adapter",
    "supported_model_types",
]


@dataclass(frozen=True)
class BackboneParts:
    """Where the parts of a backbone are.

    Attributes:
        embeddings: The input embedding module, frozen for every ``frozen_layers >= 1``.
        layers: The blocks, bottom (closest to the input) first; length L.
        extra: Other modules that belong with the embeddings and are frozen with them (e.g.
            MPNet's relative position bias, ELECTRA's embedding projection).
        post: Modules after the last block (e.g. a final LayerNorm); they train whenever the top
            block trains. Empty for BERT-like encoders.
    """

    embeddings: nn.Module
    layers: nn.ModuleList
    extra: tuple[nn.Module, ...] = ()
    post: tuple[nn.Module, ...] = ()

    @property
    def num_layers(self) -> int:
        """Number of blocks L."""
        return len(self.layers)

    def prefix_modules(self, k: int) -> list[nn.Module]:
        """The modules that make up the frozen prefix of ``k`` blocks (none for k = 0)."""
        return [] if k == 0 else [self.embeddings, *self.extra, *list(self.layers)[:k]]


class BackboneAdapter(ABC):
    """Interface of a backbone family. Subclass it and register an instance with
    :func:`register_adapter`.

    Class attributes:
        model_types: The Hugging Face ``config.model_type`` values it handles.
    """

    model_types: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def parts(self, model: nn.Module) -> BackboneParts:
        """Locate the parts of ``model``.

        Raises:
            UnsupportedArchitectureError: The model lacks the expected modules.
        """

    @abstractmethod
    def hidden_states(self, model: nn.Module, batch: dict[str, torch.Tensor],
                      ks: Iterable[int]) -> dict[int, torch.Tensor]:
        """Hidden states ``(B, T, H)`` after block k, for each k in ``ks`` (1..L), from one
        forward pass in the model's current mode; ``batch`` holds the model's inputs."""

    @abstractmethod
    def suffix(self, model: nn.Module, k: int) -> Any:
        """A callable ``suffix(hidden, attention_mask) -> (B, T, H)`` that runs blocks k+1..L (and
        ``post``) of ``model`` on hidden states after block k, sharing the model's parameters. It
        has a ``train(mode)`` method that the classifier calls with its own mode."""

    def max_length(self, model: nn.Module, tokenizer: Any = None) -> int | None:
        """The longest input, in tokens, the position table allows (None: no limit known).

        Default: ``config.max_position_embeddings``, capped by the tokenizer's
        ``model_max_length`` when that is a real limit (below 1e6).
        """
        positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        limit = int(positions) if isinstance(positions, int) else None
        tok = getattr(tokenizer, "model_max_length", None)
        if isinstance(tok, int) and 0 < tok < 1_000_000:
            limit = tok if limit is None else min(limit, tok)
        return limit

    def prefix_fingerprint(self, model: nn.Module, k: int) -> str:
        """SHA-256 of the weights of the frozen prefix of ``k`` blocks (the prefix cache's key).

        Two models with the same fingerprint compute the same hidden states after block k.
        """
        return combine_digests(self.module_digests(model)[: 1 + k], f"{_model_type(model)}:{k}")

    def module_digests(self, model: nn.Module) -> list[str]:
        """One digest per prefix unit: ``[embeddings + extra, block 1, ..., block L]``."""
        parts = self.parts(model)
        units: list[list[nn.Module]] = [[parts.embeddings, *parts.extra],
                                        *[[block] for block in parts.layers]]
        return [_digest(modules) for modules in units]


def module_at(obj: Any, path: str) -> Any:
    """The attribute at a dotted ``path`` of ``obj`` (``"encoder.layer"``).

    Raises:
        AttributeError: A name on the path is missing.
    """
    for name in path.split("."):
        obj = getattr(obj, name)
    return obj


def has_module(obj: Any, path: str) -> bool:
    """Whether ``obj`` has the dotted attribute ``path``."""
    try:
        module_at(obj, path)
    except AttributeError:
        return False
    return True


def _digest(modules: list[nn.Module]) -> str:
    h = hashlib.sha256()
    for module in modules:
        for name, tensor in module.state_dict().items():
            h.update(name.encode())
            h.update(str(tuple(tensor.shape)).encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def combine_digests(digests: list[str], salt: str = "") -> str:
    """One SHA-256 hex digest of several (e.g. of a prefix's modules)."""
    h = hashlib.sha256(salt.encode())
    for d in digests:
        h.update(d.encode())
    return h.hexdigest()


def _model_type(model: Any) -> Any:
    return getattr(getattr(model, "config", None), "model_type", None)


_ADAPTERS: dict[str, BackboneAdapter] = {}


def register_adapter(adapter: BackboneAdapter) -> BackboneAdapter:
    """Register ``adapter`` for each of its ``model_types`` and return it."""
    for model_type in adapter.model_types:
        _ADAPTERS[model_type] = adapter
    return adapter


def supported_model_types() -> tuple[str, ...]:
    """The ``model_type`` values some registered adapter handles, sorted (the package's
    ``__init__``, which Python runs before this module, imports the built-in adapters)."""
    return tuple(sorted(_ADAPTERS))


def adapter_for(model: Any) -> BackboneAdapter:
    """The registered adapter of ``model``'s ``config.model_type``.

    Raises:
        UnsupportedArchitectureError: No adapter handles it (the message names the supported
            types).
    """
    supported = supported_model_types()
    model_type = _model_type(model)
    if model_type not in _ADAPTERS:
        raise UnsupportedArchitectureError(
            f"backbone architecture {model_type!r} is not supported; autoft can locate the blocks "
            f"of {', '.join(supported)}"
        )
    return _ADAPTERS[model_type]
