"""The training stage: tokenized batches, the fine-tuning loop, the frozen-prefix cache, and the
one-call :func:`fine_tune`."""

from autoft.training.api import FineTuneResult, fine_tune
from autoft.training.batching import (
    EncodedSplit,
    collate,
    encode_split,
    length_grouped_batches,
    pad_id,
)
from autoft.training.device import autocast, resolve_device
from autoft.training.loop import (
    DeadlineReached,
    TrialOutcome,
    eval_steps,
    evaluate,
    predict_outputs,
    train_strategy,
)
from autoft.training.prefix_cache import CachedSplit, PrefixCache, cache_pays, default_cache_dir

__all__ = [
    "CachedSplit",
    "DeadlineReached",
    "EncodedSplit",
    "FineTuneResult",
    "PrefixCache",
    "TrialOutcome",
    "autocast",
    "cache_pays",
    "collate",
    "default_cache_dir",
    "encode_split",
    "eval_steps",
    "evaluate",
    "fine_tune",
    "length_grouped_batches",
    "pad_id",
    "predict_outputs",
    "resolve_device",
    "train_strategy",
]
