"""autoft's fine-tuned classifier as a Hugging Face model: ``save_pretrained`` and ``pipeline``.

:class:`AutoftForSequenceClassification` holds the backbone (built from its own config, nested in
:class:`AutoftConfig`), the pooling and the head of a strategy. ``import autoft`` registers both
classes with transformers' Auto classes, so a saved folder loads with
``AutoModelForSequenceClassification.from_pretrained(DIR)`` and
``transformers.pipeline("text-classification", model=DIR)`` without ``trust_remote_code``.
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

from autoft.strategy import AutoftClassifier, Head, build_head, pool

__all__ = ["AutoftConfig", "AutoftForSequenceClassification", "to_pretrained"]


class AutoftConfig(PretrainedConfig):
    """Config of a classifier fine-tuned by autoft.

    Args:
        backbone_config: The backbone's config as a dict (``to_dict()``, with ``model_type``).
        head: The head's fields (``kind``, ``width``, ``depth``, ``dropout``).
        pooling: ``"cls"`` or ``"mean"``.
        strategy: The strategy it was trained with (``Strategy.to_dict()``), for the record.
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
        **kwargs: Any,
    ) -> None:
        self.backbone_config = backbone_config or {}
        self.head = head or {"kind": "linear", "width": 256, "depth": 1, "dropout": 0.1}
        self.pooling = pooling
        self.strategy = strategy or {}
        super().__init__(**kwargs)


def _backbone_config(config: AutoftConfig) -> PretrainedConfig:
    values = dict(config.backbone_config)
    model_type = values.pop("model_type")
    return AutoConfig.for_model(model_type, **values)


class AutoftForSequenceClassification(PreTrainedModel):
    """A backbone encoder, a pooling and a classification head, as a ``PreTrainedModel``.

    ``forward(input_ids, attention_mask, token_type_ids=None, labels=None)`` takes ``(B, T)``
    tensors and returns a ``SequenceClassifierOutput`` with ``logits`` ``(B, K)`` (and the
    cross-entropy ``loss`` when ``labels`` ``(B,)`` are given).
    """

    config_class = AutoftConfig
    base_model_prefix = "autoft"

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
        assert input_ids is not None
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**inputs).last_hidden_state  # (B, T, H)
        logits = self.head(pool(hidden, attention_mask, self.pooling))  # (B, K)
        loss = None
        if labels is not None:
            loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


def to_pretrained(
    model: AutoftClassifier, id2label: dict[int, str], strategy: dict[str, Any]
) -> AutoftForSequenceClassification:
    """Turn a trained :class:`~autoft.AutoftClassifier` into a ``PreTrainedModel`` (same weights).

    Args:
        model: The trained classifier.
        id2label: Label name of each class id.
        strategy: ``Strategy.to_dict()`` of its training, stored in the config.
    """
    head = model.head
    linears = [m for m in head if isinstance(m, torch.nn.Linear)]
    dropouts = [m for m in head if isinstance(m, torch.nn.Dropout)]
    head_fields = {
        "kind": "mlp" if len(linears) > 1 else "linear",
        "width": linears[0].out_features if len(linears) > 1 else 256,
        "depth": max(1, len(linears) - 1),
        "dropout": dropouts[0].p if dropouts else 0.0,
    }
    config = AutoftConfig(
        backbone_config=model.encoder.config.to_dict(),  # type: ignore[operator,union-attr]
        head=head_fields,
        pooling=model.pooling,
        strategy=strategy,
        id2label={int(i): str(n) for i, n in id2label.items()},
        label2id={str(n): int(i) for i, n in id2label.items()},
    )
    out = AutoftForSequenceClassification(config)
    missing, unexpected = out.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(not k.endswith("position_ids") for k in missing):
        raise RuntimeError(f"weights do not fit: missing {missing}, unexpected {unexpected}")
    return out.eval()


AutoConfig.register("autoft", AutoftConfig, exist_ok=True)
AutoModelForSequenceClassification.register(
    AutoftConfig, AutoftForSequenceClassification, exist_ok=True
)
