"""Image inputs: the layouts users keep images in, checked and read the same way everywhere.

Accepted (:func:`image_tables` turns each into named tables with one image column):

* **a folder with one subfolder per class** (``photos/cat/1.jpg``, ``photos/dog/2.png``: the
  layout of ``torchvision.datasets.ImageFolder`` and of Keras' ``image_dataset_from_directory``),
  or a folder whose subfolders are splits (``train/``, ``val/``, ``test/``), each laid out so;
* **a CSV/TSV/JSON/Parquet file or DataFrame** with a column of image paths (relative paths are
  taken from the file's folder, for a DataFrame from the working directory) and a label column;
* **a** ``datasets.Dataset`` / ``DatasetDict`` **with an** ``Image`` **feature**;
* **an** ``(images, labels)`` **tuple**: a numpy array ``(N, H, W)``, ``(N, H, W, 1|3|4)`` of
  uint8, uint16 or floats in [0, 1], or a list of PIL images or such arrays.

Every image is decoded once when the data is loaded, before any model loads: an unreadable or
truncated file, or a missing path, is an error that names the file and its row. Images are read
as RGB with their EXIF orientation applied (:func:`to_rgb`): grayscale, palette and CMYK images
are converted, transparent ones composited on white, 16-bit ones scaled to 8 bits.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from autoft.errors import DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "CheckedImages",
    "check_images",
    "find_image_column",
    "image_tables",
    "is_image_folder",
    "open_image",
    "to_rgb",
]

logger = logging.getLogger(__name__)

#: File name endings read as images (lower case).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                    ".pgm")
#: Subfolder names that make a folder a set of splits rather than of classes.
SPLIT_FOLDERS = {"train": "train", "training": "train", "validation": "validation",
                 "valid": "validation", "val": "validation", "dev": "validation",
                 "test": "test", "testing": "test"}


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        raise DataError("reading images needs pillow: pip install pillow") from None
    return Image


def is_image_file(path: str | Path) -> bool:
    """Whether ``path``'s name ends in one of :data:`IMAGE_EXTENSIONS`."""
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def is_image_folder(data: Any) -> bool:
    """Whether ``data`` is a path to a folder (image folders are the only folders autoft reads)."""
    return isinstance(data, (str, Path)) and Path(data).is_dir()


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


def to_rgb(image: Any) -> Any:
    """An RGB ``PIL.Image`` of ``image``, upright.

    Args:
        image: A ``PIL.Image`` (any mode) or a numpy array ``(H, W)``, ``(H, W, 1|3|4)`` of uint8,
            uint16 (scaled by 1/257) or floats in [0, 1] (scaled by 255).

    The EXIF orientation is applied (``PIL.ImageOps.exif_transpose``); 16-bit and 32-bit integer
    images are scaled to 8 bits by their type's range; an alpha channel (RGBA, LA, a palette with
    transparency) is composited on white, as a viewer shows it.

    Raises:
        DataError: An array of another shape or type, or floats outside [0, 1].
    """
    image_mod = _pil()
    if isinstance(image, np.ndarray):
        image = _array_to_pil(image)
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image) or image
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        scale = 255.0 / (65535.0 if mode.startswith("I;16") or array.max(initial=0) > 255
                         else 255.0)
        if mode == "F" and array.max(initial=0) <= 1.0:
            scale = 255.0
        image = image_mod.fromarray(np.clip(array * scale + 0.5, 0, 255).astype(np.uint8), "L")
        mode = "L"
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        white = image_mod.new("RGBA", rgba.size, (255, 255, 255, 255))
        return image_mod.alpha_composite(white, rgba).convert("RGB")
    return image if mode == "RGB" else image.convert("RGB")


