"""Classification heads and pooling: a pooled vector ``(B, H)`` from hidden states ``(B, T, H)``,
then a linear layer or an MLP to the outputs ``(B, K)``."""

from __future__ import annotations

import torch
from torch import nn

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
    layers: list[nn.Module] = []
    width_in = hidden_size
    if head.kind == "mlp":
        for _ in range(head.depth):
            layers += [nn.Dropout(head.dropout), nn.Linear(width_in, head.width), nn.GELU()]
            width_in = head.width
    layers += [nn.Dropout(head.dropout), nn.Linear(width_in, num_outputs)]
    return nn.Sequential(*layers)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool hidden states ``(B, T, H)`` into ``(B, H)``: the first token (``"cls"``) or the mean
    over the tokens the attention mask ``(B, T)`` keeps (``"mean"``)."""
    if pooling == "cls":
        return hidden[:, 0]  # (B, H)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, H)
