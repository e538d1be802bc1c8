"""The trainable model of a trial: a backbone encoder, a pooling and a head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from autoft.errors import StrategyError
from autoft.models.adapter import BackboneAdapter, BackboneParts, adapter_for
from autoft.models.heads import pool
from autoft.models.image import ImageAdapter
from autoft.models.modeling_autoft import make_head, pooled_features
from autoft.strategies.base import PAIR_ENCODINGS, POOLINGS, Head

__all__ = ["AutoftClassifier"]


class AutoftClassifier(nn.Module):
    """A backbone encoder, a pooling and a head.

    Args:
        encoder: A Hugging Face ``AutoModel`` encoder of a supported architecture.
        num_outputs: Width K of the output (classes).
        head: Shape of the head.
        pooling: ``"cls"`` or ``"mean"``.
        pair_encoding: ``"joint"`` (a sentence pair is read together, a cross-encoder) or
            ``"separate"`` (each text alone, a bi-encoder; the head reads ``[u, v, |u-v|, u*v]``
            of width 4H, see :func:`autoft.models.modeling_autoft.pooled_features`) or
            ``"cosine"`` (each alone; the prediction comes from their cosine similarity, see
            :class:`autoft.models.modeling_autoft.CosineHead`; ``head`` unused). Default
            ``"joint"``.

    ``forward(input_ids, attention_mask, token_type_ids=None)`` takes ``(B, T)`` integer tensors and
    returns ``(B, K)``; for an image backbone, ``forward(pixel_values=...)`` takes ``(B, 3, R, R)``
    and the features are pooled by the backbone family's rule (``pooling`` is unused);
    ``forward(attention_mask=..., hidden=...)`` takes the cached hidden states after the
    ``cached_layers`` bottom blocks ``(B, T, H)`` instead and runs only the blocks above (joint
    encoding only).

    Raises:
        StrategyError: Unknown pooling or pair encoding.
        UnsupportedArchitectureError: No adapter handles the encoder.
    """

    def __init__(self, encoder: nn.Module, num_outputs: int, head: Head, pooling: str,
                 pair_encoding: str = "joint") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise StrategyError(f"pooling={pooling!r} must be one of {POOLINGS}")
        if pair_encoding not in PAIR_ENCODINGS:
            raise StrategyError(
                f"pair_encoding={pair_encoding!r} must be one of {PAIR_ENCODINGS}")
        self.encoder = encoder
        self.adapter: BackboneAdapter = adapter_for(encoder)
        self.parts: BackboneParts = self.adapter.parts(encoder)
        self.pooling = pooling
        self.pair_encoding = pair_encoding
        self.is_image = isinstance(self.adapter, ImageAdapter)
        if self.is_image and pair_encoding != "joint":
            raise StrategyError(f"pair_encoding={pair_encoding!r} needs sentence pairs; an image "
                                "backbone reads one image per example")
        config: Any = encoder.config
        width = (self.adapter.feature_size(encoder) if isinstance(self.adapter, ImageAdapter)
                 else int(config.hidden_size))
        self.head = make_head(width, num_outputs, head.to_dict(), pair_encoding)
        self._frozen: list[nn.Module] = []
        #: Bottom blocks whose outputs ``forward(hidden=...)`` receives (set by the trainer).
        self.cached_layers = 0
        self._suffix: Any = None  # blocks above the cached prefix (a view sharing the weights)

    def set_frozen(self, modules: Sequence[nn.Module]) -> None:
        """Freeze ``modules`` (no gradients, always in eval mode); earlier frozen modules are
        unfrozen first."""
        for module in self._frozen:
            module.requires_grad_(True)
        self._frozen = list(modules)
        for module in self._frozen:
            module.requires_grad_(False)
            module.eval()

    def train(self, mode: bool = True) -> AutoftClassifier:
        """Set train/eval mode; frozen modules always stay in eval mode."""
        super().train(mode)
        for module in self._frozen:
            module.eval()
        if self._suffix is not None:
            self._suffix.train(mode)
        return self

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        hidden: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Outputs ``(B, K)`` from token ids ``(B, T)``, from cached ``hidden`` states, or from
        ``pixel_values`` ``(B, 3, R, R)`` (image backbones)."""
        if isinstance(self.adapter, ImageAdapter):
            if hidden is not None:  # the states after the cached_layers bottom stages
                if self._suffix is None:
                    self._suffix = self.adapter.suffix(self.encoder, self.cached_layers)
                return self.head(self.adapter.pool(self.encoder, self._suffix(hidden)))
            if pixel_values is None:
                raise StrategyError("an image backbone needs pixel_values")
            return self.head(self.adapter.features(self.encoder, pixel_values))  # (B, K)
        if attention_mask is None:
            raise StrategyError("attention_mask is required")
        if hidden is not None:
            if self.cached_layers == 0 or self.pair_encoding != "joint":
                raise StrategyError("cached hidden states need cached_layers >= 1 and joint "
                                    "pair encoding")
            if self._suffix is None:
                self._suffix = self.adapter.suffix(self.encoder, self.cached_layers)
                self._suffix.train(self.training)
            hidden = self._suffix(hidden, attention_mask)  # (B, T, H)
            return self.head(pool(hidden, attention_mask, self.pooling))  # (B, K)
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:  # a split pair drops them (each text alone has none)
            kwargs["token_type_ids"] = token_type_ids
        return self.head(pooled_features(self.encoder, kwargs, self.pooling,
                                         self.pair_encoding))  # (B, K)
