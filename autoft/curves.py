"""What the trials say beyond themselves: a cost model and learning curves per strategy family.

A *family* is ``(frozen_layers, head kind)``: strategies that cost the same per example. From the
trials this module fits

* a **cost model**: seconds per training example of each family on the machine the search ran on
  (total training seconds / examples trained, i.e. least squares through the origin), plus seconds
  per evaluated validation example; families never tried are interpolated linearly in
  ``frozen_layers``. Its error is measured on the trials themselves, leave-one-out where a family
  has several trials;
* **learning curves**: validation score against training-set size, ``score = a + b ln(n)``, fit to
  the best score of each family at each size the search trained on (the log-linear learning-curve
  model; power laws in n are the usual alternative, e.g. Hestness et al. 2017, "Deep Learning
  Scaling is Predictable, Empirically"; with 2-3 sizes the log-linear form has fewer parameters).

Everything reads the records of :func:`autoft.recommend.trial_records`, so it is rebuilt from the
study storage alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_BUDGETS",
    "CostModel",
    "LearningCurve",
    "family_of",
    "fit_cost_model",
    "fit_learning_curves",
    "pareto_front",
    "rule_of_thumb",
    "size_budget_table",
]

Family = tuple[int, str]


def family_of(record: dict[str, Any]) -> Family:
    """The ``(frozen_layers, head kind)`` family of a trial record."""
    return int(record["frozen_layers"]), str(record.get("head") or "linear")


@dataclass
class CostModel:
    """Seconds a fine-tune costs, by family, on the machine the trials ran on.

    Attributes:
        per_example: Training seconds per training example (one example, one pass) by family.
        eval_per_example: Seconds per validation example evaluated.
        trials_used: Trials the fit used.
        errors: Per trial: number, family, predicted and measured wall seconds, relative error.
    """

    per_example: dict[Family, float]
    eval_per_example: float
    trials_used: int
    errors: list[dict[str, Any]] = field(default_factory=list)

    def seconds_per_example(self, family: Family) -> float:
        """Training seconds per example of a family; interpolated in frozen_layers if unseen.

        Raises:
            ValueError: The model has no data at all.
        """
        if family in self.per_example:
            return self.per_example[family]
        if not self.per_example:
            raise ValueError("the cost model has no trials")
        same = {k: v for (k, h), v in self.per_example.items() if h == family[1]}
        points = sorted(same.items() if same else
                        {k: v for (k, _), v in self.per_example.items()}.items())
        k = family[0]
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
        """Predicted wall seconds of a fine-tune: ``train_size`` examples for ``epochs`` epochs,
        with ``evals_per_epoch`` evaluations of ``validation_size`` examples per epoch."""
        train = self.seconds_per_example(family) * train_size * epochs
        evals = self.eval_per_example * validation_size * evals_per_epoch * epochs
        return train + evals

    @property
    def median_abs_error(self) -> float | None:
        """Median relative error of the leave-one-out predictions (None when no family has two
        trials: an in-sample error would be zero by construction)."""
        errs = sorted(abs(e["relative_error"]) for e in self.errors if e["leave_one_out"])
        if not errs:
            return None
        mid = len(errs) // 2
        return errs[mid] if len(errs) % 2 else (errs[mid - 1] + errs[mid]) / 2

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (family keys become ``"k=3/linear"``)."""
        return {
            "seconds_per_train_example": {f"k={k}/{h}": v
                                          for (k, h), v in sorted(self.per_example.items())},
            "seconds_per_eval_example": self.eval_per_example,
            "trials_used": self.trials_used,
            "median_abs_relative_error": self.median_abs_error,
            "errors": self.errors,
        }


def _usable(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["state"] in ("COMPLETE", "PRUNED")
            and r.get("train_seconds") and r.get("examples_trained")]


def _rate(rows: Sequence[dict[str, Any]]) -> float:
    return sum(r["train_seconds"] for r in rows) / sum(r["examples_trained"] for r in rows)


