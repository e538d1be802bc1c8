"""The settings of one search, checked before any data is read or model loaded."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from autoft.errors import AutoftError
from autoft.searching.runner import PRUNERS
from autoft.tasks import task_for_metric, task_kind

__all__ = ["SearchConfig"]


def _integer(value: Any, low: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= low


@dataclass(frozen=True)
class SearchConfig:
    """Every setting of :func:`autoft.search` but the data and the callbacks (see its docstring
    for their meaning); ``__post_init__`` checks them all, naming the argument, the value and the
    rule it broke.

    Raises:
        AutoftError: A setting is out of range or of the wrong type.
    """

    model: str | None = None
    out: str | Path = "autoft-out"
    task: str | None = None
    metric: str | None = None
    validation_size: float | int = 0.2
    seed: int = 0
    device: str = "auto"
    pruner: str | optuna.pruners.BasePruner = "successive_halving"
    study_name: str = "autoft"
    storage: str | None = None
    workers: int = 1
    max_length: int = 128
    evals_per_epoch: int = 2
    baselines: bool = True
    seeds: int = 3
    top_k: int = 3
    curve_sizes: tuple[float | int, ...] = (0.1, 0.3)
    reserve: float = 0.25
    cache: bool = True
    cache_dir: str | Path | None = None
    refit: bool = False
    encoding: str = "utf-8"
    validation_split: str | None = None
    test_split: str | None = None

    def __post_init__(self) -> None:
        # None: the data decides (see autoft.data.load_task_data) unless the metric names it
        object.__setattr__(self, "task", task_for_metric(self.task, self.metric))
        if self.task is not None:
            kind = task_kind(self.task)
            metric = self.metric or kind.default_metric
            kind.direction(metric)
            object.__setattr__(self, "metric", metric)
        checks: list[tuple[bool, str]] = [
            (_integer(self.evals_per_epoch, 1),
             f"evals_per_epoch={self.evals_per_epoch!r} must be an integer >= 1"),
            (_integer(self.max_length, 8),
             f"max_length={self.max_length!r} must be an integer >= 8 (tokens)"),
            (_integer(self.workers, 1), f"workers={self.workers!r} must be an integer >= 1"),
            (_integer(self.seeds, 1), f"seeds={self.seeds!r} must be an integer >= 1"),
            (_integer(self.top_k, 1), f"top_k={self.top_k!r} must be an integer >= 1"),
            (isinstance(self.reserve, (int, float)) and not isinstance(self.reserve, bool)
             and 0.0 <= float(self.reserve) < 1.0, f"reserve={self.reserve!r} must be in [0, 1)"),
            (_integer(self.seed, 0) and self.seed < 2**32 - 2000,
             f"seed={self.seed!r} must be an integer in 0..{2**32 - 2001}"),
            (isinstance(self.out, (str, os.PathLike)), f"out={self.out!r} must be a folder path"),
            (isinstance(self.pruner, optuna.pruners.BasePruner) or self.pruner in PRUNERS,
             f"pruner {self.pruner!r} is not one of {PRUNERS} or an optuna pruner"),
            # each worker process rebuilds the pruner from its name in the study
            (isinstance(self.pruner, str) or self.workers == 1,
             f"a pruner instance ({type(self.pruner).__name__}) cannot be shared with "
             f"workers={self.workers}: each worker process builds its pruner from its name; "
             f"give one of {PRUNERS}, or workers=1"),
        ]
        for name, given in (("model", self.model), ("storage", self.storage)):
            checks.append((given is None or isinstance(given, (str, os.PathLike)),
                           f"{name}={given!r} must be a string (a folder path, hub id or URL)"))
        for ok, message in checks:
            if not ok:
                raise AutoftError(message)
        sizes = self.curve_sizes
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
            raise AutoftError(f"curve_sizes must be a list of numbers, got {sizes!r}")
        for size in sizes:
            if isinstance(size, bool) or not isinstance(size, (int, float)) or size <= 0:
                raise AutoftError(
                    f"curve size {size!r} must be a fraction in (0, 1) or a positive example count"
                )
        object.__setattr__(self, "curve_sizes", tuple(sizes))

    @property
    def direction(self) -> str:
        """The metric's direction (``"maximize"`` or ``"minimize"``).

        Raises:
            AutoftError: The task is not known yet (None: the data decides it).
        """
        if self.task is None:
            raise AutoftError("the task kind is not known before the data is loaded")
        return task_kind(self.task).direction(str(self.metric))

    @property
    def pruner_name(self) -> str:
        """The pruner's name (the class name for a pruner instance)."""
        return self.pruner if isinstance(self.pruner, str) else type(self.pruner).__name__
