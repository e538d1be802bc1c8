"""One fine-tune: tokenized data in, a :class:`TrialOutcome` out.

The loop reads top to bottom (nanoGPT style): build the classifier for the strategy, AdamW over the
trainable parameters only (the strategy's parameter groups), linear warmup then linear decay
(``transformers.get_linear_schedule_with_warmup``), gradient clipping at 1.0, length-grouped
batches with dynamic padding, ``evals_per_epoch`` evaluations per epoch reported to a callback
(the search wires it to ``trial.report`` / ``trial.should_prune``), and a deadline checked after
every optimizer step. Optuna itself is not imported here: the loop knows only "report a score,
maybe stop".
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from autoft.errors import DivergedError, StrategyError
from autoft.models.backbone import locate_parts
from autoft.models.classifier import AutoftClassifier
from autoft.strategies.apply import build_classifier
from autoft.strategies.base import Strategy
from autoft.tasks import TaskKind, task_kind
from autoft.training.batching import EncodedSplit, collate, length_grouped_batches
from autoft.training.device import autocast, resolve_device
from autoft.training.pixels import PixelSplit, augment_batch, misclassified_examples
from autoft.training.prefix_cache import CachedSplit, PrefixCache, cache_pays

__all__ = [
    "DeadlineReached",
    "TrialOutcome",
    "eval_steps",
    "evaluate",
    "predict_outputs",
    "train_strategy",
]

logger = logging.getLogger(__name__)


class DeadlineReached(Exception):
    """Raised inside an evaluation that passed its deadline; the evaluation does not count."""


def _inputs(split: EncodedSplit | CachedSplit, indices: np.ndarray, pad_id: int,
            device: torch.device) -> dict[str, torch.Tensor]:
    """A batch of model inputs (no labels), from token ids, from pixels or from cached hidden
    states."""
    if not isinstance(split, EncodedSplit):  # CachedSplit, PixelSplit: they batch themselves
        return split.collate(indices, device)
    batch = collate(split, indices, pad_id, device)
    batch.pop("labels")
    return batch


@torch.inference_mode()
def predict_outputs(
    model: nn.Module, split: EncodedSplit | CachedSplit, pad_id: int, device: torch.device,
    batch_size: int = 128, deadline: float | None = None,
) -> np.ndarray:
    """Model outputs (logits) of every example, shape ``(N, K)`` float32, in the split's order.

    Args:
        model: The classifier.
        split: Token ids, or cached hidden states (the model's ``cached_layers`` must match).
        pad_id: The tokenizer's padding id.
        device: Where the model is.
        batch_size: Examples per forward pass (sorted by length, to pad little). Default 128.
        deadline: A ``time.monotonic()`` value checked between batches. Default None.

    Raises:
        DeadlineReached: ``time.monotonic()`` passed ``deadline`` between two batches.
    """
    was_training = model.training
    model.eval()
    order = np.argsort(split.lengths, kind="stable")
    out: np.ndarray | None = None
    try:
        for start in range(0, len(order), batch_size):
            if deadline is not None and time.monotonic() >= deadline:
                raise DeadlineReached
            idx = order[start:start + batch_size]
            with autocast(device):
                logits = model(**_inputs(split, idx, pad_id, device)).float().cpu().numpy()
            if out is None:
                out = np.empty((len(order), logits.shape[1]), dtype=np.float32)
            out[idx] = logits  # (B, K)
    finally:
        model.train(was_training)
    assert out is not None
    return out


def evaluate(
    model: nn.Module, split: EncodedSplit | CachedSplit, labels: np.ndarray, metric: str,
    pad_id: int, device: torch.device, batch_size: int = 128, deadline: float | None = None,
    task: TaskKind | str = "classification",
) -> float:
    """Score the model on a split with ``metric`` of the task kind.

    Args:
        model, split, pad_id, device, batch_size, deadline: As for :func:`predict_outputs`.
        labels: The split's encoded labels, shape ``(N,)``.
        metric: One of the task kind's metrics.
        task: The task kind or its name. Default ``"classification"``.

    Raises:
        DeadlineReached: The deadline passed during the evaluation.
        AutoftError: ``metric`` is not one of the task kind's.
    """
    kind = task_kind(task) if isinstance(task, str) else task
    outputs = predict_outputs(model, split, pad_id, device, batch_size, deadline)
    return kind.score(metric, labels, outputs)


@dataclass
class TrialOutcome:
    """What one fine-tune did, measured.

    Attributes:
        best_score: Best validation score over the evaluations, in the metric's direction (None
            if no evaluation happened).
        best_eval: 1-based index of the evaluation that gave it.
        scores: Validation score of each evaluation, in order.
        examples_at_eval: Training examples seen before each evaluation.
        status: ``"complete"``, ``"pruned"`` (the report callback asked to stop) or ``"budget"``
            (stopped at the first step after the deadline, or an evaluation abandoned at it).
        wall_seconds: Wall-clock seconds of the whole fine-tune, cache fill included.
        train_seconds: Seconds spent in training steps.
        eval_seconds: Seconds spent evaluating.
        cache_seconds: Seconds spent filling the prefix cache (0 when it was warm or unused).
        cache_examples: Examples forwarded to fill the prefix cache.
        cached: Whether the trained blocks ran on cached prefix states.
        examples_trained: Training examples processed (with repeats over epochs).
        steps: Optimizer steps taken; ``total_steps``: steps the strategy asks for.
        trainable_params: Trainable parameters, counted on the model.
        total_params: All parameters of backbone and head.
        applied_frozen_layers: Frozen bottom blocks, read back from the model.
        embeddings_frozen: Whether the embeddings were frozen, read back from the model.
        details: What the task kind reports of the best evaluation beside its score
            (:meth:`~autoft.tasks.TaskKind.details`: a confusion matrix, residuals).
    """

    best_score: float | None = None
    best_eval: int | None = None
    scores: list[float] = field(default_factory=list)
    examples_at_eval: list[int] = field(default_factory=list)
    status: str = "complete"
    wall_seconds: float = 0.0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    cache_seconds: float = 0.0
    cache_examples: int = 0
    cached: bool = False
    examples_trained: int = 0
    steps: int = 0
    total_steps: int = 0
    trainable_params: int = 0
    total_params: int = 0
    applied_frozen_layers: int = 0
    embeddings_frozen: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (stored as Optuna user attributes)."""
        return asdict(self)


