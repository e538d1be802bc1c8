"""Budgets: wall-clock seconds, trial counts and per-trial caps; parsing "8h", "30m", "1h30m"."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

from autoft.errors import BudgetError

__all__ = ["Budget", "parse_duration", "format_duration"]

_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|min|m|sec|s)", re.IGNORECASE)


def parse_duration(value: str | float | int | None, name: str = "duration") -> float | None:
    """Parse a duration into seconds.

    Args:
        value: A number of seconds (int, float, or a numeric string), a string of number-unit parts
            with units ``s``, ``m``/``min``, ``h``, ``d`` (``"90s"``, ``"30m"``, ``"8h"``,
            ``"1h30m"``, ``"1.5h"``), or None.
        name: How the user gave the value, for the error message: ``"budget="`` (Python),
            ``"--budget"`` (command line), ... Default ``"duration"``.

    Returns:
        Seconds (float > 0), or None for None.

    Raises:
        BudgetError: The value cannot be parsed, or is not finite and > 0; the message names
            ``name`` and the value.
    """
    if value is None:
        return None
    what = f"{name}{value!r}" if name.endswith("=") else f"{name} {value!r}"
    if isinstance(value, bool):
        raise BudgetError(f"{what} is not a number of seconds or a string like '30m'")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            parts = _PART.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise BudgetError(
                    f"cannot parse {what}; write seconds or number-unit parts such as "
                    "'90s', '30m', '8h', '1h30m'"
                ) from None
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    else:
        raise BudgetError(f"{what} is not a number of seconds or a string like '30m'")
    if not math.isfinite(seconds) or seconds <= 0:
        raise BudgetError(f"{what} must be finite and greater than 0 seconds")
    return seconds


def format_duration(seconds: float | None) -> str:
    """Render seconds as ``"1h02m"``, ``"3m20s"`` or ``"42s"`` (``"-"`` for None)."""
    if seconds is None:
        return "-"
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``"1 trial"``, ``"3 trials"``: the count ``n`` and ``word`` in the form that agrees with it
    (``many`` for an irregular plural, else ``word + "s"``)."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


@dataclass(frozen=True)
class Budget:
    """What one search run may spend.

    Attributes:
        seconds: Wall-clock seconds for this run; no trial starts after it is spent, and a running
            trial stops at its next training step after it. None: no time limit.
        n_trials: Total number of finished trials the study should reach, counting trials of
            earlier runs of the same study (interrupted trials and skipped duplicate follow-ups
            do not count). None: no count limit.
        trial_seconds: Optional cap on each trial's wall-clock seconds. None: no cap.

    Raises:
        BudgetError: Neither ``seconds`` nor ``n_trials`` is set, or a value is out of range.
    """

    seconds: float | None = None
    n_trials: int | None = None
    trial_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.seconds is None and self.n_trials is None:
            raise BudgetError("give a time budget (e.g. budget='30m'), n_trials, or both")
        if self.n_trials is not None and (
            isinstance(self.n_trials, bool) or not isinstance(self.n_trials, int)
            or self.n_trials < 1
        ):
            raise BudgetError(f"n_trials={self.n_trials!r} must be a positive integer")
        for name in ("seconds", "trial_seconds"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value <= 0):
                raise BudgetError(f"{name}={value!r} must be finite and > 0")

    @classmethod
    def from_args(
        cls,
        budget: str | float | int | None = None,
        n_trials: int | None = None,
        trial_budget: str | float | int | None = None,
    ) -> Budget:
        """Build a budget from the Python arguments of the same names (durations parsed by
        :func:`parse_duration`; errors name ``budget=``, ``n_trials=`` or ``trial_budget=``)."""
        return cls(
            seconds=parse_duration(budget, "budget="),
            n_trials=n_trials,
            trial_seconds=parse_duration(trial_budget, "trial_budget="),
        )

    def deadline(self, start: float | None = None) -> float | None:
        """The ``time.monotonic()`` value at which this run's time is spent (None: no limit)."""
        if self.seconds is None:
            return None
        return (time.monotonic() if start is None else start) + self.seconds

    def describe(self) -> str:
        """E.g. ``"30m00s, 20 trials"``."""
        parts = []
        if self.seconds is not None:
            parts.append(format_duration(self.seconds))
        if self.n_trials is not None:
            parts.append(plural(self.n_trials, "trial"))
        if self.trial_seconds is not None:
            parts.append(f"at most {format_duration(self.trial_seconds)} per trial")
        return ", ".join(parts)
