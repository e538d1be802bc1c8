"""LoRA: low-rank adapters on the backbone's linear layers, through the ``peft`` library.

Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models" (ICLR 2022): each adapted
weight W (out x in) gets a trainable update ``(alpha / r) B A`` with A (r x in), B (out x r),
B initialised to zero, while W stays frozen. For RoBERTa-base on GLUE the paper adapts the
attention projections with r = 8 and learning rates 4e-4..5e-4. Adapters are injected with
``peft.inject_adapter_in_model`` (peft's own LoRA layers, not a hand-written one) into the blocks
above ``frozen_layers`` only, so the bottom k blocks stay untouched and their outputs can still
come from the prefix cache (peft's ``layers_to_transform``, expressed here as the exact module
names of those blocks, found by module structure). For export the adapters are merged into the
weights (``LoraLayer.merge``, the per-layer step of peft's ``merge_and_unload``) and the base
layers put back, so the saved folder is a plain Hugging Face model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from autoft.errors import StrategyError
from autoft.strategies.base import (
    AppliedStrategy,
    AutoftClassifier,
    Family,
    Strategy,
    register_strategy_kind,
)

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["LoraStrategy", "lora_target_modules", "merge_lora"]

#: Values of ``lora_targets``: the attention projections, or those and the feed-forward layers.
TARGET_CHOICES = ("attention", "attention_ffn")


def lora_target_modules(encoder: Any, layers: Any, first: int, targets: str) -> list[str]:
    """The qualified names (in ``encoder``) of the linear layers LoRA adapts: those of blocks
    ``first..L-1`` of ``layers`` that belong to the attention (a module on the path whose name
    contains ``attn`` or ``attention``: BERT's query/key/value/output, MPNet's q/k/v/o) and, with
    ``targets="attention_ffn"``, the others (the feed-forward layers).

    Raises:
        StrategyError: An unknown ``targets``, or a block above ``first`` without such layers.
    """
    from torch import nn

    if targets not in TARGET_CHOICES:
        raise StrategyError(f"lora_targets={targets!r} must be one of {TARGET_CHOICES}")
    names = {id(m): name for name, m in encoder.named_modules()}
    out: list[str] = []
    for i, block in enumerate(list(layers)[first:], start=first):
        prefix = names[id(block)]
        found = []
        for name, module in block.named_modules():
            if not isinstance(module, nn.Linear):
                continue
            attention = any("attn" in part.lower() or "attention" in part.lower()
                            for part in name.split("."))
            if attention or targets == "attention_ffn":
                found.append(f"{prefix}.{name}")
        if not found:
            raise StrategyError(f"block {i} of the backbone has no linear layer for LoRA "
                                f"({targets}); this backbone needs its own adapter table")
        out += found
    return out


def merge_lora(module: Any) -> int:
    """Fold every peft LoRA layer in ``module`` into its base layer, in place: ``merge()`` adds
    ``(alpha / r) B A`` to the base weight, then the base layer replaces the LoRA wrapper (what
    peft's ``merge_and_unload`` does for a ``PeftModel``). Returns how many layers were merged."""
    from peft.tuners.lora import LoraLayer

    parents = {id(m): m for m in module.modules()}
    merged = 0
    for parent in list(parents.values()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, LoraLayer):
                child.merge()
                setattr(parent, child_name, child.get_base_layer())
                merged += 1
    return merged


@register_strategy_kind
@dataclass(frozen=True)
class LoraStrategy(Strategy):
    """Freeze the whole backbone; add trainable LoRA adapters to the linear layers of the blocks
    above the bottom ``frozen_layers`` (with the head).

    Attributes (besides :class:`~autoft.strategies.base.Strategy`'s):
        lora_rank: r, the rank of each update, >= 1. Default 8 (Hu et al. 2021, GLUE).
        lora_alpha: The scale numerator: the update is ``(alpha / r) B A``. Default 16.
        lora_dropout: Dropout on the adapters' input in [0, 1). Default 0.1.
        lora_targets: ``"attention"`` (the attention projections) or ``"attention_ffn"`` (also
            the feed-forward layers). Default ``"attention"``.
        lora_learning_rate: Peak learning rate of the adapters, in place of ``learning_rate``.
            Default 5e-4 (the paper's 4e-4..5e-4 for RoBERTa-base).

    At k = L no block is adapted and only the head trains.

    Raises:
        StrategyError: A field out of range; in :meth:`apply`, ``frozen_layers`` above L.
    """

    kind: ClassVar[str] = "lora"
    FIELDS: ClassVar[dict[str, type]] = {
        "lora_rank": int, "lora_alpha": float, "lora_dropout": float, "lora_targets": str,
        "lora_learning_rate": float,
    }
    CHOICES: ClassVar[dict[str, tuple[Any, ...]]] = {"lora_targets": TARGET_CHOICES}
    LEARNING_RATE_FIELD: ClassVar[str] = "lora_learning_rate"

    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.1
    lora_targets: str = "attention"
    lora_learning_rate: float = 5e-4

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = [
            (isinstance(self.lora_rank, int) and not isinstance(self.lora_rank, bool)
             and self.lora_rank >= 1, f"lora_rank={self.lora_rank!r} must be an integer >= 1"),
            (_positive(self.lora_alpha), f"lora_alpha={self.lora_alpha!r} must be a number > 0"),
            (_number(self.lora_dropout) and 0.0 <= float(self.lora_dropout) < 1.0,
             f"lora_dropout={self.lora_dropout!r} must be in [0, 1)"),
            (self.lora_targets in TARGET_CHOICES,
             f"lora_targets={self.lora_targets!r} must be one of {TARGET_CHOICES}"),
        ]
        for ok, message in checks:
            if not ok:
                raise StrategyError(message)

    @classmethod
    def uses(cls, name: str, values: dict[str, Any], num_layers: int) -> bool:
        if name in cls.FIELDS:
            return int(values.get("frozen_layers", 0)) < num_layers
        return super().uses(name, values, num_layers)

    def body(self, num_layers: int | None = None) -> str:
        if num_layers is not None and self.frozen_layers >= num_layers:
            return "LoRA with every block frozen (head only)"
        where = "attention" if self.lora_targets == "attention" else "attention + FFN"
        above = "" if self.frozen_layers == 0 else (
            f" above {self.frozen_layers}" + (f"/{num_layers}" if num_layers else "")
            + " frozen blocks")
        return f"LoRA r={self.lora_rank} alpha={self.lora_alpha:g} on {where}{above}"

    def family(self) -> Family:
        return Family(self.kind, self.frozen_layers, self.head.kind,
                      self._pair_variant("attn" if self.lora_targets == "attention" else "attn+ffn"))

    def _targets(self, model: AutoftClassifier) -> list[str]:
        parts = model.parts
        return lora_target_modules(model.encoder, parts.layers, self.frozen_layers,
                                   self.lora_targets)

    def apply(self, model: AutoftClassifier) -> None:
        parts = model.parts
        k = self.frozen_layers
        model.encoder.requires_grad_(False)
        model.set_frozen(parts.prefix_modules(k))  # the cacheable bottom, in eval mode
        if k == parts.num_layers:
            return
        from peft import LoraConfig, inject_adapter_in_model
        from peft.tuners.lora import LoraLayer

        config = LoraConfig(r=self.lora_rank, lora_alpha=float(self.lora_alpha),
                            lora_dropout=float(self.lora_dropout),
                            target_modules=self._targets(model), bias="none")
        inject_adapter_in_model(config, model.encoder)
        for module in model.encoder.modules():  # only the adapters train
            if isinstance(module, LoraLayer):
                for adapters in (module.lora_A, module.lora_B):
                    adapters.requires_grad_(True)

    def check(self, model: AutoftClassifier, applied: AppliedStrategy) -> None:
        from autoft.strategies.apply import count_parameters

        parts = model.parts
        k = min(self.frozen_layers, parts.num_layers)
        adapted = 0
        if k < parts.num_layers:
            from peft.tuners.lora import LoraLayer

            for i, block in enumerate(parts.layers):
                layers = [m for m in block.modules() if isinstance(m, LoraLayer)]
                if (i < k) == bool(layers):
                    raise StrategyError(f"LoRA not applied as specified: block {i} "
                                        f"{'has' if layers else 'lacks'} adapters (k={k})")
                adapted += sum(count_parameters(a) for m in layers
                               for a in (m.lora_A, m.lora_B))
        expected = adapted + count_parameters(model.head)
        if applied.trainable_params != expected or applied.frozen_layers != k:
            raise StrategyError(
                f"LoRA not applied as specified: expected {expected} trainable parameters above "
                f"{k} frozen blocks, the model has {applied.trainable_params} above "
                f"{applied.frozen_layers}")

    def export(self, model: AutoftClassifier) -> AutoftClassifier:
        if self.frozen_layers < model.parts.num_layers:
            merge_lora(model.encoder)
        return model

    def adapter_problem(self, num_layers: int) -> str | None:
        if self.frozen_layers >= num_layers:
            return (f"this LoRA strategy freezes all {num_layers} blocks, so it has no adapters "
                    "(a linear probe); the model folder holds it whole")
        return None

    def save_adapter(self, model: AutoftClassifier, folder: str | Path, base_model: str,
                     extra: dict[str, Any] | None = None) -> Path:
        """Save the LoRA adapters alone, in peft's adapter format, before :meth:`export` merges
        them: ``adapter_config.json`` and ``adapter_model.safetensors`` (keys as a
        ``PeftModel`` saves them), so ``peft.PeftModel.from_pretrained(AutoModel.
        from_pretrained(base_model), folder)`` rebuilds the fine-tuned encoder; autoft's head
        (not a peft module) goes to ``autoft_head.safetensors`` with ``autoft_head.json``.

        Args:
            model: The trained classifier, adapters not merged yet.
            folder: Where to save; created if missing.
            base_model: The backbone's name or folder, written into the adapter config.
            extra: More of the model's description for ``autoft_head.json`` (labels, task,
                max_length, the output transform of a regression head). Default none.

        Returns:
            The folder.

        Raises:
            StrategyError: No adapters (all blocks frozen).
        """
        import json
        from pathlib import Path

        from peft import get_peft_model_state_dict
        from safetensors.torch import save_file

        problem = self.adapter_problem(model.parts.num_layers)
        if problem is not None:
            raise StrategyError(problem)
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        config = model.encoder.peft_config["default"]
        config.base_model_name_or_path = base_model
        config.save_pretrained(str(target))
        state = get_peft_model_state_dict(model.encoder)
        save_file({f"base_model.model.{k}": v.detach().cpu().contiguous()
                   for k, v in state.items()}, str(target / "adapter_model.safetensors"))
        save_file({k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()},
                  str(target / "autoft_head.safetensors"))
        (target / "autoft_head.json").write_text(json.dumps(
            {"strategy": self.to_dict(), "pooling": self.pooling,
             "pair_encoding": self.pair_encoding, **(extra or {})}, indent=2,
            default=str) + "\n")
        return target


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def _positive(value: Any) -> bool:
    return _number(value) and float(value) > 0
