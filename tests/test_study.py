from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from autoft.errors import StudyError
from autoft.study import (
    Heartbeat,
    TrialRecord,
    describe_storage,
    fail_stale_trials,
    hide_password,
    lock_folder,
    open_storage,
    trial_records,
)
from autoft.study.storage import resolve_storage_url


def test_local_storage_kinds(tmp_path: Path) -> None:
    one = open_storage(tmp_path / "one")
    assert isinstance(one, optuna.storages.RDBStorage) and (tmp_path / "one" / "study.db").exists()
    many = open_storage(tmp_path / "many", workers=3)
    assert isinstance(many, optuna.storages.JournalStorage)
    optuna.create_study(storage=many, study_name="s")
    journal = tmp_path / "many" / "study.journal"
    assert journal.is_file() and b'"study_name":"s"' in journal.read_bytes()
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


def test_describe_storage_names_the_database() -> None:
    storage = optuna.storages.RDBStorage("sqlite:///:memory:")
    assert describe_storage(storage) == "sqlite:///:memory:"


@pytest.mark.parametrize("url", [
    "postgresql://alice:s3cr3t-pw@db.example:5432/studies",
    "postgresql://alice@db.example/studies?password=s3cr3t-pw",
    "postgresql+psycopg2://alice:s3cr3t-pw@db.example/studies?sslmode=require",
    "mysql://u:s3cr3t-pw@h/d;password=s3cr3t-pw",
])
def test_passwords_never_shown(url: str) -> None:
    shown = hide_password(url)
    assert "s3cr3t-pw" not in shown and "***" in shown
    assert "db.example" in shown or "h/d" in shown
    with pytest.raises(StudyError) as info:  # nothing listens there: the error names the URL
        open_storage(url=url.replace("db.example", "127.0.0.1").replace(":5432", ":9"))
    assert "s3cr3t-pw" not in str(info.value)


def test_storage_url_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AUTOFT_TEST_DB", f"sqlite:///{tmp_path / 's.db'}")
    assert resolve_storage_url("env:AUTOFT_TEST_DB") == f"sqlite:///{tmp_path / 's.db'}"
    assert isinstance(open_storage(url="env:AUTOFT_TEST_DB"), optuna.storages.RDBStorage)
    with pytest.raises(StudyError, match="environment variable AUTOFT_NOPE is not set"):
        open_storage(url="env:AUTOFT_NOPE")


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
    study.enqueue_trial({"x": 0.5}, user_attrs={**attrs, "planned_params": {"x": 0.5}})
    dead = study.ask()  # the process died before suggest() recorded any parameter
    study._storage.set_trial_system_attr(dead._trial_id, "autoft_heartbeat", time.time() - 600)
    fail_stale_trials(study, grace=60)
    (retry,) = study.get_trials(states=(TrialState.WAITING,))
    assert retry.user_attrs == {**attrs, "retry_of": dead.number, "planned_params": {"x": 0.5}}
    assert retry.system_attrs["fixed_params"] == {"x": 0.5}  # the re-seed's strategy, not a new one


def _journal_with_trials(folder: Path, n: int = 3) -> Path:
    study = optuna.create_study(storage=open_storage(folder, workers=2), study_name="s")
    for i in range(n):
        study.add_trial(optuna.trial.create_trial(
            value=float(i), params={"x": 0.1 * i},
            distributions={"x": optuna.distributions.FloatDistribution(0, 1)}))
    return folder / "study.journal"


