"""Reading data files into tables: CSV, TSV, JSON lines, JSON and Parquet.

Every cell of a CSV or TSV file is read as the string it is written as (``"007"`` stays ``"007"``),
so labels reach the report and the exported model exactly as written; TSVs are read with quoting
disabled, since GLUE-style TSVs contain literal ``"``. A file whose first row looks like data rather
than column names is read without a header (columns ``"0"``, ``"1"``, ...).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from autoft.errors import DataError

__all__ = ["SUPPORTED_SUFFIXES", "read_table"]

#: File suffixes :func:`read_table` reads.
SUPPORTED_SUFFIXES = (".csv", ".tsv", ".tab", ".jsonl", ".json", ".parquet", ".pq")


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
    header = [c for c in pd.read_csv(path, header=None, nrows=1, **kwargs).iloc[0]
              if isinstance(c, str) and c.strip()]
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise DataError(f"{str(path)!r} has duplicate column names {dupes} in its header row; "
                        "rename them so each column has its own name")


def _read_json_lines(path: Path, text: str) -> pd.DataFrame:
    """Read JSON lines, first raising :class:`DataError` naming the first line that is not a JSON
    object (pandas' own error names no line). ``text`` is the file's content as read by
    ``Path.read_text``, whose universal newlines turn LF, CRLF and a lone CR into LF (JSON strings
    cannot hold a raw CR, so this never splits a value)."""
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{str(path)!r} line {number} is not valid JSON ({exc.msg} at column "
                f"{exc.colno}): {line.strip()[:80]!r}; each line must be one JSON object"
            ) from None
        if not isinstance(value, dict):
            kind = {list: "array", str: "string", bool: "boolean", int: "number",
                    float: "number"}.get(type(value), "null")
            raise DataError(
                f"{str(path)!r} line {number} is a JSON {kind}, not an object: "
                f"{line.strip()[:80]!r}; each line must be one object like "
                '{"text": ..., "label": ...}')
    # dtype=False: no type guessing, so "007" stays a string and 7 stays a number
    return pd.read_json(io.StringIO(text), lines=True, dtype=False)


def _read_json(path: Path, text: str) -> pd.DataFrame:
    """Read a ``.json`` file: an array of records, JSON lines, an object of columns (lists, or
    pandas' ``to_json()`` layouts ``columns``/``index``/``split``/``table``), or one record."""
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
        return pd.read_json(io.StringIO(text), orient="split", dtype=False)
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


def _decode_error(path: Path, exc: UnicodeDecodeError, encoding: str) -> DataError:
    """A :class:`DataError` naming the file, the line and the byte of an undecodable byte.

    The decoder's own position is relative to whatever chunk it was given (pandas decodes field
    by field), so the file is decoded again here to find the real position.
    """
    raw = path.read_bytes()
    try:
        raw.decode(encoding)
        where = f"({exc.reason})"
    except UnicodeDecodeError as real:
        line = raw.count(b"\n", 0, real.start) + 1
        column = real.start - (raw.rfind(b"\n", 0, real.start) + 1) + 1
        where = (f"at byte {real.start} (line {line}, byte {column} of that line: "
                 f"{raw[real.start:real.start + 1]!r}, {real.reason})")
    hint = ("re-save it as UTF-8, or give its encoding with encoding= (CLI: --encoding), e.g. "
            "'latin-1' or 'cp1252'") if encoding.replace("-", "").lower() in ("utf8", "utf8sig") \
        else "check the encoding= (CLI: --encoding) you gave"
    shown = "UTF-8" if encoding.replace("-", "").lower() in ("utf8", "utf8sig") else encoding
    return DataError(f"cannot read {str(path)!r}: it is not {shown} text {where}; {hint}")


def read_table(path: str | Path, encoding: str = "utf-8") -> pd.DataFrame:
    """Read a CSV, TSV, JSONL/JSON or Parquet file into a DataFrame.

    Args:
        path: The file. Its suffix picks the reader: ``.csv``; ``.tsv``/``.tab`` (tab-separated,
            quoting disabled); ``.jsonl`` or ``.json`` (JSON lines, a JSON array of records, an
            object of columns or any pandas ``to_json()`` layout); ``.parquet``/``.pq``. CSV and
            TSV cells are read as the strings they are written as. A CSV/TSV whose first row looks
            like data (a cell of more than 40 characters or 4 words, or a column name that is
            also one of the column's values) is read without a header; its columns are named
            "0", "1", ....
        encoding: Text encoding of CSV, TSV and JSON files (any Python codec name). A byte-order
            mark is skipped. Default ``"utf-8"``.

    Returns:
        The table, with string column names.

    Raises:
        DataError: The file does not exist, is empty, has an unsupported suffix, is not in
            ``encoding`` (the message gives the line and byte), or cannot be parsed.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file {str(path)!r} does not exist")
    if path.is_dir():
        raise DataError(
            f"{str(path)!r} is a folder; give a .csv, .tsv, .jsonl, .json or .parquet file"
        )
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DataError(
            f"cannot read {str(path)!r}: unsupported file type {suffix or '(no suffix)'!r}; "
            f"supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}"
        )
    try:
        import codecs

        codecs.lookup(encoding)
    except (LookupError, TypeError):
        raise DataError(f"encoding {encoding!r} is not a known text encoding; use e.g. 'utf-8', "
                        "'latin-1' or 'cp1252'") from None
    if path.stat().st_size == 0 or (suffix != ".parquet" and suffix != ".pq"
                                    and not path.read_bytes().strip(b"\xef\xbb\xbf \t\r\n")):
        raise DataError(f"data file {str(path)!r} is empty; give a file with a header row and "
                        "at least one example per class")
    codec = "utf-8-sig" if encoding.replace("-", "").lower() == "utf8" else encoding
    try:
        if suffix in (".csv", ".tsv", ".tab"):
            kwargs: dict[str, Any] = {"keep_default_na": False, "na_values": [""],
                                      "index_col": False,  # rows with a trailing comma
                                      "dtype": str, "encoding": codec}
            if suffix != ".csv":
                kwargs.update(sep="\t", quoting=csv.QUOTE_NONE)
            frame = pd.read_csv(path, **kwargs)
            if _looks_like_data(frame.columns) or _name_among_values(frame):
                frame = pd.read_csv(path, header=None, **kwargs)
            else:
                _check_header(path, kwargs)
        elif suffix in (".jsonl", ".json"):
            text = path.read_text(encoding=codec)
            frame = _read_json_lines(path, text) if suffix == ".jsonl" else _read_json(path, text)
        else:
            frame = pd.read_parquet(path)
    except DataError:
        raise
    except UnicodeDecodeError as exc:
        raise _decode_error(path, exc, encoding) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {str(path)!r} holds no columns; give a file with a header "
                        "row and examples") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot parse {str(path)!r} as {suffix} file: {first}") from None
    frame.columns = [str(c) for c in frame.columns]
    if len(frame) == 0:
        raise DataError(f"data file {str(path)!r} has a header but no rows")
    return frame
