"""Turning one supported input (file, DataFrame, ``datasets`` object, lists) into named tables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from autoft.data.images import image_features, image_tables
from autoft.data.readers import read_table
from autoft.errors import DataError

__all__ = ["Table", "to_tables"]


@dataclass
class Table:
    """One split of the input as a DataFrame.

    Attributes:
        frame: The rows.
        source: Where they came from, for messages (a file path, ``"DataFrame"``, ...).
        class_names: Label names of ``datasets`` ``ClassLabel`` columns, by column.
        typed: True when the cells keep their types (DataFrame, Parquet, JSON, lists); False when
            every cell is the string it is written as (CSV, TSV).
        image_column: The column that holds images, when the input's layout says so (an image
            folder, an ``(images, labels)`` tuple); else None (a table's image column is found
            by its content, see :func:`autoft.data.images.find_image_column`).
        image_features: Columns with a ``datasets`` ``Image`` feature.
        base_dir: The folder relative image paths are taken from (a data file's folder).
    """

    frame: pd.DataFrame
    source: str
    class_names: dict[str, list[str]] = field(default_factory=dict)
    typed: bool = True
    image_column: str | None = None
    image_features: list[str] = field(default_factory=list)
    base_dir: Path | None = None


def _is_hf_dataset(obj: Any) -> bool:
    return type(obj).__module__.startswith("datasets.") and hasattr(obj, "to_pandas")


def _is_hf_dataset_dict(obj: Any) -> bool:
    return type(obj).__module__.startswith("datasets.") and isinstance(obj, Mapping)


def _class_label_names(dataset: Any) -> dict[str, list[str]]:
    """Label names of the ``ClassLabel`` features of a ``datasets.Dataset``, by column."""
    names: dict[str, list[str]] = {}
    for column, feature in getattr(dataset, "features", {}).items():
        if type(feature).__name__ == "ClassLabel":
            names[str(column)] = list(feature.names)
    return names


def _frame_of(dataset: Any) -> pd.DataFrame:
    frame = dataset.to_pandas()
    frame.columns = [str(c) for c in frame.columns]
    return frame


def to_tables(data: Any, what: str, encoding: str = "utf-8") -> dict[str, Table]:
    """Turn one supported input into named tables: ``{"train": ...}``, or one per split.

    Args:
        data: A file path, a ``pandas.DataFrame``, a ``datasets.Dataset``/``DatasetDict``, a dict
            of those by split name, a ``(texts, labels)``/``(texts, pairs, labels)`` tuple, or an
            image input (a folder of class subfolders, an ``(images, labels)`` tuple; see
            :mod:`autoft.data.images`).
        what: How the caller names this input in messages (``"data"``, ``"validation"``, ...).
        encoding: Text encoding of files. Default ``"utf-8"``.

    Raises:
        DataError: Unsupported type, unreadable file, duplicate column names, malformed tuple.
    """
    images = image_tables(data, what)
    if images is not None:
        source = str(data) if isinstance(data, (str, Path)) else "(images, labels)"
        return {name: Table(frame, source if name == "train" else f"{source} ({name})",
                            image_column="image") for name, frame in images.items()}
    if isinstance(data, (str, Path)):
        typed = Path(data).suffix.lower() not in (".csv", ".tsv", ".tab")
        return {"train": Table(read_table(data, encoding), str(data), typed=typed,
                               base_dir=Path(data).resolve().parent)}
    if isinstance(data, pd.DataFrame):
        frame = data.copy()
        frame.columns = [str(c) for c in frame.columns]
        dupes = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
        if dupes:
            raise DataError(f"{what} (DataFrame) has duplicate column names {dupes}; rename them")
        return {"train": Table(frame, "DataFrame")}
    if _is_hf_dataset_dict(data):
        return {
            str(name): Table(_frame_of(split), f"DatasetDict[{name!r}]", _class_label_names(split),
                             image_features=image_features(split))
            for name, split in data.items()
        }
    if _is_hf_dataset(data):
        return {"train": Table(_frame_of(data), "Dataset", _class_label_names(data),
                               image_features=image_features(data))}
    if isinstance(data, Mapping) and data and all(
        isinstance(v, (pd.DataFrame, str, Path)) or _is_hf_dataset(v) for v in data.values()
    ):
        tables: dict[str, Table] = {}
        for name, part in data.items():
            (table,) = to_tables(part, f"{what}[{name!r}]", encoding).values()
            tables[str(name)] = table
        return tables
    if isinstance(data, tuple) and len(data) in (2, 3):
        if any(isinstance(p, (str, bytes)) for p in data):
            raise DataError(
                f"{what}: give (texts, labels) as two lists, e.g. (['a film', ...], [1, ...]); "
                "got a string where a list belongs"
            )
        parts = [list(p) for p in data]
        if not parts[0]:
            raise DataError(f"{what}: the (texts, labels) tuple is empty; give at least 2 "
                            "examples of each class")
        lengths = {len(p) for p in parts}
        if len(lengths) != 1:
            raise DataError(
                f"{what}: the sequences in the tuple have different lengths "
                f"{[len(p) for p in parts]}; texts and labels must be equally long"
            )
        columns = ["text", "label"] if len(parts) == 2 else ["text", "text_pair", "label"]
        frame = pd.DataFrame({c: pd.Series(p, dtype=object) for c, p in zip(columns, parts)})
        return {"train": Table(frame, "lists")}
    raise DataError(
        f"{what}: unsupported type {type(data).__name__}; give a datasets.Dataset or DatasetDict, "
        "a pandas DataFrame, a path to a .csv/.tsv/.jsonl/.json/.parquet file, a "
        "(texts, labels) tuple, or images (a folder with one subfolder per class, or an "
        "(images, labels) tuple of arrays)"
    )