def _array_to_pil(array: np.ndarray) -> Any:
    image_mod = _pil()
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        hint = (" (channels first: transpose it to channels last, e.g. "
                "images.transpose(0, 2, 3, 1) for a batch)"
                if array.ndim == 3 and array.shape[0] in (1, 3, 4) else "")
        raise DataError(f"an image array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got "
                        f"shape {array.shape}{hint}")
    if array.dtype == bool:  # a mask: black and white
        out = array.astype(np.uint8) * 255
    elif array.dtype == np.uint8:
        out = array
    elif array.dtype == np.uint16:
        out = (array.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise DataError("a float image array holds NaN or infinite values; replace them")
        if array.min() < 0.0 or array.max() > 1.0:
            raise DataError(
                "a float image array must hold values in [0, 1] (got "
                f"{float(array.min()):.4g} to {float(array.max()):.4g}); scale it, or give uint8 "
                "values 0-255")
        out = (array * 255.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.integer):
        if array.min() < 0 or array.max() > 255:
            raise DataError(f"an integer image array of type {array.dtype} must hold values "
                            f"0-255; got {array.min()} to {array.max()}")
        out = array.astype(np.uint8)
    else:
        raise DataError(f"an image array of type {array.dtype} cannot be read; give uint8, "
                        "uint16 or floats in [0, 1]")
    mode = "L" if out.ndim == 2 else ("RGB" if out.shape[2] == 3 else "RGBA")
    return image_mod.fromarray(np.ascontiguousarray(out), mode)


def open_image(ref: Any, where: str = "") -> Any:
    """Decode one image reference into an RGB ``PIL.Image`` (see :func:`to_rgb`).

    Args:
        ref: A file path (str or Path), encoded bytes, a ``{"bytes": ..., "path": ...}`` dict
            (a ``datasets`` ``Image`` cell), a ``PIL.Image`` or a numpy array.
        where: Where the reference came from (e.g. ``"row 3 of train.csv"``), for messages.

    Raises:
        DataError: A missing or unreadable file, a truncated image, an unsupported reference.
    """
    image_mod = _pil()
    at = f" ({where})" if where else ""
    if isinstance(ref, Mapping):  # a datasets Image cell
        data, path = ref.get("bytes"), ref.get("path")
        ref = data if data is not None else path
        if ref is None:
            raise DataError(f"an image cell has neither bytes nor a path{at}")
    if _is_tensor(ref):
        ref = _tensor_to_numpy(ref)
    if isinstance(ref, np.ndarray) or _is_pil(ref):
        try:
            image = to_rgb(ref)
        except DataError as exc:
            raise DataError(f"{exc}{at}") from None
        except Exception as exc:  # a lazily opened PIL image of a broken file, a closed one
            raise DataError(f"cannot read an in-memory image{at}: {type(exc).__name__}: "
                            f"{exc}. Replace it, or give the file's path") from None
        _check_size(image, where)
        return image
    if isinstance(ref, (str, Path)):
        path = Path(ref)
        if path.is_dir():
            raise DataError(f"{str(path)!r}{at} is a folder, not an image file")
        if not path.is_file():
            hint = (" (autoft reads local files; download it first)"
                    if str(ref).startswith(("http://", "https://")) else "")
            raise DataError(f"image file {str(path)!r}{at} does not exist{hint}; check the path "
                            "(a relative path is taken from the data file's folder, or from the "
                            "working directory for a DataFrame)")
        source: Any = path
        name = str(path)
    elif isinstance(ref, (bytes, bytearray)):
        source, name = io.BytesIO(ref), "image bytes"
    else:
        raise DataError(f"cannot read an image from a {type(ref).__name__}{at}; give a file "
                        "path, a PIL image or a numpy array")
    try:
        with image_mod.open(source) as image:
            image.load()  # decodes every pixel: a truncated file fails here, not in a trial
            rgb = to_rgb(image)
    except DataError:
        raise
    except Exception as exc:  # PIL raises UnidentifiedImageError, OSError, SyntaxError ...
        reason = str(exc).split(" <_io.")[0]  # PIL names a BytesIO by its repr
        raise DataError(f"cannot read {name!r}{at} as an image: {reason}. Remove or replace "
                        "it") from None
    _check_size(rgb, where)
    return rgb


def _check_size(image: Any, where: str) -> None:
    if image.width == 0 or image.height == 0:
        at = f" ({where})" if where else ""
        raise DataError(f"an image{at} is empty ({image.width} x {image.height} pixels)")


def _is_tensor(obj: Any) -> bool:
    return type(obj).__module__.startswith("torch") and hasattr(obj, "numpy")


def _tensor_to_numpy(tensor: Any) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def _is_pil(obj: Any) -> bool:
    return type(obj).__module__.startswith("PIL.") and hasattr(obj, "mode")


def _digest_of(ref: Any) -> str:
    """A content key of one image reference (files by their bytes, in-memory images by their
    pixels): identical images have equal keys, so duplicates across splits are found."""
    h = hashlib.sha1()
    if isinstance(ref, Mapping):
        ref = ref.get("bytes") if ref.get("bytes") is not None else ref.get("path")
    if isinstance(ref, (str, Path)):
        h.update(Path(ref).read_bytes())
    elif isinstance(ref, (bytes, bytearray)):
        h.update(bytes(ref))
    else:
        array = np.asarray(ref)
        h.update(f"{array.shape}{array.dtype}".encode())
        h.update(np.ascontiguousarray(array).tobytes())
    return "image:" + h.hexdigest()


@dataclass(frozen=True)
class CheckedImages:
    """The images of one split, all decoded once.

    Attributes:
        refs: The references to read the images from again (paths made absolute), length N.
        keys: A content key of each image (identical images have equal keys), length N.
        sizes: ``(width, height)`` of each image in pixels, length N.
    """

    refs: list[Any]
    keys: list[str]
    sizes: list[tuple[int, int]]


def check_images(refs: Sequence[Any], source: str, rows: Sequence[int] | None = None
                 ) -> CheckedImages:
    """Decode every image of a split once (the checks of :func:`open_image`) and key them.

    Args:
        refs: One reference per example (see :func:`open_image`).
        source: Where they came from, for messages.
        rows: The row number of each reference in its table (0-based), for messages. Default:
            their positions.

    Raises:
        DataError: The first image that cannot be read (its file and row are named).
    """
    rows = list(range(len(refs))) if rows is None else list(rows)
    keys, sizes = [], []
    for row, ref in zip(rows, refs):
        image = open_image(ref, f"row {row} of {source}")
        sizes.append(tuple(image.size))
        keys.append(_digest_of(ref))
    return CheckedImages(refs=list(refs), keys=keys, sizes=sizes)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Layouts to tables
# --------------------------------------------------------------------------------------------


def _class_folder_frame(folder: Path, what: str) -> pd.DataFrame:
    """Rows ``(image path, class name)`` of a folder with one subfolder per class."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    loose = [p.name for p in folder.iterdir() if p.is_file() and is_image_file(p)]
    if len(classes) < 2:
        raise DataError(
            f"{what}: folder {str(folder)!r} has {len(classes)} class subfolder(s) "
            f"({[p.name for p in classes]}); image classification needs one subfolder per class, "
            "at least 2 (photos/cat/1.jpg, photos/dog/2.jpg, ...); for text, give a .csv, .tsv, "
            ".jsonl, .json or .parquet file instead of a folder")
    if loose:
        logger.warning("%s: %d image(s) directly in %r are not in a class subfolder and are not "
                       "used (e.g. %s)", what, len(loose), str(folder), loose[:3])
    paths: list[str] = []
    labels: list[str] = []
    for cls in classes:
        files = sorted(p for p in cls.rglob("*") if p.is_file() and not p.name.startswith("."))
        images = [p for p in files if is_image_file(p)]
        others = [p for p in files if not is_image_file(p)]
        if cls.name.lower() in SPLIT_FOLDERS and images and all(p.parent != cls for p in images):
            raise DataError(
                f"{what}: {str(cls)!r} is read as a class beside {[c.name for c in classes if c != cls]}"
                ", but its images are all in subfolders: if it is a split, put every class "
                "folder inside split folders (train/, val/, test/); if it is a class, put its "
                "images directly in it")
        if others:
            logger.warning("%s: %d file(s) in %r are not images by their name and are not used "
                           "(e.g. %s; images end in %s)", what, len(others), str(cls),
                           [p.name for p in others[:3]], ", ".join(IMAGE_EXTENSIONS))
        if not images:
            raise DataError(
                f"{what}: class folder {str(cls)!r} holds no images (files ending in "
                f"{', '.join(IMAGE_EXTENSIONS)}); add images or remove the folder")
        paths += [str(p.resolve()) for p in images]
        labels += [cls.name] * len(images)
    return pd.DataFrame({"image": pd.Series(paths, dtype=object),
                         "label": pd.Series(labels, dtype=object)})


def folder_tables(folder: str | Path, what: str) -> dict[str, pd.DataFrame]:
    """The splits of an image folder: ``{"train": frame}`` for a folder of class subfolders, or
    one frame per split folder (``train/``, ``val/``, ``test/``, ...; see
    :data:`SPLIT_FOLDERS`), each a folder of class subfolders.

    Raises:
        DataError: Fewer than 2 classes, an empty class folder, split folders without ``train``.
    """
    folder = Path(folder)
    subdirs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    named = {p.name.lower(): p for p in subdirs}
    if subdirs and all(name in SPLIT_FOLDERS for name in named):
        splits = {SPLIT_FOLDERS[name]: p for name, p in named.items()}
        if "train" not in splits:
            raise DataError(f"{what}: folder {str(folder)!r} has split folders {sorted(named)} but "
                            "no train/ folder to fine-tune on")
        return {split: _class_folder_frame(path, f"{what} ({split}/)")
                for split, path in splits.items()}
    return {"train": _class_folder_frame(folder, what)}


#: Share of a column's non-blank strings that must be image paths for it to be read as images
#: (the other rows are then checked as images, and a typo is named, not read as text).
IMAGE_PATH_SHARE = 0.8


def _looks_like_image_column(values: pd.Series) -> bool:
    present = values.dropna()
    if present.empty:
        return False
    first = present.iloc[0]
    if isinstance(first, Mapping):
        return "bytes" in first or "path" in first
    if isinstance(first, (np.ndarray, bytes, bytearray)) or _is_pil(first) or _is_tensor(first):
        return True
    sample = [str(v).strip() for v in present.iloc[:500] if isinstance(v, (str, Path))]
    sample = [v for v in sample if v]
    if not sample or len(sample) < 0.5 * len(present.iloc[:500]):
        return False
    return sum(is_image_file(v) for v in sample) >= IMAGE_PATH_SHARE * len(sample)


def find_image_column(frame: pd.DataFrame, image_features: Sequence[str] = (),
                      named: str | None = None) -> str | None:
    """The column of ``frame`` that holds images: one with a ``datasets`` ``Image`` feature, else
    one whose cells are PIL images, arrays, encoded bytes, or (at least
    :data:`IMAGE_PATH_SHARE` of them) image file paths; None when there is none.

    Args:
        frame: The table.
        image_features: Columns with a ``datasets`` ``Image`` feature.
        named: The column the caller named (``text_column=``): chosen when it is one of several.

    Raises:
        DataError: Several such columns and none named (the message names them).
    """
    found = [c for c in frame.columns if c in image_features] or [
        c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c].dtype)
        and _looks_like_image_column(frame[c])]
    if named is not None and named in found:
        return named
    if len(found) > 1:
        raise DataError(f"the data has several image columns {found}; autoft fine-tunes on one "
                        "input: name it with text_column= (CLI: --text-column)")
    return found[0] if found else None


def image_features(dataset: Any) -> list[str]:
    """The columns of a ``datasets.Dataset`` with an ``Image`` feature."""
    return [str(c) for c, f in getattr(dataset, "features", {}).items()
            if type(f).__name__ == "Image"]


def array_images(images: Any, labels: Any, what: str) -> pd.DataFrame:
    """Rows ``(image, label)`` of an ``(images, labels)`` tuple.

    Args:
        images: A numpy array ``(N, H, W)`` or ``(N, H, W, C)`` (C in 1, 3, 4), or a sequence of
            PIL images or ``(H, W[, C])`` arrays.
        labels: N labels.
        what: How the caller names this input in messages.

    Raises:
        DataError: Different lengths, or an array of another rank.
    """
    if _is_tensor(images):
        images = _tensor_to_numpy(images)
    if isinstance(images, np.ndarray):
        if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] not in (1, 3, 4)):
            hint = (" (channels first? transpose it: images.transpose(0, 2, 3, 1))"
                    if images.ndim == 4 and images.shape[1] in (1, 3, 4) else "")
            raise DataError(f"{what}: an image array must be (N, H, W) or (N, H, W, C) with C "
                            f"1, 3 or 4; got shape {images.shape}{hint}")
        items: list[Any] = list(images)
    else:
        items = list(images)
    labels = list(labels)
    if len(items) != len(labels):
        raise DataError(f"{what}: {len(items)} images but {len(labels)} labels; give one label "
                        "per image")
    if not items:
        raise DataError(f"{what}: the (images, labels) tuple is empty")
    return pd.DataFrame({"image": pd.Series(items, dtype=object),
                         "label": pd.Series(labels, dtype=object)})


def is_array_images(data: Any) -> bool:
    """Whether ``data`` is an ``(images, labels)`` tuple of arrays or PIL images."""
    if not (isinstance(data, tuple) and len(data) == 2):
        return False
    first = data[0]
    if isinstance(first, np.ndarray) or _is_tensor(first):
        return first.ndim >= 3
    if isinstance(first, (list, tuple)) and len(first) > 0:
        return isinstance(first[0], np.ndarray) or _is_pil(first[0]) or _is_tensor(first[0])
    return False


def image_tables(data: Any, what: str) -> dict[str, pd.DataFrame] | None:
    """The splits of an image input that is not a table (a folder or an ``(images, labels)``
    tuple) as frames with columns ``image`` and ``label``; None for any other input (tables are
    read as tables, and :func:`find_image_column` finds their image column)."""
    if is_image_folder(data):
        return folder_tables(data, what)
    if is_array_images(data):
        return {"train": array_images(data[0], data[1], what)}
    return None


def resolve_paths(values: Sequence[Any], base: Path | None) -> list[Any]:
    """Image references with relative paths taken from ``base``.

    Args:
        values: One reference per row: path strings or ``pathlib`` paths (``~`` expanded), or
            in-memory images (returned as they are).
        base: The data file's folder (the working directory for a DataFrame); None keeps
            relative paths relative to the working directory.
    """
    out = []
    for v in values:
        if isinstance(v, (str, Path)):
            path = Path(str(v).strip()).expanduser()
            if not path.is_absolute() and base is not None:
                path = base / path
            out.append(str(path))
        else:
            out.append(v)
    return out
