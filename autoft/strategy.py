"""Fine-tuning strategies and applying them to a backbone.

A :class:`Strategy` says how to fine-tune: how many bottom blocks to freeze, the learning rates, the
classification head, the pooling, epochs and batch size. :func:`build_classifier` applies it to a
backbone and *verifies* the result against the model itself (which blocks really are frozen, how many
parameters really are trainable), so what a trial records is what it trained.

Definitions (see ARCHITECTURE.md): for a backbone with L blocks, ``frozen_layers = 0`` is full
fine-tuning; ``k >= 1`` freezes the embeddings and the bottom k blocks; ``k = L`` trains the head only
(a *linear probe* when the head is linear). Frozen modules stay in eval mode, so dropout never acts on
them and their outputs depend only on the input.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from autoft.backbone import BackboneParts, locate_parts
from autoft.errors import StrategyError

__all__ = [
    "HEAD_KINDS",
    "POOLINGS",
    "AppliedStrategy",
    "AutoftClassifier",
    "Head",
    "Strategy",
    "build_classifier",
    "build_head",
    "count_parameters",
    "inspect_frozen_layers",
    "pool",
]

#: Head kinds: a single linear layer, or a multi-layer perceptron.
HEAD_KINDS = ("linear", "mlp")
#: Pooling of the last hidden states into one vector: the first token, or the masked mean.
POOLINGS = ("cls", "mean")


@dataclass(frozen=True)
class Head:
    """Shape of the classification head on top of the pooled backbone output.

    Attributes:
        kind: ``"linear"`` (dropout then one ``Linear(H, K)``) or ``"mlp"`` (``depth`` blocks of
            ``Linear -> GELU -> Dropout`` of size ``width``, then ``Linear(width, K)``).
            Default ``"linear"``.
        width: Hidden width of an MLP head, in units. Default 256. Ignored for a linear head.
        depth: Number of hidden layers of an MLP head, >= 1. Default 1. Ignored for a linear head.
        dropout: Dropout probability in [0, 1) before each linear layer. Default 0.1.

    Raises:
        StrategyError: An unknown kind, or a width, depth or dropout out of range.
    """

    kind: str = "linear"
    width: int = 256
    depth: int = 1
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.kind not in HEAD_KINDS:
            raise StrategyError(f"head kind {self.kind!r} is not one of {HEAD_KINDS}")
        if self.kind == "mlp" and (int(self.width) != self.width or self.width < 1):
            raise StrategyError(f"head width {self.width!r} must be a positive integer")
        if self.kind == "mlp" and (int(self.depth) != self.depth or self.depth < 1):
            raise StrategyError(f"head depth {self.depth!r} must be a positive integer")
        _check_number("head dropout", self.dropout)
        if not 0.0 <= float(self.dropout) < 1.0:
            raise StrategyError(f"head dropout {self.dropout!r} must be in [0, 1)")

    def describe(self) -> str:
        """Short human-readable form, e.g. ``"MLP head (1 x 256)"``."""
        if self.kind == "linear":
            return "linear head"
        return f"MLP head ({self.depth} x {self.width})"


@dataclass(frozen=True)
class Strategy:
    """How to fine-tune a backbone: a point of the search space.

    Attributes:
        frozen_layers: k, the number of bottom transformer blocks frozen (with the embeddings when
            k >= 1); 0 is full fine-tuning, L trains the head only. Default 0.
        learning_rate: Peak AdamW learning rate of the trainable backbone blocks. Default 2e-5
            (BERT's fine-tuning range, Devlin et al. 2019). Unused when k = L.
        head_learning_rate: Peak learning rate of the head; None means ``learning_rate``.
            Default None.
        head: The classification head. Default: linear, dropout 0.1.
        pooling: ``"cls"`` (first token's hidden state) or ``"mean"`` (masked mean over tokens;
            what all-MiniLM-L6-v2 was trained with). Default ``"cls"``.
        epochs: Passes over the training split, >= 1. Default 3.
        batch_size: Training examples per optimizer step, >= 1. Default 32.
        weight_decay: AdamW weight decay (not applied to biases and LayerNorm weights). Default 0.01.
        warmup_ratio: Fraction of the steps with linear warmup, in [0, 1); then linear decay to 0.
            Default 0.1.

    Raises:
        StrategyError: A value out of range (the message names the field and the rule).
    """

    frozen_layers: int = 0
    learning_rate: float = 2e-5
    head_learning_rate: float | None = None
    head: Head = field(default_factory=Head)
    pooling: str = "cls"
    epochs: int = 3
    batch_size: int = 32
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1

    def __post_init__(self) -> None:
        for name in ("learning_rate", "weight_decay", "warmup_ratio"):
            _check_number(name, getattr(self, name))
        if self.head_learning_rate is not None:
            _check_number("head_learning_rate", self.head_learning_rate)
        checks: list[tuple[bool, str]] = [
            (isinstance(self.frozen_layers, int) and self.frozen_layers >= 0,
             f"frozen_layers={self.frozen_layers!r} must be an integer >= 0"),
            (float(self.learning_rate) > 0, f"learning_rate={self.learning_rate!r} must be > 0"),
            (self.head_learning_rate is None or float(self.head_learning_rate) > 0,
             f"head_learning_rate={self.head_learning_rate!r} must be > 0 or None"),
            (isinstance(self.head, Head), f"head={self.head!r} must be a Head"),
            (self.pooling in POOLINGS, f"pooling={self.pooling!r} must be one of {POOLINGS}"),
            (isinstance(self.epochs, int) and self.epochs >= 1,
             f"epochs={self.epochs!r} must be an integer >= 1"),
            (isinstance(self.batch_size, int) and self.batch_size >= 1,
             f"batch_size={self.batch_size!r} must be an integer >= 1"),
            (float(self.weight_decay) >= 0, f"weight_decay={self.weight_decay!r} must be >= 0"),
            (0.0 <= float(self.warmup_ratio) < 1.0,
             f"warmup_ratio={self.warmup_ratio!r} must be in [0, 1)"),
        ]
        for ok, message in checks:
            if not ok:
                raise StrategyError(message)

    @property
    def effective_head_learning_rate(self) -> float:
        """The head's learning rate (``head_learning_rate``, else ``learning_rate``)."""
        return float(self.head_learning_rate or self.learning_rate)

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-serialisable form: the head's fields become ``head``, ``head_width``, ..."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "head"}
        out["head"] = self.head.kind
        out["head_dropout"] = self.head.dropout
        if self.head.kind == "mlp":
            out["head_width"] = self.head.width
            out["head_depth"] = self.head.depth
        return out

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> Strategy:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`StrategyError`."""
        if not isinstance(params, dict):
            raise StrategyError(
                f"Strategy.from_dict needs a mapping of strategy fields, got {type(params).__name__}"
            )
        params = dict(params)
        head_fields = {"kind": params.pop("head", "linear")}
        for key in ("width", "depth", "dropout"):
            if f"head_{key}" in params:
                head_fields[key] = params.pop(f"head_{key}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - names)
        if unknown:
            raise StrategyError(f"unknown strategy fields {unknown}; known: {sorted(names)}")
        return cls(head=Head(**head_fields), **params)

    def describe(self, num_layers: int | None = None) -> str:
        """One line for reports, e.g. ``"freeze embeddings + 4/6 blocks, lr 3e-05, ..."``."""
        k = self.frozen_layers
        if k == 0:
            body = "full fine-tuning"
        elif num_layers is not None and k >= num_layers:
            body = "linear probe (backbone frozen)" if self.head.kind == "linear" else (
                "head only (backbone frozen)"
            )
        else:
            body = f"freeze embeddings + {k}" + (f"/{num_layers}" if num_layers else "") + " blocks"
        lrs = f"head lr {self.effective_head_learning_rate:.2g}"
        if num_layers is None or k < num_layers:
            lrs = f"lr {self.learning_rate:.2g}, " + lrs
        return (
            f"{body}; {lrs}; {self.head.describe()}, {self.pooling} pooling; "
            f"{self.epochs} epochs, batch {self.batch_size}"
        )


def _check_number(name: str, value: Any) -> None:
    """A strategy's real-valued field must be a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise StrategyError(f"{name}={value!r} must be a finite number")


def build_head(hidden_size: int, num_labels: int, head: Head) -> nn.Sequential:
    """Build a classification head.

    Args:
        hidden_size: Width H of the pooled backbone output.
        num_labels: Number of classes K.
        head: Its shape.

    Returns:
        A module mapping ``(B, H)`` to logits ``(B, K)``.
    """
    layers: list[nn.Module] = []
    width_in = hidden_size
    if head.kind == "mlp":
        for _ in range(head.depth):
            layers += [nn.Dropout(head.dropout), nn.Linear(width_in, head.width), nn.GELU()]
            width_in = head.width
    layers += [nn.Dropout(head.dropout), nn.Linear(width_in, num_labels)]
    return nn.Sequential(*layers)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool hidden states ``(B, T, H)`` into ``(B, H)``: the first token (``"cls"``) or the mean
    over the tokens the attention mask ``(B, T)`` keeps (``"mean"``)."""
    if pooling == "cls":
        return hidden[:, 0]  # (B, H)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, H)


class AutoftClassifier(nn.Module):
    """A backbone encoder, a pooling and a classification head.

    Args:
        encoder: A Hugging Face ``AutoModel`` encoder of a supported architecture.
        num_labels: Number of classes K.
        head: Shape of the head.
        pooling: ``"cls"`` or ``"mean"``.

    ``forward(input_ids, attention_mask, token_type_ids=None)`` takes ``(B, T)`` integer tensors and
    returns logits ``(B, K)``.
    """

    def __init__(self, encoder: nn.Module, num_labels: int, head: Head, pooling: str) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise StrategyError(f"pooling={pooling!r} must be one of {POOLINGS}")
        self.encoder = encoder
        self.parts: BackboneParts = locate_parts(encoder)
        self.pooling = pooling
        config: Any = encoder.config
        hidden = int(config.hidden_size)
        self.head = build_head(hidden, num_labels, head)
        self._frozen: list[nn.Module] = []
        self.frozen_layers = 0
        self._suffix: nn.Module | None = None  # blocks above the frozen prefix (shares weights)

    def freeze(self, k: int) -> None:
        """Freeze the embeddings and the bottom ``k`` blocks (nothing when k = 0)."""
        parts = self.parts
        if not 0 <= k <= parts.num_layers:
            raise StrategyError(
                f"frozen_layers={k} is out of range for a backbone of {parts.num_layers} blocks; "
                f"it must be in 0..{parts.num_layers}"
            )
        self._frozen = [] if k == 0 else [parts.embeddings, *parts.extra, *parts.layers[:k]]
        self.frozen_layers = k
        object.__setattr__(self, "_suffix", None)
        for module in self._frozen:
            module.requires_grad_(False)
            module.eval()

    def train(self, mode: bool = True) -> AutoftClassifier:
        """Set train/eval mode; frozen modules always stay in eval mode."""
        super().train(mode)
        for module in self._frozen:
            module.eval()
        return self

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        hidden: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits ``(B, K)`` from token ids ``(B, T)``, or, with ``hidden`` ``(B, T, H)``, from the
        cached hidden states after the frozen blocks (then only the blocks above them run)."""
        if attention_mask is None:
            raise StrategyError("attention_mask is required")
        if hidden is not None:
            if self.frozen_layers == 0:
                raise StrategyError("cached hidden states need frozen_layers >= 1")
            if self._suffix is None:
                from autoft.prefix_cache import suffix_view

                object.__setattr__(self, "_suffix", suffix_view(self.encoder, self.frozen_layers))
            assert self._suffix is not None
            hidden = self._suffix(inputs_embeds=hidden, attention_mask=attention_mask
                                  ).last_hidden_state  # (B, T, H)
        else:
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            hidden = self.encoder(**kwargs).last_hidden_state  # (B, T, H)
        return self.head(pool(hidden, attention_mask, self.pooling))  # (B, K)


@dataclass(frozen=True)
class AppliedStrategy:
    """What was really applied to a model, read back from the model itself.

    Attributes:
        frozen_layers: Number of bottom blocks whose parameters are all frozen.
        embeddings_frozen: Whether the embeddings are frozen.
        trainable_params: Number of trainable parameters (backbone and head).
        total_params: Number of parameters (backbone and head).
    """

    frozen_layers: int
    embeddings_frozen: bool
    trainable_params: int
    total_params: int


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``module`` (only those with ``requires_grad`` if asked)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _all_frozen(module: nn.Module) -> bool:
    return all(not p.requires_grad for p in module.parameters())


def inspect_frozen_layers(model: AutoftClassifier) -> AppliedStrategy:
    """Read the applied freezing back from ``requires_grad`` flags.

    Raises:
        StrategyError: The freezing is not of the form "embeddings + a bottom prefix of blocks"
            (e.g. a block above a trainable block is frozen, or a block is half frozen).
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
    for i, block in enumerate(parts.layers[k:], start=k):
        if any(not p.requires_grad for p in block.parameters()):
            raise StrategyError(f"block {i} is partly frozen; a block is frozen whole or not")
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
    encoder: nn.Module, strategy: Strategy, num_labels: int, seed: int = 0
) -> tuple[AutoftClassifier, AppliedStrategy]:
    """Apply a strategy to a backbone and check that it was applied exactly.

    The encoder is used as given (not copied); pass a fresh copy per trial. The head is initialised
    from ``torch.manual_seed(seed)``.

    Args:
        encoder: A Hugging Face encoder of a supported architecture.
        strategy: The strategy; ``frozen_layers`` must be in ``0..L``.
        num_labels: Number of classes K >= 2.
        seed: Seed of the head's initialisation. Default 0.

    Returns:
        ``(model, applied)``: the classifier in train mode and what the model says was applied.

    Raises:
        StrategyError: ``frozen_layers`` out of range, or the model disagrees with the strategy
            (frozen block count, or trainable parameter count versus the count expected from the
            module structure).
    """
    encoder.requires_grad_(True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoftClassifier(encoder, num_labels, strategy.head, strategy.pooling)
    model.freeze(strategy.frozen_layers)
    model.train()
    applied = inspect_frozen_layers(model)
    parts = model.parts
    k = strategy.frozen_layers
    expected = count_parameters(model)
    if k > 0:
        frozen_modules = [parts.embeddings, *parts.extra, *parts.layers[:k]]
        expected -= sum(count_parameters(m) for m in frozen_modules)
    if applied.frozen_layers != k or applied.trainable_params != expected:
        raise StrategyError(
            f"strategy not applied as specified: asked frozen_layers={k}, model has "
            f"{applied.frozen_layers}; expected {expected} trainable parameters, model has "
            f"{applied.trainable_params}"
        )
    return model, applied
