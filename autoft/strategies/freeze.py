"""The default strategy kind, freeze-k: the embeddings and the bottom k blocks are frozen, every
parameter above them trains (full fine-tuning at k = 0, the head only at k = L)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from autoft.errors import StrategyError
from autoft.strategies.base import (
    AppliedStrategy,
    AutoftClassifier,
    Strategy,
    register_strategy_kind,
)

__all__ = ["FreezeStrategy"]


@register_strategy_kind
@dataclass(frozen=True)
class FreezeStrategy(Strategy):
    """Freeze the embeddings and the bottom ``frozen_layers`` blocks; train everything above.

    ``autoft.Strategy(...)`` builds this kind. It has no fields beyond :class:`Strategy`'s.
    """

    kind: ClassVar[str] = "freeze"

    def body(self, num_layers: int | None = None) -> str:
        k = self.frozen_layers
        if k == 0:
            return "full fine-tuning"
        if num_layers is not None and k >= num_layers:
            return ("linear probe (backbone frozen)" if self.head.kind == "linear"
                    else "head only (backbone frozen)")
        return f"freeze embeddings + {k}" + (f"/{num_layers}" if num_layers else "") + " blocks"

    def apply(self, model: AutoftClassifier) -> None:
        parts = model.parts
        k = self.frozen_layers
        if not 0 <= k <= parts.num_layers:
            raise StrategyError(
                f"frozen_layers={k} is out of range for a backbone of {parts.num_layers} blocks; "
                f"it must be in 0..{parts.num_layers}"
            )
        model.set_frozen(parts.prefix_modules(k))

    def check(self, model: AutoftClassifier, applied: AppliedStrategy) -> None:
        from autoft.strategies.apply import count_parameters

        parts = model.parts
        k = self.frozen_layers
        for i, block in enumerate(list(parts.layers)[k:], start=k):
            if any(not p.requires_grad for p in block.parameters()):
                raise StrategyError(f"block {i} is partly frozen; freeze-k freezes a block whole "
                                    "or not at all")
        expected = count_parameters(model) - sum(count_parameters(m)
                                                 for m in parts.prefix_modules(k))
        if applied.frozen_layers != k or applied.trainable_params != expected:
            raise StrategyError(
                f"strategy not applied as specified: asked frozen_layers={k}, model has "
                f"{applied.frozen_layers}; expected {expected} trainable parameters, model has "
                f"{applied.trainable_params}"
            )
