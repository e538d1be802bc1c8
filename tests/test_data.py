from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from autoft.data import load_task_data, read_table
from autoft.errors import DataError

from .helpers import DATA


def _frame(texts: list[str], labels: list[object], **extra: list[object]) -> pd.DataFrame:
    return pd.DataFrame({"text": texts, "label": labels, **extra})


def test_shipped_sst2_sample_reads_with_quotes() -> None:
    task = load_task_data(DATA / "sst2_train_200.tsv", validation=DATA / "sst2_dev_100.tsv")
    assert (len(task.train), len(task.validation)) == (200, 100)
    assert task.text_column == "sentence" and task.label_column == "label"
    assert task.id2label == {0: "0", 1: "1"}
    assert task.train.class_counts(2) == [90, 110]
    assert task.validation_source == "given"


def test_tsv_with_literal_quotes_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "q.tsv"
    path.write_text('sentence\tlabel\n"a quoted start\t1\nplain " middle\t0\nthird\t1\n')
    frame = read_table(path)
    assert len(frame) == 3
    assert frame["sentence"].tolist()[0] == '"a quoted start'


def test_headerless_tsv_columns_found_by_content(tmp_path: Path) -> None:
    path = tmp_path / "spam.tsv"
    rows = [("ham", "Go until jurong point, crazy.. Available only in bugis n great world"),
            ("spam", "Free entry in 2 a wkly comp to win FA Cup final tkts 21st May 2005"),
            ("ham", "Ok lar... Joking wif u oni... see you later at the usual place"),
            ("spam", "WINNER!! As a valued network customer you have been selected today")]
    path.write_text("".join(f"{a}\t{b}\n" for a, b in rows * 3))
    task = load_task_data(path, validation_size=4)
    assert task.text_column == "1" and task.label_column == "0"
    assert task.id2label == {0: "ham", 1: "spam"}
    assert len(task.train) + len(task.validation) == 12


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json", ".parquet"])
def test_file_formats(tmp_path: Path, suffix: str, synthetic: tuple[list[str], list[str]]) -> None:
    texts, labels = synthetic
    frame = _frame(texts[:40], labels[:40])
    path = tmp_path / f"d{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif suffix == ".json":
        path.write_text(json.dumps(frame.to_dict(orient="records")))
    else:
        frame.to_parquet(path)
    task = load_task_data(path, validation_size=0.25)
    assert (len(task.train), len(task.validation)) == (30, 10)
    assert task.id2label == {0: "neg", 1: "pos"}


def test_string_labels_map_sorted_and_back(synthetic: tuple[list[str], list[str]]) -> None:
    texts, labels = synthetic
    task = load_task_data((texts, labels), validation_size=0.5, seed=3)
    assert task.id2label == {0: "neg", 1: "pos"} and task.label2id == {"neg": 0, "pos": 1}
    for split in (task.train, task.validation):
        for text, label in zip(split.texts, split.labels):
            word_positive = any(w in text.split() for w in ("good", "great", "fine", "nice",
                                                            "lovely"))
            assert task.id2label[int(label)] == ("pos" if word_positive else "neg")


def test_integer_labels_sorted_numerically() -> None:
    texts = [f"text number {i}" for i in range(30)]
    labels = [10, 2, 7] * 10
    task = load_task_data(_frame(texts, labels), validation_size=6)
    assert task.id2label == {0: "2", 1: "7", 2: "10"}


def test_integral_float_labels_become_ints() -> None:
    task = load_task_data(_frame(["a b c"] * 4 + ["d e f"] * 4, [0.0, 1.0] * 4), validation_size=2)
    assert task.id2label == {0: "0", 1: "1"}


def test_non_integer_float_label_rejected_by_classification() -> None:
    frame = _frame(["a", "b", "c", "d"], [1.0, 0.37, 0.0, 1.0])
    with pytest.raises(DataError, match=r"non-integer number 0\.37 in row 1.*regression task"):
        load_task_data(frame, task="classification")
    assert load_task_data(frame, validation_size=1).task == "regression"  # inferred


def test_missing_and_blank_texts_are_dropped_with_one_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    frame = _frame(["fine", "ok", None, "x", "   ", "y", "z", "", "w"],
                   [0, 1, 0, 1, 0, 1, 0, 1, 0])
    with caplog.at_level("WARNING", logger="autoft"):
        task = load_task_data(frame, validation_size=2)
    assert len(task.train) + len(task.validation) == 6
    assert "3 rows with a blank or missing text were dropped (rows 2, 4, 7" in caplog.text
    assert caplog.text.count("were dropped") == 1
    assert task.checks["blank_texts_dropped"] == {"train": [2, 4, 7]}


def test_only_blank_texts_is_an_error() -> None:
    with pytest.raises(DataError, match="every text of the training data"):
        load_task_data(_frame(["", " ", None, ""], [0, 1, 0, 1]))


def test_missing_label_names_row() -> None:
    with pytest.raises(DataError, match=r"label column 'label'.*row 3"):
        load_task_data(_frame(["a", "b", "c", "d"], [0, 1, 0, None]))


def test_numeric_text_column_rejected() -> None:
    frame = pd.DataFrame({"text": [1, 2, 3, 4], "label": [0, 1, 0, 1]})
    with pytest.raises(DataError, match="holds numbers"):
        load_task_data(frame)


def test_single_class_rejected() -> None:
    with pytest.raises(DataError, match="single class"):
        load_task_data(_frame(["a", "b", "c", "d"], ["x"] * 4), validation=_frame(["e"], ["x"]))


def test_unknown_validation_label_named() -> None:
    train = _frame(["a", "b", "c", "d"], ["x", "y", "x", "y"])
    val = _frame(["e", "f"], ["x", "z"])
    with pytest.raises(DataError, match=r"label 'z' in row 1 of the validation data"):
        load_task_data(train, validation=val)


