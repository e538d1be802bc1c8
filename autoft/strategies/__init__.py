"""Strategy kinds: how a backbone is fine-tuned (see :mod:`autoft.strategies.base`).

Built in: ``"freeze"`` (freeze the embeddings and the bottom k blocks, train the rest). A new kind
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
from autoft.strategies.freeze import FreezeStrategy

__all__ = [
    "BASE_FIELDS",
    "DEFAULT_KIND",
    "HEAD_KINDS",
    "POOLINGS",
    "AppliedStrategy",
    "Family",
    "FreezeStrategy",
    "Head",
    "Strategy",
    "register_strategy_kind",
    "strategy_class",
    "strategy_kinds",
]
