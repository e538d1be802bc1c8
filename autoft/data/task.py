"""Turning any supported input into :class:`TaskData`: validated texts, labels and splits.

Rules (the README's data section states them too):

* **Labels as written.** A task kind (:mod:`autoft.tasks`) reads the label column; for
  classification, labels keep the form they are written in (``"007"`` stays ``"007"``).
* **Blank texts** (empty, whitespace-only or missing) are dropped with one warning that gives
  their count and row numbers; the report's data section shows them.
* **Splits.** A ``DatasetDict`` or dict of tables may hold ``train``, a validation split (the
  first of :data:`VALIDATION_SPLIT_NAMES` present, or ``validation_split=``) and a test split
  (:data:`TEST_SPLIT_NAMES`, or ``test_split=``); other splits are left unused with a warning that
  names them. Without a validation split, a seeded stratified split of the training data is made
  that keeps identical texts on one side.
* **Duplicates.** Texts shared by the training split and a given validation or test split, and
  identical texts with different labels, are counted, warned about with examples, and shown in
  the report.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from autoft.data.columns import (
    LABEL_COLUMN_NAMES,
    guess_columns,
    label_values,
    resolve_column,
    text_values,
)
from autoft.data.images import check_images, find_image_column, is_image_file, resolve_paths
from autoft.data.sources import Table, to_tables
from autoft.errors import AutoftError, DataError
from autoft.tasks import LabelInfo, TaskKind, looks_like_regression, task_kind

__all__ = ["TEST_SPLIT_NAMES", "VALIDATION_SPLIT_NAMES", "Split", "TaskData", "load_task_data"]

logger = logging.getLogger(__name__)

#: Split names recognised as the validation split of a ``DatasetDict``, in order of preference.
VALIDATION_SPLIT_NAMES = ("validation", "valid", "val", "dev", "eval", "validation_matched",
                          "dev_matched")
#: Split names recognised as the test split, in order of preference.
TEST_SPLIT_NAMES = ("test", "test_matched")


@dataclass(frozen=True)
class Split:
    """One split of a task.

    Attributes:
        texts: The first text of each example, length N; for images, a content key of each
            image (identical images have equal keys).
        text_pairs: The second text of each example for sentence-pair tasks (length N), else None.
        labels: Encoded labels, shape ``(N,)`` (class ids, int64, for classification).
        images: For image tasks, each example's image reference (an absolute file path, a
            ``datasets`` image cell, a PIL image or an array; read with
            :func:`autoft.data.images.open_image`), length N; None for text.
    """

    texts: list[str]
    text_pairs: list[str] | None
    labels: np.ndarray
    images: list[Any] | None = field(default=None, compare=False)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int] | np.ndarray) -> Split:
        """Return the examples at ``indices`` (in that order) as a new split."""
        idx = [int(i) for i in indices]
        return Split(
            texts=[self.texts[i] for i in idx],
            text_pairs=None if self.text_pairs is None else [self.text_pairs[i] for i in idx],
            labels=self.labels[np.asarray(idx, dtype=np.int64)],
            images=None if self.images is None else [self.images[i] for i in idx],
        )

    def keys(self) -> list[tuple[str, str]]:
        """``(text, pair)`` of each example: identical inputs have equal keys."""
        pairs = self.text_pairs or [""] * len(self.texts)
        return list(zip(self.texts, pairs))

    def class_counts(self, num_labels: int) -> list[int]:
        """Number of examples of each class ``0..num_labels-1`` (classification)."""
        return np.bincount(self.labels, minlength=num_labels).tolist()


@dataclass(frozen=True)
class TaskData:
    """A validated task: splits, labels and where they came from.

    Attributes:
        train: The split the trials fine-tune on.
        validation: The split each trial is evaluated on (the search's objective).
        test: An optional labelled held-out split, never used by the search itself.
        labels: The label vocabulary (:class:`~autoft.tasks.LabelInfo`).
        text_column: Name of the (first) text column in the input.
        text_pair_column: Name of the second text column for sentence-pair tasks, else None.
        label_column: Name of the label column in the input.
        validation_source: ``"given"`` when the input had a validation split, ``"split"`` when
            autoft made a seeded stratified split of the training data.
        source: The input file's path when the data came from a file, else a short description.
        task: The task kind's name (see :mod:`autoft.tasks`). Default ``"classification"``.
        checks: What the data checks found (dropped blank texts, duplicates, label spaces), for
            the report.
    """

    train: Split
    validation: Split
    test: Split | None
    labels: LabelInfo
    text_column: str
    text_pair_column: str | None = None
    label_column: str = "label"
    validation_source: str = "given"
    source: str | None = None
    task: str = "classification"
    checks: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def kind(self) -> TaskKind:
        """The task kind, bound to these labels (:meth:`~autoft.tasks.TaskKind.for_labels`)."""
        return task_kind(self.task).for_labels(self.labels)

    @property
    def id2label(self) -> dict[int, str]:
        """Label name of each class id (empty for tasks without classes)."""
        return dict(self.labels.id2label or {})

    @property
    def num_labels(self) -> int:
        """Number of model outputs (classes K for classification)."""
        return self.kind.num_outputs(self.labels)

    @property
    def label2id(self) -> dict[str, int]:
        """Class id of each label name (the inverse of ``id2label``)."""
        return {name: i for i, name in self.id2label.items()}

    @property
    def modality(self) -> str:
        """``"image"`` when the examples are images (``text_column`` then names the image
        column), else ``"text"``."""
        return "image" if self.train.images is not None else "text"

    @property
    def is_pair(self) -> bool:
        """True for sentence-pair tasks (two text columns)."""
        return self.text_pair_column is not None

    @cached_property
    def _fingerprints(self) -> dict[str, str]:
        out = {}
        for name, split in (("train", self.train), ("validation", self.validation),
                            ("test", self.test)):
            h = hashlib.sha256()
            h.update(f"{self.task}\x00{sorted((self.labels.id2label or {}).items())!r}".encode())
            if split is not None:
                for text, pair in split.keys():
                    h.update(text.encode())
                    h.update(b"\x1f")
                    h.update(pair.encode())
                    h.update(b"\x1e")
                h.update(np.ascontiguousarray(split.labels).tobytes())
            out[name] = h.hexdigest()
        return out

    def fingerprint(self) -> str:
        """SHA-256 hex digest of the training and validation splits (texts, labels, label names).

        Two ``TaskData`` with the same fingerprint train and validate on the same examples in the
        same order, so a study keyed by it never mixes data sets. The test split is left out: a
        resumed study may gain or change its test file (see :meth:`test_fingerprint`).
        """
        h = hashlib.sha256(f"{self._fingerprints['train']}:{self._fingerprints['validation']}"
                           .encode())
        return h.hexdigest()

    def test_fingerprint(self) -> str | None:
        """SHA-256 hex digest of the test split, or None without one."""
        return None if self.test is None else self._fingerprints["test"]

    def summary(self) -> dict[str, Any]:
        """Sizes, label statistics, columns and data checks as a JSON-serialisable dict (stored
        in the study)."""
        kind = self.kind
        return {
            "task": self.task,
            "modality": self.modality,
            "source": self.source,
            "text_column": self.text_column,
            "text_pair_column": self.text_pair_column,
            "label_column": self.label_column,
            "id2label": {str(i): name for i, name in self.id2label.items()},
            "label_type": self.labels.label_type,
            "num_labels": self.num_labels,
            "train_size": len(self.train),
            "validation_size": len(self.validation),
            "test_size": None if self.test is None else len(self.test),
            "validation_source": self.validation_source,
            "train_class_counts": kind.summary(self.train.labels, self.labels),
            "validation_class_counts": kind.summary(self.validation.labels, self.labels),
            "fingerprint": self.fingerprint(),
            "test_fingerprint": self.test_fingerprint(),
            "checks": self.checks,
            "baseline": self.baseline_scores(),
        }

    def baseline_scores(self) -> dict[str, Any] | None:
        """The task kind's trivial predictor (:meth:`~autoft.tasks.TaskKind.baseline`: the
        majority class, the training mean) scored with every metric that applies, on the
        validation split (and the test split): ``{"predictor": str, "validation": {metric:
        score}, "test": {...} or None}``; None for a kind without one."""
        kind = self.kind
        metrics = []
        for metric in kind.metrics:
            try:
                kind.check_metric(metric, self.labels)
            except AutoftError:  # e.g. a binary metric on more classes
                continue
            metrics.append(metric)
        scored: dict[str, Any] = {}
        name = None
        for role, split in (("validation", self.validation), ("test", self.test)):
            if split is None:
                scored[role] = None
                continue
            made = kind.baseline(self.train.labels, len(split), self.labels)
            if made is None:
                return None
            name, outputs = made
            scored[role] = {m: round(kind.score(m, split.labels, outputs), 6) for m in metrics}
        return {"predictor": name, **scored}


# --------------------------------------------------------------------------------------------
# Rows to splits
# --------------------------------------------------------------------------------------------


@dataclass
class _RawSplit:
    texts: list[str]
    pairs: list[str] | None
    labels: list[Any]
    source: str
    dropped_rows: list[int] = field(default_factory=list)
    images: list[Any] | None = None

    def keys(self) -> list[tuple[str, str]]:
        return list(zip(self.texts, self.pairs or [""] * len(self.texts)))


def _raw_split(table: Table, text: str, pair: str | None, label: str, role: str,
               kind: TaskKind) -> _RawSplit:
    frame, source = table.frame, f"the {role} data ({table.source})"
    text_c = resolve_column(frame, text, "text", source)
    pair_c = None if pair is None else resolve_column(frame, pair, "text-pair", source)
    label_c = resolve_column(frame, label, "label", source)
    if len({text_c, pair_c, label_c} - {None}) < (3 if pair_c else 2):
        raise DataError(
            f"the text, text-pair and label columns of {source} must differ; got text={text_c!r}, "
            f"text_pair={pair_c!r}, label={label_c!r}"
        )
    texts = text_values(frame, text_c, source)
    pairs = None if pair_c is None else text_values(frame, pair_c, source)
    blank = [i for i, t in enumerate(texts) if t is None or (pairs is not None and pairs[i] is None)]
    keep = [i for i in range(len(texts)) if i not in set(blank)]
    if blank:
        shown = ", ".join(str(i) for i in blank[:10]) + (" ..." if len(blank) > 10 else "")
        logger.warning(
            "%s: %d rows with a blank or missing text were dropped (rows %s; 0-based, header "
            "excluded)", source, len(blank), shown)
    if not keep:
        raise DataError(f"every text of {source} is blank; give texts in column {text_c!r}")
    values = label_values(frame, label_c, source)
    parsed = kind.parse([values[i] for i in keep], label_c, source,
                        table.class_names.get(label_c))
    return _RawSplit(
        texts=[texts[i] for i in keep],  # type: ignore[misc]
        pairs=None if pairs is None else [pairs[i] for i in keep],  # type: ignore[misc]
        labels=parsed,
        source=source,
        dropped_rows=blank,
    )


def _missing_cell(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, float):
        return value != value  # NaN
    return False


def _free_text(values: pd.Series) -> bool:
    """Whether a column holds sentences (not image paths, names or codes)."""
    sample = values.dropna().iloc[:200]
    strings = [v for v in sample if isinstance(v, str)]
    if not strings or len(strings) < len(sample):
        return False
    if all(is_image_file(v.strip()) for v in strings):
        return False
    return sum(" " in v.strip() for v in strings) > len(strings) / 2


def _image_columns(table: Table, text_column: str | int | None, label_column: str | int | None,
                   source: str) -> tuple[str, str] | None:
    """``(image column, label column)`` of an image table, or None for a text table. A
    ``text_column`` that names another column than the images makes it a text table.

    Raises:
        DataError: The label column cannot be told, or the table holds sentences beside the
            images and no column was named (autoft fine-tunes on one input).
    """
    frame = table.frame
    named = None if text_column is None else resolve_column(frame, text_column, "text", source)
    image_c = table.image_column or find_image_column(frame, table.image_features, named)
    if image_c is None or (named is not None and named != image_c):
        return None
    columns = [str(c) for c in frame.columns]
    if label_column is not None:
        label_c: str | None = resolve_column(frame, label_column, "label", source)
    else:
        label_c = next((c for name in LABEL_COLUMN_NAMES for c in columns
                        if c.lower() == name.lower() and c != image_c), None)
    others = [c for c in columns if c not in (image_c, label_c)]
    if label_c is None:
        if len(others) != 1:
            raise DataError(
                f"cannot tell which column of {source} holds the label: its columns are "
                f"{columns} and {image_c!r} holds the images. Name it with label_column= (CLI: "
                "--label-column)")
        label_c, others = others[0], []
    if label_c == image_c:
        raise DataError(f"the image and label columns of {source} must differ; both are "
                        f"{image_c!r}")
    texts = [c for c in others if _free_text(frame[c])]
    if named is None and texts:
        raise DataError(
            f"{source} holds images (column {image_c!r}) and text (column {texts[0]!r}); autoft "
            f"fine-tunes on one input: name it with text_column={image_c!r} for the images or "
            f"text_column={texts[0]!r} for the text (CLI: --text-column)")
    return image_c, label_c


def _raw_image_split(table: Table, image_c: str, label_c: str, role: str,
                     kind: TaskKind) -> _RawSplit:
    """The images and labels of one split, every image decoded once (errors name the file)."""
    frame, source = table.frame, f"the {role} data ({table.source})"
    image_c = resolve_column(frame, image_c, "image", source)
    label_c = resolve_column(frame, label_c, "label", source)
    cells = frame[image_c].tolist()
    blank = [i for i, v in enumerate(cells) if _missing_cell(v)]
    skip = set(blank)
    keep = [i for i in range(len(cells)) if i not in skip]
    if blank:
        shown = ", ".join(str(i) for i in blank[:10]) + (" ..." if len(blank) > 10 else "")
        logger.warning("%s: %d rows without an image were dropped (rows %s; 0-based, header "
                       "excluded)", source, len(blank), shown)
    if not keep:
        raise DataError(f"{source} has no images in column {image_c!r}")
    refs = resolve_paths([cells[i] for i in keep], table.base_dir or Path.cwd())
    checked = check_images(refs, source, keep)
    values = label_values(frame, label_c, source)
    parsed = kind.parse([values[i] for i in keep], label_c, source,
                        table.class_names.get(label_c))
    return _RawSplit(texts=checked.keys, pairs=None, labels=parsed, source=source,
                     dropped_rows=blank, images=refs)


def _is_unlabelled(labels: list[Any]) -> bool:
    """GLUE-style test splits mark missing labels with -1."""
    return all(str(v) == "-1" for v in labels)


def _grouped_stratified_split(
    raw: _RawSplit, size: float | int, seed: int, kind: TaskKind
) -> tuple[_RawSplit, _RawSplit]:
    """Split off a validation part, stratified by label, with identical texts kept on one side.

    Identical inputs (same text and pair) form one group; the groups are split with scikit-learn's
    ``train_test_split`` stratified by each group's first label, so the validation part never
    holds a copy of a training example. With duplicates the validation part's size is met
    approximately (whole groups move).
    """
    from sklearn.model_selection import train_test_split

    n = len(raw.texts)
    keys = raw.keys()
    group_of: dict[tuple[str, str], int] = {}
    groups = np.array([group_of.setdefault(k, len(group_of)) for k in keys])
    first_label: dict[int, Any] = {}
    for g, label in zip(groups.tolist(), raw.labels):
        first_label.setdefault(g, label)
    n_groups = len(group_of)
    strata = None
    group_labels = [first_label[g] for g in range(n_groups)]
    if kind.stratify(np.asarray([str(v) for v in raw.labels])) is not None:
        counts = Counter(group_labels)
        rare = [k for k, c in counts.items() if c < 2]
        if rare:
            raise DataError(
                f"class {rare[0]!r} has only 1 distinct {'image' if raw.images else 'text'} in "
                f"{raw.source}; a stratified "
                "validation split needs at least 2 per class. Add examples, drop the class, or "
                "give a validation split"
            )
        strata = np.asarray([str(v) for v in group_labels])
        n_classes = len(counts)
    else:
        n_classes = 1
    n_val = int(round(size * n)) if isinstance(size, float) else int(size)
    # the same share of the groups as of the rows (at least one group per class)
    n_val_groups = max(n_classes, int(round(n_val * n_groups / n))) if n_val >= n_classes else n_val
    if not n_classes <= n_val_groups <= n_groups - n_classes:
        raise DataError(
            f"validation_size={size!r} gives {n_val} validation rows out of {n} ({n_groups} "
            f"distinct {'images' if raw.images else 'texts'}); it must leave at least one "
            f"example of each of the {n_classes} classes on both sides"
        )
    g_train, g_val = train_test_split(np.arange(n_groups), test_size=n_val_groups,
                                      random_state=seed, stratify=strata)
    in_val = np.zeros(n_groups, dtype=bool)
    in_val[g_val] = True

    def take(mask: np.ndarray, what: str) -> _RawSplit:
        order = np.flatnonzero(mask).tolist()
        return _RawSplit(
            texts=[raw.texts[i] for i in order],
            pairs=None if raw.pairs is None else [raw.pairs[i] for i in order],
            labels=[raw.labels[i] for i in order],
            source=f"{raw.source} ({what} part)",
            images=None if raw.images is None else [raw.images[i] for i in order],
        )

    row_val = in_val[groups]
    return take(~row_val, "training"), take(row_val, "validation")


def _examples(keys: Sequence[tuple[str, str]], limit: int = 3,
              names: dict[str, str] | None = None) -> list[str]:
    names = names or {}
    return [names.get(t, t if not p else f"{t} / {p}")[:60] for t, p in list(keys)[:limit]]


def _image_names(*raws: _RawSplit | None) -> dict[str, str]:
    """A readable name of each image key (its file name) for the duplicate warnings."""
    names: dict[str, str] = {}
    for raw in raws:
        if raw is None or raw.images is None:
            continue
        for key, ref in zip(raw.texts, raw.images):
            path = ref.get("path") if isinstance(ref, dict) else ref
            names.setdefault(key, Path(path).name if isinstance(path, str) and path
                             else f"an image of {raw.source}")
    return names


def _data_checks(train: _RawSplit, others: dict[str, _RawSplit | None]) -> dict[str, Any]:
    """Duplicate and conflicting texts (identical images, for images), warned about once each
    with counts and examples."""
    checks: dict[str, Any] = {}
    names = _image_names(train, *others.values())
    what = "image(s)" if train.images is not None else "text(s)"
    train_keys = train.keys()
    counts = Counter(train_keys)
    repeated = {k: c for k, c in counts.items() if c > 1}
    labels_of: dict[tuple[str, str], set[Any]] = {}
    for k, label in zip(train_keys, train.labels):
        labels_of.setdefault(k, set()).add(label)
    conflicting = [k for k, labels in labels_of.items() if len(labels) > 1]
    checks["train_duplicate_rows"] = sum(c - 1 for c in repeated.values())
    checks["conflicting_label_texts"] = len(conflicting)
    numeric = bool(labels_of) and all(
        isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)
        for labels in labels_of.values() for x in labels)
    if conflicting and numeric:  # scores: repeated ratings of one text differ (annotator noise)
        spread = max(max(labels_of[k]) - min(labels_of[k]) for k in conflicting)
        checks["conflicting_label_spread"] = float(spread)
        logger.warning(
            "%d distinct %s of the training data appear with different scores (at most %.3g "
            "apart, e.g. %s); a model gives one input one prediction, so its error on them "
            "cannot reach 0", len(conflicting), what, spread, _examples(conflicting, names=names))
    elif conflicting:
        logger.warning(
            "%d distinct %s of the training data appear with different labels (e.g. %s); a "
            "model cannot fit both, so the best reachable score is below 1", len(conflicting),
            what, _examples(conflicting, names=names))
    train_set = set(train_keys)
    for role, other in others.items():
        if other is None:
            continue
        shared = [k for k in dict.fromkeys(other.keys()) if k in train_set]
        checks[f"{role}_texts_in_train"] = len(shared)
        if shared:
            logger.warning(
                "%d distinct %s of the %s data also occur in the training data (e.g. %s); "
                "scores on them overstate how the model does on new inputs", len(shared), what,
                role, _examples(shared, names=names))
    return checks


def _pick_split(tables: dict[str, Table], given: str | None, names: Sequence[str],
                what: str) -> str | None:
    if given is not None:
        if given not in tables:
            raise DataError(f"{what}_split={given!r} is not a split of the data; its splits are "
                            f"{sorted(tables)}")
        return given
    return next((k for k in names if k in tables), None)


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
    task: str | None = None,
    encoding: str = "utf-8",
    validation_split: str | None = None,
    test_split: str | None = None,
) -> TaskData:
    """Validate a dataset and turn it into :class:`TaskData`.

    Args:
        data: The training data, or a ``DatasetDict``/dict of splits holding ``train`` and
            optionally a validation and a test split. A ``datasets.Dataset``/``DatasetDict``, a
            ``pandas.DataFrame``, a path to a CSV/TSV/JSONL/JSON/Parquet file, or a
            ``(texts, labels)`` / ``(texts, text_pairs, labels)`` tuple.
        validation: Separate validation data of any supported type; overrides a validation split
            inside ``data``. Default None.
        test: Separate labelled test data of any supported type. Default None (the test split
            inside ``data`` when there is one; a test split whose labels are all -1 is dropped as
            unlabelled).
        text_column: Name (or 0-based position) of the text column. Default None: the first of
            :data:`~autoft.data.columns.TEXT_COLUMN_NAMES` present, else the string column with
            the longest texts.
        text_pair_column: Name or position of the second text column for sentence-pair tasks.
            Default None: a known pair such as ``sentence1``/``sentence2`` when both are present.
        label_column: Name or position of the label column. Default None: the first of
            :data:`~autoft.data.columns.LABEL_COLUMN_NAMES` present, else the complete column
            with the fewest distinct values.
        validation_size: When no validation data is given, the fraction (float in (0, 1)) or the
            number of rows (int) of the training data held out, by a stratified split that keeps
            identical texts on one side. Default 0.2.
        seed: Seed of that split. Default 0.
        task: The task kind (see :mod:`autoft.tasks`): ``"classification"`` or
            ``"regression"``. Default None: regression when the training labels are numbers and
            at least one is not an integer (``3.8``; logged), else classification (integer
            labels such as 1-5 stars stay classes unless ``task="regression"`` is given).
        encoding: Text encoding of data files. Default ``"utf-8"``.
        validation_split, test_split: Names of the validation and test splits of a
            ``DatasetDict`` or dict of splits. Default None: the first of
            :data:`VALIDATION_SPLIT_NAMES` / :data:`TEST_SPLIT_NAMES` present.

    Returns:
        The validated task.

    Raises:
        DataError: Unsupported input type, unreadable file, missing or ambiguous column, only
            blank texts, a label the task kind cannot take, fewer than 2 classes, a validation or
            test label absent from the training data, or a split too small to stratify.
    """
    if isinstance(validation_size, bool) or not (
        (isinstance(validation_size, float) and 0.0 < validation_size < 1.0)
        or (isinstance(validation_size, int) and validation_size > 0)
    ):
        raise DataError(
            f"validation_size={validation_size!r} must be a fraction in (0, 1) or a positive "
            "number of rows"
        )
    if task is not None:
        try:
            task_kind(task)
        except Exception as exc:
            raise DataError(str(exc)) from None
    tables = to_tables(data, "data", encoding)
    if "train" not in tables:
        raise DataError(f"data has splits {sorted(tables)} but no 'train' split to fine-tune on")
    train_table = tables["train"]
    val_key = None if validation is not None else _pick_split(
        tables, validation_split, VALIDATION_SPLIT_NAMES, "validation")
    test_key = None if test is not None else _pick_split(tables, test_split, TEST_SPLIT_NAMES,
                                                         "test")
    unused = sorted(set(tables) - {"train", val_key, test_key})
    if unused:
        logger.warning(
            "the data's splits %s are not used (training on 'train', validating on %s, testing "
            "on %s); name others with validation_split= / test_split=", unused,
            repr(val_key) if val_key else "a split of 'train'" if validation is None
            else "the given validation data", repr(test_key) if test_key else "none")
    val_table = tables[val_key] if val_key else None
    test_table = tables[test_key] if test_key else None
    if validation is not None:
        val_table = next(iter(to_tables(validation, "validation", encoding).values()))
    if test is not None:
        test_table = next(iter(to_tables(test, "test", encoding).values()))

    frame = train_table.frame
    source = f"the training data ({train_table.source})"
    images = _image_columns(train_table, text_column, label_column, source)
    if images is not None:
        text_column, label_column = images
        text_pair_column = None
    if images is None and (text_column is None or label_column is None):
        g_text, g_pair, g_label = guess_columns(
            frame, source, None if label_column is None else resolve_column(
                frame, label_column, "label", source))
        if text_pair_column is None and text_column is None:
            text_pair_column = g_pair
        text_column = g_text if text_column is None else text_column
        label_column = g_label if label_column is None else label_column
    text_c = resolve_column(frame, text_column, "text", source)
    pair_c = (None if text_pair_column is None
              else resolve_column(frame, text_pair_column, "text-pair", source))
    label_c = resolve_column(frame, label_column, "label", source)
    if task is None:
        task = "regression" if looks_like_regression(frame[label_c].dropna().tolist()) else (
            "classification")
        if task == "regression":
            logger.info("label column %r holds non-integer numbers: a regression task (give "
                        "task='classification' to treat its values as classes)", label_c)
    kind = task_kind(task)

    def raw(table: Table, role: str) -> _RawSplit:
        if images is not None:
            # a folder's (or arrays') columns are named by autoft: image and label
            image_col = table.image_column or (
                text_c if text_c in table.frame.columns
                else find_image_column(table.frame, table.image_features) or text_c)
            label_col = "label" if table.image_column and label_c not in table.frame.columns \
                else label_c
            return _raw_image_split(table, image_col, label_col, role, kind)
        return _raw_split(table, text_c, pair_c, label_c, role, kind)

    raw_train = raw(train_table, "training")
    raw_val = None if val_table is None else raw(val_table, "validation")
    raw_test = None if test_table is None else raw(test_table, "test")
    if raw_test is not None and _is_unlabelled(raw_test.labels):
        logger.warning("the test split's labels are all -1 (unlabelled); it is not used")
        raw_test = None

    checks: dict[str, Any] = {
        "blank_texts_dropped": {role: r.dropped_rows[:50] + (["..."] if len(r.dropped_rows) > 50
                                                             else [])
                                for role, r in (("train", raw_train), ("validation", raw_val),
                                                ("test", raw_test))
                                if r is not None and r.dropped_rows},
    }
    validation_source = "given"
    if raw_val is None:
        checks.update(_data_checks(raw_train, {}))
        raw_train, raw_val = _grouped_stratified_split(raw_train, validation_size, seed, kind)
        validation_source = "split"
    else:
        checks.update(_data_checks(raw_train, {"validation": raw_val, "test": raw_test}))
    if raw_test is not None and validation_source == "split":
        checks.update({k: v for k, v in _data_checks(raw_train, {"test": raw_test}).items()
                       if k.startswith("test")})

    info = kind.fit(raw_train.labels, train_table.class_names.get(label_c))

    def split(raw: _RawSplit, role: str) -> Split:
        return Split(texts=raw.texts, text_pairs=raw.pairs,
                     labels=kind.encode(raw.labels, info, raw.source, role), images=raw.images)

    train_split, validation_split = split(raw_train, "training"), split(raw_val, "validation")
    for warning in kind.split_warnings(train_split.labels, validation_split.labels, info):
        logger.warning("%s", warning)
        checks.setdefault("validation_warnings", []).append(warning)
    return TaskData(
        train=train_split,
        validation=validation_split,
        test=None if raw_test is None else split(raw_test, "test"),
        labels=info,
        text_column=text_c,
        text_pair_column=pair_c,
        label_column=label_c,
        validation_source=validation_source,
        source=train_table.source,
        task=kind.name,
        checks=checks,
    )
