"""Finding the text, text-pair and label columns of a table, and reading their values checked."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from autoft.errors import DataError

__all__ = [
    "LABEL_COLUMN_NAMES",
    "PAIR_COLUMN_NAMES",
    "TEXT_COLUMN_NAMES",
    "guess_columns",
    "label_values",
    "resolve_column",
    "text_values",
]

#: Column names recognised as the (first) text column, in order of preference (case-insensitive).
TEXT_COLUMN_NAMES = (
    "text", "sentence", "sentence1", "premise", "question1", "#1 string", "question", "content",
    "review", "document", "message", "sms", "tweet", "body", "string", "utterance",
)
#: Pairs of (first, second) text column names that make a sentence-pair task when both are present.
PAIR_COLUMN_NAMES = (
    ("sentence1", "sentence2"), ("premise", "hypothesis"), ("question1", "question2"),
    ("#1 string", "#2 string"), ("question", "sentence"), ("text", "text_pair"), ("text1", "text2"),
)
#: Column names recognised as the label column, in order of preference (case-insensitive).
LABEL_COLUMN_NAMES = (
    "label", "labels", "class", "category", "target", "y", "quality", "sentiment", "gold_label",
    "score", "rating", "similarity", "relatedness",
)
#: Cell values of a 0/1 indicator column (one column per label of multi-label data).
_INDICATOR = {0, 1, "0", "1"}  # True and False equal 1 and 0

_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


def resolve_column(frame: pd.DataFrame, column: str | int, role: str, source: str) -> str:
    """The name of ``column`` (a name, matched case-insensitively, or a 0-based position).

    Raises:
        DataError: No such column (the message lists the table's columns).
    """
    columns = list(frame.columns)
    if isinstance(column, int) and not isinstance(column, bool):
        if not 0 <= column < len(columns):
            raise DataError(
                f"{role} column index {column} is out of range: {source} has {len(columns)} "
                f"columns {columns}"
            )
        return columns[column]
    if column in columns:
        return str(column)
    lowered = {c.lower(): c for c in columns}
    if str(column).lower() in lowered:
        return lowered[str(column).lower()]
    raise DataError(
        f"{role} column {column!r} not found in {source}; its columns are {columns}"
    )


def _find_by_name(columns: Sequence[str], names: Sequence[str]) -> str | None:
    lowered = {c.lower(): c for c in columns}
    for name in names:
        if name in lowered:
            return lowered[name]
    return None


def _numeric(values: pd.Series) -> bool:
    """Whether a column holds numbers (typed, or strings that all read as numbers)."""
    if pd.api.types.is_bool_dtype(values):
        return False
    if pd.api.types.is_numeric_dtype(values):
        return True
    sample = [v for v in values.head(200).tolist() if isinstance(v, str)]
    return bool(sample) and all(_NUMBER.match(v) for v in sample)


def _is_indicator(values: pd.Series) -> bool:
    """Whether a column holds only 0/1 (or true/false) values, both of them."""
    try:
        distinct = set(values.unique().tolist())
    except TypeError:  # unhashable cells
        return False
    return len(distinct) == 2 and distinct <= _INDICATOR


def guess_columns(frame: pd.DataFrame, source: str,
                  label: str | None = None) -> tuple[str, str | None, str]:
    """Guess (text, text_pair, label) columns: common names first, then content.

    Args:
        frame: The training table.
        source: Where it came from, for messages.
        label: The label column when the caller knows it (only the text columns are guessed).

    Raises:
        DataError: The text or the label column cannot be told, or several 0/1 columns make the
            data look multi-label (the message lists them).
    """
    columns = list(frame.columns)
    label = label or _find_by_name(columns, LABEL_COLUMN_NAMES)
    text = pair = None
    for first, second in PAIR_COLUMN_NAMES:
        a, b = _find_by_name(columns, [first]), _find_by_name(columns, [second])
        if a is not None and b is not None:
            text, pair = a, b
            break
    if text is None:
        text = _find_by_name(columns, TEXT_COLUMN_NAMES)
    if text is None:
        # The column of strings with the longest mean length is the text.
        lengths = {
            c: frame[c].dropna().astype(str).str.len().mean()
            for c in columns if c != label and not _numeric(frame[c])
        }
        if lengths:
            text = max(lengths, key=lambda c: lengths[c])
    if label is None:
        indicators = [c for c in columns if c not in (text, pair) and not frame[c].isna().any()
                      and _is_indicator(frame[c])]
        if len(indicators) >= 2:
            raise DataError(
                f"{source} has {len(indicators)} columns of 0/1 values ({indicators[:10]}): it "
                "looks like multi-label data (one column per label), which autoft does not "
                "support: it trains one label per example. Name one of them with label_column= "
                "(CLI: --label-column) and train a model per label, or combine them into one "
                "column of class names")
        # The complete column with the fewest distinct values (at least 2) is the label.
        n = len(frame)
        candidates = {}
        for c in columns:
            if c in (text, pair) or frame[c].isna().any():
                continue
            try:
                distinct = frame[c].nunique()
            except TypeError:  # lists or objects in the cells: not a label column
                continue
            if 2 <= distinct <= max(2, min(1000, n // 2)):
                candidates[c] = distinct
        if candidates:
            label = min(candidates, key=lambda c: candidates[c])
    if text is None or label is None:
        missing = "text" if text is None else "label"
        raise DataError(
            f"cannot tell which column of {source} holds the {missing}: its columns are {columns}. "
            "Name the columns with text_column= and label_column= (CLI: --text-column, "
            "--label-column)"
        )
    return text, pair, label


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def text_values(frame: pd.DataFrame, column: str, source: str) -> list[str | None]:
    """The texts of ``column``; a blank or missing text is None (the caller decides what to do).

    Raises:
        DataError: The column holds numbers, or a cell holds a JSON object or array.
    """
    values = frame[column]
    if _numeric(values):
        first = values.iloc[0]
        raise DataError(
            f"text column {column!r} of {source} holds numbers (e.g. {first!r} in row 0), "
            "not text; name the right column with text_column= (CLI: --text-column)"
        )
    texts: list[str | None] = []
    for row, value in enumerate(values.tolist()):
        if isinstance(value, (dict, list, tuple, np.ndarray)):
            raise DataError(
                f"text column {column!r} of {source} holds a JSON "
                f"{'object' if isinstance(value, dict) else 'array'} in row {row}: "
                f"{str(value)[:60]!r}; each text must be a string"
            )
        if _missing(value):
            texts.append(None)
            continue
        text = str(value)
        texts.append(text if text.strip() else None)
    return texts


def label_values(frame: pd.DataFrame, column: str, source: str) -> list[Any]:
    """The raw label values of ``column`` (a task kind turns them into labels).

    Raises:
        DataError: A label is missing or blank, or a cell holds a list, array or object (the
            message names the row, 0-based with the header excluded).
    """
    out: list[Any] = []
    for row, value in enumerate(frame[column].tolist()):
        if _missing(value) or (isinstance(value, str) and not value.strip()):
            raise DataError(
                f"label column {column!r} of {source} is empty in row {row} (0-based, header "
                "excluded); every example needs a label"
            )
        if isinstance(value, (list, tuple, dict, set, np.ndarray)):
            raise DataError(
                f"label column {column!r} of {source} holds a {type(value).__name__} in row {row}; "
                "autoft does single-label tasks: one class name, id or number per example"
            )
        out.append(value)
    return out
