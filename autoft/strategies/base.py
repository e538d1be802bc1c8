"""The strategy-kind seam: what a fine-tuning strategy is and the interface every kind implements.

A :class:`Strategy` says how to fine-tune a backbone with L blocks: ``frozen_layers = k`` bottom
blocks (and the embeddings) stay untouched, a classification head is added, and the kind decides
what trains above them. Every kind shares the fields of this base class (the bottom-k prefix, the
learning rates, the head, the pooling, epochs, batch size, weight decay, warmup); a kind adds its
own fields and implements the hooks:

* :meth:`Strategy.apply` applies the strategy to a classifier (freezes parameters, injects
  adapters); the result is read back from the model and checked with :meth:`Strategy.check`;
* :meth:`Strategy.cached_layers` says how many bottom blocks stay untouched, so that their outputs
  can be computed once and cached (see :mod:`autoft.training.prefix_cache`);
* :meth:`Strategy.param_groups` builds the optimizer's parameter groups;
* :meth:`Strategy.body` describes the kind for reports, :meth:`Strategy.family` names the
  family the cost model and the learning curves group it in;
* :meth:`Strategy.export` prepares a trained model for saving (e.g. merging adapters);
* ``FIELDS``/``CHOICES`` name the kind's own search-space fields.

Kinds register with :func:`register_strategy_kind` and are found by their ``kind`` name, which
each stored strategy carries. ``Strategy(...)`` itself builds the default kind, ``"freeze"`` (as
``pathlib.Path(...)`` builds a ``PosixPath``), so ``autoft.Strategy(frozen_layers=3)`` is
freeze-k fine-tuning. Modelled on PEFT, where a method is a dataclass config (``LoraConfig``) with
cross-field checks in ``__post_init__``, plus a registry. This module imports no torch: strategies
are data, and their hooks act on the model they are given.

Definitions (see ``../shared/ARCHITECTURE.md``): ``frozen_layers = 0`` is full fine-tuning;
``k >= 1`` freezes the embeddings and the bottom k blocks; ``k = L`` trains the head only (a
*linear probe* when the head is linear). Frozen modules stay in eval mode, so dropout never acts on
them and their outputs depend only on the input.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from autoft.budget import plural
from autoft.errors import StrategyError

if TYPE_CHECKING:
    from pathlib import Path

    from torch import nn

#: The classifier a strategy is applied to (:class:`autoft.models.classifier.AutoftClassifier`).
AutoftClassifier = Any

__all__ = [
    "BASE_FIELDS",
    "DEFAULT_KIND",
    "HEAD_KINDS",
    "PAIR_ENCODINGS",
    "POOLINGS",
    "AppliedStrategy",
    "Family",
    "Head",
    "Strategy",
    "register_strategy_kind",
    "strategy_class",
    "strategy_kinds",
]

#: Head kinds: a single linear layer, or a multi-layer perceptron.
HEAD_KINDS = ("linear", "mlp")
#: Pooling of the last hidden states into one vector: the first token, or the masked mean.
POOLINGS = ("cls", "mean")
#: How a sentence pair is read: together (a cross-encoder), or each text alone (a bi-encoder) with
#: the head on ``[u, v, |u-v|, u*v]`` (Sentence-BERT's classification objective) or on the cosine
#: similarity of the two (Sentence-BERT's regression objective).
PAIR_ENCODINGS = ("joint", "separate", "cosine")
#: Training-time image augmentations: ``"none"``, or ``"flip_crop"`` (a random resized crop of
#: 50-100% of the area and aspect 3/4-4/3, then a horizontal flip half the time; the light
#: augmentation of torchvision's ImageNet training recipe, with a milder crop for small data).
AUGMENTATIONS = ("none", "flip_crop")
#: The kind ``Strategy(...)`` builds and a stored strategy without a ``kind`` has.
DEFAULT_KIND = "freeze"

#: The flat fields every kind has (the form of :meth:`Strategy.to_dict`), with their types.
BASE_FIELDS: dict[str, type] = {
    "kind": str,
    "frozen_layers": int,
    "learning_rate": float,
    "head_learning_rate": float,
    "pair_encoding": str,
    "head": str,
    "head_width": int,
    "head_depth": int,
    "head_dropout": float,
    "pooling": str,
    "epochs": int,
    "batch_size": int,
    "weight_decay": float,
    "warmup_ratio": float,
    "loss": str,
    "resolution": int,
    "augment": str,
}
_BASE_CHOICES: dict[str, tuple[Any, ...]] = {"head": HEAD_KINDS, "pooling": POOLINGS,
                                             "augment": AUGMENTATIONS,
                                             "pair_encoding": PAIR_ENCODINGS}


def _check_number(name: str, value: Any) -> None:
    """A strategy's real-valued field must be a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise StrategyError(f"{name}={value!r} must be a finite number")


