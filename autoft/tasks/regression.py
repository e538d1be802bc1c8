"""Regression: one number per example (a score, a rating, a price), mean squared error, scored by
RMSE, MAE, R^2, Pearson or Spearman correlation in the target's own units."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from autoft.errors import DataError
from autoft.tasks.base import LabelInfo, TaskKind, register_task_kind

__all__ = ["HUBER_DELTA", "Regression", "looks_like_regression"]

#: Most (true, predicted) pairs a trial stores for the report's scatter plot.
MAX_POINTS = 400
#: Where the Huber loss turns from squared to linear, in standard deviations of the training target
#: (the loss acts on the standardised target; 1.0 is PyTorch's default ``delta``).
HUBER_DELTA = 1.0


def _number(value: Any) -> float | None:
    """``value`` as a float when it is a number or a string that reads as one, else None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def looks_like_regression(values: Sequence[Any]) -> bool:
    """Whether label values are numbers of which at least one is not an integer (``3.8``): the
    rule by which a search without ``task=`` picks regression. Integer labels (``0``/``1``,
    ``1``..``5`` stars) stay classification unless ``task="regression"`` is given."""
    numbers = [_number(v) for v in values]
    if not numbers or any(x is None or not math.isfinite(x) for x in numbers):
        return False
    return any(not float(x).is_integer() for x in numbers)  # type: ignore[union-attr]


