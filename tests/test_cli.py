from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from autoft.cli import main

from .helpers import synthetic_csv


@pytest.fixture()
def csv_file(tmp_path: Path) -> Path:
    return synthetic_csv(tmp_path / "reviews.csv", "review,sentiment")


def test_search_then_report(csv_file: Path, tiny_bert: Path, tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("frozen_layers: {type: int, low: 2, high: L}\nhead_learning_rate: 0.005\n"
                     "learning_rate: 0.005\nepochs: 1\nbatch_size: 16\n")
    out = tmp_path / "out"
    runner = CliRunner()
    result = runner.invoke(main, [
        "search", str(csv_file), "--model", str(tiny_bert), "--n-trials", "2", "--out", str(out),
        "--text-column", "review", "--label-column", "sentiment", "--space", str(space),
        "--device", "cpu", "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    assert "Recommended:" in result.output
    report = json.loads((out / "report.json").read_text())
    assert len(report["trials"]) == 2
    assert {t["frozen_layers"] for t in report["trials"]} <= {2, 3, 4}
    (out / "report.md").unlink()
    rebuilt = runner.invoke(main, ["report", str(out)])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert (out / "report.md").is_file()
    assert json.loads((out / "report.json").read_text())["trials"] == report["trials"]


def test_bad_column_is_a_clear_error(csv_file: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["search", str(csv_file), "--label-column", "stars",
                                       "--out", str(tmp_path / "o"), "--n-trials", "1"])
    assert result.exit_code == 2
    assert "error: label column 'stars' not found" in result.output
    assert "Traceback" not in result.output


def test_bad_budget_is_a_clear_error(csv_file: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["search", str(csv_file), "--budget", "tomorrow",
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "cannot parse --budget 'tomorrow'" in result.output


def test_report_of_missing_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["report", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    assert "no study in" in result.output and "Traceback" not in result.output
