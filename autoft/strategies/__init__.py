"""Strategy kinds: how a backbone is fine-tuned (see :mod:`autoft.strategies.base`).

Built in: ``"freeze"`` (freeze the embeddings and the bottom k blocks, train the rest, optionally
with layer-wise learning-rate decay), ``"bitfit"`` (train only the biases above the frozen blocks)
and ``"lora"`` (LoRA adapters above the frozen blocks, through ``peft``). A new kind
is one module with a :class:`Strategy` subclass decorated with :func:`register_strategy_kind`,
plus one import line here. ``build_classifier`` (which needs torch) lives in
:mod:`autoft.strategies.apply`.
"""

from autoft.strategies.base import (
    BASE_FIELDS,
    DEFAULT_KIND,
    HEAD_KINDS,
    POOLINGS,
    AppliedStrategy,
    Family,
    Head,
    Strategy,
    register_strategy_kind,
    strategy_class,
    strategy_kinds,
)
from autoft.strategies.bitfit import BitFitStrategy
from autoft.strategies.freeze import FreezeStrategy
from autoft.strategies.lora import LoraStrategy

__all__ = [
    "BASE_FIELDS",
    "DEFAULT_KIND",
    "HEAD_KINDS",
    "POOLINGS",
    "AppliedStrategy",
    "BitFitStrategy",
    "Family",
    "FreezeStrategy",
    "Head",
    "LoraStrategy",
    "Strategy",
    "register_strategy_kind",
    "strategy_class",
    "strategy_kinds",
]
