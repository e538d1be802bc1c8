"""Several workers on one study, and a search killed with SIGKILL then resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import autoft
from autoft.errors import StudyError
from autoft.searching import run_worker
from autoft.searching.workers import config_from_study
from autoft.study import load_study, study_runs

from .helpers import synthetic_texts

SPACE = {
    "frozen_layers": {"type": "int", "low": 0, "high": "L"},
    "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
    "head_learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
    "pooling": "mean", "epochs": 2, "batch_size": 16,
    "baselines": [{"frozen_layers": 0}, {"frozen_layers": "L"}],
}


def _csv(tmp_path: Path, n: int = 160) -> Path:
    texts, labels = synthetic_texts(n)
    path = tmp_path / "data.csv"
    path.write_text("text,label\n" + "".join(f"{t},{lab}\n" for t, lab in zip(texts, labels)))
    return path


def _check_no_duplicates(study: optuna.Study, total: int) -> None:
    trials = study.get_trials()
    # a trial one worker started while another took the study's last one is skipped before it
    # trains (status "skipped"): it ran nothing and does not count
    counted = [t for t in trials if t.state.is_finished() and not t.user_attrs.get("interrupted")
               and t.user_attrs.get("duplicate_of") is None
               and t.user_attrs.get("status") != "skipped"]
    assert len(counted) == total
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    # sampled trials and baselines: no strategy twice (a re-seed repeats its trial's params by
    # design, a probe has none); follow-ups: no follow-up id twice
    originals = [t for t in counted if t.user_attrs.get("retry_of") is None]
    params = [tuple(sorted(t.params.items())) for t in originals if not t.user_attrs.get("purpose")]
    assert len(set(params)) == len(params), "two workers ran the same strategy"
    followups = [t.user_attrs["followup_id"] for t in originals if t.user_attrs.get("purpose")]
    assert len(set(followups)) == len(followups), "two workers ran the same follow-up"
    assert all(t.state != TrialState.RUNNING for t in trials)


def test_two_local_workers_share_a_journal_study(tiny_bert: Path, tmp_path: Path) -> None:
    result = autoft.search(_csv(tmp_path), model=str(tiny_bert), space=SPACE, out=tmp_path / "out",
                           n_trials=6, workers=2, device="cpu", validation_size=40)
    assert (tmp_path / "out" / "study.journal").is_file()
    assert not (tmp_path / "out" / "study.db").exists()
    _check_no_duplicates(result.study_, 6)
    workers = {t.user_attrs["worker"] for t in result.study_.trials if t.state.is_finished()}
    assert len(workers) == 2
    assert result.best_score_ is not None and (tmp_path / "out" / "report.md").is_file()


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "autoft.cli", *args]


def test_sigkill_during_a_trial_then_rerun(tiny_bert: Path, tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(  # full fine-tuning (no prefix cache): trials of a few seconds, killable mid-way
        "frozen_layers: 0\nlearning_rate: {type: float, low: 0.001, high: 0.01, log: true}\n"
        "head_learning_rate: 0.003\nepochs: 40\nbatch_size: 8\npooling: mean\n")
    out = tmp_path / "out"
    command = _cli("search", str(_csv(tmp_path, 200)), "--model", str(tiny_bert), "--space",
                   str(space), "--out", str(out), "--n-trials", "4", "--device", "cpu",
                   "--pruner", "none", "--no-progress")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed_number = None
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            if not (out / "study.db").exists():
                continue
            try:
                trials = load_study(out).get_trials(deepcopy=False)
            except Exception:  # the study is being created
                continue
            complete = [t for t in trials if t.state == TrialState.COMPLETE]
            running = [t for t in trials if t.state == TrialState.RUNNING]
            if len(complete) >= 1 and running and len(running[0].intermediate_values) >= 2:
                killed_number = running[0].number
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.wait(timeout=30)
    assert killed_number is not None, (
        f"the search ended (exit {proc.returncode}) before it could be killed; its stderr:\n"
        + (proc.stderr.read().decode(errors="replace")[-3000:] if proc.stderr else ""))
    before = {t.number: (t.params, t.value) for t in load_study(out).trials
              if t.state == TrialState.COMPLETE}
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    study = load_study(out)
    trials = {t.number: t for t in study.trials}
    assert {n: (trials[n].params, trials[n].value) for n in before} == before  # never rerun
    killed = trials[killed_number]
    assert killed.state == TrialState.FAIL and killed.user_attrs["interrupted"]
    retries = [t for t in trials.values() if t.user_attrs.get("retry_of") == killed_number]
    assert len(retries) == 1 and retries[0].params == killed.params
    counted = [t for t in trials.values() if t.state.is_finished() and not t.user_attrs.get(
        "interrupted")]
    assert len(counted) == 4
    assert [r["ended"] is None for r in study_runs(study)] == [True, False]
    assert "never finished" in (out / "report.md").read_text()


POSTGRES = os.environ.get("AUTOFT_TEST_POSTGRES_URL")


@pytest.mark.skipif(not POSTGRES, reason="set AUTOFT_TEST_POSTGRES_URL (.ci/run starts a server)")
def test_two_workers_on_postgres(tiny_bert: Path, tmp_path: Path) -> None:
    assert POSTGRES is not None
    name = f"pg-{os.getpid()}-{int(time.time())}"
    data = _csv(tmp_path)
    result = autoft.search(data, model=str(tiny_bert), space=SPACE, out=tmp_path / "out",
                           storage=POSTGRES, study_name=name, n_trials=6, workers=2,
                           device="cpu", validation_size=40)
    _check_no_duplicates(result.study_, 6)
    assert len({t.user_attrs["worker"] for t in result.study_.trials if t.state.is_finished()}) == 2
    # a worker from "another machine" joins the same study and brings it to 8 trials
    state = run_worker(POSTGRES, name, n_trials=8, seed=123, device="cpu")
    assert state.trials_run == 2
    study = load_study(storage=POSTGRES, study_name=name)
    _check_no_duplicates(study, 8)
    joined = subprocess.run(_cli("status", "--storage", POSTGRES, "--study", name),
                            capture_output=True, text=True, timeout=120)
    complete = sum(t.state == TrialState.COMPLETE for t in study.trials)
    pruned = sum(t.state == TrialState.PRUNED and t.user_attrs.get("duplicate_of") is None
                 for t in study.trials)  # a skipped duplicate follow-up is not a trial run
    assert joined.returncode == 0, joined.stderr
    assert f"{complete} complete, {pruned} stopped early" in joined.stdout
    assert "0 failed, 0 running" in joined.stdout


def test_a_joining_worker_uses_the_studys_settings(tiny_bert: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    autoft.search(_csv(tmp_path), model=str(tiny_bert), space=SPACE, out=out, n_trials=2,
                  workers=2, device="cpu", validation_size=40, pruner="median", max_length=24,
                  evals_per_epoch=3, seeds=2, curve_sizes=(0.5,))
    study = load_study(out)
    config, _, _ = config_from_study(study, device="cpu")
    assert (config.pruner, config.max_length, config.evals_per_epoch) == ("median", 24, 3)
    assert config.followups.seeds == 2 and config.followups.curve_sizes == (0.5,)
    assert type(config.make_pruner()).__name__ == "MedianPruner"


def test_a_worker_refuses_a_study_searched_with_a_pruner_instance() -> None:
    study = optuna.create_study()
    study.set_user_attr("autoft", {"pruner": "PatientPruner", "num_layers": 2})
    with pytest.raises(StudyError, match=r"pruner instance \(PatientPruner\), which a worker "
                                         "cannot rebuild"):
        config_from_study(study, device="cpu")


@pytest.mark.skipif(not POSTGRES, reason="set AUTOFT_TEST_POSTGRES_URL (.ci/run starts a server)")
def test_a_working_run_never_shows_the_storage_password(tiny_bert: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    from click.testing import CliRunner

    from autoft.cli import main

    assert POSTGRES is not None
    secret = "Pa55-w0rd-123"  # the test server trusts loopback, so any password is accepted
    url = POSTGRES.replace("postgres@", f"postgres:{secret}@", 1)
    monkeypatch.setenv("AUTOFT_TEST_DB_URL", url)
    name = f"pw-{os.getpid()}-{int(time.time())}"
    out = tmp_path / "out"
    with caplog.at_level("DEBUG"):
        result = CliRunner().invoke(main, [
            "-v", "search", str(_csv(tmp_path)), "--model", str(tiny_bert), "--out", str(out),
            "--storage", "env:AUTOFT_TEST_DB_URL", "--study", name, "--n-trials", "2",
            "--device", "cpu", "--seeds", "1", "--curve-sizes", "", "--no-progress"])
    assert result.exit_code == 0, result.output
    texts = [result.output, caplog.text, *(p.read_text() for p in out.iterdir() if p.is_file()
                                           and p.suffix in (".md", ".json", ".html", ".csv"))]
    study = load_study(storage=url, study_name=name)
    texts.append(repr(study.user_attrs))
    assert all(secret not in text for text in texts)


def test_a_trial_started_after_the_last_slot_was_taken_is_skipped(
        tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two workers that finish together both pass the stop check, then both ask for a trial: the
    # one with the higher number must yield. Forcing the check to always pass reproduces it.
    out = tmp_path / "out"
    first = autoft.search(_csv(tmp_path), model=str(tiny_bert), space=SPACE, out=out, n_trials=3,
                          workers=2, device="cpu", validation_size=40)
    assert len(first.study_.trials) == 3
    monkeypatch.setattr("autoft.searching.runner.SearchStopper.should_stop", lambda self, s: "")
    state = run_worker(None, out=out, n_trials=3, seed=5, device="cpu")
    assert state.trials_run == 0
    study = load_study(out)
    late = study.trials[3:]
    assert len(late) == 5  # MAX_CONSECUTIVE_SKIPS skipped trials in a row stop the worker
    for trial in late:
        assert trial.state == TrialState.PRUNED and trial.user_attrs["status"] == "skipped"
        assert "another worker took the last one" in trial.user_attrs["fail_reason"]
        assert "outcome" not in trial.user_attrs  # nothing trained
    _check_no_duplicates(study, 3)
