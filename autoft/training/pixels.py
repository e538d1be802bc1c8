"""Images as model inputs: decoded, resized and cropped once per split, normalised per batch.

:class:`ImageInputs` plays for an image backbone the part a tokenizer plays for a text one: it
turns a split into model inputs once (:meth:`ImageInputs.encode`, a :class:`PixelSplit` of uint8
pixels, ``N x 3 x R x R`` bytes: 301 MB for 2,000 images at 224) and each batch into
``pixel_values`` (:meth:`PixelSplit.collate`). Preprocessing: the shorter side resized to R
(bilinear, antialiased, PIL), the centre R x R cropped (the evaluation transform of torchvision's
ImageNet recipe and of ``transformers``' image processors at ``crop_pct = 1``), then
``(x / 255 - mean) / std`` with the backbone's mean and std.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autoft.data.images import open_image
from autoft.errors import BackboneError

__all__ = ["MAX_SHOWN", "ImageInputs", "PixelSplit", "augment_batch", "misclassified_examples",
           "resize_center_crop"]

#: Most misclassified examples a trial records (the report draws them).
MAX_SHOWN = 32


def misclassified_examples(labels: np.ndarray, outputs: np.ndarray,
                           limit: int = MAX_SHOWN) -> list[list[int]]:
    """``[index, predicted class]`` of up to ``limit`` misclassified examples, most confident
    mistakes first.

    Args:
        labels: True class ids ``(N,)``.
        outputs: Logits ``(N, K)``.
        limit: Most examples returned. Default :data:`MAX_SHOWN`.
    """
    predicted = outputs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    shifted = outputs[wrong] - outputs[wrong].max(axis=1, keepdims=True)
    confidence = 1.0 / np.exp(shifted).sum(axis=1)  # softmax probability of the predicted class
    order = wrong[np.argsort(-confidence, kind="stable")][:limit]
    return [[int(i), int(predicted[i])] for i in order]


def resize_center_crop(image: Any, size: int) -> np.ndarray:
    """An RGB ``PIL.Image`` resized so its shorter side is ``size`` pixels, centre-cropped to
    ``size x size``: a uint8 array ``(3, size, size)``."""
    from PIL import Image

    width, height = image.size
    scale = size / min(width, height)
    new = (max(size, round(width * scale)), max(size, round(height * scale)))
    if new != (width, height):
        image = image.resize(new, Image.Resampling.BILINEAR)
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    image = image.crop((left, top, left + size, top + size))
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)  # (3, size, size)


def augment_batch(pixels: torch.Tensor, generator: torch.Generator,
                  scale: tuple[float, float] = (0.5, 1.0),
                  ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """A random resized crop of each image, then a horizontal flip half the time.

    The crop follows torchvision's ``RandomResizedCrop`` (Szegedy et al. 2015, "Going Deeper
    with Convolutions"): an area share drawn from ``scale`` and an aspect ratio drawn
    log-uniformly from ``ratio``, up to 10 tries, else the whole image; the crop is resized back
    to R x R (bilinear). torchvision's default scale (0.08, 1) is for ImageNet-size data; 0.5 keeps
    most of each image, which small data sets need.

    Args:
        pixels: Normalised images ``(B, 3, R, R)``.
        generator: The source of randomness (seeded by the trial).
        scale: Range of the crop's share of the image area. Default (0.5, 1.0).
        ratio: Range of the crop's width / height. Default (3/4, 4/3).

    Returns:
        Augmented images ``(B, 3, R, R)``.
    """
    batch, _, height, width = pixels.shape
    out = torch.empty_like(pixels)
    draws = torch.rand((batch, 10, 4), generator=generator).tolist()
    flips = torch.rand(batch, generator=generator).tolist()
    log_lo, log_hi = np.log(ratio[0]), np.log(ratio[1])
    for b in range(batch):
        top, left, h, w = 0, 0, height, width
        for area_u, ratio_u, y_u, x_u in draws[b]:
            area = height * width * (scale[0] + area_u * (scale[1] - scale[0]))
            aspect = float(np.exp(log_lo + ratio_u * (log_hi - log_lo)))
            cw, ch = round((area * aspect) ** 0.5), round((area / aspect) ** 0.5)
            if 0 < cw <= width and 0 < ch <= height:
                top, left = int(y_u * (height - ch + 1)), int(x_u * (width - cw + 1))
                h, w = ch, cw
                break
        crop = pixels[b:b + 1, :, top:top + h, left:left + w]
        crop = torch.nn.functional.interpolate(crop, size=(height, width), mode="bilinear",
                                               align_corners=False)
        out[b] = crop[0].flip(-1) if flips[b] < 0.5 else crop[0]
    return out


@dataclass(frozen=True)
class PixelSplit:
    """A split's images at one resolution, ready to batch.

    Attributes:
        pixels: uint8 pixels, shape ``(N, 3, R, R)``.
        labels: Encoded labels, shape ``(N,)``.
        mean, std: Per-channel normalisation, in [0, 1] units, shape ``(3,)``.
        parent, parent_index: The split this one is a :meth:`subset` of, and its examples'
            indices there (None for a whole split).
    """

    pixels: np.ndarray
    labels: np.ndarray
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    parent: PixelSplit | None = field(default=None, repr=False, compare=False)
    parent_index: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.pixels)

    @property
    def lengths(self) -> np.ndarray:
        """1 for every example (images are not padded; the batchers sort by length)."""
        return np.ones(len(self), dtype=np.int64)

    @property
    def resolution(self) -> int:
        """R, the side of the square inputs in pixels."""
        return int(self.pixels.shape[-1])

    def subset(self, indices: np.ndarray) -> PixelSplit:
        """The examples at ``indices`` as a new split (remembering this one as its parent)."""
        idx = np.asarray([int(i) for i in indices], dtype=np.int64)
        root = self if self.parent is None else self.parent
        root_index = idx if self.parent_index is None else self.parent_index[idx]
        return PixelSplit(self.pixels[idx], self.labels[idx], self.mean, self.std, root,
                          root_index)

    def collate(self, indices: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        """``pixel_values`` ``(B, 3, R, R)`` float32 of the examples at ``indices``, normalised."""
        batch = torch.from_numpy(self.pixels[np.asarray(indices)]).to(device).float()
        mean = torch.tensor(self.mean, device=device).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(self.std, device=device).view(1, 3, 1, 1) * 255.0
        return {"pixel_values": (batch - mean) / std}


@dataclass(frozen=True)
class ImageInputs:
    """How an image backbone reads images: the input resolution and the normalisation.

    Attributes:
        resolution: Side R of the square inputs, in pixels. Default 224.
        mean, std: Per-channel normalisation in [0, 1] units. Default ImageNet's
            (0.485, 0.456, 0.406) and (0.229, 0.224, 0.225).
    """

    resolution: int = 224
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    #: What code that treats this like a tokenizer may ask (images have no padding token).
    pad_token_id = 0

    @classmethod
    def from_folder(cls, folder: str | Path) -> ImageInputs:
        """The settings in a Hugging Face ``preprocessor_config.json`` (``image_mean``,
        ``image_std``, ``size`` as ``shortest_edge`` or ``height``/``width`` or an int, and
        ``crop_size`` when present); the defaults where the file or a field is missing.

        Raises:
            BackboneError: The file is not valid JSON.
        """
        path = Path(folder) / "preprocessor_config.json"
        if not path.is_file():
            return cls()
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise BackboneError(f"cannot read {str(path)!r}: {exc}") from None
        size = config.get("crop_size") or config.get("size")
        if isinstance(size, dict):
            size = size.get("height") or size.get("shortest_edge") or size.get("width")
        mean = config.get("image_mean") or cls.mean
        std = config.get("image_std") or cls.std
        return cls(resolution=int(size) if size else 224,
                   mean=tuple(float(v) for v in mean),  # type: ignore[arg-type]
                   std=tuple(float(v) for v in std))  # type: ignore[arg-type]

    def encode(self, split: Any, resolution: int | None = None) -> PixelSplit:
        """The images of a :class:`~autoft.data.Split` at ``resolution`` (default
        :attr:`resolution`) as a :class:`PixelSplit`.

        Raises:
            DataError: An image that cannot be read any more (changed since it was checked).
        """
        size = int(resolution or self.resolution)
        images = split.images or []
        pixels = np.empty((len(images), 3, size, size), dtype=np.uint8)
        for i, ref in enumerate(images):
            pixels[i] = resize_center_crop(open_image(ref), size)
        return PixelSplit(pixels, np.asarray(split.labels), self.mean, self.std)

    def save_pretrained(self, folder: str | Path) -> None:
        """Write a ``preprocessor_config.json`` that ``transformers.AutoImageProcessor`` (and so
        ``pipeline("image-classification")``) reads as this preprocessing: a
        ``ConvNextImageProcessor`` with ``crop_pct`` 1 resizes the shorter side to R and crops
        the centre R x R, bilinear, then rescales by 1/255 and normalises."""
        config = {
            "image_processor_type": "ConvNextImageProcessor",
            "do_resize": True, "size": {"shortest_edge": self.resolution}, "crop_pct": 1.0,
            "resample": 2,  # PIL.Image.BILINEAR
            "do_rescale": True, "rescale_factor": 1 / 255,
            "do_normalize": True, "image_mean": list(self.mean), "image_std": list(self.std),
        }
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "preprocessor_config.json").write_text(json.dumps(config, indent=2) + "\n")

    def to_dict(self) -> dict[str, Any]:
        """JSON form (stored with a study)."""
        return {"resolution": self.resolution, "mean": list(self.mean), "std": list(self.std)}
