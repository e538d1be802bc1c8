"""Turning any supported input into :class:`TaskData`: validated text columns, labels, splits.

Supported inputs (for the training data, and for the optional separate validation and test data):

* a ``datasets.Dataset`` or ``datasets.DatasetDict`` (its ``train``, ``validation``/``dev`` and
  ``test`` splits are used when present; ``ClassLabel`` names become the label names);
* a ``pandas.DataFrame``;
* a path to a ``.csv``, ``.tsv``/``.tab``, ``.jsonl``/``.json`` or ``.parquet`` file (TSVs are read
  with quoting disabled, since GLUE-style TSVs contain literal ``"``; a file whose first row looks like
  data rather than column names is read without a header, its columns named ``"0"``, ``"1"``, ...);
* a ``(texts, labels)`` or ``(texts, text_pairs, labels)`` tuple of equal-length sequences.

Everything is checked here, before any model is loaded, and every problem raises
:class:`~autoft.errors.DataError` naming the column, the row and the value.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from autoft.errors import DataError

__all__ = ["Split", "TaskData", "load_task_data", "read_table"]

logger = logging.getLogger(__name__)

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
)
#: Split names recognised in a ``DatasetDict`` or a dict of tables.
VALIDATION_SPLIT_NAMES = ("validation", "valid", "val", "dev", "eval")

_READERS = {".csv", ".tsv", ".tab", ".jsonl", ".json", ".parquet", ".pq"}


@dataclass(frozen=True)
class Split:
    """One split of a text-classification task.

    Attributes:
        texts: The first text of each example, length N.
        text_pairs: The second text of each example for sentence-pair tasks (length N), else None.
        labels: Integer labels in ``0..K-1``, shape ``(N,)``, dtype int64.
    """

    texts: list[str]
    text_pairs: list[str] | None
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int] | np.ndarray) -> Split:
        """Return the examples at ``indices`` (in that order) as a new split."""
        idx = [int(i) for i in indices]
        return Split(
            texts=[self.texts[i] for i in idx],
            text_pairs=None if self.text_pairs is None else [self.text_pairs[i] for i in idx],
            labels=self.labels[np.asarray(idx, dtype=np.int64)],
        )

    def class_counts(self, num_labels: int) -> list[int]:
        """Number of examples of each class ``0..num_labels-1``."""
        return np.bincount(self.labels, minlength=num_labels).tolist()


@dataclass(frozen=True)
class TaskData:
    """A validated text-classification task: splits, label names and where they came from.

    Attributes:
        train: The split the trials fine-tune on.
        validation: The split each trial is evaluated on (the search's objective).
        test: An optional labelled held-out split, never used by the search itself.
        id2label: Label name of each label id ``0..K-1``.
        text_column: Name of the (first) text column in the input.
        text_pair_column: Name of the second text column for sentence-pair tasks, else None.
        label_column: Name of the label column in the input.
        validation_source: ``"given"`` when the input had a validation split, ``"split"`` when autoft
            made a seeded stratified split of the training data.
        source: The input file's path when the data came from a file, else a short description.
    """

    train: Split
    validation: Split
    test: Split | None
    id2label: dict[int, str]
    text_column: str
    text_pair_column: str | None = None
    label_column: str = "label"
    validation_source: str = "given"
    source: str | None = None
    _fingerprint: list[str] = field(default_factory=list, repr=False, compare=False)

    @property
    def num_labels(self) -> int:
        """Number of classes K."""
        return len(self.id2label)

    @property
    def label2id(self) -> dict[str, int]:
        """Label id of each label name (the inverse of ``id2label``)."""
        return {name: i for i, name in self.id2label.items()}

    @property
    def is_pair(self) -> bool:
        """True for sentence-pair tasks (two text columns)."""
        return self.text_pair_column is not None

    def fingerprint(self) -> str:
        """A SHA-256 hex digest of every split's texts and labels and of the label names.

        Two ``TaskData`` with the same fingerprint hold the same examples in the same order, so a
        study, or a cache, keyed by it never mixes up data sets.
        """
        if not self._fingerprint:
            h = hashlib.sha256()
            h.update(repr(sorted(self.id2label.items())).encode())
            for name, split in (("train", self.train), ("validation", self.validation),
                                ("test", self.test)):
                h.update(f"\x00{name}\x00".encode())
                if split is None:
                    continue
                pairs = split.text_pairs or [""] * len(split)
                for text, pair in zip(split.texts, pairs):
                    h.update(text.encode())
                    h.update(b"\x1f")
                    h.update(pair.encode())
                    h.update(b"\x1e")
                h.update(split.labels.astype("<i8").tobytes())
            self._fingerprint.append(h.hexdigest())
        return self._fingerprint[0]

    def summary(self) -> dict[str, Any]:
        """Sizes, class counts and column names as a JSON-serialisable dict (stored in the study)."""
        k = self.num_labels
        return {
            "source": self.source,
            "text_column": self.text_column,
            "text_pair_column": self.text_pair_column,
            "label_column": self.label_column,
            "id2label": {str(i): name for i, name in self.id2label.items()},
            "num_labels": k,
            "train_size": len(self.train),
            "validation_size": len(self.validation),
            "test_size": None if self.test is None else len(self.test),
            "validation_source": self.validation_source,
            "train_class_counts": self.train.class_counts(k),
            "validation_class_counts": self.validation.class_counts(k),
            "fingerprint": self.fingerprint(),
        }


# --------------------------------------------------------------------------------------------
# Reading inputs into tables
# --------------------------------------------------------------------------------------------


def _looks_like_data(names: Sequence[Any]) -> bool:
    """True when a row read as column names looks like a data row (a sentence, a number)."""
    for name in names:
        s = str(name)
        if len(s) > 40 or len(s.split()) >= 4:
            return True
    return False


def _name_among_values(frame: pd.DataFrame) -> bool:
    """True when a column's name is also one of its values (e.g. a label column named "0"): the
    first row was data, not a header."""
    for name in frame.columns:
        values = {str(v).strip() for v in frame[name].head(2000).tolist()}
        if str(name).strip() in values:
            return True
    return False


def _check_header(path: Path, kwargs: dict[str, Any]) -> None:
    """Raise :class:`DataError` when a CSV/TSV header repeats a column name (pandas would
    silently rename the second ``text`` to ``text.1``). The header is read by pandas itself, so
    a byte-order mark and blank leading lines are handled as in the real read; empty names (as
    in Excel's ``text,label,,``) are not counted as repeats."""
    header = [c for c in pd.read_csv(path, header=None, nrows=1, dtype=str, **kwargs).iloc[0]
              if isinstance(c, str) and c.strip()]
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise DataError(f"{str(path)!r} has duplicate column names {dupes} in its header row; "
                        "rename them so each column has its own name")


def _read_json_lines(path: Path, text: str | None = None) -> pd.DataFrame:
    """Read a JSON-lines file, first raising :class:`DataError` naming the first line that is not
    a JSON object (pandas' own error names no line). ``text`` is the file's content if already
    read with ``Path.read_text``, whose universal newlines turn LF, CRLF and a lone CR into LF
    (JSON strings cannot hold a raw CR, so this never splits a value)."""
    if text is None:
        text = path.read_text(encoding="utf-8-sig")
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{str(path)!r} line {number} is not valid JSON ({exc.msg} at column "
                f"{exc.colno}): {line.strip()[:80]!r}; each line must be one JSON object"
            ) from exc
        if not isinstance(value, dict):
            kind = {list: "array", str: "string", bool: "boolean", int: "number",
                    float: "number"}.get(type(value), "null")
            raise DataError(
                f"{str(path)!r} line {number} is a JSON {kind}, not an object: "
                f"{line.strip()[:80]!r}; each line must be one object like "
                '{"text": ..., "label": ...}')
    return pd.read_json(io.StringIO(text), lines=True)


def _read_json(path: Path) -> pd.DataFrame:
    """Read a ``.json`` file: an array of records, JSON lines, an object of columns (lists, or
    pandas' ``to_json()`` layouts ``columns``/``index``/``split``/``table``), or one record."""
    text = path.read_text(encoding="utf-8-sig")
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        return _read_json_lines(path, text)  # several values: JSON lines
    if isinstance(whole, list):
        if not all(isinstance(v, dict) for v in whole):
            bad = next(i for i, v in enumerate(whole) if not isinstance(v, dict))
            raise DataError(f"{str(path)!r}: item {bad} of the JSON array is not an object; give "
                            'an array of records like [{"text": ..., "label": ...}, ...]')
        return pd.DataFrame.from_records(whole)
    if not isinstance(whole, dict) or not whole:
        raise DataError(f"{str(path)!r} holds no records; give an array of records, JSON lines "
                        "or an object of columns")
    values = list(whole.values())
    if {"schema", "data"} <= set(whole):
        return pd.read_json(io.StringIO(text), orient="table")
    if {"columns", "data"} <= set(whole):
        return pd.read_json(io.StringIO(text), orient="split")
    if all(isinstance(v, list) for v in values):  # {"text": [...], "label": [...]}
        if len({len(v) for v in values}) > 1:
            raise DataError(f"{str(path)!r}: the column lists have different lengths "
                            f"{ {k: len(v) for k, v in whole.items()} }")
        return pd.DataFrame(whole)
    if all(isinstance(v, dict) for v in values):  # pandas' to_json(): columns or index layout
        if all(str(k).lstrip("-").isdigit() for k in whole):
            return pd.DataFrame.from_dict(whole, orient="index").reset_index(drop=True)
        return pd.DataFrame(whole)
    if any(isinstance(v, (list, dict)) for v in values):
        raise DataError(f"{str(path)!r} mixes lists or objects with single values at its top "
                        "level; give an array of records, JSON lines or an object of columns")
    return pd.DataFrame([whole])  # a single record


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV, TSV, JSONL/JSON or Parquet file into a DataFrame of strings and numbers.

    Args:
        path: The file. Its suffix picks the reader: ``.csv``; ``.tsv``/``.tab`` (tab-separated,
            quoting disabled); ``.jsonl`` or ``.json`` (JSON lines, or a JSON array of records);
            ``.parquet``/``.pq``. A CSV/TSV whose first row looks like data (a cell of more than
            40 characters or 4 words, or a column name that is also one of the column's values)
            is read without a header; its columns are named "0", "1", ....

    Returns:
        The table, with string column names.

    Raises:
        DataError: The file does not exist, has an unsupported suffix, or cannot be parsed.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file {str(path)!r} does not exist")
    if path.is_dir():
        raise DataError(
            f"{str(path)!r} is a folder; give a .csv, .tsv, .jsonl, .json or .parquet file"
        )
    suffix = path.suffix.lower()
    if suffix not in _READERS:
        raise DataError(
            f"cannot read {str(path)!r}: unsupported file type {suffix or '(no suffix)'!r}; "
            f"supported: {', '.join(sorted(_READERS))}"
        )
    try:
        if suffix in (".csv", ".tsv", ".tab"):
            kwargs: dict[str, Any] = {"keep_default_na": False, "na_values": [""],
                                      "index_col": False}  # rows with a trailing comma
            if suffix != ".csv":
                kwargs.update(sep="\t", quoting=csv.QUOTE_NONE)
            frame = pd.read_csv(path, **kwargs)
            if _looks_like_data(frame.columns) or _name_among_values(frame):
                frame = pd.read_csv(path, header=None, **kwargs)
            else:
                _check_header(path, kwargs)
        elif suffix == ".jsonl":
            frame = _read_json_lines(path)
        elif suffix == ".json":
            frame = _read_json(path)
        else:
            frame = pd.read_parquet(path)
    except DataError:
        raise
    except UnicodeDecodeError as exc:
        raise DataError(
            f"cannot read {str(path)!r}: it is not UTF-8 text ({exc.reason} at byte {exc.start}); "
            "re-save it as UTF-8"
        ) from exc
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot parse {str(path)!r} as {suffix} file: {exc}") from exc
    frame.columns = [str(c) for c in frame.columns]
    if len(frame) == 0:
        raise DataError(f"data file {str(path)!r} has no rows")
    return frame


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


@dataclass
class _Table:
    frame: pd.DataFrame
    source: str
    class_names: dict[str, list[str]] = field(default_factory=dict)


def _to_tables(data: Any, what: str) -> dict[str, _Table]:
    """Turn one supported input into named tables: {"train": ...} or a dict of splits."""
    if isinstance(data, (str, Path)):
        return {"train": _Table(read_table(data), str(data))}
    if isinstance(data, pd.DataFrame):
        frame = data.copy()
        frame.columns = [str(c) for c in frame.columns]
        dupes = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
        if dupes:
            raise DataError(f"{what} (DataFrame) has duplicate column names {dupes}; rename them")
        return {"train": _Table(frame, "DataFrame")}
    if _is_hf_dataset_dict(data):
        return {
            str(name): _Table(_frame_of(split), f"DatasetDict[{name!r}]", _class_label_names(split))
            for name, split in data.items()
        }
    if _is_hf_dataset(data):
        return {"train": _Table(_frame_of(data), "Dataset", _class_label_names(data))}
    if isinstance(data, Mapping) and data and all(
        isinstance(v, (pd.DataFrame, str, Path)) or _is_hf_dataset(v) for v in data.values()
    ):
        tables: dict[str, _Table] = {}
        for name, part in data.items():
            (table,) = _to_tables(part, f"{what}[{name!r}]").values()
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
        return {"train": _Table(pd.DataFrame(dict(zip(columns, parts))), "lists")}
    raise DataError(
        f"{what}: unsupported type {type(data).__name__}; give a datasets.Dataset or DatasetDict, "
        "a pandas DataFrame, a path to a .csv/.tsv/.jsonl/.json/.parquet file, or a "
        "(texts, labels) tuple"
    )


def _frame_of(dataset: Any) -> pd.DataFrame:
    frame = dataset.to_pandas()
    frame.columns = [str(c) for c in frame.columns]
    return frame


# --------------------------------------------------------------------------------------------
# Columns
# --------------------------------------------------------------------------------------------


def _resolve_column(frame: pd.DataFrame, column: str | int, role: str, source: str) -> str:
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


def _guess_columns(
    frame: pd.DataFrame, source: str
) -> tuple[str, str | None, str]:
    """Guess (text, text_pair, label) columns: common names first, then content."""
    columns = list(frame.columns)
    label = _find_by_name(columns, LABEL_COLUMN_NAMES)
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
            for c in columns
            if c != label and not pd.api.types.is_numeric_dtype(frame[c])
        }
        if lengths:
            text = max(lengths, key=lambda c: lengths[c])
    if label is None:
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


def _texts(frame: pd.DataFrame, column: str, source: str) -> list[str]:
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        raise DataError(
            f"text column {column!r} of {source} holds numbers (e.g. {values.iloc[0]!r} in row 0), "
            "not text; name the right column with text_column="
        )
    texts: list[str] = []
    for row, value in enumerate(values.tolist()):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise DataError(
                f"text column {column!r} of {source} is empty in row {row} (0-based, header "
                "excluded); remove the row or fill in its text"
            )
        if isinstance(value, (dict, list, tuple)):
            raise DataError(
                f"text column {column!r} of {source} holds a JSON "
                f"{'object' if isinstance(value, dict) else 'array'} in row {row}: "
                f"{str(value)[:60]!r}; each text must be a string"
            )
        text = str(value)
        if not text.strip():
            raise DataError(
                f"text column {column!r} of {source} is blank in row {row} (0-based, header "
                "excluded); remove the row or fill in its text"
            )
        texts.append(text)
    return texts


def _raw_labels(
    frame: pd.DataFrame, column: str, source: str, names: list[str] | None
) -> list[int | str]:
    """Labels as Python ints or stripped strings; ClassLabel ids become their names."""
    out: list[int | str] = []
    for row, value in enumerate(frame[column].tolist()):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise DataError(
                f"label column {column!r} of {source} is empty in row {row} (0-based, header "
                "excluded); every example needs a label"
            )
        if isinstance(value, (list, tuple, dict, set, np.ndarray)):
            raise DataError(
                f"label column {column!r} of {source} holds a {type(value).__name__} in row {row}; "
                "autoft does single-label classification: one class name or id per example"
            )
        if isinstance(value, (bool, np.bool_)):
            out.append(int(value))
        elif isinstance(value, (int, np.integer)):
            out.append(int(value))
        elif isinstance(value, (float, np.floating)):
            if not float(value).is_integer():
                raise DataError(
                    f"label column {column!r} of {source} holds the non-integer number {value!r} "
                    f"in row {row}; autoft does classification, so labels must be class names or "
                    "integer class ids"
                )
            out.append(int(value))
        else:
            text = str(value).strip()
            if not text:
                raise DataError(
                    f"label column {column!r} of {source} is blank in row {row} (0-based, header "
                    "excluded); every example needs a label"
                )
            out.append(text)
    if names is not None:
        out = [names[v] if isinstance(v, int) and 0 <= v < len(names) else v for v in out]
    return out


@dataclass
class _RawSplit:
    texts: list[str]
    pairs: list[str] | None
    labels: list[int | str]
    source: str


def _raw_split(
    table: _Table, text: str, pair: str | None, label: str, role: str
) -> _RawSplit:
    frame, source = table.frame, f"the {role} data ({table.source})"
    text_c = _resolve_column(frame, text, "text", source)
    pair_c = None if pair is None else _resolve_column(frame, pair, "text-pair", source)
    label_c = _resolve_column(frame, label, "label", source)
    if len({text_c, pair_c, label_c} - {None}) < (3 if pair_c else 2):
        raise DataError(
            f"the text, text-pair and label columns of {source} must differ; got text={text_c!r}, "
            f"text_pair={pair_c!r}, label={label_c!r}"
        )
    return _RawSplit(
        texts=_texts(frame, text_c, source),
        pairs=None if pair_c is None else _texts(frame, pair_c, source),
        labels=_raw_labels(frame, label_c, source, table.class_names.get(label_c)),
        source=source,
    )


def _is_unlabelled(labels: list[int | str]) -> bool:
    """GLUE-style test splits mark missing labels with -1."""
    return all(v == -1 for v in labels)


def _label_order(
    train: _RawSplit, table: _Table, label_column: str
) -> list[int | str]:
    names = table.class_names.get(label_column)
    present = set(train.labels)
    if names is not None:
        return [n for n in names if n in present]
    kinds = {type(v) for v in present}
    if len(kinds) > 1:
        # Mixed ints and strings (e.g. "1" and 1 from a JSON file): compare as strings.
        return sorted(present, key=str)
    return sorted(present)  # type: ignore[type-var]


def _encode(raw: _RawSplit, label2id: dict[int | str, int], role: str) -> Split:
    ids = np.empty(len(raw.labels), dtype=np.int64)
    for row, value in enumerate(raw.labels):
        if value not in label2id:
            raise DataError(
                f"label {value!r} in row {row} of {raw.source} does not occur in the training "
                f"data, whose labels are {sorted(map(str, label2id))}; a {role} label must be one "
                "of the training labels"
            )
        ids[row] = label2id[value]
    return Split(texts=raw.texts, text_pairs=raw.pairs, labels=ids)


def _stratified_split(
    raw: _RawSplit, size: float | int, seed: int
) -> tuple[_RawSplit, _RawSplit]:
    from sklearn.model_selection import train_test_split

    n = len(raw.texts)
    counts: dict[int | str, int] = {}
    for v in raw.labels:
        counts[v] = counts.get(v, 0) + 1
    rare = [k for k, c in counts.items() if c < 2]
    if rare:
        raise DataError(
            f"class {rare[0]!r} has only 1 example in {raw.source}; a stratified validation split "
            "needs at least 2 per class. Add examples, drop the class, or give a validation split"
        )
    n_val = int(round(size * n)) if isinstance(size, float) else int(size)
    if not len(counts) <= n_val <= n - len(counts):
        raise DataError(
            f"validation_size={size!r} gives {n_val} validation rows out of {n}; it must leave at "
            f"least one example of each of the {len(counts)} classes on both sides"
        )
    idx_train, idx_val = train_test_split(
        np.arange(n), test_size=n_val, random_state=seed,
        stratify=np.asarray([str(v) for v in raw.labels]),
    )

    def take(idx: np.ndarray, what: str) -> _RawSplit:
        order = sorted(int(i) for i in idx)
        return _RawSplit(
            texts=[raw.texts[i] for i in order],
            pairs=None if raw.pairs is None else [raw.pairs[i] for i in order],
            labels=[raw.labels[i] for i in order],
            source=f"{raw.source} ({what} part)",
        )

    return take(idx_train, "training"), take(idx_val, "validation")


def load_task_data(
    data: Any,
    *,
    validation: Any = None,
    test: Any = None,
    text_column: str | int | None = None,
    text_pair_column: str | int | None = None,
    label_column: str | int | None = None,
    validation_size: float | int = 0.2,
    seed: int = 0,
) -> TaskData:
    """Validate a dataset and turn it into :class:`TaskData`.

    Args:
        data: The training data, or a ``DatasetDict``/dict of splits holding ``train`` and
            optionally ``validation`` (or ``dev``/``valid``/``val``) and ``test``. Any input type
            listed in this module's docstring.
        validation: Separate validation data of any supported type; overrides a validation split
            inside ``data``. Default None.
        test: Separate labelled test data of any supported type. Default None (the ``test`` split
            inside ``data`` when there is one; a test split whose labels are all -1 is dropped as
            unlabelled).
        text_column: Name (or 0-based position) of the text column. Default None: the first of
            :data:`TEXT_COLUMN_NAMES` present, else the string column with the longest texts.
        text_pair_column: Name or position of the second text column for sentence-pair tasks.
            Default None: a known pair such as ``sentence1``/``sentence2`` when both are present.
        label_column: Name or position of the label column. Default None: the first of
            :data:`LABEL_COLUMN_NAMES` present, else the complete column with the fewest distinct
            values.
        validation_size: When no validation data is given, the fraction (float in (0, 1)) or the
            number of rows (int) of the training data held out, by a stratified split. Default 0.2.
        seed: Seed of that split. Default 0.

    Returns:
        The validated task. Labels are mapped to ``0..K-1`` in sorted order (integers numerically,
        strings alphabetically; ``ClassLabel`` order for ``datasets`` inputs) and ``id2label`` maps
        them back to names.

    Raises:
        DataError: Unsupported input type, unreadable file, missing or ambiguous column, empty text
            or label, a non-integer numeric label, fewer than 2 classes, a validation or test label
            absent from the training data, or a split too small to stratify.
    """
    if isinstance(validation_size, bool) or not (
        (isinstance(validation_size, float) and 0.0 < validation_size < 1.0)
        or (isinstance(validation_size, int) and validation_size > 0)
    ):
        raise DataError(
            f"validation_size={validation_size!r} must be a fraction in (0, 1) or a positive "
            "number of rows"
        )
    tables = _to_tables(data, "data")
    train_key = "train" if "train" in tables else None
    if train_key is None:
        raise DataError(
            f"data has splits {sorted(tables)} but no 'train' split to fine-tune on"
        )
    train_table = tables[train_key]
    val_table = next((tables[k] for k in VALIDATION_SPLIT_NAMES if k in tables), None)
    test_table = tables.get("test")
    if validation is not None:
        val_table = next(iter(_to_tables(validation, "validation").values()))
    if test is not None:
        test_table = next(iter(_to_tables(test, "test").values()))

    frame = train_table.frame
    source = f"the training data ({train_table.source})"
    if text_column is None or label_column is None:
        g_text, g_pair, g_label = _guess_columns(frame, source)
        if text_pair_column is None and text_column is None:
            text_pair_column = g_pair
        text_column = g_text if text_column is None else text_column
        label_column = g_label if label_column is None else label_column
    text_c = _resolve_column(frame, text_column, "text", source)
    pair_c = (
        None if text_pair_column is None
        else _resolve_column(frame, text_pair_column, "text-pair", source)
    )
    label_c = _resolve_column(frame, label_column, "label", source)

    raw_train = _raw_split(train_table, text_c, pair_c, label_c, "training")
    raw_val = None if val_table is None else _raw_split(
        val_table, text_c, pair_c, label_c, "validation"
    )
    raw_test = None if test_table is None else _raw_split(
        test_table, text_c, pair_c, label_c, "test"
    )
    if raw_test is not None and _is_unlabelled(raw_test.labels):
        logger.warning("the test split's labels are all -1 (unlabelled); it is not used")
        raw_test = None

    validation_source = "given"
    if raw_val is None:
        raw_train, raw_val = _stratified_split(raw_train, validation_size, seed)
        validation_source = "split"

    order = _label_order(raw_train, train_table, label_c)
    if len(order) < 2:
        raise DataError(
            f"{source} has a single class {order[0]!r} in label column {label_c!r}; "
            "classification needs at least 2 classes"
        )
    label2id = {v: i for i, v in enumerate(order)}
    return TaskData(
        train=_encode(raw_train, label2id, "training"),
        validation=_encode(raw_val, label2id, "validation"),
        test=None if raw_test is None else _encode(raw_test, label2id, "test"),
        id2label={i: str(v) for v, i in label2id.items()},
        text_column=text_c,
        text_pair_column=pair_c,
        label_column=label_c,
        validation_source=validation_source,
        source=train_table.source,
    )