@pytest.mark.parametrize("cut", [7, 30, -1])
def test_a_cut_off_last_journal_record_is_set_aside(tmp_path: Path, cut: int,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    path = _journal_with_trials(tmp_path)
    whole = path.read_bytes()
    # a worker killed while appending: part of one more record, no newline
    fragment = b'{"op_code": 4, "worker_id": "w", "study_id": 0, "datetime_start": "2026'
    path.write_bytes(whole + fragment[:cut])
    with caplog.at_level("WARNING", logger="autoft"):
        study = optuna.load_study(study_name="s", storage=open_storage(tmp_path))
    assert [t.value for t in study.trials] == [0.0, 1.0, 2.0]  # every finished trial kept
    assert "was cut off" in caplog.text
    backups = list(tmp_path.glob("study.journal.broken-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == whole + fragment[:cut]
    assert path.read_bytes() == whole


def test_a_broken_record_inside_the_journal_is_an_error(tmp_path: Path) -> None:
    path = _journal_with_trials(tmp_path)
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1][:10]
    broken = b"\n".join(lines)
    path.write_bytes(broken)
    with pytest.raises(StudyError, match="line 2 .* left unchanged"):
        open_storage(tmp_path)
    assert path.read_bytes() == broken


def test_a_folder_in_use_is_refused(tmp_path: Path) -> None:
    with lock_folder(tmp_path):
        with pytest.raises(StudyError, match="in use by another autoft search"):
            lock_folder(tmp_path).acquire()
    with lock_folder(tmp_path):  # released: usable again
        pass


def test_records_read_what_trials_wrote(tmp_path: Path) -> None:
    study = optuna.create_study(storage=open_storage(tmp_path))
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.PRUNED, params={"x": 0.2}, distributions=dist,
        user_attrs={"strategy": {"frozen_layers": 2, "head": "linear"}, "best_score": 0.8,
                    "status": "deadline", "scores": [0.7, 0.8], "train_seconds": 3.0,
                    "eval_seconds": 1.0, "wall_seconds": 6.0}))
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL, params={"x": 0.3},
                                              distributions=dist))
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.PRUNED, params={}, distributions={}, user_attrs={"duplicate_of": 0}))
    budget, killed = trial_records(study.get_trials())
    assert isinstance(budget, TrialRecord)
    assert budget.status == "budget" and budget.score == 0.8 and budget.evaluations == 2
    assert budget.cost_seconds == 4.0 and budget.seconds == 6.0 and not budget.finished
    assert budget.key == TrialRecord.from_trial(study.trials[0]).key  # type: ignore[union-attr]
    assert killed.status == "interrupted" and "interrupted" in str(killed.fail_reason)


def test_a_journal_cut_at_any_byte_keeps_every_whole_record(tmp_path: Path) -> None:
    # a writer killed at a random point leaves the file cut at some byte: whatever the byte, the
    # study opens, keeps every trial whose record was whole, and takes new trials
    import random

    source = _journal_with_trials(tmp_path / "source", n=6)
    whole = source.read_bytes()
    ends = [i + 1 for i, b in enumerate(whole) if b == ord("\n")]
    rng = random.Random(0)
    for cut in sorted(rng.sample(range(ends[0] + 1, len(whole)), 25)):
        folder = tmp_path / f"cut{cut}"
        folder.mkdir()
        (folder / "study.journal").write_bytes(whole[:cut])
        kept = sum(1 for e in ends if e <= cut)  # whole records before the cut
        study = optuna.load_study(study_name="s", storage=open_storage(folder))
        expected = optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(_prefix(tmp_path, whole, ends, kept)))))
        assert [t.value for t in study.trials] == [t.value for t in expected.trials]
        study.add_trial(optuna.trial.create_trial(value=9.0))
        again = optuna.load_study(study_name="s", storage=open_storage(folder))
        assert [t.value for t in again.trials] == [t.value for t in expected.trials] + [9.0]


def _prefix(tmp_path: Path, whole: bytes, ends: list[int], kept: int) -> Path:
    path = tmp_path / f"prefix{kept}.journal"
    path.write_bytes(whole[:ends[kept - 1]])
    return path


WRITER = """
import sys, optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
path = sys.argv[1]
storage = JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
study = optuna.create_study(study_name="s", storage=storage, load_if_exists=True)
i = 0
while True:
    study.add_trial(optuna.trial.create_trial(value=float(i), user_attrs={"pad": "x" * 200_000}))
    print(i, flush=True)
    i += 1
"""


def test_writers_killed_at_random_moments_lose_no_finished_trial(tmp_path: Path) -> None:
    import random
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    path = tmp_path / "study.journal"
    rng = random.Random(1)
    written = 0
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE,
                                text=True)
        assert proc.stdout is not None
        proc.stdout.readline()  # it is writing
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        written += len(proc.stdout.read().split()) + 1  # trials it reported as stored
        study = optuna.load_study(study_name="s", storage=open_storage(tmp_path))
        assert len(study.trials) >= written
        written = len(study.trials)