def eval_steps(steps_per_epoch: int, epochs: int, evals_per_epoch: int) -> list[int]:
    """The optimizer steps after which to evaluate: ``evals_per_epoch`` evenly spaced per epoch."""
    per_epoch = max(1, min(evals_per_epoch, steps_per_epoch))
    points = set()
    for epoch in range(epochs):
        for j in range(1, per_epoch + 1):
            points.add(epoch * steps_per_epoch + math.ceil(j * steps_per_epoch / per_epoch))
    return sorted(points)


def _better(score: float, best: float | None, direction: str) -> bool:
    if best is None:
        return True
    return score > best if direction == "maximize" else score < best


def train_strategy(
    encoder: nn.Module,
    strategy: Strategy,
    train: EncodedSplit,
    validation: EncodedSplit,
    num_outputs: int,
    *,
    pad_id: int,
    metric: str = "accuracy",
    task: TaskKind | str = "classification",
    device: torch.device | str = "auto",
    seed: int = 0,
    evals_per_epoch: int = 2,
    deadline: float | None = None,
    report: Callable[[int, float], bool] | None = None,
    keep_best: bool = False,
    cache: PrefixCache | None = None,
    on_step: Callable[[], None] | None = None,
) -> tuple[TrialOutcome, AutoftClassifier]:
    """Fine-tune a copy of ``encoder`` with ``strategy`` and evaluate it as it trains.

    Args:
        encoder: The pristine backbone; it is deep-copied, never modified or moved.
        strategy: How to fine-tune.
        train: Tokenized training split.
        validation: Tokenized validation split.
        num_outputs: Width K of the model's output (classes).
        pad_id: The tokenizer's padding token id.
        metric: Validation metric, one of the task kind's. Default ``"accuracy"``.
        task: The task kind (loss, metric, direction) or its name. Default ``"classification"``.
        device: Torch device or ``"auto"``. Default ``"auto"``.
        seed: Seeds the head's initialisation, dropout and batch order. Default 0.
        evals_per_epoch: Evaluations on the validation split per epoch. Default 2.
        deadline: A ``time.monotonic()`` value; training stops at the first step after it, and an
            evaluation running past it is abandoned (the best score so far stands). Default None.
        report: Called as ``report(eval_index, score)`` after each evaluation (1-based index);
            returning True stops the fine-tune as pruned. Default None.
        keep_best: Restore the weights of the best evaluation at the end (costs a copy of the
            trainable weights at each improvement). Default False.
        cache: A :class:`~autoft.training.prefix_cache.PrefixCache`; when the strategy leaves
            bottom blocks untouched and :func:`~autoft.training.prefix_cache.cache_pays`, their
            outputs come from it (computed once, then reused) and only the blocks above run.
            Default None (every step runs the whole backbone).
        on_step: Called before every optimizer step (the search checks for Ctrl-C there).
            Default None.

    Returns:
        ``(outcome, model)``: the measurements, and the fine-tuned classifier (in eval mode).

    Raises:
        StrategyError: The strategy cannot be applied to this backbone.
        DivergedError: The training loss became NaN or infinite.
        AutoftError: ``metric`` is not one of the task kind's.
    """
    from transformers import get_linear_schedule_with_warmup

    kind = task_kind(task) if isinstance(task, str) else task
    direction = kind.direction(metric)
    started = time.monotonic()
    device = resolve_device(device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model, applied = build_classifier(copy.deepcopy(encoder), strategy, num_outputs, seed=seed)
    model.to(device)
    outcome = TrialOutcome(
        trainable_params=applied.trainable_params,
        total_params=applied.total_params,
        applied_frozen_layers=applied.frozen_layers,
        embeddings_frozen=applied.embeddings_frozen,
    )
    num_layers = locate_parts(encoder).num_layers
    k = strategy.cached_layers(num_layers)
    train_data: EncodedSplit | CachedSplit = train
    val_data: EncodedSplit | CachedSplit = validation
    if cache is not None and cache_pays(k, num_layers):
        seconds, examples = cache.fill_seconds, cache.fill_examples
        train_data = cache.get(encoder, k, train, pad_id, device)
        val_data = cache.get(encoder, k, validation, pad_id, device)
        outcome.cache_seconds = cache.fill_seconds - seconds
        outcome.cache_examples = cache.fill_examples - examples
        outcome.cached = True
        model.cached_layers = k
    optimizer = torch.optim.AdamW(strategy.param_groups(model))
    steps_per_epoch = math.ceil(len(train) / strategy.batch_size)
    total_steps = steps_per_epoch * strategy.epochs
    outcome.total_steps = total_steps
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(strategy.warmup_ratio * total_steps), total_steps)
    evals = set(eval_steps(steps_per_epoch, strategy.epochs, evals_per_epoch))
    eval_batch = max(64, 2 * strategy.batch_size)
    trainable = [p for p in model.parameters() if p.requires_grad]
    trainable_names = {name for name, p in model.named_parameters() if p.requires_grad}
    best_state: dict[str, torch.Tensor] | None = None

    if strategy.augment != "none" and isinstance(train, EncodedSplit):
        raise StrategyError(f"augment={strategy.augment!r} is a field of image backbones; a "
                            "text backbone reads tokens: leave it out")
    augment = strategy.augment != "none" and not isinstance(train_data, EncodedSplit)
    generator = torch.Generator().manual_seed(seed)  # the augmentations' draws
    step = 0
    stop = False
    model.train()
    for epoch in range(strategy.epochs):
        for indices in length_grouped_batches(train.lengths, strategy.batch_size, rng):  # (B,)
            if on_step is not None:
                on_step()
            t0 = time.monotonic()
            batch = _inputs(train_data, indices, pad_id, device)
            if augment and "pixel_values" in batch:
                batch["pixel_values"] = augment_batch(batch["pixel_values"], generator)
            labels = torch.from_numpy(train.labels[indices]).to(device)  # (B,)
            with autocast(device):
                outputs = model(**batch)  # (B, K)
            loss = kind.loss(outputs, labels, strategy.loss)
            if not torch.isfinite(loss):
                raise DivergedError(
                    f"training loss became {loss.item()} at step {step + 1} (epoch {epoch + 1}); "
                    f"the learning rates ({strategy.backbone_learning_rate:.2g} backbone, "
                    f"{strategy.effective_head_learning_rate:.2g} head) may be too high"
                )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, max_norm=1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            outcome.steps = step
            outcome.examples_trained += len(indices)
            outcome.train_seconds += time.monotonic() - t0

            if step in evals:
                t1 = time.monotonic()
                try:
                    outputs_val = predict_outputs(model, val_data, pad_id, device, eval_batch,
                                                  deadline)  # (N, K)
                    score = kind.score(metric, validation.labels, outputs_val)
                except DeadlineReached:
                    outcome.eval_seconds += time.monotonic() - t1
                    outcome.status = "budget"
                    stop = True
                    break
                outcome.eval_seconds += time.monotonic() - t1
                outcome.scores.append(score)
                outcome.examples_at_eval.append(outcome.examples_trained)
                if _better(score, outcome.best_score, direction):
                    outcome.best_score, outcome.best_eval = score, len(outcome.scores)
                    outcome.details = kind.details(validation.labels, outputs_val)
                    if isinstance(validation, PixelSplit) and outputs_val.shape[1] > 1:
                        # the report draws them (image classification)
                        shown = misclassified_examples(validation.labels, outputs_val)
                        outcome.details["misclassified"] = shown
                        outcome.details["labels"] = [int(validation.labels[i]) for i, _ in shown]
                    if keep_best:
                        state = model.state_dict()
                        best_state = {name: state[name].detach().clone() for name in state
                                      if name in trainable_names or name.startswith("head.")}
                logger.debug("eval %d: %s=%.4f", len(outcome.scores), metric, score)
                if report is not None and report(len(outcome.scores), score):
                    outcome.status = "pruned"
                    stop = True
            if not stop and deadline is not None and time.monotonic() >= deadline:
                outcome.status = "budget"
                stop = True
            if stop:
                break
        if stop:
            break
    if keep_best and best_state is not None:
        model.load_state_dict(best_state, strict=False)
    model.eval()
    outcome.wall_seconds = time.monotonic() - started
    return outcome, model