@dataclass(frozen=True)
class Head:
    """Shape of the classification head on top of the pooled backbone output.

    Attributes:
        kind: ``"linear"`` (dropout then one ``Linear(H, K)``) or ``"mlp"`` (``depth`` blocks of
            ``Dropout -> Linear -> GELU`` of size ``width``, then ``Dropout -> Linear(width, K)``).
            Default ``"linear"``.
        width: Hidden width of an MLP head, in units. Default 256. Unused by a linear head.
        depth: Number of hidden layers of an MLP head, >= 1. Default 1. Unused by a linear head.
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
        if self.kind == "mlp" and (isinstance(self.width, bool) or int(self.width) != self.width
                                   or self.width < 1):
            raise StrategyError(f"head width {self.width!r} must be a positive integer")
        if self.kind == "mlp" and (isinstance(self.depth, bool) or int(self.depth) != self.depth
                                   or self.depth < 1):
            raise StrategyError(f"head depth {self.depth!r} must be a positive integer")
        _check_number("head dropout", self.dropout)
        if not 0.0 <= float(self.dropout) < 1.0:
            raise StrategyError(f"head dropout {self.dropout!r} must be in [0, 1)")

    def describe(self) -> str:
        """Short human-readable form, e.g. ``"MLP head (1 x 256)"``."""
        if self.kind == "linear":
            return "linear head"
        return f"MLP head ({self.depth} x {self.width})"

    def to_dict(self) -> dict[str, Any]:
        """The fields an exported model needs to rebuild the head (a linear head has no width
        or depth)."""
        if self.kind == "linear":
            return {"kind": self.kind, "dropout": self.dropout}
        return {"kind": self.kind, "width": self.width, "depth": self.depth,
                "dropout": self.dropout}


@dataclass(frozen=True, order=True)
class Family:
    """A group of strategies that cost about the same per example and share a learning curve:
    the cost model and the learning curves are fit per family.

    Attributes:
        kind: The strategy kind.
        frozen_layers: k; the cost model interpolates in k between families of one kind and head.
        head: The head kind.
        variant: What else changes the cost within the kind (e.g. a LoRA rank); empty for freeze.
    """

    kind: str
    frozen_layers: int
    head: str
    variant: str = ""

    def __str__(self) -> str:
        prefix = "" if self.kind == DEFAULT_KIND else f"{self.kind} "
        suffix = f" {self.variant}" if self.variant else ""
        return f"{prefix}k={self.frozen_layers}/{self.head}{suffix}"


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


_KINDS: dict[str, type[Strategy]] = {}


def register_strategy_kind(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: register a :class:`Strategy` subclass under its ``kind``.

    Raises:
        StrategyError: The class has no ``kind`` name, or another class has it.
    """
    name = getattr(cls, "kind", "")
    if not name:
        raise StrategyError(f"{cls.__name__} has no kind name")
    if name in _KINDS and _KINDS[name].__qualname__ != cls.__qualname__:
        raise StrategyError(f"strategy kind {name!r} is already registered")
    clashing = set(cls.FIELDS) & set(BASE_FIELDS)
    if clashing:
        raise StrategyError(f"{cls.__name__} redefines the common fields {sorted(clashing)}")
    _KINDS[name] = cls
    return cls


def strategy_kinds() -> dict[str, type[Strategy]]:
    """The registered strategy kinds by name (the package's ``__init__``, which Python runs before
    this module, imports the built-in kinds, so they are always registered)."""
    return dict(_KINDS)


def strategy_class(kind: str) -> type[Strategy]:
    """The registered strategy class of ``kind``.

    Raises:
        StrategyError: No such kind (the message lists the known ones).
    """
    kinds = strategy_kinds()
    if kind not in kinds:
        raise StrategyError(f"strategy kind {kind!r} is not one of {sorted(kinds)}")
    return kinds[kind]


