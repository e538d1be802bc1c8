"""What a first run showed a new user (issue 11): the terminal, the report, the budget messages."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

import autoft
from autoft.cli import main

from .helpers import synthetic_csv, synthetic_texts
from .test_search import SPACE, StubTrainer

runner_module = importlib.import_module("autoft.searching.runner")


@pytest.fixture()
def csv_file(tmp_path: Path) -> Path:
    return synthetic_csv(tmp_path / "reviews.csv")


def _space_file(tmp_path: Path, **overrides: object) -> Path:
    import yaml

    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({**SPACE, **overrides}))
    return path


def test_help_and_version_load_neither_torch_nor_transformers() -> None:
    code = ("import sys\nfrom autoft.cli import main\n"
            "for args in (['--help'], ['--version'], ['search', '--help']):\n"
            "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
            "print('LOADED', 'torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120).stdout
    assert "LOADED False False" in out and f"version {autoft.__version__}" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--budget", "-5"], "--budget '-5' must be finite and greater than 0"),
    (["--trial-budget", "-5"], "--trial-budget '-5' must be finite"),
    (["--budget", "soon"], "cannot parse --budget 'soon'"),
])
def test_budget_errors_name_the_flag(csv_file: Path, tmp_path: Path, args: list[str],
                                     message: str) -> None:
    result = CliRunner().invoke(main, ["search", str(csv_file), "--out", str(tmp_path / "o"),
                                       *args])
    assert result.exit_code == 2 and message in result.output


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"budget": -5}, "budget=-5 must be finite"), ({"trial_budget": -5}, "trial_budget=-5 must"),
])
def test_budget_errors_name_the_argument(tmp_path: Path, kwargs: dict[str, object],
                                         message: str) -> None:
    with pytest.raises(autoft.BudgetError, match=message):
        autoft.search(synthetic_texts(40), out=tmp_path, **kwargs)  # type: ignore[arg-type]


def test_the_terminal_shows_statuses_no_library_warnings_and_the_html_report(
        csv_file: Path, tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "train_strategy", StubTrainer(status="budget"))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "search", str(csv_file), "--model", str(tiny_bert), "--n-trials", "3", "--out", str(out),
        "--space", str(_space_file(tmp_path)), "--device", "cpu", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert result.output.count("stopped by budget") >= 3  # never shown as "complete"
    assert "[baseline]" in result.output
    for noise in ("Warning", "warn(", "ExperimentalWarning", "[I 20", "[W 20"):
        assert noise not in result.output
    assert "Provisional" in result.output and "No trial finished" in result.output
    assert f"Report: {out / 'report.html'}" in result.output
    assert f"Study: {out / 'study.db'}" in result.output


def test_the_summary_names_the_journal_of_several_workers(csv_file: Path, tiny_bert: Path,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "search", str(csv_file), "--model", str(tiny_bert), "--n-trials", "2", "--out", str(out),
        "--space", str(_space_file(tmp_path, epochs=1)), "--device", "cpu", "--no-progress",
        "--workers", "2", "--seeds", "1", "--curve-sizes", ""])
    assert result.exit_code == 0, result.output
    assert f"Study: {out / 'study.journal'}" in result.output


def test_ctrl_c_says_so_once(csv_file: Path, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(autoft, "search", interrupted)
    result = CliRunner().invoke(main, ["search", str(csv_file), "--out", str(tmp_path / "o")])
    assert result.exit_code == 130
    assert result.output.lower().count("interrupted") == 1


def test_the_report_table_and_the_queued_follow_ups(tiny_bert: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "train_strategy", StubTrainer())
    space = {**SPACE, "frozen_layers": {"type": "categorical", "choices": [0, 2, 4]},
             "head": "linear"}
    autoft.search(synthetic_texts(160), model=str(tiny_bert), space=space, out=tmp_path,
                  n_trials=9, pruner="none", top_k=2, curve_sizes=(0.5,), device="cpu",
                  validation_size=40)
    md = (tmp_path / "report.md").read_text().splitlines()
    header = next(i for i, line in enumerate(md) if line.startswith("| # | status"))
    assert md[header + 1].startswith("|---") and md[header + 2].startswith("| 0 |")
    queued = next(i for i, line in enumerate(md) if "queued trial" in line)
    assert queued < header and "the study reached 9 trials" in md[queued]
    html = (tmp_path / "report.html").read_text()
    section = html.split("id='trials'")[1]
    assert section.index("queued trial") < section.index("<table>")
    trials_table = section.split("<table>")[1].split("</table>")[0]
    assert "queued trial" not in trials_table and trials_table.count("<tr>") >= 10
    csv = (tmp_path / "trials.csv").read_text()
    assert "WAITING" not in csv and ",2.0," not in csv
    rows = json.loads((tmp_path / "report.json").read_text())["trials"]
    head_only = next(r for r in rows if r["frozen_layers"] == 4)
    assert head_only["learning_rate"] is None  # a head-only trial trains no block


def test_the_last_evaluation_is_never_pruned(tiny_bert: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    class Always(optuna.pruners.BasePruner):
        def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
            return True

    monkeypatch.setattr(runner_module, "train_strategy", StubTrainer())
    space = {**SPACE, "baselines": []}
    one = autoft.search(synthetic_texts(120), model=str(tiny_bert), space={**space, "epochs": 1},
                        out=tmp_path / "one", n_trials=3, pruner=Always(), evals_per_epoch=1,
                        seeds=1, curve_sizes=(), device="cpu", validation_size=30)
    assert one.trials_["status"] == ["complete"] * 3  # one evaluation each: the last one
    two = autoft.search(synthetic_texts(120), model=str(tiny_bert), space=space,
                        out=tmp_path / "two", n_trials=3, pruner=Always(), evals_per_epoch=1,
                        seeds=1, curve_sizes=(), device="cpu", validation_size=30)
    assert two.trials_["status"] == ["pruned"] * 3 and two.trials_["evaluations"] == [1] * 3


def test_a_search_the_budget_cut_short_says_what_would_do(tiny_bert: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "train_strategy", StubTrainer(status="budget"))
    autoft.search(synthetic_texts(120), model=str(tiny_bert), space=SPACE, out=tmp_path,
                  n_trials=1, device="cpu", validation_size=30)
    md = (tmp_path / "report.md").read_text()
    assert "No trial finished: the cheapest one stopped by the budget needed about" in md
    assert "nothing fits" not in md
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["analysis"]["no_trial_finished"] and report["analysis"]["size_budget_table"] == []


def test_small_things_of_the_first_report(tiny_bert: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "train_strategy", StubTrainer())
    autoft.search(synthetic_texts(120), model=str(tiny_bert), space=SPACE, out=tmp_path,
                  n_trials=1, seeds=1, curve_sizes=(), device="cpu", validation_size=30)
    md = (tmp_path / "report.md").read_text()
    assert "1 trial;" in md and "1 trials" not in md
    html = (tmp_path / "report.html").read_text()
    assert "white-space: pre-wrap" in html  # the snippet wraps instead of being cut off
    # no plot of a single point (its axes would run from -0.25 to 1.6); the one trial's curve over
    # its evaluations has several points and is drawn
    plotted = set(re.findall(r"data-plot='(\w+)'", html))
    assert plotted == {"training_progress"}


def test_unreadable_text_is_warned_about_with_a_backbone_hint(
        tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(runner_module, "train_strategy", StubTrainer())
    texts = [f"这部电影{'很好看' if i % 2 else '很无聊'}{i}" for i in range(60)]
    labels = ["pos" if i % 2 else "neg" for i in range(60)]
    with caplog.at_level("WARNING", logger="autoft"):
        autoft.search((texts, labels), model=str(tiny_bert), space=SPACE, out=tmp_path,
                      n_trials=1, seeds=1, curve_sizes=(), device="cpu", validation_size=20)
    assert "100% of the training data's tokens are unknown" in caplog.text
    assert "multilingual" in caplog.text
    assert "100.0% of the training tokens are unknown" in (tmp_path / "report.md").read_text()


def test_a_storage_password_is_never_printed(tmp_path: Path) -> None:
    url = "postgresql://alice:Pa55-w0rd-123@127.0.0.1:9/studies?password=Pa55-w0rd-123"
    for args in (["status", "--storage", url], ["report", str(tmp_path), "--storage", url]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2 and "Pa55-w0rd-123" not in result.output
        assert "127.0.0.1" in result.output