def fit_cost_model(records: Sequence[dict[str, Any]], validation_size: int) -> CostModel:
    """Fit the cost model to trial records (complete and pruned trials that trained).

    Args:
        records: Trial records (:func:`autoft.recommend.trial_records`).
        validation_size: Examples in the validation split.
    """
    rows = _usable(records)
    by_family: dict[Family, list[dict[str, Any]]] = {}
    for r in rows:
        by_family.setdefault(family_of(r), []).append(r)
    per_example = {fam: _rate(group) for fam, group in by_family.items()}
    evaluated = sum(int(r.get("evaluations") or 0) for r in rows) * max(1, validation_size)
    eval_seconds = sum(float(r.get("eval_seconds") or 0.0) for r in rows)
    eval_rate = eval_seconds / evaluated if evaluated else 0.0
    model = CostModel(per_example, eval_rate, len(rows))
    for r in rows:
        fam = family_of(r)
        others = [o for o in by_family[fam] if o is not r]
        rate = _rate(others) if others else per_example[fam]  # leave-one-out when possible
        predicted = (rate * r["examples_trained"]
                     + eval_rate * int(r.get("evaluations") or 0) * validation_size)
        actual = float(r["train_seconds"]) + float(r.get("eval_seconds") or 0.0)
        model.errors.append({
            "number": r["number"], "family": f"k={fam[0]}/{fam[1]}",
            "predicted_seconds": round(predicted, 2), "measured_seconds": round(actual, 2),
            "relative_error": round((predicted - actual) / actual, 4) if actual else 0.0,
            "leave_one_out": bool(others),
        })
    return model


@dataclass(frozen=True)
class LearningCurve:
    """``score(n) = intercept + slope * ln(n)`` for one family, clipped to [0, 1].

    Attributes:
        family: ``(frozen_layers, head kind)``.
        points: ``(train_size, best score)`` pairs it was fit to.
        intercept, slope: The fit (slope 0 and intercept = the score with a single size).
        trials: The trial behind each point (best at that size).
    """

    family: Family
    points: tuple[tuple[int, float], ...]
    intercept: float
    slope: float
    trials: tuple[int, ...] = ()

    def predict(self, train_size: int) -> float:
        """Expected validation score with ``train_size`` training examples."""
        return min(1.0, max(0.0, self.intercept + self.slope * math.log(max(1, train_size))))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {"family": f"k={self.family[0]}/{self.family[1]}", "points": list(self.points),
                "intercept": self.intercept, "slope": self.slope, "trials": list(self.trials)}


def fit_learning_curves(records: Sequence[dict[str, Any]]) -> dict[Family, LearningCurve]:
    """One learning curve per family from its completed trials' best scores at each train size.

    Records need ``train_size`` (examples in the training subset the trial used); trials without
    it are skipped. A family measured at a single size gets a flat curve.
    """
    best: dict[Family, dict[int, tuple[float, int]]] = {}
    for r in records:
        if r["state"] != "COMPLETE" or r.get("score") is None or not r.get("train_size"):
            continue
        if r.get("status") == "deadline":
            continue  # a trial cut short by the budget did not train as specified
        sizes = best.setdefault(family_of(r), {})
        n = int(r["train_size"])
        if n not in sizes or r["score"] > sizes[n][0]:
            sizes[n] = (float(r["score"]), int(r["number"]))
    curves = {}
    for fam, sizes in best.items():
        pts = sorted((n, s) for n, (s, _) in sizes.items())
        xs = [math.log(n) for n, _ in pts]
        ys = [s for _, s in pts]
        if len(pts) >= 2:
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            sxx = sum((x - mx) ** 2 for x in xs)
            slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
            intercept = my - slope * mx
        else:
            slope, intercept = 0.0, ys[0]
        curves[fam] = LearningCurve(fam, tuple(pts), intercept, slope,
                                    tuple(sizes[n][1] for n, _ in pts))
    return curves


#: Budgets of the size x budget table: 10 minutes, 1 hour, 8 hours (seconds).
DEFAULT_BUDGETS = (600.0, 3600.0, 28800.0)


