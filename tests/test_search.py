from __future__ import annotations

import importlib
import json

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

import autoft
from autoft.errors import BackboneError, DataError, StudyError, TrialError
from autoft.report import build_report, load_study, render_markdown, study_runs

from .helpers import synthetic_texts

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


def test_search_runs_baselines_then_sampler_and_reports(data, tiny_bert, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = _search(data, tiny_bert, tmp_path, n_trials=4)
    trials = pd.DataFrame(result.trials_)
    assert trials["number"].tolist() == [0, 1, 2, 3]
    assert trials["frozen_layers"].tolist()[:2] == [0, 4]  # the baselines come first
    assert set(trials["state"]) <= {"COMPLETE", "PRUNED"}
    # each trial recorded its measured cost and the strategy read back from the model
    head_only = trials[trials["frozen_layers"] == 4].iloc[0]
    assert head_only["trainable_params"] == 32 * 2 + 2
    assert (trials["seconds"] > 0).all() and (trials["examples_trained"] > 0).all()
    assert result.best_score_ == max(trials.loc[trials["state"] == "COMPLETE", "score"])
    assert result.best_strategy_ == autoft.Strategy.from_dict(result.best_params_)
    assert result.best_trial_.number == result.recommendation_.trial_number
    assert isinstance(result.study_, optuna.Study)
    for kind in ("json", "markdown", "csv"):
        assert result.report_paths_[kind].is_file()
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["data"]["train_size"] == 120 and report["data"]["validation_size"] == 40
    assert report["recommendation"]["trial_number"] == result.best_trial_.number
    assert len(report["trials"]) == 4
    assert "autoft.fine_tune(" in report["snippet"]
    md = (tmp_path / "report.md").read_text()
    assert "## Recommendation" in md and "| 3 |" in md


def test_rerun_resumes_the_same_study(data, tiny_bert, tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = _search(data, tiny_bert, tmp_path, n_trials=3)
    before = {t.number: (t.state, t.value, t.params) for t in first.study_.trials}
    second = _search(data, tiny_bert, tmp_path, n_trials=5)
    after = {t.number: (t.state, t.value, t.params) for t in second.study_.trials}
    assert sorted(after) == [0, 1, 2, 3, 4]
    assert {n: after[n] for n in before} == before  # completed trials kept, not rerun
    runs = study_runs(second.study_)
    assert [r["trials_run"] for r in runs] == [3, 2]
    # asking for no more trials than the study has runs nothing
    third = _search(data, tiny_bert, tmp_path, n_trials=5)
    assert len(third.study_.trials) == 5


def test_interrupted_trial_is_failed_and_retried_once(data, tiny_bert, tmp_path) -> None:  # type: ignore[no-untyped-def]
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
    report = build_report(result.study_)
    assert "retry of trial 2" in render_markdown(report)


def test_resume_with_other_data_refused(data, tiny_bert, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _search(data, tiny_bert, tmp_path, n_trials=1)
    other = synthetic_texts(160, seed=1)
    with pytest.raises(StudyError, match="different data"):
        _search(other, tiny_bert, tmp_path, n_trials=2)


def test_time_budget_stops_search(data, tiny_bert, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = _search(data, tiny_bert, tmp_path, budget=2.0)
    runs = study_runs(result.study_)
    assert "time budget" in runs[0]["stopped_because"]
    assert runs[0]["seconds"] < 2.0 + 5.0
    assert all(t.state != TrialState.RUNNING for t in result.study_.trials)


def test_failing_trials_stop_search_with_first_reason(data, tiny_bert, tmp_path,  # type: ignore[no-untyped-def]
                                                      monkeypatch) -> None:
    search_module = importlib.import_module("autoft.search")  # the module, not the function

    calls = {"n": 0}

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        raise autoft.TrialError(f"training loss became nan (call {calls['n']})")

    monkeypatch.setattr(search_module, "train_strategy", broken)
    with pytest.raises(TrialError, match=r"3 trials in a row failed.*call 1\)"):
        _search(data, tiny_bert, tmp_path, n_trials=10)
    report = json.loads((tmp_path / "report.json").read_text())
    reasons = [t["fail_reason"] for t in report["trials"]]
    assert reasons == [f"TrialError: training loss became nan (call {i})" for i in (1, 2, 3)]


def test_bad_data_raised_before_model_is_loaded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError, match="label column 'stars' not found"):
        autoft.search((["a", "b"], [0, 1]), model=str(tmp_path / "no-model"), label_column="stars",
                      out=tmp_path, n_trials=1)
    assert not (tmp_path / "study.db").exists()


def test_bad_arguments_raised_early(data, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(autoft.AutoftError, match="metric 'f2'"):
        autoft.search(data, metric="f2", out=tmp_path)
    with pytest.raises(autoft.BudgetError, match="cannot parse duration 'soon'"):
        autoft.search(data, budget="soon", out=tmp_path)
    with pytest.raises(autoft.AutoftError, match="pruner 'asha'"):
        autoft.search(data, pruner="asha", out=tmp_path)
    with pytest.raises(BackboneError, match="no config.json"):
        autoft.search(data, model=str(tmp_path), out=tmp_path / "o", n_trials=1)


def test_search_result_from_dir_matches(data, tiny_bert, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = _search(data, tiny_bert, tmp_path, n_trials=2, metric="macro_f1")
    again = autoft.SearchResult.from_dir(tmp_path)
    assert again.trials_ == result.trials_
    assert again.best_score_ == result.best_score_
    assert build_report(again.study_)["metric"] == "macro_f1"


def test_ctrl_c_keeps_study_and_rerun_continues(data, tiny_bert, tmp_path,  # type: ignore[no-untyped-def]
                                                monkeypatch) -> None:
    search_module = importlib.import_module("autoft.search")
    real = search_module.train_strategy
    calls = {"n": 0}

    def interrupt_second(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(search_module, "train_strategy", interrupt_second)
    with pytest.raises(KeyboardInterrupt):
        _search(data, tiny_bert, tmp_path, n_trials=3)
    study = load_study(tmp_path)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL]
    assert (tmp_path / "report.md").is_file()  # the report is written on the way out
    first_value = study.trials[0].value
    monkeypatch.setattr(search_module, "train_strategy", real)
    result = _search(data, tiny_bert, tmp_path, n_trials=3)
    trials = result.study_.trials
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert trials[0].value == first_value
    assert trials[2].user_attrs["retry_of"] == 1  # the interrupted baseline runs again
    assert trials[2].params == trials[1].params


def test_nan_and_oom_trials_fail_with_reasons_and_search_goes_on(data, tiny_bert, tmp_path,  # type: ignore[no-untyped-def]
                                                                  monkeypatch) -> None:
    import torch

    search_module = importlib.import_module("autoft.search")
    real = search_module.train_strategy
    calls = {"n": 0}

    def flaky(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise autoft.TrialError("training loss became nan at step 3 (epoch 1)")
        if calls["n"] == 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*args, **kwargs)

    monkeypatch.setattr(search_module, "train_strategy", flaky)
    result = _search(data, tiny_bert, tmp_path, n_trials=4)
    states = result.trials_["state"]
    assert states.count("FAIL") == 2 and len(states) == 4
    reasons = [r for r in result.trials_["fail_reason"] if r]
    assert reasons == ["TrialError: training loss became nan at step 3 (epoch 1)",
                       "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"]
    md = (tmp_path / "report.md").read_text()
    assert "loss became nan" in md and "CUDA out of memory" in md
    assert result.best_score_ is not None


def test_same_seed_same_sequence_of_trials(data, tiny_bert, tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = _search(data, tiny_bert, tmp_path / "a", n_trials=4, seed=3)
    b = _search(data, tiny_bert, tmp_path / "b", n_trials=4, seed=3)
    assert [t.params for t in a.study_.trials] == [t.params for t in b.study_.trials]
    assert [t.value for t in a.study_.trials] == [t.value for t in b.study_.trials]
    trial = a.study_.trials[0]
    assert trial.user_attrs["seed"] == 3
    assert trial.user_attrs["data_fingerprint"] == a.study_.user_attrs["autoft"]["data"]["fingerprint"]
    assert set(trial.user_attrs["versions"]) >= {"autoft", "torch", "transformers", "optuna"}


def test_status_of_a_finished_study(data, tiny_bert, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from autoft.report import study_status

    result = _search(data, tiny_bert, tmp_path, n_trials=3)
    status = study_status(result.study_)
    assert sum(status["counts"].values()) == 3
    assert status["best"] == result.best_score_ and status["running"] == []
    assert status["seconds_left"] is None


def test_followups_reseed_top_strategies_and_probe_smaller_sizes(data, tiny_bert, tmp_path) -> None:  # type: ignore[no-untyped-def]
    space = {**SPACE, "frozen_layers": {"type": "categorical", "choices": [0, 4]},
             "head": "linear"}
    result = autoft.search(data, model=str(tiny_bert), space=space, out=tmp_path, device="cpu",
                           validation_size=40, n_trials=14, pruner="none", seeds=3, top_k=2,
                           curve_sizes=(0.3, 0.6))
    trials = pd.DataFrame(result.trials_)
    assert len(trials) == 14 and set(trials["state"]) == {"COMPLETE"}
    reseeds = trials[trials["purpose"] == "reseed"]
    curves = trials[trials["purpose"] == "learning_curve"]
    assert len(reseeds) == 4 and len(curves) == 4
    assert sorted(reseeds["reseed_of"].value_counts().tolist()) == [2, 2]  # 3 runs each
    assert sorted(curves["train_size"].tolist()) == [36, 36, 72, 72]
    assert set(trials.loc[trials["purpose"].isna(), "train_size"]) == {120}
    rec = result.recommendation_
    if rec.trial_number in set(reseeds["reseed_of"]):
        assert rec.seeds == 3 and rec.score_std is not None
    report = json.loads((tmp_path / "report.json").read_text())
    analysis = report["analysis"]
    assert {len(c["points"]) for c in analysis["learning_curves"]} == {3}
    sizes = sorted({r["train_size"] for r in analysis["size_budget_table"]})
    assert sizes == [36, 72, 120, 480]
    assert analysis["cost_model"]["trials_used"] == 14
    md = (tmp_path / "report.md").read_text()
    assert "## Strategy by dataset size and budget" in md and "### Seeds" in md
    assert "data-plot='size_curves'" in (tmp_path / "report.html").read_text()


def test_followups_enqueued_twice_run_once(data, tiny_bert, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # two workers that decide at the same moment both enqueue the follow-ups; simulate it by
    # enqueuing every planned follow-up twice, the copies interleaved as a race could leave them
    search_module = importlib.import_module("autoft.search")

    def enqueue_twice(study, ctx):  # type: ignore[no-untyped-def]
        study.set_user_attr("followups_enqueued", True)
        for params, attrs in search_module._plan(study, ctx):
            study.enqueue_trial(params, user_attrs=attrs)
            study.enqueue_trial(params, user_attrs=attrs)

    monkeypatch.setattr(search_module, "_enqueue_followups", enqueue_twice)
    space = {**SPACE, "frozen_layers": {"type": "categorical", "choices": [0, 4]},
             "head": "linear"}
    result = autoft.search(data, model=str(tiny_bert), space=space, out=tmp_path, device="cpu",
                           validation_size=40, n_trials=12, pruner="none", seeds=3, top_k=2,
                           curve_sizes=(0.5,))
    trials = pd.DataFrame(result.trials_)
    assert len(trials) == 12 and set(trials["state"]) == {"COMPLETE"}
    assert sorted(trials["reseed_of"].dropna().value_counts().tolist()) == [2, 2]
    assert len(trials[trials["purpose"] == "learning_curve"]) == 2
    skipped = [t for t in result.study_.trials if t.user_attrs.get("duplicate_of") is not None]
    # 6 follow-ups start after the 6th trial; each twin is popped right after its original and
    # skipped, except the last one: the 12th counted trial ends the search first
    assert len(skipped) == 5
    waiting = result.study_.get_trials(states=(TrialState.WAITING,))
    assert [t.user_attrs["followup_id"] for t in waiting] == [trials["followup_id"].iloc[-1]]
    for twin in skipped:
        assert twin.state == TrialState.PRUNED and "strategy" not in twin.user_attrs
        first = result.study_.trials[twin.user_attrs["duplicate_of"]]
        assert first.user_attrs["followup_id"] == twin.user_attrs["followup_id"]
        assert first.state == TrialState.COMPLETE
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["trial_counts"]["PRUNED"] == 0 and report["trial_counts"]["COMPLETE"] == 12
    # `autoft worker` processes joining this study would plan with the same settings
    stored = result.study_.user_attrs["autoft_followups"]
    assert search_module._followup_settings(stored) == {
        "seeds": 3, "top_k": 2, "curve_sizes": (0.5,), "reserve": 0.25}
    assert search_module._followup_settings(None) == {}  # a study from before they were stored


def test_space_that_searches_nothing_warns(data, tiny_bert, tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    fixed = {k: v for k, v in SPACE.items() if k != "baselines"}
    fixed.update(frozen_layers=2, learning_rate=5e-3, head_learning_rate=5e-3, head="linear",
                 epochs=1)
    with caplog.at_level("WARNING", logger="autoft"):
        result = _search(data, tiny_bert, tmp_path, space=fixed, n_trials=1, seeds=1,
                         curve_sizes=())
    assert len(result.trials_["number"]) == 1
    assert "the search space fixes every field" in caplog.text
