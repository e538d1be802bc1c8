"""autoft's exported model, standalone: this file imports only torch and transformers (an exported
EfficientNet-Lite also needs autoft, which builds that backbone).

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
from transformers.modeling_outputs import ImageClassifierOutput, SequenceClassifierOutput

__all__ = ["AutoftConfig", "AutoftForImageClassification", "AutoftForSequenceClassification",
           "CosineHead", "build_head", "image_features",
           "make_head", "pair_features", "pool", "pooled_features", "split_pair",
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


class Standardise(nn.Module):
    """Standardise ``(B, 1)`` values with batch statistics in training (running estimates,
    momentum 0.1, in evaluation and for a batch of one), as ``BatchNorm1d(1, affine=False)``
    does, but also for a training batch of one example.

    Args:
        momentum: Weight of a new batch in the running estimates. Default 0.1 (BatchNorm's).
        eps: Added to the variance, for a constant batch. Default 1e-5.
    """

    def __init__(self, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(1))
        self.register_buffer("running_var", torch.ones(1))
        self.register_buffer("batches", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] > 1:
            mean, var = x.mean(0), x.var(0, unbiased=False)
            with torch.no_grad():
                m = 1.0 if int(self.batches) == 0 else self.momentum
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach())
                self.batches += 1
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) / torch.sqrt(var + self.eps)


class CosineHead(nn.Module):
    """The head of ``pair_encoding="cosine"``: the cosine similarity of the two texts' pooled
    vectors ``u``, ``v`` (read from the pair features ``[u, v, |u-v|, u*v]`` ``(B, 4H)``),
    standardised (:class:`Standardise`), then ``Linear(1, K)``. With one output (regression) the
    layer starts at weight 1 and bias 0, so an untrained model predicts the backbone's own
    cosine similarity (what a sentence-embedding model such as all-MiniLM-L6-v2 was trained
    for, and what Sentence-BERT fine-tunes on STS: Reimers & Gurevych 2019); with classes it
    starts at 0.

    Args:
        hidden: Width H of each pooled text.
        num_outputs: K.
    """

    def __init__(self, hidden: int, num_outputs: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.norm = Standardise()
        self.out = nn.Linear(1, num_outputs)
        with torch.no_grad():
            self.out.weight.fill_(1.0 if num_outputs == 1 else 0.0)
            self.out.bias.zero_()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        u, v = features[:, :self.hidden], features[:, self.hidden:2 * self.hidden]
        cos = nn.functional.cosine_similarity(u.float(), v.float(), dim=-1)[:, None]  # (B, 1)
        return self.out(self.norm(cos).to(features.dtype))  # (B, K)


def make_head(hidden: int, num_outputs: int, head: dict[str, Any],
              pair_encoding: str = "joint") -> nn.Module:
    """The head for a pair encoding: :func:`build_head` (fields ``head``) on the pooled vector
    ``(B, H)`` (``"joint"``) or on the pair features ``(B, 4H)`` (``"separate"``), or a
    :class:`CosineHead` (``"cosine"``; ``head`` unused)."""
    if pair_encoding == "cosine":
        return CosineHead(hidden, num_outputs)
    width = 4 * hidden if pair_encoding == "separate" else hidden
    return build_head(width, num_outputs, **head)


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


def split_pair(input_ids: torch.Tensor, attention_mask: torch.Tensor
               ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Split right-padded sentence-pair inputs ``(B, T)``, as a tokenizer encodes a pair
    (``[CLS] a [SEP] b [SEP]``; ``<s> a </s></s> b </s>``), into the two texts as the tokenizer
    encodes each alone: ``[CLS] a [SEP]`` and ``[CLS] b [SEP]``.

    The first text ends at the first occurrence of the row's end token (its last real token)
    after position 0; a second end token right after it (RoBERTa's double separator) is skipped;
    the second text gets the row's first token in front. A row with no separator (a single
    text) gives the whole row and an empty second text (its first token only).

    Returns:
        ``(first, second)``: each ``{"input_ids", "attention_mask"}`` of shape ``(B, T')``.
    """
    b, t = input_ids.shape
    device = input_ids.device
    lengths = attention_mask.long().sum(1)  # (B,)
    rows = torch.arange(b, device=device)
    pos = torch.arange(t, device=device).expand(b, t)  # (B, T)
    end = input_ids[rows, (lengths - 1).clamp(min=0)]  # (B,) each row's end token
    is_sep = (input_ids == end[:, None]) & (pos >= 1) & (pos < (lengths - 1)[:, None])
    last_a = torch.where(is_sep.any(1), is_sep.long().argmax(1), lengths - 1)  # (B,)
    start_b = last_a + 1
    double = (input_ids[rows, start_b.clamp(max=t - 1)] == end) & (start_b < lengths - 1)
    start_b = start_b + double.long()
    len_a = last_a + 1
    len_b = (lengths - start_b + 1).clamp(min=1)  # the first token, then the second text
    ta, tb = int(len_a.max()), int(len_b.max())
    first = {"input_ids": input_ids[:, :ta],
             "attention_mask": (pos[:, :ta] < len_a[:, None]).to(attention_mask.dtype)}
    index = (start_b[:, None] - 1 + pos[:, :tb]).clamp(0, t - 1)  # (B, T_b)
    ids_b = torch.gather(input_ids, 1, index)
    ids_b[:, 0] = input_ids[:, 0]
    second = {"input_ids": ids_b,
              "attention_mask": (pos[:, :tb] < len_b[:, None]).to(attention_mask.dtype)}
    return first, second


def pair_features(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The features of two pooled texts ``(B, H)`` each: ``[u, v, |u - v|, u * v]`` ``(B, 4H)``
    (Conneau et al. 2017, InferSent; Reimers & Gurevych 2019, Sentence-BERT's classification
    objective)."""
    return torch.cat([u, v, (u - v).abs(), u * v], dim=-1)


def pooled_features(encoder: nn.Module, inputs: dict[str, torch.Tensor], pooling: str,
                    pair_encoding: str = "joint", limit: int | None = None) -> torch.Tensor:
    """What the head reads: the pooled encoding ``(B, H)`` of the inputs (``"joint"``: a pair is
    read together, a cross-encoder), or for ``"separate"`` the :func:`pair_features` ``(B, 4H)``
    of the two texts of a pair, each encoded on its own (a bi-encoder; both in one batch of 2B).

    Args:
        encoder: The backbone (``last_hidden_state`` of its output is used).
        inputs: ``input_ids``, ``attention_mask`` (and ``token_type_ids``) ``(B, T)``.
        pooling: ``"cls"`` or ``"mean"``.
        pair_encoding: ``"joint"``, ``"separate"`` or ``"cosine"`` (the features of
            ``"separate"``). Default ``"joint"``.
        limit: Longest input trained with, in tokens (see :func:`truncate_inputs`); None: none.
    """
    if pair_encoding == "joint":
        if limit:
            inputs = truncate_inputs(inputs, limit)
        hidden = encoder(**inputs).last_hidden_state  # (B, T, H)
        return pool(hidden, inputs["attention_mask"], pooling)
    parts = split_pair(inputs["input_ids"], inputs["attention_mask"])  # separate, cosine
    if limit:
        parts = tuple(truncate_inputs(p, limit) for p in parts)  # type: ignore[assignment]
    width = max(p["input_ids"].shape[1] for p in parts)
    both = {name: torch.cat([nn.functional.pad(p[name], (0, width - p[name].shape[1]))
                             for p in parts]) for name in ("input_ids", "attention_mask")}
    hidden = encoder(**both).last_hidden_state  # (2B, T', H)
    u, v = pool(hidden, both["attention_mask"], pooling).chunk(2)  # (B, H) each
    return pair_features(u, v)


class AutoftConfig(PretrainedConfig):
    """Config of a model fine-tuned by autoft.

    Args:
        backbone_config: The backbone's config as a dict (``to_dict()``, with ``model_type``).
        head: The head's fields (``kind``, and for an MLP ``width``, ``depth``; ``dropout``).
        pooling: ``"cls"`` or ``"mean"``.
        pair_encoding: ``"joint"`` (a pair is read together), ``"separate"`` (each text of a
            pair alone; the head reads ``[u, v, |u-v|, u*v]``) or ``"cosine"`` (each alone; a
            :class:`CosineHead`). Default ``"joint"``.
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
        pair_encoding: str = "joint",
        **kwargs: Any,
    ) -> None:
        self.backbone_config = backbone_config or {}
        self.head = head or {"kind": "linear", "dropout": 0.1}
        self.pooling = pooling
        self.pair_encoding = pair_encoding
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
        self.pair_encoding = getattr(config, "pair_encoding", "joint")
        self.head = make_head(hidden, len(config.id2label or {}), config.head, self.pair_encoding)
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
        if token_type_ids is not None:  # a split pair drops them (each text alone has none)
            inputs["token_type_ids"] = token_type_ids
        limit = int(self.config.trained_max_length or 0) or None
        features = pooled_features(self.encoder, inputs, self.pooling, self.pair_encoding, limit)
        logits = self.head(features)  # (B, K)
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


def image_features(encoder: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """The pooled features ``(B, H)`` of an image backbone, by its own forward: global average
    pooling (ResNet's ``pooler_output``; ConvNeXt's, after its final LayerNorm), a ViT's class
    token after its final LayerNorm, or EfficientNet-Lite's pooled head output."""
    model_type = str(getattr(encoder.config, "model_type", ""))
    if model_type == "efficientnet-lite":
        return encoder(pixel_values)
    if model_type in ("vit", "deit"):
        out = encoder(pixel_values=pixel_values, interpolate_pos_encoding=True)
        return out.last_hidden_state[:, 0]
    return encoder(pixel_values=pixel_values).pooler_output.flatten(1)


def _image_encoder(backbone_config: dict[str, Any]) -> nn.Module:
    values = dict(backbone_config)
    model_type = values.pop("model_type")
    if model_type == "efficientnet-lite":  # not a transformers model: autoft builds it
        # (imported by name: a portable folder's copy of this file must not name autoft in an
        # import statement, which transformers' remote-code check would require installed)
        import importlib

        return importlib.import_module("autoft.models.image").efficientnet_lite0(pretrained=False)
    from transformers import AutoConfig, AutoModel

    return AutoModel.from_config(AutoConfig.for_model(model_type, **values))


class AutoftForImageClassification(PreTrainedModel):
    """An image backbone, its pooling and a head, as a ``PreTrainedModel``: what
    ``transformers.pipeline("image-classification", model=DIR)`` loads from a refit folder of an
    image task (with the folder's ``preprocessor_config.json``).

    Args:
        config: The model's :class:`AutoftConfig` (``backbone_config`` of an image backbone).
    """

    config_class = AutoftConfig
    base_model_prefix = "encoder"
    main_input_name = "pixel_values"

    def __init__(self, config: AutoftConfig) -> None:
        super().__init__(config)
        self.encoder = _image_encoder(config.backbone_config)
        sizes = config.backbone_config.get("hidden_sizes")
        width = int(sizes[-1]) if sizes else int(config.backbone_config["hidden_size"])
        self.head = make_head(width, len(config.id2label or {}), config.head)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """Weights come from the saved folder; fresh ones only matter for an untrained model."""
        if isinstance(module, nn.Linear) and module in set(self.head.modules()):
            module.weight.data.normal_(mean=0.0, std=0.02)
            if module.bias is not None:
                module.bias.data.zero_()

    def forward(self, pixel_values: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, **kwargs: Any) -> ImageClassifierOutput:
        """Outputs of a batch of ``pixel_values`` ``(B, 3, R, R)``: ``logits`` ``(B, K)`` (and
        the cross-entropy ``loss`` with ``labels`` ``(B,)``).

        Raises:
            ValueError: ``pixel_values`` is missing.
        """
        if pixel_values is None:
            raise ValueError("AutoftForImageClassification needs pixel_values")
        logits = self.head(image_features(self.encoder, pixel_values))  # (B, K)
        loss = None if labels is None else nn.functional.cross_entropy(logits.float(), labels)
        return ImageClassifierOutput(loss=loss, logits=logits)
