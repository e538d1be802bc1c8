"""The recommendation rule and the follow-up plan, on synthetic studies (no training)."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from autoft.followup import estimate_seconds, is_duplicate_followup, plan_followups
from autoft.recommend import recommend
from autoft.strategy import Head, Strategy

optuna.logging.set_verbosity(optuna.logging.ERROR)


def _add(study: optuna.Study, frozen: int, lr: float, score: float, seconds: float,
         reseed_of: int | None = None, **extra: Any) -> int:
    strategy = Strategy(frozen_layers=frozen, learning_rate=lr, head=Head("linear"))
    attrs: dict[str, Any] = {
        "strategy": strategy.to_dict(), "best_score": score, "wall_seconds": seconds,
        "train_seconds": seconds * 0.8, "eval_seconds": seconds * 0.2,
        "trainable_params": 1000 * (7 - frozen), "total_params": 7000,
        "description": f"k={frozen} lr={lr:g}", "status": "complete",
    }
    if reseed_of is not None:
        attrs.update(purpose="reseed", reseed_of=reseed_of)
    attrs.update(extra)
    study.add_trial(create_trial(
        state=TrialState.COMPLETE, value=score, params={"learning_rate": lr},
        distributions={"learning_rate": FloatDistribution(1e-6, 1.0, log=True)}, user_attrs=attrs))
    return study.trials[-1].number


def test_single_cheaper_run_does_not_displace_a_reseeded_leader() -> None:
    study = optuna.create_study(direction="maximize")
    full = _add(study, 0, 1e-4, 0.842, 60.0)
    _add(study, 0, 1e-4, 0.822, 60.0, reseed_of=full)
    _add(study, 0, 1e-4, 0.829, 60.0, reseed_of=full)
    cheap = _add(study, 2, 1e-4, 0.827, 30.0)  # one run, 0.004 below the leader's mean 0.831
    rec = recommend(study, "accuracy", num_layers=6)
    assert rec is not None
    assert rec.trial_number == full and rec.seeds == 3
    assert abs(rec.score - (0.842 + 0.822 + 0.829) / 3) < 1e-12
    assert rec.cheaper_alternative is not None
    assert rec.cheaper_alternative["trial_number"] == cheap
    assert "in a single run" in rec.reason


def test_cheaper_reseeded_strategy_within_noise_is_recommended() -> None:
    study = optuna.create_study(direction="maximize")
    full = _add(study, 0, 1e-4, 0.842, 60.0)
    _add(study, 0, 1e-4, 0.822, 60.0, reseed_of=full)
    _add(study, 0, 1e-4, 0.829, 60.0, reseed_of=full)
    cheap = _add(study, 2, 1e-4, 0.830, 30.0)
    _add(study, 2, 1e-4, 0.824, 30.0, reseed_of=cheap)
    rec = recommend(study, "accuracy", num_layers=6)
    assert rec is not None and rec.trial_number == cheap and rec.seeds == 2
    assert "within the noise" in rec.reason


def test_without_seeds_the_tolerance_decides() -> None:
    study = optuna.create_study(direction="maximize")
    _add(study, 0, 1e-4, 0.840, 60.0)
    cheap = _add(study, 3, 1e-4, 0.837, 20.0)
    rec = recommend(study, "accuracy", num_layers=6, tolerance=0.005)
    assert rec is not None and rec.trial_number == cheap
    rec = recommend(study, "accuracy", num_layers=6, tolerance=0.001)
    assert rec is not None and rec.trial_number == 0


def test_followups_reseed_round_robin_before_probes() -> None:
    study = optuna.create_study(direction="maximize")
    a = _add(study, 0, 1e-4, 0.84, 60.0)
    b = _add(study, 2, 1e-4, 0.83, 30.0)
    _add(study, 6, 1e-3, 0.78, 2.0)
    _add(study, 6, 3e-3, 0.70, 2.0)
    plans = plan_followups(study, num_layers=6, train_size=1000, seeds=3, top_k=2,
                           curve_sizes=(100,))
    purposes = [attrs["purpose"] for _, attrs in plans]
    assert purposes[:4] == ["reseed"] * 4 and set(purposes[4:]) == {"learning_curve"}
    assert [attrs["reseed_of"] for _, attrs in plans[:4]] == [a, b, a, b]
    # one probe per family at 100 examples: k=0, k=2 and the head-only family
    probes = [attrs for _, attrs in plans[4:]]
    assert sorted(p["curve_of"] for p in probes) == [0, 1, 2]
    # 2 x 60 + 2 x 30 s of re-seeds; probes: 10% of the training seconds plus the evaluations
    expected = 180.0 + (48 * 0.1 + 12) + (24 * 0.1 + 6) + (1.6 * 0.1 + 0.4)
    assert abs(estimate_seconds(study, plans, 1000) - expected) < 1e-9


def test_among_cheaper_candidates_the_best_mean_wins() -> None:
    # the issue-2 benchmark's situation: two k=1 strategies of equal cost within the noise of full
    # fine-tuning; the better of them is recommended, not the one that happened to run faster
    study = optuna.create_study(direction="maximize")
    full = _add(study, 0, 1.2e-4, 0.8417, 62.0)
    _add(study, 0, 1.2e-4, 0.8280, 62.0, reseed_of=full)
    _add(study, 0, 1.2e-4, 0.8211, 62.0, reseed_of=full)
    worse = _add(study, 1, 1.3e-4, 0.8280, 38.5)
    _add(study, 1, 1.3e-4, 0.8257, 38.5, reseed_of=worse)
    _add(study, 1, 1.3e-4, 0.8291, 38.5, reseed_of=worse)
    better = _add(study, 1, 1.15e-4, 0.8268, 39.3)
    _add(study, 1, 1.15e-4, 0.8280, 39.3, reseed_of=better)
    _add(study, 1, 1.15e-4, 0.8349, 39.3, reseed_of=better)
    rec = recommend(study, "accuracy", num_layers=6)
    assert rec is not None and rec.trial_number == better
    assert abs(rec.score - (0.8268 + 0.8280 + 0.8349) / 3) < 1e-12


def test_step_down_repeats_from_the_new_pick() -> None:
    study = optuna.create_study(direction="maximize")
    _add(study, 0, 1e-4, 0.840, 90.0)
    _add(study, 2, 1e-4, 0.838, 50.0)
    cheapest = _add(study, 4, 1e-4, 0.837, 20.0)
    rec = recommend(study, "accuracy", num_layers=6, tolerance=0.005)
    assert rec is not None and rec.trial_number == cheapest


def test_followup_ids_name_each_run_once() -> None:
    study = optuna.create_study(direction="maximize")
    a = _add(study, 0, 1e-4, 0.84, 60.0)
    b = _add(study, 2, 1e-4, 0.83, 30.0)
    _add(study, 0, 1e-4, 0.83, 60.0, reseed_of=a, followup_id=f"reseed:{a}:1")  # a has 2 seeds
    plans = plan_followups(study, num_layers=6, train_size=1000, seeds=3, top_k=2,
                           curve_sizes=(100,))
    ids = [attrs["followup_id"] for _, attrs in plans]
    assert ids[:3] == [f"reseed:{a}:2", f"reseed:{b}:1", f"reseed:{b}:2"]  # round-robin
    assert set(ids[3:]) == {f"curve:{a}:100", f"curve:{b}:100"}
    assert len(set(ids)) == len(ids)
    # b's first extra seed failed and its second ran: a new plan asks for index 1 again
    study.add_trial(create_trial(
        state=TrialState.FAIL, params={"learning_rate": 1e-4},
        distributions={"learning_rate": FloatDistribution(1e-6, 1.0, log=True)},
        user_attrs={"purpose": "reseed", "reseed_of": b, "followup_id": f"reseed:{b}:1"}))
    _add(study, 2, 1e-4, 0.82, 30.0, reseed_of=b, followup_id=f"reseed:{b}:2")
    plans = plan_followups(study, num_layers=6, train_size=1000, seeds=3, top_k=2, curve_sizes=())
    assert [attrs["followup_id"] for _, attrs in plans] == [f"reseed:{a}:2", f"reseed:{b}:1"]


def test_duplicate_followup_rule() -> None:
    study = optuna.create_study(direction="maximize")
    dist = {"learning_rate": FloatDistribution(1e-6, 1.0, log=True)}

    def add(state: TrialState, key: str | None, **extra: Any) -> optuna.trial.FrozenTrial:
        attrs = {} if key is None else {"followup_id": key}
        study.add_trial(create_trial(state=state, value=0.5 if state.is_finished() and
                                     state != TrialState.FAIL else None,
                                     params={"learning_rate": 1e-4}, distributions=dist,
                                     user_attrs={**attrs, **extra}))
        return study.trials[-1]

    plain = add(TrialState.COMPLETE, None)
    first = add(TrialState.COMPLETE, "reseed:0:1")
    twin = add(TrialState.WAITING, "reseed:0:1")
    other = add(TrialState.WAITING, "reseed:0:2")
    trials = study.get_trials(deepcopy=False)
    assert is_duplicate_followup(plain, trials) is None
    assert is_duplicate_followup(first, trials) is None  # the lowest number runs
    assert is_duplicate_followup(twin, trials) == first.number
    assert is_duplicate_followup(other, trials) is None
    # a failed (interrupted) follow-up does not block its retry
    crashed = add(TrialState.FAIL, "curve:0:100", interrupted=True)
    retry = add(TrialState.WAITING, "curve:0:100", retry_of=crashed.number)
    assert is_duplicate_followup(retry, study.get_trials(deepcopy=False)) is None
    # a skipped duplicate does not block anything either
    skipped = add(TrialState.PRUNED, "curve:0:50", duplicate_of=plain.number)
    later = add(TrialState.WAITING, "curve:0:50")
    assert is_duplicate_followup(later, study.get_trials(deepcopy=False)) is None
    assert skipped.number < later.number
