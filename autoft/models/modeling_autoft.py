"""autoft's exported model, standalone: this file imports only torch and transformers.

It defines the head, the pooling and the Hugging Face classes of a model fine-tuned by autoft.
``autoft`` registers the classes with transformers' Auto classes; a *portable* export
(``autoft refit --portable``) copies this very file into the model folder and names it in the
config's ``auto_map``, so the folder loads with ``trust_remote_code=True`` where autoft is not
installed.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

__all__ = ["AutoftConfig", "AutoftForSequenceClassification", "build_head", "pool",
           "truncate_inputs"]


def build_head(hidden_size: int, num_outputs: int, kind: str = "linear", width: int = 256,
               depth: int = 1, dropout: float = 0.1) -> nn.Sequential:
    """A head mapping ``(B, H)`` to ``(B, K)``: ``Dropout -> Linear`` for ``kind="linear"``;
    ``depth`` x ``(Dropout -> Linear(width) -> GELU)`` then ``Dropout -> Linear`` for ``"mlp"``."""
    layers: list[nn.Module] = []
    width_in = hidden_size
    if kind == "mlp":
        for _ in range(depth):
            layers += [nn.Dropout(dropout), nn.Linear(width_in, width), nn.GELU()]
            width_in = width
    layers += [nn.Dropout(dropout), nn.Linear(width_in, num_outputs)]
    return nn.Sequential(*layers)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool hidden states ``(B, T, H)`` into ``(B, H)``: the first token (``"cls"``) or the mean
    over the tokens the attention mask ``(B, T)`` keeps (``"mean"``)."""
    if pooling == "cls":
        return hidden[:, 0]  # (B, H)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, H)


def truncate_inputs(inputs: dict[str, torch.Tensor], limit: int) -> dict[str, torch.Tensor]:
    """Cut right-padded inputs ``(B, T)`` longer than ``limit`` tokens as the tokenizer's
    truncation does for one text: the first ``limit - 1`` tokens and the row's last real token
    (its end-of-sequence token), so a long text gets the length the model was trained with instead
    of overflowing its position table."""
    mask = inputs["attention_mask"]
    if mask.shape[1] <= limit:
        return inputs
    lengths = mask.sum(1)  # (B,)
    index = torch.arange(limit, device=mask.device).expand(mask.shape[0], limit).clone()
    index[:, -1] = torch.where(lengths > limit, lengths - 1, torch.full_like(lengths, limit - 1))
    return {name: torch.gather(tensor, 1, index) for name, tensor in inputs.items()}


class AutoftConfig(PretrainedConfig):
    """Config of a model fine-tuned by autoft.

    Args:
        backbone_config: The backbone's config as a dict (``to_dict()``, with ``model_type``).
        head: The head's fields (``kind``, and for an MLP ``width``, ``depth``; ``dropout``).
        pooling: ``"cls"`` or ``"mean"``.
        strategy: The strategy it was trained with (``Strategy.to_dict()``), for the record.
        task: The task kind's name. Default ``"classification"``.
        trained_max_length: Tokens per input in training; longer inputs are cut to it. None: no
            limit beyond the backbone's.
        **kwargs: ``PretrainedConfig`` arguments (``id2label``, ``label2id``, ``problem_type``).
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
        trained_max_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.backbone_config = backbone_config or {}
        self.head = head or {"kind": "linear", "dropout": 0.1}
        self.pooling = pooling
        self.strategy = strategy or {}
        self.task = task
        self.trained_max_length = trained_max_length
        super().__init__(**kwargs)


class AutoftForSequenceClassification(PreTrainedModel):
    """A backbone encoder, a pooling and a head, as a ``PreTrainedModel``.

    Args:
        config: The model's :class:`AutoftConfig`.
    """

    config_class = AutoftConfig
    base_model_prefix = "encoder"

    def __init__(self, config: AutoftConfig) -> None:
        super().__init__(config)
        from transformers import AutoConfig, AutoModel

        values = dict(config.backbone_config)
        backbone = AutoConfig.for_model(values.pop("model_type"), **values)
        self.encoder = AutoModel.from_config(backbone)
        if getattr(self.encoder, "pooler", None) is not None:
            self.encoder.pooler = None  # unused: the hidden states are pooled here
        hidden = int(self.encoder.config.hidden_size)
        self.head = build_head(hidden, len(config.id2label or {}), **config.head)
        self.pooling = config.pooling
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """Weights come from the saved folder; fresh ones only matter for an untrained model."""
        if isinstance(module, nn.Linear):
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
            input_ids: Token ids ``(B, T)``; inputs longer than the length trained with are cut
                to it (see :func:`truncate_inputs`).
            attention_mask: ``(B, T)``, 1 for real tokens; default all ones.
            token_type_ids: Segment ids ``(B, T)`` for backbones that use them.
            labels: Targets; when given, the loss of the config's ``problem_type`` is returned
                too: cross-entropy (``single_label_classification``, labels ``(B,)``), mean
                squared error (``regression``) or binary cross-entropy
                (``multi_label_classification``, labels ``(B, K)``).

        Returns:
            ``SequenceClassifierOutput`` with ``logits`` ``(B, K)`` (and ``loss``).

        Raises:
            ValueError: ``input_ids`` is missing.
        """
        if input_ids is None:
            raise ValueError("AutoftForSequenceClassification needs input_ids")
        inputs = {"input_ids": input_ids,
                  "attention_mask": torch.ones_like(input_ids) if attention_mask is None
                  else attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        if self.config.trained_max_length:
            inputs = truncate_inputs(inputs, int(self.config.trained_max_length))
        hidden = self.encoder(**inputs).last_hidden_state  # (B, T, H)
        logits = self.head(pool(hidden, inputs["attention_mask"], self.pooling))  # (B, K)
        loss = None
        if labels is not None:
            if self.config.problem_type == "regression":
                loss = nn.functional.mse_loss(logits.float().squeeze(-1), labels.float())
            elif self.config.problem_type == "multi_label_classification":
                loss = nn.functional.binary_cross_entropy_with_logits(logits.float(),
                                                                      labels.float())
            else:
                loss = nn.functional.cross_entropy(logits.float(), labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)
