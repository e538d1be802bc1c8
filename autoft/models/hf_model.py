"""autoft's fine-tuned model as a Hugging Face model: ``save_pretrained`` and ``pipeline``.

:class:`AutoftForSequenceClassification` holds the backbone (built from its own config, nested in
:class:`AutoftConfig`), the pooling and the head of a strategy. Importing this module registers
both classes with transformers' Auto classes; ``import autoft`` arranges for that to happen as soon
as transformers' Auto classes are imported (see :mod:`autoft._hf_hook`), so a saved folder loads
with ``transformers.pipeline("text-classification", model=DIR)`` without ``trust_remote_code``.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.modeling_outputs import SequenceClassifierOutput

from autoft.models.classifier import AutoftClassifier
from autoft.models.heads import build_head, pool
from autoft.strategies.base import Head
from autoft.tasks import task_kind

__all__ = ["AutoftConfig", "AutoftForSequenceClassification", "register_auto_classes",
           "to_pretrained"]


class AutoftConfig(PretrainedConfig):
    """Config of a model fine-tuned by autoft.

    Args:
        backbone_config: The backbone's config as a dict (``to_dict()``, with ``model_type``).
        head: The head's fields (``kind``, ``width``, ``depth``, ``dropout``).
        pooling: ``"cls"`` or ``"mean"``.
        strategy: The strategy it was trained with (``Strategy.to_dict()``), for the record.
        task: The task kind's name (see :mod:`autoft.tasks`). Default ``"classification"``.
        **kwargs: ``PretrainedConfig`` arguments (``id2label``, ``label2id``, ...).
    """

    model_type = "autoft"
    has_no_defaults_at_init = True

    def __init__(
        self,
        backbone_config: dict[str, Any] | None = None,
        head: dict[str, Any] | None = None,
        pooling: str = "cls",
        strategy: dict[str, Any] | None = None,
        task: str = "classification",
        **kwargs: Any,
    ) -> None:
        self.backbone_config = backbone_config or {}
        self.head = head or Head().to_dict()
        self.pooling = pooling
        self.strategy = strategy or {}
        self.task = task
        super().__init__(**kwargs)


def _backbone_config(config: AutoftConfig) -> PretrainedConfig:
    values = dict(config.backbone_config)
    model_type = values.pop("model_type")
    return AutoConfig.for_model(model_type, **values)


class AutoftForSequenceClassification(PreTrainedModel):
    """A backbone encoder, a pooling and a head, as a ``PreTrainedModel``.

    Args:
        config: The model's :class:`AutoftConfig`.
    """

    config_class = AutoftConfig
    base_model_prefix = "encoder"

    def __init__(self, config: AutoftConfig) -> None:
        super().__init__(config)
        self.encoder = AutoModel.from_config(_backbone_config(config))
        if getattr(self.encoder, "pooler", None) is not None:
            self.encoder.pooler = None
        hidden = int(self.encoder.config.hidden_size)
        self.head = build_head(hidden, len(config.id2label or {}), Head(**config.head))
        self.pooling = config.pooling
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        """Weights come from the saved folder; fresh ones only matter for an untrained model."""
        if isinstance(module, torch.nn.Linear):
            module.weight.data.normal_(mean=0.0, std=0.02)
            if module.bias is not None:
                module.bias.data.zero_()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        """Outputs of a batch.

        Args:
            input_ids: Token ids ``(B, T)``.
            attention_mask: ``(B, T)``, 1 for real tokens; default all ones.
            token_type_ids: Segment ids ``(B, T)`` for backbones that use them.
            labels: Targets ``(B,)``; when given, the task's training loss is returned too.

        Returns:
            ``SequenceClassifierOutput`` with ``logits`` ``(B, K)`` (and ``loss``).

        Raises:
            ValueError: ``input_ids`` is missing.
        """
        if input_ids is None:
            raise ValueError("AutoftForSequenceClassification needs input_ids")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**inputs).last_hidden_state  # (B, T, H)
        logits = self.head(pool(hidden, attention_mask, self.pooling))  # (B, K)
        loss = None
        if labels is not None:
            loss = task_kind(getattr(self.config, "task", "classification")).loss(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


def to_pretrained(
    model: AutoftClassifier, id2label: dict[int, str], strategy: dict[str, Any],
    task: str = "classification",
) -> AutoftForSequenceClassification:
    """Turn a trained classifier into a ``PreTrainedModel`` with the same weights.

    Args:
        model: The trained classifier (already passed through the strategy's ``export`` hook).
        id2label: Label name of each class id.
        strategy: ``Strategy.to_dict()`` of its training: the head and pooling are read from it
            and it is stored in the config.
        task: The task kind's name. Default ``"classification"``.

    Raises:
        RuntimeError: The classifier's weights do not fit the rebuilt model.
    """
    head = Head(kind=strategy.get("head", "linear"), width=strategy.get("head_width", 256),
                depth=strategy.get("head_depth", 1), dropout=strategy.get("head_dropout", 0.1))
    kind = task_kind(task)
    config = AutoftConfig(
        backbone_config=model.encoder.config.to_dict(),  # type: ignore[operator,union-attr]
        head=head.to_dict(),
        pooling=model.pooling,
        strategy=strategy,
        task=task,
        problem_type=kind.problem_type,
        id2label={int(i): str(n) for i, n in id2label.items()},
        label2id={str(n): int(i) for i, n in id2label.items()},
    )
    out = AutoftForSequenceClassification(config)
    missing, unexpected = out.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(not k.endswith("position_ids") for k in missing):
        raise RuntimeError(f"weights do not fit: missing {missing}, unexpected {unexpected}")
    return out.eval()


def register_auto_classes() -> None:
    """Register :class:`AutoftConfig` and :class:`AutoftForSequenceClassification` with
    transformers' ``AutoConfig`` and ``AutoModelForSequenceClassification`` (idempotent)."""
    AutoConfig.register("autoft", AutoftConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(
        AutoftConfig, AutoftForSequenceClassification, exist_ok=True
    )


register_auto_classes()
