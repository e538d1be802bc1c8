"""The adapter of BERT-like text encoders: BERT, RoBERTa (XLM-R, CamemBERT), ELECTRA, DistilBERT,
MPNet.

All of them are an embedding module followed by a ``ModuleList`` of post-LayerNorm blocks, with no
module after the blocks; they differ only in attribute paths, which :data:`LAYOUTS` lists.

The suffix (blocks k+1..L run on cached hidden states) is a *view* of the encoder: a shallow copy
whose block list is a slice and whose embedding module passes the given hidden states through.
The model's own ``forward`` then builds its attention mask (and MPNet its relative position bias)
exactly as it always does, so the view follows the transformers version in use.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from autoft.errors import UnsupportedArchitectureError
from autoft.models.adapter import (
    BackboneAdapter,
    BackboneParts,
    has_module,
    module_at,
    register_adapter,
)

__all__ = ["LAYOUTS", "BertLikeAdapter"]

#: model_type -> (attribute path of the embeddings, attribute path of the ModuleList of blocks,
#: attribute paths of modules that belong with the embeddings, frozen from k = 1 on).
LAYOUTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "bert": ("embeddings", "encoder.layer", ()),
    "roberta": ("embeddings", "encoder.layer", ()),
    "xlm-roberta": ("embeddings", "encoder.layer", ()),
    "camembert": ("embeddings", "encoder.layer", ()),
    "electra": ("embeddings", "encoder.layer", ("embeddings_project",)),
    "distilbert": ("embeddings", "transformer.layer", ()),
    # MPNet's relative position bias is shared by all blocks; it is positional information, like
    # the position embeddings, so it is frozen together with the embeddings.
    "mpnet": ("embeddings", "encoder.layer", ("encoder.relative_attention_bias",)),
}

#: Families whose position ids start after the padding index (``padding_idx + 1``), so that
#: ``max_position_embeddings - padding_idx - 1`` positions are usable (514 - 1 - 1 = 512 for
#: RoBERTa-base); see ``create_position_ids_from_input_ids`` in their transformers modeling code.
OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "mpnet")

#: Modules between the embeddings and the first block, bypassed (with the embeddings) when the
#: suffix is fed cached hidden states.
_BYPASS = {"electra": ("embeddings_project",)}


class _Passthrough(nn.Module):
    """Stands in for the embeddings: returns the hidden states given as ``inputs_embeds``."""

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        embeds = kwargs.get("inputs_embeds")
        if embeds is None:  # DistilBERT passes (input_ids, inputs_embeds, ...) positionally
            embeds = next((a for a in args if torch.is_tensor(a) and a.dim() == 3), None)
        if embeds is None:
            raise RuntimeError("the cached suffix needs hidden states as inputs_embeds")
        return embeds


def _shallow(module: nn.Module) -> nn.Module:
    """A copy of ``module`` sharing its parameters and submodules, with its own module table."""
    view = object.__new__(type(module))
    view.__dict__ = module.__dict__.copy()
    view._modules = dict(module._modules)  # type: ignore[assignment]
    return view


class _SuffixView:
    """Blocks k+1..L of an encoder as a callable: ``view(hidden, attention_mask) -> (B, T, H)``.

    It is not an ``nn.Module`` (it would register the shared parameters a second time); the
    classifier holding it calls :meth:`train` whenever its own mode changes, so the view's shallow
    copies (which carry their own ``training`` flags) follow it.
    """

    def __init__(self, root: nn.Module, shells: list[nn.Module]) -> None:
        self.root = root
        self.shells = shells

    def train(self, mode: bool = True) -> None:
        for shell in self.shells:
            shell.training = mode

    def __call__(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.root(inputs_embeds=hidden, attention_mask=attention_mask).last_hidden_state


class BertLikeAdapter(BackboneAdapter):
    """Adapter of the encoders in :data:`LAYOUTS`."""

    model_types = tuple(LAYOUTS)

    def parts(self, model: nn.Module) -> BackboneParts:
        model_type = str(getattr(model.config, "model_type", None))
        emb_path, layers_path, extra_paths = LAYOUTS[model_type]
        try:
            embeddings = module_at(model, emb_path)
            layers = module_at(model, layers_path)
            extra = tuple(module_at(model, p) for p in extra_paths if has_module(model, p))
        except AttributeError as exc:
            raise UnsupportedArchitectureError(
                f"backbone of type {model_type!r} ({type(model).__name__}) lacks the expected "
                f"{emb_path!r}/{layers_path!r} modules: {exc}"
            ) from exc
        if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
            raise UnsupportedArchitectureError(
                f"backbone of type {model_type!r}: {layers_path!r} is not a non-empty ModuleList"
            )
        return BackboneParts(embeddings=embeddings, layers=layers, extra=extra)

    def max_length(self, model: nn.Module, tokenizer: Any = None) -> int | None:
        limit = super().max_length(model, None)
        config = model.config
        if limit is not None and config.model_type in OFFSET_POSITIONS:
            pad = getattr(config, "pad_token_id", None)
            limit -= int(pad if pad is not None else 1) + 1
        tok = getattr(tokenizer, "model_max_length", None)
        if isinstance(tok, int) and 0 < tok < 1_000_000:
            limit = tok if limit is None else min(limit, tok)
        return limit

    def hidden_states(self, model: nn.Module, batch: dict[str, torch.Tensor],
                      ks: Iterable[int]) -> dict[int, torch.Tensor]:
        wanted = sorted(set(ks))
        top = wanted[-1]
        runner = model if top == self.parts(model).num_layers else self._view(model, 0, top,
                                                                                 False)[0]
        states = runner(**batch, output_hidden_states=True).hidden_states  # L+1 x (B, T, H)
        return {k: states[k] for k in wanted}

    def suffix(self, model: nn.Module, k: int) -> _SuffixView:
        root, shells = self._view(model, k, self.parts(model).num_layers, True)
        return _SuffixView(root, shells)

    def _view(self, model: nn.Module, start: int, stop: int,
              passthrough: bool) -> tuple[nn.Module, list[nn.Module]]:
        """A shallow copy of ``model`` running blocks ``start..stop-1``; with ``passthrough`` its
        embeddings (and any module before the first block) pass hidden states through. Returns
        the copy and every shallow copy made (their ``training`` flags are the view's own)."""
        model_type = str(model.config.model_type)
        emb_path, layers_path, _ = LAYOUTS[model_type]
        layers = self.parts(model).layers
        root = _shallow(model)
        shells = [root]
        *parents, name = layers_path.split(".")
        holder = root
        for part in parents:  # copy the path down to the block list, so the original is untouched
            child = _shallow(getattr(holder, part))
            holder._modules[part] = child
            shells.append(child)
            holder = child
        holder._modules[name] = nn.ModuleList(list(layers)[start:stop])
        shells.append(holder._modules[name])  # type: ignore[arg-type]
        if passthrough:
            root._modules[emb_path] = _Passthrough()
            for bypassed in _BYPASS.get(model_type, ()):
                if bypassed in root._modules:
                    root._modules[bypassed] = nn.Identity()
        return root, shells


register_adapter(BertLikeAdapter())
