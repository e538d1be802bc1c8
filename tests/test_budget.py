from __future__ import annotations

import pytest

from autoft.budget import Budget, format_duration, parse_duration
from autoft.errors import BudgetError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), (90, 90.0), (1.5, 1.5), ("90s", 90.0), ("30m", 1800.0), ("8h", 28800.0),
     ("1h30m", 5400.0), ("1.5h", 5400.0), ("2d", 172800.0), ("10min", 600.0), (" 5 m ", 300.0),
     ("1H", 3600.0)],
)
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_parse_duration_none() -> None:
    assert parse_duration(None) is None


@pytest.mark.parametrize("bad", ["", "abc", "10x", "h", "-5m", "0", 0, -1, float("inf"),
                                 float("nan"), "5m abc", True, [5]])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(BudgetError):
        parse_duration(bad)  # type: ignore[arg-type]


def test_budget_needs_time_or_trials() -> None:
    with pytest.raises(BudgetError, match="n_trials"):
        Budget()


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_budget_rejects_bad_trial_count(n: object) -> None:
    with pytest.raises(BudgetError, match="n_trials"):
        Budget(n_trials=n)  # type: ignore[arg-type]


def test_budget_from_args_and_deadline() -> None:
    budget = Budget.from_args("30m", 5, "2m")
    assert (budget.seconds, budget.n_trials, budget.trial_seconds) == (1800.0, 5, 120.0)
    assert budget.deadline(start=100.0) == 1900.0
    assert Budget(n_trials=3).deadline() is None
    assert budget.describe() == "30m00s, 5 trials, at most 2m00s per trial"


@pytest.mark.parametrize(("seconds", "text"), [(None, "-"), (42.4, "42s"), (200, "3m20s"),
                                               (3720, "1h02m"), (-5, "0s")])
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text
