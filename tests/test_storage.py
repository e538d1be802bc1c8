from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from autoft.errors import StudyError
from autoft.storage import Heartbeat, describe_storage, fail_stale_trials, open_storage


def test_local_storage_kinds(tmp_path: Path) -> None:
    one = open_storage(tmp_path / "one")
    assert isinstance(one, optuna.storages.RDBStorage) and (tmp_path / "one" / "study.db").exists()
    many = open_storage(tmp_path / "many", workers=3)
    assert isinstance(many, optuna.storages.JournalStorage)
    assert (tmp_path / "many" / "study.journal").exists() or True  # created on first write
    optuna.create_study(storage=many, study_name="s")
    assert (tmp_path / "many" / "study.journal").exists()
    # reopening finds the journal without being told the worker count
    assert isinstance(open_storage(tmp_path / "many"), optuna.storages.JournalStorage)
    assert describe_storage(many) == "journal file"


def test_sqlite_study_refuses_several_workers(tmp_path: Path) -> None:
    optuna.create_study(storage=open_storage(tmp_path), study_name="s")
    with pytest.raises(StudyError, match="continue it with one worker"):
        open_storage(tmp_path, workers=2)


def test_missing_study_not_created_when_asked(tmp_path: Path) -> None:
    with pytest.raises(StudyError, match="no study in"):
        open_storage(tmp_path / "nothing", create=False)
    assert not (tmp_path / "nothing").exists()


def test_describe_storage_hides_password() -> None:
    storage = optuna.storages.RDBStorage("sqlite:///:memory:")
    assert describe_storage(storage) == "sqlite:///:memory:"


def test_heartbeat_stamps_running_trial(tmp_path: Path) -> None:
    study = optuna.create_study(storage=open_storage(tmp_path))
    trial = study.ask()
    with Heartbeat(study._storage, trial._trial_id, interval=0.05):
        time.sleep(0.3)
    stamps = study._storage.get_trial(trial._trial_id).system_attrs["autoft_heartbeat"]
    assert time.time() - stamps < 1.0


def test_stale_trials_failed_and_retried_once(tmp_path: Path) -> None:
    study = optuna.create_study(storage=open_storage(tmp_path))
    fresh = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    dead = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    study._storage.set_trial_system_attr(dead._trial_id, "autoft_heartbeat", time.time() - 600)
    study._storage.set_trial_system_attr(fresh._trial_id, "autoft_heartbeat", time.time())
    failed = fail_stale_trials(study, grace=60)
    assert [t.number for t in failed] == [dead.number]
    states = {t.number: t.state for t in study.trials}
    assert states[fresh.number] == TrialState.RUNNING and states[dead.number] == TrialState.FAIL
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 1
    assert waiting[0].system_attrs["fixed_params"] == {"x": dead.params["x"]}
    assert waiting[0].user_attrs["retry_of"] == dead.number
    # the same interrupted trial is never retried twice
    fail_stale_trials(study, grace=60)
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 1
    # grace=None: every running trial is stale (one local worker starting)
    assert [t.number for t in fail_stale_trials(study, grace=None)] == [fresh.number]


def test_retried_followup_stays_a_followup(tmp_path: Path) -> None:
    study = optuna.create_study(storage=open_storage(tmp_path))
    attrs = {"purpose": "reseed", "reseed_of": 3, "followup_id": "reseed:3:1"}
    study.enqueue_trial({"x": 0.5}, user_attrs=attrs)
    dead = study.ask()  # the process died before suggest() recorded any parameter
    study._storage.set_trial_system_attr(dead._trial_id, "autoft_heartbeat", time.time() - 600)
    fail_stale_trials(study, grace=60)
    (retry,) = study.get_trials(states=(TrialState.WAITING,))
    assert retry.user_attrs == {**attrs, "retry_of": dead.number}
    assert retry.system_attrs["fixed_params"] == {"x": 0.5}  # the re-seed's strategy, not a new one