@dataclass(frozen=True)
class Strategy:
    """How to fine-tune a backbone: a point of the search space. ``Strategy(...)`` builds the
    default kind (``"freeze"``, see :class:`~autoft.strategies.freeze.FreezeStrategy`).

    Attributes:
        frozen_layers: k, the number of bottom blocks left untouched (with the embeddings when
            k >= 1); 0 is full fine-tuning, L trains the head only. Default 0.
        learning_rate: Peak AdamW learning rate of the trained backbone parameters. Default 2e-5
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
        loss: The training loss, by the name the task kind gives it (``TaskKind.losses``, e.g.
            ``"huber"`` for regression); None for the task's default (cross-entropy for
            classification, mean squared error for regression). Default None. The task checks
            the name before any model loads.
        pair_encoding: For sentence-pair data: ``"joint"`` reads the pair together (a
            cross-encoder, ``[CLS] a [SEP] b [SEP]``); ``"separate"`` encodes each text alone and
            the head reads ``[u, v, |u-v|, u*v]`` of their pooled vectors (a bi-encoder; Reimers &
            Gurevych 2019, Sentence-BERT), which keeps what a sentence-embedding backbone such as
            all-MiniLM-L6-v2 learned; ``"cosine"`` encodes each alone and predicts from their
            cosine similarity (standardised, then ``Linear(1, K)``; Sentence-BERT's regression
            objective; the ``head`` fields are unused). Neither uses the prefix cache. Default
            ``"joint"``; not searched for single texts, where only ``"joint"`` is valid.
        resolution: For image backbones, the side of the square input in pixels (images are
            resized and centre-cropped to it; see :mod:`autoft.training.pixels`); compute grows
            with its square, so on a CPU it trades accuracy for time. None: the backbone's own
            (224 for EfficientNet-Lite0). Must be None for text. Default None.
        augment: For images, ``"flip_crop"`` augments each training batch (see
            :data:`AUGMENTATIONS`); a strategy that augments cannot train from the prefix cache
            (its inputs change every epoch). Default ``"none"``.

    Class attributes (set by each kind):
        kind: The registry name.
        FIELDS: The kind's own flat fields and their types (``int``, ``float``, ``str``).
        CHOICES: Allowed values of the kind's own string fields.
        LEARNING_RATE_FIELD: The field holding the trained backbone parameters' learning rate:
            ``"learning_rate"``, or a kind's own field (BitFit's, LoRA's) that replaces it, so the
            sampler models that rate apart from full fine-tuning's much smaller ones.

    Raises:
        StrategyError: A value out of range (the message names the field and the rule).
    """

    kind: ClassVar[str] = ""
    FIELDS: ClassVar[dict[str, type]] = {}
    CHOICES: ClassVar[dict[str, tuple[Any, ...]]] = {}
    LEARNING_RATE_FIELD: ClassVar[str] = "learning_rate"

    frozen_layers: int = 0
    learning_rate: float = 2e-5
    head_learning_rate: float | None = None
    head: Head = field(default_factory=Head)
    pooling: str = "cls"
    epochs: int = 3
    batch_size: int = 32
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    loss: str | None = None
    pair_encoding: str = "joint"
    resolution: int | None = None
    augment: str = "none"

    def __new__(cls, *args: Any, **kwargs: Any) -> Strategy:
        if cls is Strategy:  # the base class builds the default kind
            cls = strategy_class(DEFAULT_KIND)
        return object.__new__(cls)

    def __post_init__(self) -> None:
        for name in ("learning_rate", "weight_decay", "warmup_ratio"):
            _check_number(name, getattr(self, name))
        if self.head_learning_rate is not None:
            _check_number("head_learning_rate", self.head_learning_rate)
        checks: list[tuple[bool, str]] = [
            (isinstance(self.frozen_layers, int) and not isinstance(self.frozen_layers, bool)
             and self.frozen_layers >= 0,
             f"frozen_layers={self.frozen_layers!r} must be an integer >= 0"),
            (float(self.learning_rate) > 0, f"learning_rate={self.learning_rate!r} must be > 0"),
            (self.head_learning_rate is None or float(self.head_learning_rate) > 0,
             f"head_learning_rate={self.head_learning_rate!r} must be > 0 or None"),
            (isinstance(self.head, Head), f"head={self.head!r} must be a Head"),
            (self.pooling in POOLINGS, f"pooling={self.pooling!r} must be one of {POOLINGS}"),
            (isinstance(self.epochs, int) and not isinstance(self.epochs, bool) and self.epochs >= 1,
             f"epochs={self.epochs!r} must be an integer >= 1"),
            (isinstance(self.batch_size, int) and not isinstance(self.batch_size, bool)
             and self.batch_size >= 1, f"batch_size={self.batch_size!r} must be an integer >= 1"),
            (float(self.weight_decay) >= 0, f"weight_decay={self.weight_decay!r} must be >= 0"),
            (0.0 <= float(self.warmup_ratio) < 1.0,
             f"warmup_ratio={self.warmup_ratio!r} must be in [0, 1)"),
            (self.pair_encoding in PAIR_ENCODINGS,
             f"pair_encoding={self.pair_encoding!r} must be one of {PAIR_ENCODINGS}"),
            (self.loss is None or (isinstance(self.loss, str) and bool(self.loss)),
             f"loss={self.loss!r} must be a loss name such as 'huber', or None for the task's "
             "default"),
            (self.resolution is None or (isinstance(self.resolution, int)
                                         and not isinstance(self.resolution, bool)
                                         and 16 <= self.resolution <= 2048),
             f"resolution={self.resolution!r} must be an integer from 16 to 2048 (pixels), or "
             "None for the backbone's own"),
            (self.augment in AUGMENTATIONS,
             f"augment={self.augment!r} must be one of {AUGMENTATIONS}"),
        ]
        own = self.LEARNING_RATE_FIELD
        if own != "learning_rate":
            rate = getattr(self, own)
            checks.append((not isinstance(rate, bool) and isinstance(rate, (int, float))
                           and math.isfinite(rate) and rate > 0,
                           f"{own}={rate!r} must be a number > 0"))
        for ok, message in checks:
            if not ok:
                raise StrategyError(message)

    # -- the flat form ---------------------------------------------------------------------

    @classmethod
    def space_fields(cls) -> dict[str, type]:
        """Every flat field of this kind (the common ones, then the kind's own) with its type."""
        return {**BASE_FIELDS, **cls.FIELDS}

    @classmethod
    def field_choices(cls) -> dict[str, tuple[Any, ...]]:
        """Allowed values of this kind's string fields."""
        return {**_BASE_CHOICES, "kind": tuple(strategy_kinds()), **cls.CHOICES}

    @classmethod
    def uses(cls, name: str, values: dict[str, Any], num_layers: int) -> bool:
        """Whether field ``name`` matters given the values chosen before it (the search space
        suggests it only then): the backbone learning rate only when some block trains, the MLP
        head's width and depth only for an MLP head. Kinds may add conditions."""
        if name == cls.LEARNING_RATE_FIELD:
            return int(values.get("frozen_layers", 0)) < num_layers
        if name == "learning_rate":
            return False  # the kind's own learning-rate field replaces it
        if name in ("head", "head_dropout", "head_width", "head_depth") and values.get(
                "pair_encoding") == "cosine":
            return False  # the cosine head has no shape to choose
        if name in ("head_width", "head_depth"):
            return values.get("head", "linear") == "mlp"
        return True

    @property
    def backbone_learning_rate(self) -> float:
        """The peak learning rate of the trained backbone parameters (the
        ``LEARNING_RATE_FIELD``)."""
        return float(getattr(self, self.LEARNING_RATE_FIELD))

    @property
    def effective_head_learning_rate(self) -> float:
        """The head's learning rate (``head_learning_rate``, else ``learning_rate``)."""
        return float(self.head_learning_rate or self.learning_rate)

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-serialisable form: ``kind``, the common fields (the head's as ``head``,
        ``head_dropout`` and, for an MLP head, ``head_width``/``head_depth``), the kind's own."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            if f.name != "head":
                out[f.name] = getattr(self, f.name)
        out["head"] = self.head.kind
        out["head_dropout"] = self.head.dropout
        if self.head.kind == "mlp":
            out["head_width"] = self.head.width
            out["head_depth"] = self.head.depth
        return out

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> Strategy:
        """Inverse of :meth:`to_dict`: the class is picked by ``kind`` (default ``"freeze"``).

        Raises:
            StrategyError: Not a mapping, an unknown kind, or unknown fields.
        """
        if not isinstance(params, dict):
            raise StrategyError(
                f"Strategy.from_dict needs a mapping of strategy fields, got {type(params).__name__}"
            )
        params = dict(params)
        target = strategy_class(str(params.pop("kind", DEFAULT_KIND)))
        head_fields = {"kind": params.pop("head", "linear")}
        for key in ("width", "depth", "dropout"):
            if f"head_{key}" in params:
                head_fields[key] = params.pop(f"head_{key}")
        names = {f.name for f in dataclasses.fields(target)}
        unknown = sorted(set(params) - names)
        if unknown:
            raise StrategyError(f"unknown strategy fields {unknown} for kind {target.kind!r}; "
                                f"known: {sorted(names | {'kind', 'head_width', 'head_depth'})}")
        return target(head=Head(**head_fields), **params)

    # -- describing ------------------------------------------------------------------------

    def body(self, num_layers: int | None = None) -> str:
        """What the kind does to the backbone, e.g. ``"freeze embeddings + 4/6 blocks"``."""
        raise NotImplementedError

    def describe(self, num_layers: int | None = None) -> str:
        """One line for reports, e.g. ``"freeze embeddings + 4/6 blocks; lr 3e-05, head lr ..."``."""
        lrs = f"head lr {self.effective_head_learning_rate:.2g}"
        if num_layers is None or self.frozen_layers < num_layers:
            lrs = f"lr {self.backbone_learning_rate:.2g}, " + lrs
        loss = f"; {self.loss} loss" if self.loss is not None else ""
        pooling = (f"{self.pooling} pooling" if self.pair_encoding == "joint"
                   else f"texts of a pair encoded apart, {self.pooling} pooling")
        head = ("cosine-similarity head" if self.pair_encoding == "cosine"
                else self.head.describe())
        if self.resolution is not None:  # an image backbone: pooled by its own rule
            augment = "" if self.augment == "none" else f", {self.augment.replace('_', '+')}"
            return (f"{self.body(num_layers)}; {lrs}; {head}; {self.resolution} px{augment}; "
                    f"{plural(self.epochs, 'epoch')}, batch {self.batch_size}{loss}")
        return (
            f"{self.body(num_layers)}; {lrs}; {head}, {pooling}; "
            f"{plural(self.epochs, 'epoch')}, batch {self.batch_size}{loss}"
        )

    def family(self) -> Family:
        """The cost and learning-curve family of this strategy."""
        return Family(self.kind, self.frozen_layers, self.head.kind, self._pair_variant())

    def _pair_variant(self, variant: str = "") -> str:
        """A family's ``variant`` with separate pair encoding marked (no prefix cache, two
        encoder passes: it costs differently) and an image resolution (compute grows with its
        square)."""
        if self.pair_encoding != "joint":
            variant = f"{variant} {self.pair_encoding}".strip()
        if self.resolution is not None:
            variant = f"{variant} {self.resolution}px".strip()
        if self.augment != "none":  # never cached: it costs like an uncached trial
            variant = f"{variant} {self.augment}".strip()
        return variant

    # -- hooks acting on a model -----------------------------------------------------------

    def cached_layers(self, num_layers: int) -> int:
        """How many bottom blocks (with the embeddings) this strategy leaves untouched and in eval
        mode, so that their outputs may come from the prefix cache (0: none; always for separate
        pair encoding, whose inputs are split inside the model)."""
        if self.pair_encoding != "joint" or self.augment != "none":
            return 0  # inputs split inside the model, or changed every epoch
        return min(self.frozen_layers, num_layers)

    def apply(self, model: AutoftClassifier) -> None:
        """Apply the strategy to a freshly built classifier (its encoder fully trainable).

        Raises:
            StrategyError: The strategy does not fit this backbone.
        """
        raise NotImplementedError

    def check(self, model: AutoftClassifier, applied: AppliedStrategy) -> None:
        """Check what :meth:`apply` did, as read back from the model.

        Raises:
            StrategyError: The model disagrees with the strategy.
        """

    def param_groups(self, model: AutoftClassifier) -> list[dict[str, Any]]:
        """AdamW parameter groups over the trainable parameters only: backbone/head x
        decay/no-decay. No weight decay on biases and normalisation weights (as in BERT and
        Hugging Face ``Trainer``)."""
        groups: dict[tuple[str, bool], list[nn.Parameter]] = {}
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            part = "head" if name.startswith("head.") else "backbone"
            groups.setdefault((part, param.ndim >= 2), []).append(param)
        lrs = {"backbone": self.backbone_learning_rate, "head": self.effective_head_learning_rate}
        return [
            {"params": params, "lr": lrs[part],
             "weight_decay": float(self.weight_decay) if decay else 0.0}
            for (part, decay), params in sorted(groups.items())
        ]

    def export(self, model: AutoftClassifier) -> AutoftClassifier:
        """Prepare a trained classifier for saving as a plain Hugging Face model (e.g. merge
        adapters into the weights). Default: the model as it is."""
        return model

    def adapter_problem(self, num_layers: int) -> str | None:
        """Why this strategy has no adapter to save alone (None when it has one). Default: a
        kind without adapters."""
        return (f"a {self.kind} strategy trains no adapter to save alone (only LoRA does); "
                "the model folder holds the whole fine-tuned model")

    def save_adapter(self, model: AutoftClassifier, folder: str | Path, base_model: str,
                     extra: dict[str, Any] | None = None) -> Path:
        """Save the trained adapter alone (before :meth:`export` merges it). Only kinds with
        adapters implement it.

        Raises:
            StrategyError: The strategy has no adapter (:meth:`adapter_problem` says why).
        """
        raise StrategyError(str(self.adapter_problem(model.parts.num_layers)))
