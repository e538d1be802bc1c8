"""The cost model: seconds a fine-tune takes on the machine the trials ran on.

A fine-tune's seconds are split into three parts, each fit to the trials' measurements:

* **training**: seconds per training example per pass, per strategy family (kind, k, head);
  for a family no trial tried, interpolated in ``frozen_layers`` between families of the same kind
  and head;
* **evaluation**: seconds per validation example evaluated;
* **the prefix-cache fill**: seconds per example forwarded to fill the frozen-prefix cache, paid
  once per backbone, data and k (the fill computes every k that pays in one pass), and only by
  strategies that train from the cache.

Everything reads :class:`~autoft.study.TrialRecord` objects, so it is rebuilt from the study alone.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from autoft.strategies import Family
from autoft.study.records import TrialRecord

__all__ = ["CostModel", "fit_cost_model"]


@dataclass
class CostModel:
    """Seconds a fine-tune costs, by family, on the machine the trials ran on.

    Attributes:
        per_example: Training seconds per training example (one example, one pass) by family.
        eval_per_example: Seconds per validation example evaluated.
        fill_per_example: Seconds per example forwarded to fill the prefix cache (None when no
            trial filled it).
        trials_used: Trials the fit used.
        errors: Per trial: number, family, predicted and measured seconds (training and
            evaluation, without the fill), relative error, whether leave-one-out.
    """

    per_example: dict[Family, float]
    eval_per_example: float
    fill_per_example: float | None = None
    trials_used: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def seconds_per_example(self, family: Family) -> float:
        """Training seconds per example of a family; interpolated in ``frozen_layers`` between
        families of the same kind, head and variant (else of the same kind, else any) if unseen;
        below the fewest frozen blocks seen, extrapolated along the line through the two lowest
        (when it rises towards fewer frozen blocks); above the most, the nearest one's rate.

        Raises:
            ValueError: The model has no data at all.
        """
        if family in self.per_example:
            return self.per_example[family]
        if not self.per_example:
            raise ValueError("the cost model has no trials")
        for same in (
            lambda f: (f.kind, f.head, f.variant) == (family.kind, family.head, family.variant),
            lambda f: f.kind == family.kind,
            lambda f: True,
        ):
            rates: dict[int, list[float]] = {}
            for f, v in self.per_example.items():
                if same(f):
                    rates.setdefault(f.frozen_layers, []).append(v)
            if rates:
                break
        points = sorted((k, statistics.fmean(v)) for k, v in rates.items())
        k = family.frozen_layers
        if k < points[0][0] and len(points) > 1 and points[0][1] > points[1][1]:
            # fewer frozen blocks than any seen: extend the line through the two lowest, as
            # each block trained adds its forward and backward pass. Returning the lowest
            # seen rate priced MPNet's full fine-tuning at its half-frozen cost (about 190 s
            # against 408 s measured), so it started where it could not be re-seeded.
            (k0, v0), (k1, v1) = points[0], points[1]
            return v0 + (v0 - v1) * (k0 - k) / (k1 - k0)
        if k <= points[0][0]:
            return points[0][1]
        if k >= points[-1][0]:
            return points[-1][1]
        for (k0, v0), (k1, v1) in zip(points, points[1:]):
            if k0 <= k <= k1:
                return v0 + (v1 - v0) * (k - k0) / (k1 - k0)
        return points[-1][1]

    def predict(self, family: Family, train_size: int, epochs: int, validation_size: int,
                evals_per_epoch: int = 2) -> float:
        """Predicted seconds of training and evaluation (without the cache fill): ``train_size``
        examples for ``epochs`` epochs, with ``evals_per_epoch`` evaluations of
        ``validation_size`` examples per epoch."""
        train = self.seconds_per_example(family) * train_size * epochs
        evals = self.eval_per_example * validation_size * evals_per_epoch * epochs
        return train + evals

    def fill_seconds(self, train_size: int, validation_size: int) -> float:
        """Predicted seconds to fill the prefix cache for both splits (0 without a fill rate)."""
        if self.fill_per_example is None:
            return 0.0
        return self.fill_per_example * (train_size + validation_size)

    @property
    def median_abs_error(self) -> float | None:
        """Median relative error of the leave-one-out predictions (None when no family has two
        trials: an in-sample error would be zero by construction)."""
        errs = [abs(e["relative_error"]) for e in self.errors if e["leave_one_out"]]
        return statistics.median(errs) if errs else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (family keys become strings like ``"k=3/linear"``)."""
        return {
            "seconds_per_train_example": {str(f): v for f, v in sorted(self.per_example.items())},
            "seconds_per_eval_example": self.eval_per_example,
            "seconds_per_fill_example": self.fill_per_example,
            "trials_used": self.trials_used,
            "median_abs_relative_error": self.median_abs_error,
            "errors": self.errors,
        }


def _rate(rows: Sequence[TrialRecord]) -> float:
    return (sum(float(r.train_seconds or 0.0) for r in rows)
            / sum(int(r.examples_trained or 0) for r in rows))


def fit_cost_model(records: Sequence[TrialRecord], validation_size: int) -> CostModel:
    """Fit the cost model to trial records (every trial that trained and was measured).

    Args:
        records: Trial records (:func:`autoft.study.trial_records`).
        validation_size: Examples in the validation split.
    """
    rows = [r for r in records if r.state in ("COMPLETE", "PRUNED") and r.train_seconds
            and r.examples_trained and r.strategy]
    by_family: dict[Family, list[TrialRecord]] = {}
    for r in rows:
        by_family.setdefault(r.family(), []).append(r)
    per_example = {fam: _rate(group) for fam, group in by_family.items()}
    evaluated = sum(r.evaluations for r in rows) * max(1, validation_size)
    eval_seconds = sum(float(r.eval_seconds or 0.0) for r in rows)
    eval_rate = eval_seconds / evaluated if evaluated else 0.0
    fills = [r for r in records if r.cache_seconds > 0 and r.cache_examples > 0]
    fill_rate = (sum(r.cache_seconds for r in fills) / sum(r.cache_examples for r in fills)
                 if fills else None)
    model = CostModel(per_example, eval_rate, fill_rate, len(rows))
    for r in rows:
        fam = r.family()
        others = [o for o in by_family[fam] if o is not r]
        rate = _rate(others) if others else per_example[fam]  # leave-one-out when possible
        predicted = rate * float(r.examples_trained or 0) + eval_rate * r.evaluations * \
            validation_size
        actual = float(r.train_seconds or 0.0) + float(r.eval_seconds or 0.0)
        model.errors.append({
            "number": r.number, "family": str(fam),
            "predicted_seconds": round(predicted, 2), "measured_seconds": round(actual, 2),
            "relative_error": round((predicted - actual) / actual, 4) if actual else 0.0,
            "leave_one_out": bool(others),
        })
    return model
