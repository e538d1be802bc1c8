"""BitFit: train only the bias terms of the backbone (optionally also its LayerNorm weights) and
the head.

Ben Zaken, Ravfogel & Goldberg 2022, "BitFit: Simple Parameter-efficient Fine-tuning for
Transformer-based Masked Language-models" (ACL): fine-tuning only the biases (about 0.1% of BERT's
parameters) is competitive with full fine-tuning on small and medium GLUE tasks; the paper uses
learning rates of 1e-4..1e-3 for them. Here the bottom ``frozen_layers`` blocks (and the
embeddings when k >= 1) stay untouched, so their outputs can come from the prefix cache, and the
biases of the blocks above them train.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from autoft.errors import StrategyError
from autoft.strategies.base import (
    AppliedStrategy,
    AutoftClassifier,
    Family,
    Strategy,
    register_strategy_kind,
)

__all__ = ["BitFitStrategy", "bitfit_parameters"]

#: Values of ``bitfit_norm``: the biases alone, or the biases and the LayerNorm weights.
NORM_CHOICES = ("no", "yes")


def bitfit_parameters(model: AutoftClassifier, frozen_layers: int,
                      norm: bool) -> list[tuple[str, Any]]:
    """The ``(name, parameter)`` pairs BitFit trains in ``model``'s backbone: every bias (a
    parameter of a module that is called ``bias``) of the blocks above ``frozen_layers`` (and of
    the embeddings at k = 0, and of the modules after the blocks), plus those modules' LayerNorm
    weights when ``norm``. Found by module structure and parameter role, never by name substrings.
    """
    from torch import nn

    parts = model.parts
    tuned: list[nn.Module] = list(parts.layers)[frozen_layers:] + list(parts.post)
    if frozen_layers == 0:
        tuned = [parts.embeddings, *parts.extra, *tuned]
    out: list[tuple[str, Any]] = []
    for part in tuned:
        for module_name, module in part.named_modules():
            for name, param in module.named_parameters(recurse=False):
                if name == "bias" or (norm and isinstance(module, nn.LayerNorm)):
                    out.append((f"{module_name}.{name}".lstrip("."), param))
    return out


@register_strategy_kind
@dataclass(frozen=True)
class BitFitStrategy(Strategy):
    """Freeze the embeddings and the bottom ``frozen_layers`` blocks; above them train only the
    biases (and, with ``bitfit_norm="yes"``, the LayerNorm weights), plus the head.

    Attributes (besides :class:`~autoft.strategies.base.Strategy`'s):
        bitfit_learning_rate: Peak learning rate of the tuned biases (and LayerNorm weights), in
            place of ``learning_rate`` (a field of its own, so that the sampler models it apart
            from full fine-tuning's much smaller rates). Default 5e-4 (the paper's range is
            1e-4..1e-3).
        bitfit_norm: ``"yes"`` also trains the LayerNorm weights of the tuned blocks (a common
            BitFit variant); ``"no"`` trains the biases only. Default ``"no"``.

    At k = L no block is tuned and only the head trains (the same model as the freeze kind at
    k = L).

    Raises:
        StrategyError: An unknown ``bitfit_norm``; in :meth:`apply`, ``frozen_layers`` above L.
    """

    kind: ClassVar[str] = "bitfit"
    FIELDS: ClassVar[dict[str, type]] = {"bitfit_learning_rate": float, "bitfit_norm": str}
    CHOICES: ClassVar[dict[str, tuple[Any, ...]]] = {"bitfit_norm": NORM_CHOICES}
    LEARNING_RATE_FIELD: ClassVar[str] = "bitfit_learning_rate"

    bitfit_learning_rate: float = 5e-4
    bitfit_norm: str = "no"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.bitfit_norm not in NORM_CHOICES:
            raise StrategyError(f"bitfit_norm={self.bitfit_norm!r} must be one of {NORM_CHOICES}")

    @classmethod
    def uses(cls, name: str, values: dict[str, Any], num_layers: int) -> bool:
        if name == "bitfit_norm":
            return int(values.get("frozen_layers", 0)) < num_layers
        return super().uses(name, values, num_layers)

    def body(self, num_layers: int | None = None) -> str:
        what = "biases + LayerNorm" if self.bitfit_norm == "yes" else "biases"
        if num_layers is not None and self.frozen_layers >= num_layers:
            return "BitFit with every block frozen (head only)"
        if self.frozen_layers == 0:
            return f"BitFit ({what} of all blocks)"
        of = f"{self.frozen_layers}/{num_layers}" if num_layers else str(self.frozen_layers)
        return f"BitFit ({what} above {of} frozen blocks)"

    def family(self) -> Family:
        return Family(self.kind, self.frozen_layers, self.head.kind,
                      self._pair_variant("norm" if self.bitfit_norm == "yes" else ""))

    def apply(self, model: AutoftClassifier) -> None:
        parts = model.parts
        k = self.frozen_layers
        model.set_frozen(parts.prefix_modules(k))  # the cacheable bottom, in eval mode
        model.encoder.requires_grad_(False)
        for _, param in bitfit_parameters(model, k, self.bitfit_norm == "yes"):
            param.requires_grad_(True)

    def check(self, model: AutoftClassifier, applied: AppliedStrategy) -> None:
        expected = sum(p.numel() for _, p in bitfit_parameters(
            model, self.frozen_layers, self.bitfit_norm == "yes"))
        expected += sum(p.numel() for p in model.head.parameters())
        if applied.trainable_params != expected or applied.frozen_layers != self.frozen_layers:
            raise StrategyError(
                f"BitFit not applied as specified: expected {expected} trainable parameters "
                f"above {self.frozen_layers} frozen blocks, the model has "
                f"{applied.trainable_params} above {applied.frozen_layers}")
