"""The data rules a first run met (issue 11): labels as written, duplicates, split names, label
spaces, encodings, empty files, text the backbone cannot read."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from autoft.cli import main
from autoft.data import load_task_data, read_table
from autoft.errors import DataError

LABELS = ["007", "010", "100"]


def _rows(n: int = 30) -> list[tuple[str, str]]:
    return [(f"sentence number {i} about things", LABELS[i % 3]) for i in range(n)]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".json"])
def test_labels_with_leading_zeros_are_kept_as_written(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"d{suffix}"
    rows = _rows()
    if suffix == ".csv":
        path.write_text("text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows))
    elif suffix == ".tsv":
        path.write_text("text\tlabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in rows))
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows))
    else:
        path.write_text(json.dumps([{"text": t, "label": lab} for t, lab in rows]))
    task = load_task_data(path, validation_size=6)
    assert task.id2label == {0: "007", 1: "010", 2: "100"}
    assert task.labels.label_type == "str"  # not plain integers: predictions stay strings


def test_a_jsonl_validation_file_matches_csv_labels(tmp_path: Path) -> None:
    train, val = tmp_path / "train.csv", tmp_path / "val.jsonl"
    train.write_text("text,label\n" + "".join(f"{t},{lab}\n" for t, lab in _rows()))
    val.write_text("".join(json.dumps({"text": f"held out {i}", "label": lab}) + "\n"
                           for i, lab in enumerate(LABELS)))
    task = load_task_data(train, validation=val)
    assert task.validation.labels.tolist() == [0, 1, 2]


def test_numbers_and_their_strings_are_one_class() -> None:
    texts = [f"text {i}" for i in range(8)]
    task = load_task_data(pd.DataFrame({"text": texts, "label": [1, "1", 0, "0"] * 2}),
                          validation_size=4)
    assert task.id2label == {0: "0", 1: "1"} and task.labels.label_type == "int"


def test_duplicates_stay_on_one_side_of_the_split_and_are_counted() -> None:
    texts = [f"sentence {i} is {'good' if i % 2 else 'bad'}" for i in range(40)]
    labels = ["pos" if i % 2 else "neg" for i in range(40)]
    task = load_task_data((texts * 3, labels * 3), validation_size=0.2, seed=0)
    assert set(task.validation.texts).isdisjoint(task.train.texts)
    assert 20 <= len(task.validation) <= 28  # whole groups of 3 move
    assert task.checks["train_duplicate_rows"] == 80
    assert task.summary()["checks"]["train_duplicate_rows"] == 80


def test_shared_and_conflicting_texts_are_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    texts = [f"train sentence {i}" for i in range(20)]
    labels = ["a", "b"] * 10
    train = (texts + ["same words"] * 2, labels + ["a", "b"])  # one text with two labels
    validation = (texts[:3] + ["new one", "new two"], labels[:3] + ["a", "b"])
    with caplog.at_level("WARNING", logger="autoft"):
        task = load_task_data(train, validation=validation)
    assert "3 distinct text(s) of the validation data also occur in the training data" in caplog.text
    assert "train sentence 0" in caplog.text  # examples are named
    assert "1 distinct text(s) of the training data appear with different labels" in caplog.text
    assert task.checks["validation_texts_in_train"] == 3
    assert task.checks["conflicting_label_texts"] == 1


def _frame(prefix: str, n: int = 12) -> pd.DataFrame:
    return pd.DataFrame({"text": [f"{prefix} {i}" for i in range(n)], "label": [0, 1] * (n // 2)})


def test_usual_split_names_are_recognised_and_unused_ones_named(
        caplog: pytest.LogCaptureFixture) -> None:
    splits = {"train": _frame("t"), "validation_matched": _frame("m", 4),
              "validation_mismatched": _frame("x", 6)}
    with caplog.at_level("WARNING", logger="autoft"):
        task = load_task_data(splits)
    assert task.validation_source == "given" and task.validation.texts[0] == "m 0"
    assert "'validation_mismatched'" in caplog.text and "not used" in caplog.text
    chosen = load_task_data(splits, validation_split="validation_mismatched")
    assert len(chosen.validation) == 6
    with pytest.raises(DataError, match=r"validation_split='dev' is not a split.*"
                       r"\['train', 'validation_matched', 'validation_mismatched'\]"):
        load_task_data(splits, validation_split="dev")


def test_mnli_layout_as_a_datasetdict(caplog: pytest.LogCaptureFixture) -> None:
    datasets = pytest.importorskip("datasets")
    parts = {name: datasets.Dataset.from_pandas(_frame(name[:3], 6 if name != "train" else 12))
             for name in ("train", "validation_matched", "validation_mismatched",
                          "test_matched")}
    with caplog.at_level("WARNING", logger="autoft"):
        task = load_task_data(datasets.DatasetDict(parts))
    assert task.validation.texts[0].startswith("val") and len(task.validation) == 6
    assert task.test is not None and task.test.texts[0].startswith("tes")
    assert "validation_mismatched" in caplog.text


def test_labels_with_spaces_merge_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    texts = [f"text {i}" for i in range(12)]
    with caplog.at_level("WARNING", logger="autoft"):
        task = load_task_data((texts, ["pos ", "neg", "pos", " neg"] * 3), validation_size=4)
    assert task.id2label == {0: "neg", 1: "pos"}
    assert caplog.text.count("surrounding spaces") == 1
    assert "6 labels had surrounding spaces" in caplog.text


def test_text_that_is_not_utf8_names_file_line_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    body = "text,label\nplain words,1\nmore words,0\ncaf\xe9 cr\xe8me,1\nok,0\n"
    path.write_bytes(body.encode("latin-1"))
    with pytest.raises(DataError) as info:
        read_table(path)
    message = str(info.value)
    assert "latin1.csv" in message and "not UTF-8 text" in message
    assert "line 4" in message and "byte 4 of that line" in message and "--encoding" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no library tracebacks
    assert read_table(path, encoding="latin-1")["text"].tolist()[2] == "caf\xe9 cr\xe8me"
    task = load_task_data(path, encoding="latin-1", validation_size=2)
    assert "caf\xe9 cr\xe8me" in task.train.texts + task.validation.texts
    with pytest.raises(DataError, match="'klingon' is not a known text encoding"):
        read_table(path, encoding="klingon")


def test_cli_encoding_option(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\ncaf\xe9,1\n".encode("latin-1"))
    result = CliRunner().invoke(main, ["search", str(path), "--out", str(tmp_path / "o"),
                                       "--n-trials", "1"])
    assert result.exit_code == 2 and "line 2" in result.output and "--encoding" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".json"])
def test_empty_files_say_they_are_empty(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    path.write_text("")
    with pytest.raises(DataError, match="is empty"):
        read_table(path)
    path.write_text("\n  \n")
    with pytest.raises(DataError, match="is empty"):
        read_table(path)


def test_a_header_without_rows(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("text,label\n")
    with pytest.raises(DataError, match="has a header but no rows"):
        read_table(path)


def test_unknown_token_rate_of_text_the_backbone_cannot_read(tiny_bert: Path) -> None:
    from autoft.models import load_backbone
    from autoft.models.backbone import unknown_token_rate

    _, tokenizer, _ = load_backbone(tiny_bert)
    assert unknown_token_rate(tokenizer, ["a good movie", "the plot was dull"]) == 0.0
    chinese = ["这部电影很好看", "情节很无聊"]
    assert unknown_token_rate(tokenizer, chinese) == 1.0


def test_repeated_ratings_of_one_text_are_named_as_scores(caplog: pytest.LogCaptureFixture) -> None:
    # regression: two ratings of one sentence pair differ by annotator noise, not a wrong class
    texts = [f"train sentence {i}" for i in range(20)] + ["same words"] * 2
    scores = [0.3 + 0.2 * i for i in range(20)] + [2.0, 2.5]
    with caplog.at_level("WARNING", logger="autoft"):
        task = load_task_data((texts, scores), validation_size=0.2, seed=0)
    assert task.task == "regression"
    assert ("1 distinct text(s) of the training data appear with different scores (at most 0.5 "
            "apart, e.g. ['same words'])") in caplog.text
    assert "below 1" not in caplog.text
    assert task.checks["conflicting_label_spread"] == pytest.approx(0.5)