def test_missing_column_lists_columns() -> None:
    with pytest.raises(DataError, match=r"label column 'nope' not found.*\['text', 'label'\]"):
        load_task_data(_frame(["a", "b"], [0, 1]), label_column="nope")


def test_ambiguous_columns_ask_for_names() -> None:
    frame = pd.DataFrame({"a": [1.5, 2.5, 3.5, 4.5], "b": [0.1, 0.2, 0.3, 0.4]})
    with pytest.raises(DataError, match="text_column= and label_column="):
        load_task_data(frame)


def test_explicit_columns_by_name_and_position() -> None:
    frame = pd.DataFrame({"review": [f"{w} one {i}" for i in range(5) for w in ("good", "bad")],
                          "stars": [5, 1] * 5, "other": ["x"] * 10})
    by_name = load_task_data(frame, text_column="review", label_column="stars", validation_size=2)
    by_pos = load_task_data(frame, text_column=0, label_column=1, validation_size=2)
    assert by_name.fingerprint() == by_pos.fingerprint()
    assert by_name.id2label == {0: "1", 1: "5"}


def test_sentence_pairs_detected() -> None:
    frame = pd.DataFrame({"index": range(8), "sentence1": [f"premise {i}" for i in range(8)],
                          "sentence2": [f"hypothesis {i}" for i in range(8)],
                          "label": ["entailment", "not_entailment"] * 4})
    task = load_task_data(frame, validation_size=2)
    assert task.is_pair and task.text_pair_column == "sentence2"
    assert task.train.text_pairs is not None
    for text, pair in zip(task.train.texts, task.train.text_pairs):
        assert text.split()[1] == pair.split()[1]


def test_stratified_split_is_seeded_and_stratified() -> None:
    texts = [f"example {i}" for i in range(100)]
    labels = ["a"] * 80 + ["b"] * 20
    one = load_task_data((texts, labels), validation_size=0.2, seed=1)
    two = load_task_data((texts, labels), validation_size=0.2, seed=1)
    other = load_task_data((texts, labels), validation_size=0.2, seed=2)
    assert one.validation.texts == two.validation.texts
    assert one.validation.texts != other.validation.texts
    assert one.validation.class_counts(2) == [16, 4]
    assert set(one.train.texts).isdisjoint(one.validation.texts)
    assert one.validation_source == "split"


def test_split_needs_two_per_class() -> None:
    with pytest.raises(DataError, match=r"class 'b' has only 1 distinct text"):
        load_task_data((["a1", "a2", "a3", "b1"], ["a", "a", "a", "b"]))


@pytest.mark.parametrize("size", [0.0, 1.0, -2, 0, True, "0.2"])
def test_bad_validation_size(size: object) -> None:
    with pytest.raises(DataError, match="validation_size"):
        load_task_data((["a", "b"], [0, 1]), validation_size=size)  # type: ignore[arg-type]


def test_tuple_lengths_must_match() -> None:
    with pytest.raises(DataError, match="different lengths"):
        load_task_data((["a", "b", "c"], [0, 1]))


def test_unsupported_input_type() -> None:
    with pytest.raises(DataError, match="unsupported type int"):
        load_task_data(42)


def test_missing_file_and_bad_suffix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_task_data(tmp_path / "nope.csv")
    bad = tmp_path / "data.xlsx"
    bad.write_text("x")
    with pytest.raises(DataError, match="unsupported file type '.xlsx'"):
        load_task_data(bad)


def test_datasets_dict_with_class_labels() -> None:
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"])})
    train = datasets.Dataset.from_dict(
        {"sentence": [f"s{i}" for i in range(10)], "label": [0, 1] * 5}, features=features)
    val = datasets.Dataset.from_dict({"sentence": ["v1", "v2"], "label": [1, 0]},
                                     features=features)
    test = datasets.Dataset.from_dict({"sentence": ["t1", "t2"], "label": [-1, -1]})
    task = load_task_data(datasets.DatasetDict({"train": train, "validation": val, "test": test}))
    assert task.id2label == {0: "negative", 1: "positive"}
    assert task.validation.labels.tolist() == [1, 0]
    assert task.test is None  # all -1: unlabelled


def test_test_split_kept_and_fingerprint_tracks_content() -> None:
    texts, labels = [f"t{i}" for i in range(20)], [0, 1] * 10
    a = load_task_data((texts, labels), test=(["x", "y"], [1, 0]), validation_size=4)
    b = load_task_data((texts, labels), test=(["x", "y"], [0, 1]), validation_size=4)
    assert a.test is not None and a.test.labels.tolist() == [1, 0]
    # the study's fingerprint covers training and validation data; the test split has its own,
    # so a resumed study may gain or change its test file
    assert a.fingerprint() == b.fingerprint()
    assert a.test_fingerprint() != b.test_fingerprint()
    assert a.test_fingerprint() == load_task_data(
        (texts, labels), test=(["x", "y"], [1, 0]), validation_size=4).test_fingerprint()
    other = load_task_data((texts, [1, 0] * 10), validation_size=4)
    assert other.fingerprint() != a.fingerprint()
    summary = a.summary()
    assert summary["train_size"] == 16 and summary["test_size"] == 2
    assert np.array_equal(a.train.subset([1, 0]).labels, a.train.labels[[1, 0]])


def test_csv_written_with_quotes_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    pd.DataFrame({"text": [f'he said "hi" {i}' if i % 2 else f"x, y {i}" for i in range(6)],
                  "label": [0, 1] * 3}).to_csv(path, index=False, quoting=csv.QUOTE_MINIMAL)
    task = load_task_data(path, validation_size=2)
    assert 'he said "hi" 1' in task.train.texts + task.validation.texts
