"""Backbones and the models built on them.

``adapter`` is the backbone-adapter seam (parts, cached prefix and suffix, input limits) and
``bert_like`` its BERT-family adapter, ``image`` the image backbones' (ResNet, ConvNeXt, ViT/DeiT,
EfficientNet-Lite); ``backbone`` loads backbones; ``heads`` and ``classifier``
make the trainable model; ``hf_model`` (imported on demand: it loads transformers' modeling code)
exports it as a Hugging Face model. A new backbone family is one module with a
:class:`BackboneAdapter` registered by :func:`register_adapter`, plus one import line here.
"""

from autoft.models import bert_like as _bert_like  # noqa: F401  (registers the adapter)
from autoft.models import image as _image  # noqa: F401  (registers the image adapters)
from autoft.models.adapter import (
    BackboneAdapter,
    BackboneParts,
    adapter_for,
    register_adapter,
    supported_model_types,
)
from autoft.models.backbone import (
    DEFAULT_BACKBONE,
    default_backbone_path,
    load_backbone,
    locate_parts,
    resolve_backbone,
)

__all__ = [
    "DEFAULT_BACKBONE",
    "BackboneAdapter",
    "BackboneParts",
    "adapter_for",
    "default_backbone_path",
    "load_backbone",
    "locate_parts",
    "register_adapter",
    "resolve_backbone",
    "supported_model_types",
]
