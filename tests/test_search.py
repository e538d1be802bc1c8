from __future__ import annotations

import datetime as dt
import importlib
import json
import math
import re
from typing import Any

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

import autoft
from autoft.errors import BackboneError, DataError, StudyError, TrialError
from autoft.report import build_report, render_markdown
from autoft.study import load_study, lock_folder, study_runs, study_status
from autoft.training import TrialOutcome

from .helpers import synthetic_texts

runner_module = importlib.import_module("autoft.searching.runner")

# A small space so that searches on the tiny BERT take seconds.
SPACE = {
    "frozen_layers": {"type": "int", "low": 0, "high": "L"},
    "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
    "head_learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
    "head": {"type": "categorical", "choices": ["linear", "mlp"]},
    "head_width": 16,
    "pooling": "mean",
    "epochs": 2,
    "batch_size": 16,
    "baselines": [
        {"frozen_layers": 0, "learning_rate": 5e-3, "head_learning_rate": 5e-3, "head": "linear"},
        {"frozen_layers": "L", "head_learning_rate": 5e-3, "head": "linear"},
    ],
}


@pytest.fixture(scope="module")
def data() -> tuple[list[str], list[str]]:
    return synthetic_texts(160)


def _search(data, tiny_bert, out, **kwargs):  # type: ignore[no-untyped-def]
    args = {"model": str(tiny_bert), "space": SPACE, "out": out, "device": "cpu",
            "validation_size": 40, **kwargs}
    return autoft.search(data, **args)


