"""Classification heads and pooling: a pooled vector ``(B, H)`` from hidden states ``(B, T, H)``,
then a linear layer or an MLP to the outputs ``(B, K)``. The modules themselves are defined in
:mod:`autoft.models.modeling_autoft` (shared with the exported model)."""

from __future__ import annotations

from torch import nn

from autoft.models.modeling_autoft import build_head as _build_head
from autoft.models.modeling_autoft import pool
from autoft.strategies.base import Head

__all__ = ["build_head", "pool"]


def build_head(hidden_size: int, num_outputs: int, head: Head) -> nn.Sequential:
    """Build a head.

    Args:
        hidden_size: Width H of the pooled backbone output.
        num_outputs: Width K of the output (classes).
        head: Its shape.

    Returns:
        A module mapping ``(B, H)`` to ``(B, K)``: ``Dropout -> Linear`` for a linear head;
        ``depth`` x ``(Dropout -> Linear -> GELU)`` then ``Dropout -> Linear`` for an MLP.
    """
    return _build_head(hidden_size, num_outputs, **head.to_dict())