def size_budget_table(
    curves: dict[Family, LearningCurve],
    cost: CostModel,
    best: dict[Family, dict[str, Any]],
    sizes: Sequence[int],
    budgets: Sequence[float] = DEFAULT_BUDGETS,
    *,
    validation_size: int,
    evals_per_epoch: int = 2,
    tolerance: float = 0.005,
) -> list[dict[str, Any]]:
    """The recommended family for each (training size, budget), with expected score and cost.

    For each size, each family's expected score comes from its learning curve and its cost (one
    fine-tune with its best strategy's epochs) from the cost model; among the families whose cost
    fits the budget, the best expected score wins, and a cheaper one within ``tolerance`` of it is
    preferred.

    Args:
        curves: Learning curves by family.
        cost: The cost model.
        best: The best full-size record of each family (its strategy and epochs).
        sizes: Training-set sizes (examples).
        budgets: Seconds available for the fine-tune. Default 10 min, 1 h, 8 h.
        validation_size: Validation examples (their evaluation is part of the cost).
        evals_per_epoch: Evaluations per epoch. Default 2.
        tolerance: Score difference treated as a tie. Default 0.005.

    Returns:
        One row per (size, budget): ``train_size``, ``budget_seconds``, ``family``,
        ``frozen_layers``, ``head``, ``trial_number``, ``description``, ``expected_score``,
        ``expected_seconds``, ``extrapolated`` (size beyond the measured ones); the family fields
        are None when nothing fits the budget.
    """
    rows = []
    measured = max((n for c in curves.values() for n, _ in c.points), default=0)
    for n in sizes:
        options = []
        for fam, curve in curves.items():
            if fam not in best:
                continue
            epochs = int(best[fam].get("epochs") or 1)
            seconds = cost.predict(fam, n, epochs, validation_size, evals_per_epoch)
            options.append((curve.predict(n), seconds, fam))
        for budget in budgets:
            fits = [o for o in options if o[1] <= budget]
            row: dict[str, Any] = {"train_size": int(n), "budget_seconds": float(budget),
                                   "extrapolated": n > measured, "family": None,
                                   "frozen_layers": None, "head": None, "trial_number": None,
                                   "description": None, "expected_score": None,
                                   "expected_seconds": None}
            if fits:
                top = max(o[0] for o in fits)
                score, seconds, fam = min((o for o in fits if o[0] >= top - tolerance),
                                          key=lambda o: o[1])
                row.update(family=f"k={fam[0]}/{fam[1]}", frozen_layers=fam[0], head=fam[1],
                           trial_number=best[fam]["number"],
                           description=best[fam]["description"],
                           expected_score=round(score, 4), expected_seconds=round(seconds, 1))
            rows.append(row)
    return rows


def rule_of_thumb(table: Sequence[dict[str, Any]], num_layers: int) -> str:
    """What the table says about "small data: freeze more; large data: full fine-tuning; little
    compute: freeze more", with its numbers. Empty when the table has too little to compare."""
    rows = [r for r in table if r["frozen_layers"] is not None]
    if not rows:
        return ""
    sizes = sorted({r["train_size"] for r in rows})
    budgets = sorted({r["budget_seconds"] for r in rows})

    def cell(n: int, b: float) -> dict[str, Any] | None:
        return next((r for r in rows if r["train_size"] == n and r["budget_seconds"] == b), None)

    parts = []
    big_budget = budgets[-1]
    small, large = cell(sizes[0], big_budget), cell(sizes[-1], big_budget)
    if small and large and sizes[0] != sizes[-1]:
        ks, kl = small["frozen_layers"], large["frozen_layers"]
        rule = "the rule of thumb 'small data: freeze more; large data: full fine-tuning'"
        verdict = (f"confirms {rule}" if ks > kl else f"contradicts {rule}" if ks < kl
                   else f"neither confirms nor contradicts {rule}: the same number of frozen "
                   "blocks wins at both sizes")
        parts.append(
            f"Data size: with ample compute ({big_budget / 3600:g} h), {sizes[0]} examples call for "
            f"k={ks} of {num_layers} frozen blocks (expected {small['expected_score']:.3f}) and "
            f"{sizes[-1]} examples for k={kl} (expected {large['expected_score']:.3f}"
            + (", extrapolated" if large["extrapolated"] else "") + f"). This {verdict}."
        )
    mid = sizes[len(sizes) // 2]
    tight, ample = cell(mid, budgets[0]), cell(mid, budgets[-1])
    if tight and ample and budgets[0] != budgets[-1]:
        kt, ka = tight["frozen_layers"], ample["frozen_layers"]
        rule = "'little compute: freeze more'"
        verdict = (f"confirms {rule}" if kt > ka else f"contradicts {rule}" if kt < ka
                   else f"neither confirms nor contradicts {rule}: the budget does not change "
                   "the choice here")
        parts.append(
            f"Compute: at {mid} examples, {budgets[0] / 60:g} minutes call for k={kt} (expected "
            f"{tight['expected_score']:.3f}, {tight['expected_seconds']:.0f} s) and "
            f"{budgets[-1] / 3600:g} hours for k={ka} (expected {ample['expected_score']:.3f}). "
            f"This {verdict}."
        )
    return " ".join(parts)


def pareto_front(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Completed full-size trials no other completed trial beats on both score and cost
    (wall seconds), cheapest first."""
    rows = sorted((r for r in records if r["state"] == "COMPLETE" and r.get("score") is not None
                   and r.get("seconds") and r.get("purpose") != "learning_curve"),
                  key=lambda r: (r["seconds"], -r["score"]))
    front, best = [], -math.inf
    for r in rows:
        if r["score"] > best:
            front.append(r)
            best = r["score"]
    return front
