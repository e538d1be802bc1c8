"""One trial's fine-tune: tokenized data in, a :class:`TrialOutcome` out.

The loop reads top to bottom (nanoGPT style): build the classifier for the strategy, AdamW over the
trainable parameters only, linear warmup then linear decay, length-grouped batches with dynamic
padding, ``evals_per_epoch`` evaluations per epoch reported to a callback (the search wires it to
``trial.report`` / ``trial.should_prune``), and a deadline checked after every optimizer step.
Optuna itself is not imported here: the loop knows only "report a score, maybe stop".
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from autoft.backbone import load_backbone, locate_parts
from autoft.data import Split, TaskData, load_task_data
from autoft.errors import AutoftError, DataError, StrategyError, TrialError
from autoft.prefix_cache import PrefixCache
from autoft.strategy import AutoftClassifier, Strategy, build_classifier

__all__ = [
    "METRICS",
    "DeadlineReached",
    "EncodedSplit",
    "FineTuneResult",
    "TrialOutcome",
    "encode_split",
    "evaluate",
    "fine_tune",
    "length_grouped_batches",
    "resolve_device",
    "score_predictions",
    "train_strategy",
]

logger = logging.getLogger(__name__)

#: Validation metrics a search can optimise; all are maximised.
METRICS = ("accuracy", "macro_f1")


def score_predictions(metric: str, labels: np.ndarray, predictions: np.ndarray) -> float:
    """Score predicted class ids against true ones with scikit-learn.

    Args:
        metric: ``"accuracy"`` or ``"macro_f1"`` (unweighted mean of per-class F1).
        labels: True class ids, shape ``(N,)``.
        predictions: Predicted class ids, shape ``(N,)``.

    Raises:
        AutoftError: Unknown metric.
    """
    from sklearn.metrics import accuracy_score, f1_score

    if metric == "accuracy":
        return float(accuracy_score(labels, predictions))
    if metric == "macro_f1":
        return float(f1_score(labels, predictions, average="macro", zero_division=0))
    raise AutoftError(f"metric {metric!r} is not one of {METRICS}")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a usable torch device.

    Raises:
        AutoftError: CUDA asked for but not available, or an unknown device string.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise AutoftError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise AutoftError(f"device {device!r} asked for, but CUDA is not available here; use 'auto'")
    return resolved


@dataclass(frozen=True)
class EncodedSplit:
    """A split tokenized once, without padding.

    Attributes:
        input_ids: Token ids of each example, N arrays of shape ``(T_i,)``.
        token_type_ids: Segment ids of each example (same shapes), or None when the backbone does
            not use them.
        labels: Class ids, shape ``(N,)``.
        lengths: ``T_i`` of each example, shape ``(N,)``, in tokens.
    """

    input_ids: list[np.ndarray]
    token_type_ids: list[np.ndarray] | None
    labels: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.input_ids)

    def subset(self, indices: np.ndarray) -> EncodedSplit:
        """The examples at ``indices`` as a new split."""
        idx = [int(i) for i in indices]
        return EncodedSplit(
            input_ids=[self.input_ids[i] for i in idx],
            token_type_ids=None if self.token_type_ids is None
            else [self.token_type_ids[i] for i in idx],
            labels=self.labels[idx],
            lengths=self.lengths[idx],
        )


def encode_split(tokenizer: Any, split: Split, max_length: int = 128) -> EncodedSplit:
    """Tokenize a split (text pairs as the tokenizer's pair encoding), truncating to max_length.

    Args:
        tokenizer: A Hugging Face fast tokenizer.
        split: The split.
        max_length: Longest sequence kept, in tokens (longer ones are truncated). Default 128.
    """
    enc = tokenizer(
        split.texts, split.text_pairs, truncation=True, max_length=max_length,
        return_attention_mask=False,
    )
    input_ids = [np.asarray(ids, dtype=np.int64) for ids in enc["input_ids"]]
    types = None
    if "token_type_ids" in getattr(tokenizer, "model_input_names", []) and "token_type_ids" in enc:
        types = [np.asarray(t, dtype=np.int64) for t in enc["token_type_ids"]]
    return EncodedSplit(
        input_ids=input_ids,
        token_type_ids=types,
        labels=np.asarray(split.labels, dtype=np.int64),
        lengths=np.asarray([len(ids) for ids in input_ids], dtype=np.int64),
    )


def collate(
    split: EncodedSplit, indices: np.ndarray, pad_id: int, device: torch.device
) -> dict[str, torch.Tensor]:
    """Pad the examples at ``indices`` to their longest length (dynamic padding).

    Returns:
        ``input_ids``, ``attention_mask`` (and ``token_type_ids``), each ``(B, T)`` int64, and
        ``labels`` ``(B,)``.
    """
    width = int(split.lengths[indices].max())
    ids = np.full((len(indices), width), pad_id, dtype=np.int64)  # (B, T)
    mask = np.zeros((len(indices), width), dtype=np.int64)  # (B, T)
    types = None if split.token_type_ids is None else np.zeros_like(ids)
    for row, i in enumerate(indices):
        n = split.lengths[i]
        ids[row, :n] = split.input_ids[i]
        mask[row, :n] = 1
        if types is not None and split.token_type_ids is not None:
            types[row, :n] = split.token_type_ids[i]
    batch = {
        "input_ids": torch.from_numpy(ids).to(device),
        "attention_mask": torch.from_numpy(mask).to(device),
        "labels": torch.from_numpy(split.labels[indices]).to(device),
    }
    if types is not None:
        batch["token_type_ids"] = torch.from_numpy(types).to(device)
    return batch


def length_grouped_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator, group: int = 50
) -> list[np.ndarray]:
    """Shuffled batches of similar-length examples, to pad little.

    The examples are shuffled, cut into groups of ``batch_size * group``, sorted by length inside
    each group and cut into batches; the batch order is shuffled again. The idea is Hugging Face
    ``LengthGroupedSampler``'s ("megabatches" of 50 batches).

    Args:
        lengths: Length of each example in tokens, shape ``(N,)``.
        batch_size: Examples per batch.
        rng: Source of the shuffles.
        group: Batches per sorted group. Default 50.

    Returns:
        Index arrays covering ``0..N-1`` once, each of at most ``batch_size`` indices.
    """
    perm = rng.permutation(len(lengths))
    mega = batch_size * group
    batches: list[np.ndarray] = []
    for start in range(0, len(perm), mega):
        chunk = perm[start:start + mega]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _collate_any(split: Any, indices: np.ndarray, pad_id: int,
                 device: torch.device) -> dict[str, torch.Tensor]:
    """Batch from token ids (:class:`EncodedSplit`) or from cached hidden states
    (:class:`~autoft.prefix_cache.CachedSplit`)."""
    if isinstance(split, EncodedSplit):
        return collate(split, indices, pad_id, device)
    return split.collate(indices, device)  # type: ignore[no-any-return]


def _autocast(device: torch.device) -> Any:
    """bf16 autocast on CUDA devices that support it; a no-op elsewhere."""
    enabled = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


class DeadlineReached(Exception):
    """Raised inside an evaluation that passed its deadline; the evaluation does not count."""


@torch.inference_mode()
def predict_logits(
    model: nn.Module, split: Any, pad_id: int, device: torch.device,
    batch_size: int = 128, deadline: float | None = None,
) -> np.ndarray:
    """Logits of every example, shape ``(N, K)`` float32, in the split's order.

    Raises:
        DeadlineReached: ``time.monotonic()`` passed ``deadline`` between two batches.
    """
    was_training = model.training
    model.eval()
    order = np.argsort(split.lengths, kind="stable")
    out: np.ndarray | None = None
    for start in range(0, len(order), batch_size):
        if deadline is not None and time.monotonic() >= deadline:
            model.train(was_training)
            raise DeadlineReached
        idx = order[start:start + batch_size]
        batch = _collate_any(split, idx, pad_id, device)
        batch.pop("labels")
        with _autocast(device):
            logits = model(**batch).float().cpu().numpy()  # (B, K)
        if out is None:
            out = np.empty((len(order), logits.shape[1]), dtype=np.float32)
        out[idx] = logits
    model.train(was_training)
    assert out is not None
    return out


def evaluate(
    model: nn.Module, split: Any, metric: str, pad_id: int, device: torch.device,
    batch_size: int = 128, deadline: float | None = None,
) -> float:
    """Score the model on a split with ``metric`` (see :func:`score_predictions`).

    Raises:
        DeadlineReached: The deadline passed during the evaluation.
    """
    logits = predict_logits(model, split, pad_id, device, batch_size, deadline)
    return score_predictions(metric, split.labels, logits.argmax(axis=1))


@dataclass
class TrialOutcome:
    """What one fine-tune did, measured.

    Attributes:
        best_score: Best validation score over the evaluations (None if none happened).
        best_eval: 1-based index of the evaluation that gave it.
        scores: Validation score of each evaluation, in order.
        examples_at_eval: Training examples seen before each evaluation.
        status: ``"complete"``, ``"pruned"`` (the report callback asked to stop) or
            ``"deadline"`` (stopped at the first step after the deadline).
        wall_seconds: Wall-clock seconds of the whole fine-tune, evaluations included.
        train_seconds: Seconds spent in training steps.
        eval_seconds: Seconds spent evaluating.
        examples_trained: Training examples processed (with repeats over epochs).
        steps: Optimizer steps taken.
        trainable_params: Trainable parameters, counted on the model.
        total_params: All parameters of backbone and head.
        applied_frozen_layers: Frozen bottom blocks, read back from the model.
        embeddings_frozen: Whether the embeddings were frozen, read back from the model.
    """

    best_score: float | None = None
    best_eval: int | None = None
    scores: list[float] = field(default_factory=list)
    examples_at_eval: list[int] = field(default_factory=list)
    status: str = "complete"
    wall_seconds: float = 0.0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    examples_trained: int = 0
    steps: int = 0
    trainable_params: int = 0
    total_params: int = 0
    applied_frozen_layers: int = 0
    embeddings_frozen: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (stored as Optuna user attributes)."""
        return asdict(self)


def _param_groups(
    model: AutoftClassifier, strategy: Strategy
) -> list[dict[str, Any]]:
    """AdamW groups over trainable parameters only: backbone/head x decay/no-decay.

    No weight decay on biases and normalisation weights (as in BERT and Hugging Face Trainer).
    """
    groups: dict[tuple[str, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        part = "head" if name.startswith("head.") else "backbone"
        decay = param.ndim >= 2
        groups.setdefault((part, decay), []).append(param)
    lrs = {"backbone": strategy.learning_rate, "head": strategy.effective_head_learning_rate}
    return [
        {"params": params, "lr": lrs[part],
         "weight_decay": strategy.weight_decay if decay else 0.0}
        for (part, decay), params in sorted(groups.items())
    ]


def lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Linear warmup from 0 to 1 over ``warmup_steps``, then linear decay to 0 at ``total_steps``.

    The schedule of BERT fine-tuning (Devlin et al. 2019) and Hugging Face
    ``get_linear_schedule_with_warmup``.
    """
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def eval_steps(steps_per_epoch: int, epochs: int, evals_per_epoch: int) -> list[int]:
    """The optimizer steps after which to evaluate: ``evals_per_epoch`` evenly spaced per epoch."""
    per_epoch = max(1, min(evals_per_epoch, steps_per_epoch))
    points = set()
    for epoch in range(epochs):
        for j in range(1, per_epoch + 1):
            points.add(epoch * steps_per_epoch + math.ceil(j * steps_per_epoch / per_epoch))
    return sorted(points)


def train_strategy(
    encoder: nn.Module,
    strategy: Strategy,
    train: EncodedSplit,
    validation: EncodedSplit,
    num_labels: int,
    *,
    pad_id: int,
    metric: str = "accuracy",
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
        encoder: The pristine backbone; it is deep-copied, never modified.
        strategy: How to fine-tune.
        train: Tokenized training split.
        validation: Tokenized validation split.
        num_labels: Number of classes K.
        pad_id: The tokenizer's padding token id.
        metric: Validation metric, one of :data:`METRICS`. Default ``"accuracy"``.
        device: Torch device or ``"auto"``. Default ``"auto"``.
        seed: Seeds the head's initialisation, dropout and batch order. Default 0.
        evals_per_epoch: Evaluations on the validation split per epoch. Default 2.
        deadline: A ``time.monotonic()`` value; training stops at the first step after it, and an
            evaluation running past it is abandoned (the best score so far stands). Default None.
        report: Called as ``report(eval_index, score)`` after each evaluation (1-based index);
            returning True stops the fine-tune as pruned. Default None.
        keep_best: Restore the weights of the best evaluation at the end (costs a copy of the
            trainable weights at each improvement). Default False.
        cache: A :class:`~autoft.prefix_cache.PrefixCache`; with ``frozen_layers >= 1`` the
            frozen prefix's outputs come from it (computed once, then reused) and only the blocks
            above run. Default None (every step runs the whole backbone).
        on_step: Called before every optimizer step (the search checks for Ctrl-C there).
            Default None.

    Returns:
        ``(outcome, model)``: the measurements, and the fine-tuned classifier.

    Raises:
        StrategyError: The strategy cannot be applied to this backbone.
        TrialError: The training loss became NaN or infinite.
    """
    if metric not in METRICS:
        raise AutoftError(f"metric {metric!r} is not one of {METRICS}")
    started = time.monotonic()
    device = resolve_device(device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model, applied = build_classifier(copy.deepcopy(encoder), strategy, num_labels, seed=seed)
    model.to(device)
    train_data: Any = train
    val_data: Any = validation
    if cache is not None and strategy.frozen_layers >= 1:
        t_cache = time.monotonic()
        train_data = cache.get(encoder, strategy.frozen_layers, train, pad_id, device)
        val_data = cache.get(encoder, strategy.frozen_layers, validation, pad_id, device)
        logger.debug("prefix cache ready in %.1f s", time.monotonic() - t_cache)
    outcome = TrialOutcome(
        trainable_params=applied.trainable_params,
        total_params=applied.total_params,
        applied_frozen_layers=applied.frozen_layers,
        embeddings_frozen=applied.embeddings_frozen,
    )
    optimizer = torch.optim.AdamW(_param_groups(model, strategy))
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    steps_per_epoch = math.ceil(len(train) / strategy.batch_size)
    total_steps = steps_per_epoch * strategy.epochs
    warmup_steps = int(strategy.warmup_ratio * total_steps)
    evals = eval_steps(steps_per_epoch, strategy.epochs, evals_per_epoch)
    eval_batch = max(64, 2 * strategy.batch_size)
    best_state: dict[str, torch.Tensor] | None = None
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]

    step = 0
    stop = False
    model.train()
    for epoch in range(strategy.epochs):
        for indices in length_grouped_batches(train.lengths, strategy.batch_size, rng):  # (B,)
            if on_step is not None:
                on_step()
            t0 = time.monotonic()
            batch = _collate_any(train_data, indices, pad_id, device)
            labels = batch.pop("labels")
            factor = lr_factor(step, warmup_steps, total_steps)
            for group, base in zip(optimizer.param_groups, base_lrs):
                group["lr"] = base * factor
            with _autocast(device):
                logits = model(**batch)  # (B, K)
            loss = nn.functional.cross_entropy(logits.float(), labels)
            if not torch.isfinite(loss):
                raise TrialError(
                    f"training loss became {loss.item()} at step {step + 1} (epoch {epoch + 1}); "
                    f"the learning rates ({strategy.learning_rate:.2g} backbone, "
                    f"{strategy.effective_head_learning_rate:.2g} head) may be too high"
                )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(
                [p for p in model.parameters() if p.requires_grad], max_norm=1.0
            )
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            outcome.steps = step
            outcome.examples_trained += len(indices)
            outcome.train_seconds += time.monotonic() - t0

            if step in evals:
                t1 = time.monotonic()
                try:
                    score = evaluate(model, val_data, metric, pad_id, device, eval_batch,
                                     deadline)
                except DeadlineReached:
                    outcome.eval_seconds += time.monotonic() - t1
                    outcome.status = "deadline"
                    break
                outcome.eval_seconds += time.monotonic() - t1
                outcome.scores.append(score)
                outcome.examples_at_eval.append(outcome.examples_trained)
                if outcome.best_score is None or score > outcome.best_score:
                    outcome.best_score, outcome.best_eval = score, len(outcome.scores)
                    if keep_best:
                        state = model.state_dict()
                        best_state = {k: state[k].detach().clone() for k in state
                                      if _is_trainable_key(k, trainable)}
                logger.debug("eval %d: %s=%.4f", len(outcome.scores), metric, score)
                if report is not None and report(len(outcome.scores), score):
                    outcome.status = "pruned"
                    stop = True
            if not stop and deadline is not None and time.monotonic() >= deadline:
                outcome.status = "deadline"
                stop = True
            if stop:
                break
        if stop or outcome.status == "deadline":
            break
    if keep_best and best_state is not None:
        model.load_state_dict(best_state, strict=False)
    model.eval()
    outcome.wall_seconds = time.monotonic() - started
    return outcome, model


def _is_trainable_key(key: str, trainable: Sequence[str]) -> bool:
    return key in trainable or key.startswith("head.")


# --------------------------------------------------------------------------------------------
# The public one-call fine-tune (what a report's snippet runs to reproduce the winner)
# --------------------------------------------------------------------------------------------


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
    """

    model: AutoftClassifier
    tokenizer: Any
    task: TaskData
    outcome: TrialOutcome
    validation_score: float | None
    test_score: float | None
    max_length: int = 128
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def predict(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None) -> list[str]:
        """Predicted label names of ``texts`` (and ``text_pairs`` for pair tasks).

        A single string is one text. Raises :class:`~autoft.DataError` for an empty list or a
        non-string text.
        """
        if isinstance(texts, str):
            texts = [texts]
            text_pairs = None if text_pairs is None else [str(text_pairs)]
        texts = list(texts or [])
        if not texts:
            raise DataError("predict() needs at least one text")
        bad = next((t for t in texts if not isinstance(t, str)), None)
        if bad is not None:
            raise DataError(f"predict() takes strings; got {bad!r} ({type(bad).__name__})")
        split = Split(list(texts), None if text_pairs is None else list(text_pairs),
                      np.zeros(len(texts), dtype=np.int64))
        enc = encode_split(self.tokenizer, split, self.max_length)
        logits = predict_logits(self.model, enc, _pad_id(self.tokenizer), self.device)
        return [self.task.id2label[int(i)] for i in logits.argmax(axis=1)]


def _pad_id(tokenizer: Any) -> int:
    pad = tokenizer.pad_token_id
    return int(pad) if pad is not None else 0


def fine_tune(
    data: Any,
    strategy: Strategy,
    *,
    model: str | None = None,
    validation: Any = None,
    test: Any = None,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
    validation_size: float | int = 0.2,
    split_seed: int | None = None,
    metric: str = "accuracy",
    device: str = "auto",
    seed: int = 0,
    max_length: int = 128,
    evals_per_epoch: int = 2,
) -> FineTuneResult:
    """Fine-tune one strategy on a dataset: the same training a search trial runs, in one call.

    Args:
        data: Training data (any input :func:`autoft.load_task_data` accepts).
        strategy: How to fine-tune.
        model: Backbone name or folder; None for the bundled all-MiniLM-L6-v2. Default None.
        validation, test, text_column, text_pair_column, label_column, validation_size: As for
            :func:`autoft.load_task_data`.
        split_seed: Seed of the validation split made when no validation data is given; None
            means ``seed``. Default None.
        metric: ``"accuracy"`` or ``"macro_f1"``. Default ``"accuracy"``.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``. Default ``"auto"``.
        seed: Seed of the head initialisation, dropout and batch order. Default 0.
        max_length: Longest input kept, in tokens. Default 128.
        evals_per_epoch: Validation evaluations per epoch. Default 2.

    Returns:
        A :class:`FineTuneResult`; its model holds the weights of the best validation evaluation.

    Raises:
        DataError, BackboneError, StrategyError, TrialError: See the functions named above.
    """
    if isinstance(strategy, dict):
        strategy = Strategy.from_dict(strategy)
    if not isinstance(strategy, Strategy):
        raise StrategyError(
            f"strategy must be an autoft.Strategy (or a dict for Strategy.from_dict), got "
            f"{type(strategy).__name__}"
        )
    task = load_task_data(
        data, validation=validation, test=test, text_column=text_column,
        text_pair_column=text_pair_column, label_column=label_column,
        validation_size=validation_size, seed=seed if split_seed is None else split_seed,
    )
    encoder, tokenizer, _ = load_backbone(model)
    num_layers = locate_parts(encoder).num_layers
    if strategy.frozen_layers > num_layers:
        raise StrategyError(
            f"frozen_layers={strategy.frozen_layers} exceeds the backbone's {num_layers} blocks"
        )
    dev = resolve_device(device)
    pad = _pad_id(tokenizer)
    train_enc = encode_split(tokenizer, task.train, max_length)
    val_enc = encode_split(tokenizer, task.validation, max_length)
    outcome, clf = train_strategy(
        encoder, strategy, train_enc, val_enc, task.num_labels, pad_id=pad, metric=metric,
        device=dev, seed=seed, evals_per_epoch=evals_per_epoch, keep_best=True,
    )
    test_score = None
    if task.test is not None:
        test_score = evaluate(clf, encode_split(tokenizer, task.test, max_length), metric, pad, dev)
    return FineTuneResult(
        model=clf, tokenizer=tokenizer, task=task, outcome=outcome,
        validation_score=outcome.best_score, test_score=test_score, max_length=max_length,
        device=dev,
    )
