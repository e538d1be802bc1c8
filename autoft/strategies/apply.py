"""Applying a strategy to a backbone and reading back what was applied."""

from __future__ import annotations

import torch
from torch import nn

from autoft.errors import StrategyError
from autoft.models.classifier import AutoftClassifier
from autoft.strategies.base import AppliedStrategy, Strategy

__all__ = ["build_classifier", "count_parameters", "inspect_frozen_layers"]


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``module`` (only those with ``requires_grad`` if asked)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _all_frozen(module: nn.Module) -> bool:
    return all(not p.requires_grad for p in module.parameters())


def inspect_frozen_layers(model: AutoftClassifier) -> AppliedStrategy:
    """Read the applied freezing back from ``requires_grad`` flags.

    The frozen prefix is the number k of bottom blocks with no trainable parameter. Blocks above
    it may be partly trainable (a strategy kind such as LoRA or BitFit trains part of a block),
    but no block above a trainable one may be wholly frozen.

    Raises:
        StrategyError: The wholly frozen blocks are not a bottom prefix, or blocks are frozen but
            the embeddings are not.
    """
    parts = model.parts
    states = [_all_frozen(block) for block in parts.layers]
    k = 0
    while k < len(states) and states[k]:
        k += 1
    if any(states[k:]):
        raise StrategyError(
            f"frozen blocks are not a bottom prefix: frozen flags per block {states}"
        )
    embeddings_frozen = _all_frozen(parts.embeddings) and all(_all_frozen(m) for m in parts.extra)
    if k > 0 and not embeddings_frozen:
        raise StrategyError(f"{k} blocks are frozen but the embeddings are not")
    return AppliedStrategy(
        frozen_layers=k,
        embeddings_frozen=embeddings_frozen,
        trainable_params=count_parameters(model, trainable_only=True),
        total_params=count_parameters(model),
    )


def build_classifier(
    encoder: nn.Module, strategy: Strategy, num_outputs: int, seed: int = 0
) -> tuple[AutoftClassifier, AppliedStrategy]:
    """Apply a strategy to a backbone and check that it was applied exactly.

    The encoder is used as given (not copied); pass a fresh copy per trial. The head is initialised
    from ``torch.manual_seed(seed)`` without touching the global random state.

    Args:
        encoder: A Hugging Face encoder of a supported architecture.
        strategy: The strategy; ``frozen_layers`` must be in ``0..L``.
        num_outputs: Width of the head's output (classes K).
        seed: Seed of the head's initialisation. Default 0.

    Returns:
        ``(model, applied)``: the classifier in train mode and what the model says was applied.

    Raises:
        StrategyError: ``frozen_layers`` out of range, the model disagrees with the strategy
            (frozen block count, trainable parameter count), or fewer blocks are untouched than
            the strategy's :meth:`~autoft.Strategy.cached_layers` claims.
    """
    encoder.requires_grad_(True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoftClassifier(encoder, num_outputs, strategy.head, strategy.pooling,
                                 strategy.pair_encoding)
    num_layers = model.parts.num_layers
    if not 0 <= strategy.frozen_layers <= num_layers:  # every kind counts k the same way
        raise StrategyError(
            f"frozen_layers={strategy.frozen_layers} is out of range for a backbone of "
            f"{num_layers} blocks; it must be in 0..{num_layers}")
    strategy.apply(model)
    model.train()
    applied = inspect_frozen_layers(model)
    strategy.check(model, applied)
    cached = strategy.cached_layers(model.parts.num_layers)
    if applied.frozen_layers < cached:
        raise StrategyError(
            f"the {strategy.kind!r} strategy says {cached} bottom blocks are untouched, but only "
            f"{applied.frozen_layers} are frozen; their outputs could not be cached"
        )
    return model, applied