class Regression(TaskKind):
    """Regression on a numeric target.

    Labels are numbers (typed, or strings that read as numbers). The model's output (one unit)
    predicts the target standardised with the training split's mean and standard deviation, so
    that a freshly initialised head starts near the mean and the loss and learning rates do not
    depend on the target's units; scores and predictions are in the original units, and an
    exported model folds the standardisation into its last layer, so it outputs original units.

    Metrics: ``rmse`` and ``mae`` (minimised), ``r2``, ``pearson`` and ``spearman`` (maximised;
    scikit-learn and SciPy). A constant prediction has no correlation: Pearson and Spearman are
    0 for it. Loss: mean squared error of the standardised target, or with a strategy's
    ``loss="huber"`` the Huber loss (Huber 1964; ``torch.nn.functional.huber_loss``) with
    ``delta`` = :data:`HUBER_DELTA` standard deviations of the target: squared within it, linear
    beyond, so a few mislabelled or extreme targets pull less. No stratification (splits and
    learning-curve subsets are drawn at random).

    Args:
        shift, scale: The training labels' mean and standard deviation (the unbound kind in the
            registry has 0 and 1; :meth:`for_labels` binds a task's).
    """

    name: ClassVar[str] = "regression"
    metrics: ClassVar[dict[str, str]] = {
        "rmse": "minimize", "mae": "minimize", "r2": "maximize", "pearson": "maximize",
        "spearman": "maximize",
    }
    default_metric: ClassVar[str] = "rmse"
    losses: ClassVar[tuple[str, ...]] = ("mse", "huber")
    pipeline_task: ClassVar[str] = "text-classification"
    problem_type: ClassVar[str] = "regression"

    def __init__(self, shift: float = 0.0, scale: float = 1.0) -> None:
        self.shift = float(shift)
        self.scale = float(scale)

    def parse(self, values: Sequence[Any], column: str, source: str,
              names: Sequence[str] | None = None) -> list[float]:
        out: list[float] = []
        for row, value in enumerate(values):
            x = _number(value)
            if x is None or not math.isfinite(x):
                raise DataError(
                    f"label column {column!r} of {source} holds {value!r} in row {row} (0-based, "
                    "header excluded); a regression target must be a finite number (for class "
                    "names use task='classification')")
            out.append(x)
        return out

    def fit(self, train: Sequence[Any], names: Sequence[str] | None = None) -> LabelInfo:
        y = np.asarray(train, dtype=np.float64)
        if len(y) < 2 or float(y.std()) == 0.0:
            raise DataError(
                "the training targets are all equal" + (f" ({y[0]:g})" if len(y) else "")
                + "; regression needs targets that vary")
        return LabelInfo(id2label=None, label_type="float", extra={
            "mean": float(y.mean()), "std": float(y.std()), "min": float(y.min()),
            "max": float(y.max())})

    def for_labels(self, info: LabelInfo) -> Regression:
        return Regression(float(info.extra.get("mean", 0.0)), float(info.extra.get("std", 1.0)))

    def encode(self, parsed: Sequence[Any], info: LabelInfo, source: str,
               role: str) -> np.ndarray:
        return np.asarray(parsed, dtype=np.float32)  # original units; the loss standardises

    def num_outputs(self, info: LabelInfo) -> int:
        return 1

    def loss(self, outputs: Any, labels: Any, name: str | None = None) -> Any:
        import torch

        self.check_losses([name])
        target = (labels.float() - self.shift) / self.scale  # (B,)
        if name == "huber":
            return torch.nn.functional.huber_loss(outputs.float()[:, 0], target,
                                                  delta=HUBER_DELTA)
        return torch.nn.functional.mse_loss(outputs.float()[:, 0], target)

    def predictions(self, outputs: np.ndarray) -> np.ndarray:
        """Model outputs ``(N, 1)`` in the target's units ``(N,)``."""
        return np.asarray(outputs, dtype=np.float64)[:, 0] * self.scale + self.shift

    def score(self, metric: str, labels: np.ndarray, outputs: np.ndarray) -> float:
        from scipy import stats
        from sklearn import metrics as sk

        self.direction(metric)
        y = np.asarray(labels, dtype=np.float64)
        p = self.predictions(outputs)
        if metric == "rmse":
            return float(math.sqrt(sk.mean_squared_error(y, p)))
        if metric == "mae":
            return float(sk.mean_absolute_error(y, p))
        if metric == "r2":
            return float(sk.r2_score(y, p))
        if np.ptp(p) == 0.0 or np.ptp(y) == 0.0:
            return 0.0  # a constant has no correlation (SciPy would return nan)
        fn = stats.pearsonr if metric == "pearson" else stats.spearmanr
        return float(fn(y, p)[0])

    def decode(self, outputs: np.ndarray, info: LabelInfo) -> list[float]:
        return [float(x) for x in self.for_labels(info).predictions(outputs)]

    def output_transform(self) -> tuple[float, float]:
        """The standardisation undone: an exported model outputs the target's units."""
        return self.scale, self.shift

    def metric_bounds(self, metric: str) -> tuple[float, float] | None:
        return {"rmse": (0.0, math.inf), "mae": (0.0, math.inf), "r2": (-math.inf, 1.0),
                "pearson": (-1.0, 1.0), "spearman": (-1.0, 1.0)}[metric]

    def details(self, labels: np.ndarray, outputs: np.ndarray) -> dict[str, Any]:
        """Residual statistics and up to :data:`MAX_POINTS` evenly spaced ``(true, predicted)``
        pairs for the scatter plot."""
        y = np.asarray(labels, dtype=np.float64)
        p = self.predictions(outputs)
        r = p - y
        idx = np.unique(np.linspace(0, len(y) - 1, min(len(y), MAX_POINTS)).astype(int))
        return {"residual_mean": float(r.mean()), "residual_std": float(r.std()),
                "abs_residual_p90": float(np.quantile(np.abs(r), 0.9)),
                "points": [[round(float(y[i]), 5), round(float(p[i]), 5)] for i in idx]}

    def view(self, details: Sequence[dict[str, Any]], info: LabelInfo) -> dict[str, Any] | None:
        """Residuals averaged over the runs given, and the first run's scatter points."""
        runs = [d for d in details if d.get("points")]
        if not runs:
            return None
        return {"type": "regression", "runs": len(runs),
                "residual_mean": float(np.mean([d["residual_mean"] for d in runs])),
                "residual_std": float(np.mean([d["residual_std"] for d in runs])),
                "abs_residual_p90": float(np.mean([d["abs_residual_p90"] for d in runs])),
                "points": runs[0]["points"]}

    def baseline(self, train: np.ndarray, n: int,
                 info: LabelInfo) -> tuple[str, np.ndarray] | None:
        """Always the training mean."""
        mean = float(np.mean(train))
        return (f"the training mean {mean:.4g}",
                np.full((n, 1), (mean - self.shift) / self.scale, dtype=np.float32))

    def summary(self, labels: np.ndarray, info: LabelInfo) -> dict[str, float]:
        y = np.asarray(labels, dtype=np.float64)
        return {"mean": round(float(y.mean()), 4), "std": round(float(y.std()), 4),
                "min": float(y.min()), "max": float(y.max())}

    @property
    def label_dtype(self) -> type:
        return np.float32


register_task_kind(Regression())
