"""The public one-call fine-tune: what a report's snippet runs to reproduce a recommendation."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autoft.data.task import Split, TaskData, load_task_data
from autoft.errors import DataError, StrategyError
from autoft.models.backbone import backbone_for_data, load_backbone, locate_parts
from autoft.models.classifier import AutoftClassifier
from autoft.strategies.base import Strategy
from autoft.tasks import task_for_metric
from autoft.training.batching import encode_split, pad_id
from autoft.training.device import resolve_device
from autoft.training.loop import TrialOutcome, eval_steps, evaluate, predict_outputs, train_strategy
from autoft.training.prefix_cache import PrefixCache

__all__ = ["FineTuneResult", "fine_tune"]

logger = logging.getLogger(__name__)


@dataclass
class FineTuneResult:
    """The result of :func:`fine_tune`.

    Attributes:
        model: The fine-tuned classifier (weights of its best validation evaluation), in eval mode.
        tokenizer: The backbone's tokenizer.
        task: The validated data.
        outcome: Measurements of the fine-tune.
        validation_score: Best validation score.
        test_score: Score on the test split with the same weights (None without a test split).
        max_length: Longest input, in tokens, the model was trained with.
        device: Where the model is.
    """

    model: AutoftClassifier
    tokenizer: Any
    task: TaskData
    outcome: TrialOutcome
    validation_score: float | None
    test_score: float | None
    max_length: int = 128
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def predict(self, texts: Sequence[str] | str,
                text_pairs: Sequence[str] | str | None = None) -> list[Any]:
        """Predicted labels of ``texts`` (and ``text_pairs`` for pair tasks), in the training
        labels' form: class names, or ints when every training label was a plain integer.

        Args:
            texts: One text, or a list of texts.
            text_pairs: The second texts of a sentence-pair task (same length as ``texts``).

        For a model trained on images, ``texts`` are images: one or a list of file paths, PIL
        images or arrays ``(H, W[, C])``.

        Raises:
            DataError: An empty list, a non-string text, pairs missing for a pair task (or given
                for a single-text task), or lists of different lengths; an image that cannot be
                read.
        """
        if self.task.modality == "image":
            return self._predict_images(texts)
        if isinstance(texts, str):
            texts = [texts]
            text_pairs = None if text_pairs is None else [str(text_pairs)]
        texts = list(texts or [])
        if not texts:
            raise DataError("predict() needs at least one text")
        bad = next((t for t in texts if not isinstance(t, str)), None)
        if bad is not None:
            raise DataError(f"predict() takes strings; got {bad!r} ({type(bad).__name__})")
        if self.task.is_pair and text_pairs is None:
            raise DataError("this model was trained on text pairs; give text_pairs= too")
        if not self.task.is_pair and text_pairs is not None:
            raise DataError("this model was trained on single texts; leave out text_pairs=")
        pairs = None if text_pairs is None else list(text_pairs)
        if pairs is not None and len(pairs) != len(texts):
            raise DataError(f"predict() got {len(texts)} texts and {len(pairs)} text_pairs")
        split = Split(texts, pairs, np.zeros(len(texts), dtype=np.int64))
        enc = encode_split(self.tokenizer, split, self.max_length)
        outputs = predict_outputs(self.model, enc, pad_id(self.tokenizer), self.device)
        return self.task.kind.decode(outputs, self.task.labels)

    def _predict_images(self, images: Any) -> list[Any]:
        single = isinstance(images, (str, Path)) or (
            isinstance(images, np.ndarray) and images.ndim in (2, 3)) or hasattr(images, "mode")
        items = [images] if single else list(images)
        if not items:
            raise DataError("predict() needs at least one image")
        refs = [str(i) if isinstance(i, Path) else i for i in items]
        split = Split([""] * len(refs), None, np.zeros(len(refs), dtype=np.int64), images=refs)
        outputs = predict_outputs(self.model, encode_split(self.tokenizer, split), 0, self.device)
        return self.task.kind.decode(outputs, self.task.labels)


def fine_tune(
    data: Any,
    strategy: Strategy | dict[str, Any],
    *,
    model: str | None = None,
    validation: Any = None,
    test: Any = None,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
    validation_size: float | int = 0.2,
    split_seed: int | None = None,
    metric: str | None = None,
    task: str | None = None,
    device: str = "auto",
    seed: int = 0,
    max_length: int = 128,
    evals_per_epoch: int = 2,
    cache: bool | PrefixCache = True,
    encoding: str = "utf-8",
    progress: Callable[[int, int, float], None] | None = None,
) -> FineTuneResult:
    """Fine-tune one strategy on a dataset: the same training a search trial runs, in one call.

    It logs a line per validation evaluation at INFO level (``logging.basicConfig(level=
    logging.INFO)`` shows them) and calls ``progress(eval_index, evals_total, score)`` after each.

    Args:
        data: Training data (any input :func:`autoft.load_task_data` accepts).
        strategy: How to fine-tune (a :class:`~autoft.Strategy` or its ``to_dict()``).
        model: Backbone name or folder; None for the bundled all-MiniLM-L6-v2. Default None.
        validation, test, text_column, text_pair_column, label_column, validation_size, task,
            encoding: As for :func:`autoft.load_task_data`.
        split_seed: Seed of the validation split made when no validation data is given; None
            means ``seed``. Default None.
        metric: One of the task kind's metrics; None for its default (``"accuracy"``,
            ``"rmse"``). Naming a metric of one kind only (``"spearman"``) also names the task
            when ``task`` is None.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``. Default ``"auto"``.
        seed: Seed of the head initialisation, dropout and batch order. Default 0.
        max_length: Longest input kept, in tokens. Default 128.
        evals_per_epoch: Validation evaluations per epoch. Default 2.
        cache: Use the frozen-prefix cache where it pays, as a search does (True: the default
            folder; or a :class:`~autoft.training.prefix_cache.PrefixCache`; False: never).
            Default True.
        progress: Called as ``progress(eval_index, evals_total, score)`` after each evaluation.

    Returns:
        A :class:`FineTuneResult`; its model holds the weights of the best validation evaluation.

    Raises:
        DataError, BackboneError, StrategyError, DivergedError: See the functions named above.
    """
    if isinstance(strategy, dict):
        strategy = Strategy.from_dict(strategy)
    if not isinstance(strategy, Strategy):
        raise StrategyError(
            f"strategy must be an autoft.Strategy (or a dict for Strategy.from_dict), got "
            f"{type(strategy).__name__}"
        )
    task = task_for_metric(task, metric)
    data_task = load_task_data(
        data, validation=validation, test=test, text_column=text_column,
        text_pair_column=text_pair_column, label_column=label_column,
        validation_size=validation_size, seed=seed if split_seed is None else split_seed,
        task=task, encoding=encoding,
    )
    model = backbone_for_data(model, data_task.modality)
    kind = data_task.kind
    metric = metric or kind.default_metric
    kind.check_metric(metric, data_task.labels)
    kind.check_losses([strategy.loss])
    if strategy.pair_encoding != "joint" and not data_task.is_pair:
        raise StrategyError(
            f"pair_encoding={strategy.pair_encoding!r} needs sentence pairs, but the data has one "
            "text per example; use pair_encoding='joint' (the default) or give text_pair_column=")
    encoder, tokenizer, _ = load_backbone(model)
    num_layers = locate_parts(encoder).num_layers
    if strategy.frozen_layers > num_layers:
        raise StrategyError(
            f"frozen_layers={strategy.frozen_layers} exceeds the backbone's {num_layers} blocks"
        )
    dev = resolve_device(device)
    pad = pad_id(tokenizer)
    train_enc = encode_split(tokenizer, data_task.train, max_length, strategy.resolution)
    val_enc = encode_split(tokenizer, data_task.validation, max_length, strategy.resolution)
    total = len(eval_steps(-(-len(train_enc) // strategy.batch_size), strategy.epochs,
                           evals_per_epoch))
    started = time.monotonic()

    def report(index: int, score: float) -> bool:
        logger.info("fine_tune: evaluation %d/%d, validation %s %.4f (%.0f s)", index, total,
                    metric, score, time.monotonic() - started)
        if progress is not None:
            progress(index, total, score)
        return False

    prefix = cache if isinstance(cache, PrefixCache) else PrefixCache() if cache else None
    outcome, clf = train_strategy(
        encoder, strategy, train_enc, val_enc, data_task.num_labels, pad_id=pad, metric=metric,
        task=kind, device=dev, seed=seed, evals_per_epoch=evals_per_epoch, keep_best=True,
        cache=prefix, report=report,
    )
    clf.cached_layers = 0  # predictions and exports run the whole model from token ids
    test_score = None
    if data_task.test is not None:
        test_enc = encode_split(tokenizer, data_task.test, max_length, strategy.resolution)
        test_score = evaluate(clf, test_enc, test_enc.labels, metric, pad, dev, task=kind)
    if strategy.resolution is not None:  # predict() reads images as the model was trained
        tokenizer = dataclasses.replace(tokenizer, resolution=strategy.resolution)
    return FineTuneResult(
        model=clf, tokenizer=tokenizer, task=data_task, outcome=outcome,
        validation_score=outcome.best_score, test_score=test_score, max_length=max_length,
        device=dev,
    )