class StubTrainer:
    """Stands in for ``train_strategy``: a score from the strategy (higher for full fine-tuning
    and larger learning rates) plus seed noise, reported at each evaluation, and made-up seconds;
    no training, so the scheduling tests run in seconds."""

    def __init__(self, noise: float = 0.01, seconds: Any = None, status: str = "complete") -> None:
        self.noise, self.calls, self.status = noise, [], status
        self.seconds = seconds or (lambda s: 10.0 * (5 - s.frozen_layers) + 1.0)

    def score(self, strategy: Any, seed: int) -> float:
        base = 0.9 - 0.05 * strategy.frozen_layers + 0.02 * math.log10(strategy.learning_rate / 1e-3)
        return round(base + self.noise * math.sin(7.3 * seed), 6)

    def __call__(self, encoder, strategy, train, validation, num_outputs, **kw):  # type: ignore[no-untyped-def]
        self.calls.append((strategy, len(train), kw["seed"]))
        final = self.score(strategy, kw["seed"])
        evals = strategy.epochs * kw["evals_per_epoch"]
        outcome = TrialOutcome(trainable_params=100, total_params=1000,
                               applied_frozen_layers=strategy.frozen_layers)
        seconds = self.seconds(strategy) * len(train) / 120
        for i in range(1, evals + 1):
            score = final - 0.1 * (evals - i) / evals
            outcome.scores.append(score)
            outcome.examples_at_eval.append(i * len(train) // kw["evals_per_epoch"])
            outcome.best_score = max(outcome.best_score or 0.0, score)
            outcome.best_eval = outcome.scores.index(outcome.best_score) + 1
            if kw["report"] is not None and kw["report"](i, score):
                outcome.status = "pruned"
                break
        if self.status == "budget":
            outcome.status = "budget"
        done = len(outcome.scores) / evals
        outcome.steps = int(10 * done * strategy.epochs)
        outcome.total_steps = 10 * strategy.epochs
        outcome.examples_trained = int(len(train) * strategy.epochs * done)
        outcome.train_seconds, outcome.eval_seconds = 0.8 * seconds * done, 0.2 * seconds * done
        outcome.wall_seconds = seconds * done
        return outcome, None


@pytest.fixture()
def stub(monkeypatch: pytest.MonkeyPatch) -> StubTrainer:
    trainer = StubTrainer()
    monkeypatch.setattr(runner_module, "train_strategy", trainer)
    return trainer


def test_search_runs_baselines_cheapest_first_then_sampler_and_reports(data, tiny_bert,  # type: ignore[no-untyped-def]
                                                                       tmp_path) -> None:
    result = _search(data, tiny_bert, tmp_path, n_trials=4)
    trials = pd.DataFrame(result.trials_)
    assert trials["number"].tolist() == [0, 1, 2, 3]
    assert trials["frozen_layers"].tolist()[:2] == [4, 0]  # the baselines, linear probe first
    assert trials["baseline"].tolist()[:2] == [True, True]
    assert set(trials["status"]) <= {"complete", "pruned"}
    # each trial recorded its measured cost and the strategy read back from the model
    head_only = trials[trials["frozen_layers"] == 4].iloc[0]
    assert head_only["trainable_params"] == 32 * 2 + 2 and head_only["cached"]
    assert (trials["seconds"] > 0).all() and (trials["examples_trained"] > 0).all()
    rec = result.recommendation_
    runs = trials[trials["number"].isin([g for g in rec.groups
                                         if g["trial_number"] == rec.trial_number][0]["trials"])]
    assert result.recommended_score_ == pytest.approx(runs["score"].mean())
    assert result.best_score_ == result.recommended_score_
    assert result.best_strategy_ == autoft.Strategy.from_dict(result.best_params_)
    assert result.best_trial_.number == rec.trial_number
    assert isinstance(result.study_, optuna.Study)
    for kind in ("json", "markdown", "csv", "html"):
        assert result.report_paths_[kind].is_file()
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["data"]["train_size"] == 120 and report["data"]["validation_size"] == 40
    assert report["recommendation"]["trial_number"] == result.best_trial_.number
    assert len(report["trials"]) == 4
    assert "autoft.fine_tune(" in report["snippet"]
    md = (tmp_path / "report.md").read_text()
    assert "## Recommendation" in md and "| 3 |" in md
    csv = (tmp_path / "trials.csv").read_text().splitlines()
    header = csv[0].split(",")
    assert csv[1].split(",")[header.index("epochs")] == "2"  # whole numbers stay whole


def test_rerun_resumes_the_same_study(data, tiny_bert, tmp_path, stub) -> None:  # type: ignore[no-untyped-def]
    first = _search(data, tiny_bert, tmp_path, n_trials=3)
    before = {t.number: (t.state, t.value, t.params) for t in first.study_.trials}
    second = _search(data, tiny_bert, tmp_path, n_trials=5)
    after = {t.number: (t.state, t.value, t.params) for t in second.study_.trials}
    assert sorted(after) == [0, 1, 2, 3, 4]
    assert {n: after[n] for n in before} == before  # finished trials kept, not rerun
    assert [r["trials_run"] for r in study_runs(second.study_)] == [3, 2]
    third = _search(data, tiny_bert, tmp_path, n_trials=5)  # no more trials than the study has
    assert len(third.study_.trials) == 5


def test_interrupted_trial_is_failed_and_retried_once(data, tiny_bert, tmp_path, stub) -> None:  # type: ignore[no-untyped-def]
    _search(data, tiny_bert, tmp_path, n_trials=2)
    study = load_study(tmp_path)
    # a run killed mid-trial leaves the trial RUNNING with its sampled parameters
    stale = study.ask({"frozen_layers": optuna.distributions.IntDistribution(0, 4)})
    assert stale.number == 2
    result = _search(data, tiny_bert, tmp_path, n_trials=3)
    trials = {t.number: t for t in result.study_.trials}
    assert trials[2].state == TrialState.FAIL
    assert "interrupted" in trials[2].user_attrs["fail_reason"]
    assert trials[3].user_attrs["retry_of"] == 2
    assert trials[3].params["frozen_layers"] == trials[2].params["frozen_layers"]
    assert len(trials) == 4  # the interrupted trial does not count toward n_trials
    assert "retry of trial 2" in render_markdown(build_report(result.study_))


@pytest.mark.parametrize(("change", "message"), [
    ({"data": synthetic_texts(160, seed=1)}, "different data"),
    ({"max_length": 32}, "different max_length"),
    ({"evals_per_epoch": 3}, "different evals_per_epoch"),
    ({"pruner": "median"}, "different pruner"),
    ({"metric": "macro_f1"}, "different metric"),
])
def test_resume_with_a_setting_that_changes_scores_refused(data, tiny_bert, tmp_path, stub,  # type: ignore[no-untyped-def]
                                                           change, message) -> None:
    _search(data, tiny_bert, tmp_path, n_trials=1)
    kwargs = dict(change)
    with pytest.raises(StudyError, match=message):
        _search(kwargs.pop("data", data), tiny_bert, tmp_path, n_trials=2, **kwargs)


def test_resume_with_another_backbone_of_the_same_shape_refused(data, tiny_bert, tmp_path,  # type: ignore[no-untyped-def]
                                                                stub) -> None:
    from .helpers import make_tiny_bert

    _search(data, tiny_bert, tmp_path / "out", n_trials=1)
    other = make_tiny_bert(tmp_path / "other", seed=7)  # same shape, other weights
    with pytest.raises(StudyError, match="different backbone"):
        _search(data, other, tmp_path / "out", n_trials=2)


def test_a_second_search_on_a_folder_in_use_is_refused(data, tiny_bert, tmp_path, stub) -> None:  # type: ignore[no-untyped-def]
    with lock_folder(tmp_path):
        with pytest.raises(StudyError, match="in use by another autoft search"):
            _search(data, tiny_bert, tmp_path, n_trials=1)


def test_no_trial_starts_after_the_time_budget(data, tiny_bert, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = _search(data, tiny_bert, tmp_path, budget=3.0)
    (run,) = study_runs(result.study_)
    assert "time budget" in run["stopped_because"]
    started = dt.datetime.fromisoformat(run["started"])
    for trial in result.study_.trials:
        assert trial.state != TrialState.RUNNING
        begin = trial.datetime_start.astimezone() if trial.datetime_start else None
        assert begin is None or begin <= started + dt.timedelta(seconds=3.0 + 1.0)


def test_a_trial_stopped_by_the_budget_is_pruned_not_complete(data, tiny_bert, tmp_path,  # type: ignore[no-untyped-def]
                                                              monkeypatch) -> None:
    monkeypatch.setattr(runner_module, "train_strategy", StubTrainer(status="budget"))
    result = _search(data, tiny_bert, tmp_path, n_trials=2)
    assert [t.state for t in result.study_.trials] == [TrialState.PRUNED] * 2
    assert result.trials_["status"] == ["budget", "budget"]
    assert result.recommendation_ is None  # nothing trained to the end
    md = (tmp_path / "report.md").read_text()
    assert "stopped by budget" in md and "No trial trained its strategy to the end" in md


def test_failing_trials_stop_search_with_first_reason(data, tiny_bert, tmp_path,  # type: ignore[no-untyped-def]
                                                      monkeypatch) -> None:
    calls = {"n": 0}

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        raise RuntimeError(f"CUDA error: device-side assert (call {calls['n']})")

    monkeypatch.setattr(runner_module, "train_strategy", broken)
    with pytest.raises(TrialError, match=r"3 trials in a row failed.*call 1\)"):
        _search(data, tiny_bert, tmp_path, n_trials=10)
    report = json.loads((tmp_path / "report.json").read_text())
    reasons = [t["fail_reason"] for t in report["trials"]]
    assert reasons == [f"RuntimeError: CUDA error: device-side assert (call {i})" for i in (1, 2, 3)]


def test_diverged_trials_are_pruned_and_do_not_stop_the_search(data, tiny_bert, tmp_path,  # type: ignore[no-untyped-def]
                                                               monkeypatch) -> None:
    import torch

    stub = StubTrainer()
    calls = {"n": 0}

    def flaky(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] in (2, 3, 4):  # three divergences in a row: the learning rates, not a bug
            raise autoft.DivergedError(f"training loss became nan at step 3 (call {calls['n']})")
        if calls["n"] == 5:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return stub(*args, **kwargs)

    monkeypatch.setattr(runner_module, "train_strategy", flaky)
    result = _search(data, tiny_bert, tmp_path, n_trials=7)
    statuses = result.trials_["status"]
    assert statuses[1:5] == ["diverged", "diverged", "diverged", "failed"]
    assert [t.state for t in result.study_.trials][1:5] == [TrialState.PRUNED] * 3 + [
        TrialState.FAIL]
    assert len(statuses) == 7
    reasons = [r for r in result.trials_["fail_reason"] if r]
    assert reasons[0] == "diverged: training loss became nan at step 3 (call 2)"
    assert reasons[-1] == "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    md = (tmp_path / "report.md").read_text()
    assert "diverged" in md and "CUDA out of memory" in md


def test_bad_data_raised_before_model_is_loaded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError, match="label column 'stars' not found"):
        autoft.search((["a", "b"], [0, 1]), model=str(tmp_path / "no-model"), label_column="stars",
                      out=tmp_path, n_trials=1)
    assert not (tmp_path / "study.db").exists()


def test_bad_arguments_raised_early(data, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(autoft.AutoftError, match="metric 'f2'"):
        autoft.search(data, metric="f2", out=tmp_path)
    with pytest.raises(autoft.BudgetError, match="cannot parse budget='soon'"):
        autoft.search(data, budget="soon", out=tmp_path)
    with pytest.raises(autoft.BudgetError, match=r"trial_budget=-5 must be finite"):
        autoft.search(data, trial_budget=-5, out=tmp_path)
    with pytest.raises(autoft.AutoftError, match="pruner 'asha'"):
        autoft.search(data, pruner="asha", out=tmp_path)
    # worker processes build their pruner from its name in the study
    with pytest.raises(autoft.AutoftError, match=r"pruner instance \(MedianPruner\) cannot be "
                                                 "shared with workers=2"):
        autoft.search(data, pruner=optuna.pruners.MedianPruner(), workers=2, out=tmp_path)
    with pytest.raises(BackboneError, match="no config.json"):
        autoft.search(data, model=str(tmp_path), out=tmp_path / "o", n_trials=1)


def test_search_result_from_dir_matches(data, tiny_bert, tmp_path, stub) -> None:  # type: ignore[no-untyped-def]
    result = _search(data, tiny_bert, tmp_path, n_trials=2, metric="macro_f1")
    again = autoft.SearchResult.from_dir(tmp_path)
    assert again.trials_ == result.trials_
    assert again.best_score_ == result.best_score_
    assert build_report(again.study_)["metric"] == "macro_f1"


def test_ctrl_c_keeps_study_and_the_retry_runs_first(data, tiny_bert, tmp_path,  # type: ignore[no-untyped-def]
                                                     monkeypatch) -> None:
    space = {**SPACE, "baselines": [{"frozen_layers": 0}, {"frozen_layers": 2},
                                    {"frozen_layers": "L"}]}
    stub = StubTrainer()
    calls = {"n": 0}

    def interrupt_second(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return stub(*args, **kwargs)

    monkeypatch.setattr(runner_module, "train_strategy", interrupt_second)
    with pytest.raises(KeyboardInterrupt):
        _search(data, tiny_bert, tmp_path, n_trials=4, space=space)
    study = load_study(tmp_path)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL]
    assert [t.params["frozen_layers"] for t in study.trials] == [4, 2]  # cheapest first
    assert (tmp_path / "report.md").is_file()  # the report is written on the way out
    assert "interrupted" in (tmp_path / "report.md").read_text()
    monkeypatch.setattr(runner_module, "train_strategy", stub)
    result = _search(data, tiny_bert, tmp_path, n_trials=4, space=space)
    trials = result.study_.trials
    assert trials[2].user_attrs["retry_of"] == 1  # the interrupted baseline runs again, first
    assert trials[2].params == trials[1].params
    assert trials[3].params["frozen_layers"] == 0  # then the remaining baseline


def test_same_seed_same_sequence_of_trials(data, tiny_bert, tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = _search(data, tiny_bert, tmp_path / "a", n_trials=4, seed=3)
    b = _search(data, tiny_bert, tmp_path / "b", n_trials=4, seed=3)
    assert [t.params for t in a.study_.trials] == [t.params for t in b.study_.trials]
    assert [t.value for t in a.study_.trials] == [t.value for t in b.study_.trials]
    trial = a.study_.trials[0]
    assert trial.user_attrs["seed"] == 3
    assert trial.user_attrs["data_fingerprint"] == a.study_.user_attrs["autoft"]["data"]["fingerprint"]
    assert set(trial.user_attrs["versions"]) >= {"autoft", "torch", "transformers", "optuna"}


def test_status_of_a_finished_study(data, tiny_bert, tmp_path, stub) -> None:  # type: ignore[no-untyped-def]
    result = _search(data, tiny_bert, tmp_path, n_trials=3)
    status = study_status(result.study_)
    assert sum(status["counts"].values()) == 3
    best = max(s for s, st in zip(result.trials_["score"], result.trials_["status"])
               if st == "complete")
    assert status["best"] == best and status["running"] == []
    assert status["seconds_left"] is None


def test_followups_reseed_leaders_probe_smaller_sizes_and_leave_room(data, tiny_bert, tmp_path,  # type: ignore[no-untyped-def]
                                                                     stub) -> None:
    space = {**SPACE, "frozen_layers": {"type": "categorical", "choices": [0, 2, 4]},
             "head": "linear"}
    result = _search(data, tiny_bert, tmp_path, space=space, n_trials=20, pruner="none", seeds=3,
                     top_k=2, curve_sizes=(0.3, 0.6))
    trials = pd.DataFrame(result.trials_)
    assert len(trials) == 20 and set(trials["status"]) == {"complete"}
    followups = trials[trials["purpose"].notna()]
    assert len(followups) <= 10  # at most half of n_trials: room for sampled trials
    reseeds = trials[trials["purpose"] == "reseed"]
    assert len(reseeds) >= 2  # the leader's two; others only when within the seed noise of it
    rec = result.recommendation_
    assert rec.confirmed and rec.seeds == 3  # the recommendation rests on 3 seeds
    for g in rec.groups:  # no strategy with fewer runs scored above it
        if g["n"] < 3:
            assert g["mean"] <= rec.score
    probes = result.study_.get_trials(states=(TrialState.COMPLETE,))
    probes = [t for t in probes if t.user_attrs.get("purpose") == "learning_curve"]
    assert probes and all(t.params == {} and t.intermediate_values == {} for t in probes)
    for t in result.study_.trials:  # follow-ups never report to the pruner
        if t.user_attrs.get("purpose"):
            assert t.intermediate_values == {}
    assert set(trials.loc[trials["purpose"].isna(), "train_size"]) == {120}
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["analysis"]["cost_model"]["trials_used"] == 20


def test_followups_enqueued_twice_run_once(data, tiny_bert, tmp_path, monkeypatch, stub) -> None:  # type: ignore[no-untyped-def]
    # two workers that decide at the same moment both enqueue the follow-ups; simulate it by
    # enqueuing every planned follow-up twice, the copies interleaved as a race could leave them
    def enqueue_twice(study, plans, room=None):  # type: ignore[no-untyped-def]
        plans = list(plans)[:room]
        for params, attrs in plans:
            study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=False)
            study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=False)
        return len(plans)

    monkeypatch.setattr(runner_module, "enqueue_followups", enqueue_twice)
    space = {**SPACE, "frozen_layers": {"type": "categorical", "choices": [0, 4]},
             "head": "linear"}
    result = _search(data, tiny_bert, tmp_path, space=space, n_trials=14, pruner="none",
                     seeds=3, top_k=2, curve_sizes=(0.5,))
    trials = pd.DataFrame(result.trials_)
    assert len(trials) == 14
    skipped = [t for t in result.study_.trials if t.user_attrs.get("duplicate_of") is not None]
    assert skipped
    ids = [i for i in trials["followup_id"].dropna() if not str(i).startswith("baseline")]
    assert len(ids) == len(set(ids))  # every follow-up id ran once
    for twin in skipped:
        assert twin.state == TrialState.PRUNED and "strategy" not in twin.user_attrs
        first = result.study_.trials[twin.user_attrs["duplicate_of"]]
        assert first.user_attrs["followup_id"] == twin.user_attrs["followup_id"]
    report = json.loads((tmp_path / "report.json").read_text())
    assert sum(report["trial_counts"].values()) == 14 + sum(
        t.state == TrialState.WAITING for t in result.study_.trials)


def test_a_leader_found_on_resume_is_reseeded(data, tiny_bert, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    space = {**SPACE, "frozen_layers": {"type": "categorical", "choices": [0, 2]},
             "head": "linear", "head_learning_rate": 5e-3, "baselines": [],
             "learning_rate": {"type": "float", "low": 1e-3, "high": 2e-3}}
    stub = StubTrainer(noise=0.0)
    monkeypatch.setattr(runner_module, "train_strategy", stub)
    first = _search(data, tiny_bert, tmp_path, space=space, n_trials=12, pruner="none", top_k=1,
                    curve_sizes=()).recommendation_
    assert first.confirmed and first.strategy.learning_rate <= 2e-3
    # the resumed run samples a better learning rate (the stub scores it higher): that strategy
    # leads on a single run, so it is re-seeded before the run ends, then recommended
    space["learning_rate"] = {"type": "float", "low": 9e-3, "high": 1e-2}
    result = _search(data, tiny_bert, tmp_path, space=space, n_trials=20, pruner="none", top_k=1,
                     curve_sizes=())
    rec = result.recommendation_
    assert rec.strategy.learning_rate >= 9e-3
    assert rec.confirmed and rec.seeds == 3
    runs = {t.number: t for t in result.study_.trials}
    group = next(g for g in rec.groups if g["trial_number"] == rec.trial_number)
    assert [runs[n].user_attrs.get("reseed_of") for n in group["trials"][1:]] == [
        rec.trial_number] * 2


def test_space_that_searches_nothing_warns(data, tiny_bert, tmp_path, caplog, stub) -> None:  # type: ignore[no-untyped-def]
    fixed = {k: v for k, v in SPACE.items() if k != "baselines"}
    fixed.update(frozen_layers=2, learning_rate=5e-3, head_learning_rate=5e-3, head="linear",
                 epochs=1)
    with caplog.at_level("WARNING", logger="autoft"):
        result = _search(data, tiny_bert, tmp_path, space=fixed, n_trials=1, seeds=1,
                         curve_sizes=())
    assert len(result.trials_["number"]) == 1
    assert "the search space fixes every field" in caplog.text


def test_trials_that_cannot_finish_in_the_time_left_are_skipped(data, tiny_bert, tmp_path,  # type: ignore[no-untyped-def]
                                                                monkeypatch) -> None:
    # full fine-tuning "takes" 10,000 s on this machine, the head only 0.1 s: with 20 s of budget,
    # once the cost model has seen one of each, no other trial that trains blocks is started
    stub = StubTrainer(seconds=lambda s: 0.1 if s.frozen_layers == 4 else 10_000.0)
    monkeypatch.setattr(runner_module, "train_strategy", stub)
    space = {**SPACE, "baselines": [{"frozen_layers": "L", "head_learning_rate": 5e-3},
                                    {"frozen_layers": 0}]}
    result = _search(data, tiny_bert, tmp_path, space=space, budget=20.0, seeds=1,
                     curve_sizes=())
    trials = pd.DataFrame(result.trials_)
    assert trials["status"].iloc[0] == "complete" and trials["frozen_layers"].iloc[0] == 4
    trained = [s for s, _, _ in stub.calls]
    assert [s.frozen_layers for s in trained[:2]] == [4, 0]  # the baselines, cheapest first
    assert all(s.frozen_layers == 4 for s in trained[2:])  # nothing costly was started again
    skipped = trials[trials["status"] == "skipped"]
    assert len(skipped) >= 1 and (skipped["frozen_layers"] < 4).all()
    assert "cost model predicts" in str(skipped["fail_reason"].iloc[0])


def test_resume_after_followups_runs_the_queued_ones_first(data, tiny_bert, tmp_path, stub) -> None:  # type: ignore[no-untyped-def]
    space = {**SPACE, "frozen_layers": {"type": "categorical", "choices": [0, 2, 4]},
             "head": "linear"}
    first = _search(data, tiny_bert, tmp_path, space=space, n_trials=9, pruner="none", top_k=2,
                    curve_sizes=(0.5,))
    waiting = [t.number for t in first.study_.get_trials(states=(TrialState.WAITING,))]
    assert waiting, "the first run should stop with follow-ups still queued"
    result = _search(data, tiny_bert, tmp_path, space=space, n_trials=9 + len(waiting) + 2,
                     pruner="none", top_k=2, curve_sizes=(0.5,))
    trials = {t.number: t for t in result.study_.trials}
    assert all(trials[n].state == TrialState.COMPLETE for n in waiting)  # they ran, first
    second_run = [t for t in trials.values() if t.number >= 9 and t.state.is_finished()]
    assert min(t.datetime_start for t in second_run) == min(
        trials[n].datetime_start for n in waiting)
    ids = [t.user_attrs.get("followup_id") for t in trials.values()
           if t.state == TrialState.COMPLETE and t.user_attrs.get("followup_id")]
    assert len(ids) == len(set(ids))  # no follow-up ran twice across the two runs
    assert result.recommendation_.confirmed


def test_reseeds_too_costly_for_the_reserve_are_scaled_down(data, tiny_bert, tmp_path,  # type: ignore[no-untyped-def]
                                                            monkeypatch) -> None:
    # every trial claims 400 s against a 30-minute budget whose reserve (25%) is 450 s:
    # re-seeding the leader to 3 seeds (2 x 400 s, plus 15%) cannot fit, so it gets 2 runs
    stub = StubTrainer(noise=0.0, seconds=lambda s: 400.0)
    monkeypatch.setattr(runner_module, "train_strategy", stub)
    result = _search(data, tiny_bert, tmp_path, n_trials=8, budget="30m", pruner="none",
                     curve_sizes=())
    stored = result.study_.user_attrs["autoft_followups"]
    assert (stored["seeds"], stored["top_k"]) == (2, 1)
    assert stored["scaled_from"]["seeds"] == 3 and stored["scaled_from"]["top_k"] == 3
    assert stored["scaled_from"]["allowed_seconds"] == pytest.approx(450.0)
    assert stored["scaled_from"]["estimated_seconds"] == pytest.approx(1.15 * 2 * 400.0)
    rec = result.recommendation_
    assert rec.confirmed and rec.seeds == 2  # confirmed at the scaled number of seeds
    reseeds = [t for t in result.study_.trials if t.user_attrs.get("purpose") == "reseed"]
    assert len(reseeds) == 1 and reseeds[0].user_attrs["reseed_of"] == rec.trial_number
    md = (tmp_path / "report.md").read_text()
    assert "Follow-ups were scaled to the trials' cost: re-seeding 3 strategies to 3 seeds" in md
    assert "so the plan re-seeds the leader alone, to 2 runs in all" in md


def test_a_strategy_that_would_eat_the_leaders_reseed_time_is_not_started(
        data, tiny_bert, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # every trial "takes" 300 s on a clock the stub advances, against a 20-minute budget: the
    # reserve (300 s) cannot hold the leader's re-seed (345 s with the margin), so after two
    # trials (600 s left) a third strategy would leave 270 s; it is not started, and the leader
    # is re-seeded instead. Without the rule the third trial ran and the re-seed never fit.
    import time as time_module

    clock = {"offset": 0.0}
    real = time_module.monotonic
    monkeypatch.setattr(time_module, "monotonic", lambda: real() + clock["offset"])
    stub = StubTrainer(noise=0.0, seconds=lambda s: 300.0)

    def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
        outcome, state = stub(*args, **kwargs)
        clock["offset"] += outcome.wall_seconds
        return outcome, state

    monkeypatch.setattr(runner_module, "train_strategy", timed)
    result = _search(data, tiny_bert, tmp_path, budget="20m", pruner="none", curve_sizes=())
    trials = pd.DataFrame(result.trials_)
    kept = trials[trials["fail_reason"].fillna("").str.contains("kept for re-seeding")]
    assert len(kept) == 1 and kept.index[0] == 2, trials[["status", "fail_reason"]]
    reason = str(kept["fail_reason"].iloc[0])  # 600 s less the real seconds the test took
    assert re.search(r"predicts 300 s, and the 59\d s left are kept for re-seeding the leader "
                     r"\(about 345 s\)", reason), reason
    rec = result.recommendation_
    assert rec.confirmed and rec.seeds == 2
    assert [s.frozen_layers for s, _, _ in stub.calls] == [4, 0, 0]  # baselines, then the re-seed
    reseeds = [t for t in result.study_.trials if t.user_attrs.get("purpose") == "reseed"]
    assert len(reseeds) == 1 and reseeds[0].number == 3


@pytest.mark.parametrize(
    ("purpose", "predicted", "left", "leader", "seeds", "reason", "phase"),
    [  # the MPNet run: a 157 s leader (181 s to re-seed), a 400 s full fine-tune, 650 s left
     (None, 400.0, 650.0, 181.0, 2, "could not also hold a re-seed of it (about 460 s)", False),
     (None, 150.0, 650.0, 181.0, 2, "", False),  # it and either re-seed fit
     (None, 300.0, 600.0, 345.0, 2, "kept for re-seeding the leader (about 345 s)", True),
     (None, 200.0, 600.0, 900.0, 2, "", False),  # the leader's re-seed no longer fits anyway
     (None, 400.0, 650.0, 181.0, 1, "", False),  # no re-seeding asked for
     ("reseed", 400.0, 650.0, 181.0, 2, "", False),  # follow-ups are not held back
     (None, None, 650.0, 181.0, 2, "", False)])  # no cost model yet
def test_a_new_strategy_keeps_time_for_confirming_the_leader_or_itself(
        purpose, predicted, left, leader, seeds, reason, phase) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from autoft.searching.followups import FollowupSettings

    state = runner_module.RunState(reseed_seconds=leader)
    fake = SimpleNamespace(state=state, limits=SimpleNamespace(seconds=1200.0),
                           config=SimpleNamespace(followups=FollowupSettings(seeds=seeds)))
    got = runner_module.TrialRunner._keeps_reseed_time(fake, purpose, predicted, left)
    assert (reason in got) if reason else got == ""
    assert state.followups_active is phase



class _ProbeWinsEarly(StubTrainer):
    """Full fine-tuning ends lower than the linear probe (and so starts far behind it); the
    MLP-head probe ends lower than the linear one."""

    def score(self, strategy: Any, seed: int) -> float:
        if strategy.frozen_layers < 4:
            return 0.5
        return 0.9 if strategy.head.kind == "linear" else 0.7


def test_baselines_other_than_probes_face_the_pruner(data, tiny_bert, tmp_path,  # type: ignore[no-untyped-def]
                                                     monkeypatch) -> None:
    # the cross-encoder baselines of STS-B scored 0.42 Spearman after an epoch against the
    # probe's 0.78 and, run to the end, took most of a 20-minute budget. A linear probe runs to
    # the end (the reference; seconds); the other baselines face successive halving.
    stub = _ProbeWinsEarly(noise=0.0)
    monkeypatch.setattr(runner_module, "train_strategy", stub)
    space = {**SPACE, "epochs": 3, "baselines": [
        {"frozen_layers": "L", "head_learning_rate": 5e-3, "head": "linear"},
        {"frozen_layers": "L", "head_learning_rate": 5e-3, "head": "mlp"},
        {"frozen_layers": 0, "learning_rate": 5e-3, "head_learning_rate": 5e-3, "head": "linear"},
    ]}
    result = _search(data, tiny_bert, tmp_path, space=space, n_trials=3, curve_sizes=(), seeds=1)
    trials = pd.DataFrame(result.trials_).set_index("number")
    assert trials["baseline"].all()
    assert trials["frozen_layers"].tolist() == [4, 4, 0]
    # both probes trained to the end, the weaker one too
    assert trials["status"].tolist() == ["complete", "complete", "pruned"]
    steps = [len(t.intermediate_values) for t in result.study_.trials]
    # 2 evaluations an epoch: the probes report all 6, the pruned baseline the 4 of its first
    # rung (2 of 3 epochs)
    assert steps == [6, 6, 4]


def test_successive_halving_first_compares_after_two_thirds_of_the_epochs() -> None:
    from autoft.searching.runner import first_rung_epochs, make_pruner

    assert [first_rung_epochs(e) for e in (1, 2, 3, 4, 6, 10)] == [1, 2, 2, 3, 4, 7]
    pruner = make_pruner("successive_halving", evals_per_epoch=2, max_epochs=3)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    # a trial far behind the first finisher is not stopped before its 4th evaluation (epoch 2)
    leader = study.ask()
    for step in range(1, 7):
        leader.report(0.9, step)
        leader.should_prune()
    study.tell(leader, 0.9)
    for _ in range(2):
        other = study.ask()
        verdicts = []
        for step in range(1, 7):
            other.report(0.1, step)
            verdicts.append(other.should_prune())
            if verdicts[-1]:
                break
        assert verdicts == [False, False, False, True]
        study.tell(other, state=optuna.trial.TrialState.PRUNED)
