"""The default strategy kind, freeze-k: the embeddings and the bottom k blocks are frozen, every
parameter above them trains (full fine-tuning at k = 0, the head only at k = L), optionally with
layer-wise learning-rate decay.

Layer-wise learning-rate decay (LLRD): block i of L (0 = the bottom) trains at
``learning_rate * layer_decay ** (L - 1 - i)`` and the embeddings at ``learning_rate *
layer_decay ** L``, so that the lower, more general blocks move less. Howard & Ruder 2018
("Universal Language Model Fine-tuning for Text Classification", discriminative fine-tuning);
ELECTRA (Clark et al. 2020) and DeBERTa recipes use decays of 0.8-0.95.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

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

    ``autoft.Strategy(...)`` builds this kind.

    Attributes (besides :class:`~autoft.strategies.base.Strategy`'s):
        layer_decay: Layer-wise learning-rate decay factor in (0, 1]: block i of L trains at
            ``learning_rate * layer_decay ** (L - 1 - i)``, the embeddings at ``learning_rate *
            layer_decay ** L``, modules after the blocks at ``learning_rate``. 1 (the default)
            is no decay.

    Raises:
        StrategyError: ``layer_decay`` outside (0, 1].
    """

    kind: ClassVar[str] = "freeze"
    FIELDS: ClassVar[dict[str, type]] = {"layer_decay": float}

    layer_decay: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        d = self.layer_decay
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not 0.0 < float(d) <= 1.0:
            raise StrategyError(f"layer_decay={d!r} must be a number in (0, 1] (1: no decay)")

    @classmethod
    def uses(cls, name: str, values: dict[str, Any], num_layers: int) -> bool:
        if name == "layer_decay":  # it changes something only when two or more blocks train
            return int(values.get("frozen_layers", 0)) < num_layers - 1
        return super().uses(name, values, num_layers)

    def body(self, num_layers: int | None = None) -> str:
        k = self.frozen_layers
        if num_layers is not None and k >= num_layers:
            return ("linear probe (backbone frozen)" if self.head.kind == "linear"
                    else "head only (backbone frozen)")
        decay = f", layer-wise LR decay {self.layer_decay:g}" if self.layer_decay != 1 else ""
        if k == 0:
            return "full fine-tuning" + decay
        stem, blocks = ("stem", "stages") if self.resolution is not None else (  # an image
            "embeddings", "blocks")  # backbone's stem and stages (blocks, for a ViT)
        return (f"freeze {stem} + {k}" + (f"/{num_layers}" if num_layers else "")
                + f" {blocks}" + decay)

    def param_groups(self, model: AutoftClassifier) -> list[dict[str, Any]]:
        """As :meth:`Strategy.param_groups`, with the backbone's parameters split per block when
        ``layer_decay < 1`` (learning rates as in the class docstring)."""
        if self.layer_decay == 1:
            return super().param_groups(model)
        parts = model.parts
        L, lr, d = parts.num_layers, self.backbone_learning_rate, float(self.layer_decay)
        rate: dict[int, float] = {}
        for module in (parts.embeddings, *parts.extra):
            rate.update({id(p): lr * d ** L for p in module.parameters()})
        for i, block in enumerate(parts.layers):
            rate.update({id(p): lr * d ** (L - 1 - i) for p in block.parameters()})
        groups: dict[tuple[float, bool], list[Any]] = {}
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            r = self.effective_head_learning_rate if name.startswith("head.") else rate.get(
                id(param), lr)
            groups.setdefault((r, param.ndim >= 2), []).append(param)
        return [{"params": params, "lr": r,
                 "weight_decay": float(self.weight_decay) if decay else 0.0}
                for (r, decay), params in sorted(groups.items(), reverse=True)]

    def apply(self, model: AutoftClassifier) -> None:
        parts = model.parts
        k = self.frozen_layers
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
