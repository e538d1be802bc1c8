"""Bad inputs found by attacking the CLI and the API: each gets a clear autoft error."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import autoft
from autoft.cli import main
from autoft.data import load_task_data, read_table
from autoft.errors import AutoftError, DataError, SearchSpaceError, StrategyError, StudyError
from autoft.searching import SearchSpace
from autoft.study import load_study

from .helpers import synthetic_texts


@pytest.mark.parametrize("name", ["study.db", "study.journal"])
def test_corrupt_study_files(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"\xc6\x00garbage\xff\n" * 100)
    message = "not a readable" if name == "study.db" else "broken records.*left unchanged"
    with pytest.raises(StudyError, match=message):
        load_study(tmp_path)
    result = CliRunner().invoke(main, ["status", str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert ("move it away" if name == "study.db" else "Restore it from a backup") in result.output


def test_empty_sqlite_file_has_no_study(tmp_path: Path) -> None:
    import optuna

    optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    with pytest.raises(StudyError, match="holds no study"):
        load_study(tmp_path)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"seed": -1}, "seed=-1 must be an integer"),
    ({"seed": "abc"}, "seed='abc'"),
    ({"model": 123}, "model=123 must be a string"),
    ({"out": 5}, "out=5 must be a folder path"),
    ({"curve_sizes": "0.1"}, "curve_sizes must be a list"),
])
def test_search_argument_errors(kwargs: dict[str, object], message: str, tmp_path: Path) -> None:
    args = {"out": tmp_path, "n_trials": 1, **kwargs}
    with pytest.raises(AutoftError, match=message):
        autoft.search(synthetic_texts(40), **args)  # type: ignore[arg-type]


def test_max_length_beyond_positions_is_capped(tiny_bert: Path, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    result = autoft.search(synthetic_texts(40), model=str(tiny_bert), max_length=1000,
                           out=tmp_path, n_trials=1, device="cpu", validation_size=10)
    assert result.study_.user_attrs["autoft"]["max_length"] == 64
    assert "exceeds the 64 tokens the backbone's position table allows" in caplog.text
    assert result.trials_["state"] == ["COMPLETE"]


@pytest.mark.parametrize(("space", "message"), [
    ({"batch_size": 0}, "batch_size=0 must be an integer >= 1"),
    ({"epochs": 0}, "epochs=0"),
    ({"head_dropout": 1.5}, "dropout"),
    ({"learning_rate": -0.1}, "learning_rate"),
    ({"learning_rate": {"type": "float", "low": "abc", "high": 1e-4}}, "'abc' is not a number"),
])
def test_invalid_fixed_space_values_rejected_before_training(space: dict[str, object],
                                                             message: str) -> None:
    with pytest.raises(SearchSpaceError, match=message):
        SearchSpace.load(space).resolved(6)


def test_empty_space_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("\n")
    with pytest.raises(SearchSpaceError, match="is empty"):
        SearchSpace.load(path)


@pytest.mark.parametrize(("data", "message"), [
    (([], []), "tuple is empty"),
    (("abc", "de"), "got a string where a list belongs"),
    (pd.DataFrame([["a", "b", 0]], columns=["text", "text", "label"]), "duplicate column names"),
    ((["a", "b", "c", "d"], [[1], [0], [1], [0]]), "holds a list in row 0"),
])
def test_bad_data_shapes(data: object, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_task_data(data)


def test_headerless_file_with_short_rows(tmp_path: Path) -> None:
    path = tmp_path / "noheader.tsv"
    path.write_text("".join(f"{t}\t{i % 2}\n" for i, t in enumerate(["i hated it", "loved it",
                                                                      "so dull", "great fun"] * 5)))
    frame = read_table(path)
    assert list(frame.columns) == ["0", "1"] and len(frame) == 20


def test_json_object_of_columns(tmp_path: Path) -> None:
    path = tmp_path / "columns.json"
    path.write_text(json.dumps({"text": [f"t{i}" for i in range(10)], "label": [0, 1] * 5}))
    assert len(load_task_data(path, validation_size=2).train) == 8


def test_pretty_printed_json_object_of_columns_and_single_record(tmp_path: Path) -> None:
    path = tmp_path / "pretty.json"
    path.write_text(json.dumps({"text": ["a b", "c d"], "label": [0, 1]}, indent=2))
    assert read_table(path)["text"].tolist() == ["a b", "c d"]
    path.write_text(json.dumps({"text": "a b", "label": 1}, indent=2))
    assert read_table(path).to_dict("records") == [{"text": "a b", "label": 1}]


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_broken_json_line_is_named(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"data{suffix}"
    lines = [json.dumps({"text": f"t{i}", "label": i % 2}) for i in range(6)]
    lines[3] = '{"text": "oops", "label": 1'  # line 4 lost its closing brace
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="line 4 is not valid JSON.*oops"):
        read_table(path)
    lines[3] = '["t3", 1]'
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="line 4 is a JSON array, not an object"):
        read_table(path)


@pytest.mark.parametrize(("suffix", "sep"), [(".csv", ","), (".tsv", "\t")])
def test_duplicate_header_names(tmp_path: Path, suffix: str, sep: str) -> None:
    path = tmp_path / f"dupes{suffix}"
    path.write_text(sep.join(["text", "label", "text"]) + "\n"
                    + "".join(f"t{i}{sep}{i % 2}{sep}u{i}\n" for i in range(6)))
    with pytest.raises(DataError, match=r"duplicate column names \['text'\] in its header row"):
        read_table(path)


def test_space_searched_fields() -> None:
    fixed = SearchSpace.load({"frozen_layers": 2, "learning_rate": 1e-4, "head": "linear",
                              "pooling": {"type": "categorical", "choices": ["cls"]}})
    assert fixed.searched == []
    assert SearchSpace.load(None).searched[:2] == ["frozen_layers", "learning_rate"]


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\ncaf\xe9 cr\xe8me,1\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8 text.*re-save it as UTF-8"):
        read_table(path)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"learning_rate": "fast"}, "learning_rate='fast' must be a finite number"),
    ({"learning_rate": float("inf")}, "must be a finite number"),
])
def test_strategy_number_fields(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(StrategyError, match=message):
        autoft.Strategy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("params", [None, "frozen_layers=1"])
def test_from_dict_needs_a_mapping(params: object) -> None:
    with pytest.raises(StrategyError, match="needs a mapping"):
        autoft.Strategy.from_dict(params)  # type: ignore[arg-type]


def test_fine_tune_strategy_types_and_predict_inputs(tiny_bert: Path) -> None:
    with pytest.raises(StrategyError, match="must be an autoft.Strategy"):
        autoft.fine_tune(synthetic_texts(40), None, model=str(tiny_bert))  # type: ignore[arg-type]
    fit = autoft.fine_tune(synthetic_texts(60), {"frozen_layers": 4, "epochs": 1},
                           model=str(tiny_bert), device="cpu")
    assert len(fit.predict("a good film")) == 1  # one string is one text
    with pytest.raises(DataError, match="at least one text"):
        fit.predict([])
    with pytest.raises(DataError, match="takes strings"):
        fit.predict([1, 2])  # type: ignore[list-item]


def test_cli_validation_size_and_refit_target(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    texts, labels = synthetic_texts(40)
    data.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in zip(texts, labels)))
    result = CliRunner().invoke(main, ["search", str(data), "--validation-size", "1.5",
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--validation-size 1.5" in result.output
    result = CliRunner().invoke(main, ["search", str(data), "--validation-size", "inf",
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "Traceback" not in result.output


ROWS = [("good movie", "pos"), ("bad film", "neg"), ("great plot", "pos"), ("awful acting", "neg"),
        ("nice one", "pos"), ("terrible", "neg")]


@pytest.mark.parametrize("header", ["\ufefftext,text\n", "\ntext,text\n", "\ufefftext,text\r\n"])
def test_duplicate_header_behind_bom_or_blank_line(tmp_path: Path, header: str) -> None:
    path = tmp_path / "dupes.csv"
    path.write_text(header + "".join(f"{t},{lab}\n" for t, lab in ROWS), encoding="utf-8")
    with pytest.raises(DataError, match=r"duplicate column names \['text'\]"):
        read_table(path)


def test_empty_trailing_header_names_are_not_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"  # Excel exports trailing empty columns
    path.write_text("text,label,,\n" + "".join(f"{t},{lab},,\n" for t, lab in ROWS))
    task = load_task_data(path, validation_size=2)
    assert task.text_column == "text" and sorted(task.id2label.values()) == ["neg", "pos"]


@pytest.mark.parametrize("orient", ["records", "columns", "index", "split", "table"])
def test_pandas_to_json_layouts(tmp_path: Path, orient: str) -> None:
    path = tmp_path / f"{orient}.json"
    pd.DataFrame(ROWS, columns=["text", "label"]).to_json(path, orient=orient)
    frame = read_table(path)
    assert frame[["text", "label"]].values.tolist() == [list(r) for r in ROWS]


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_json_with_byte_order_mark(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"bom{suffix}"
    body = "".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in ROWS)
    path.write_text("\ufeff" + body, encoding="utf-8")
    assert read_table(path)["text"].tolist() == [t for t, _ in ROWS]


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
@pytest.mark.parametrize("newline", ["\r", "\r\n"])
def test_json_lines_with_cr_line_endings(tmp_path: Path, suffix: str, newline: str) -> None:
    # classic-Mac CR-only files used to fail with "Extra data" and no useful line number
    path = tmp_path / f"cr{suffix}"
    lines = [json.dumps({"text": t, "label": lab}) for t, lab in ROWS]
    path.write_bytes((newline.join(lines) + newline).encode())
    assert read_table(path)[["text", "label"]].values.tolist() == [list(r) for r in ROWS]
    lines[2] = '{"text": "oops"'
    path.write_bytes((newline.join(lines) + newline).encode())
    with pytest.raises(DataError, match="line 3 is not valid JSON.*oops"):
        read_table(path)


def test_nested_text_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "nested.jsonl"
    path.write_text("".join(json.dumps({"text": {"body": t}, "label": lab}) + "\n"
                            for t, lab in ROWS))
    with pytest.raises(DataError, match="text column 'text' .* holds a JSON object in row 0"):
        load_task_data(path, validation_size=2)


def test_rows_with_a_trailing_comma(tmp_path: Path) -> None:
    # without index_col=False pandas makes the first column the index and shifts the labels
    path = tmp_path / "trailing.csv"
    path.write_text("text,label\n" + "".join(f"{t},{lab},\n" for t, lab in ROWS))
    assert read_table(path)[["text", "label"]].values.tolist() == [list(r) for r in ROWS]
