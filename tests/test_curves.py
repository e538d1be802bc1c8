from __future__ import annotations

import math

import numpy as np
import pytest

from autoft.curves import (
    fit_cost_model,
    fit_learning_curves,
    pareto_front,
    rule_of_thumb,
    size_budget_table,
)
from autoft.followup import nested_subset, resolve_sizes


def _rec(number: int, k: int, score: float, *, n: int = 1000, rate: float = 0.01,
         head: str = "linear", state: str = "COMPLETE", epochs: int = 3,
         purpose: str | None = None) -> dict:
    examples = n * epochs
    return {"number": number, "state": state, "frozen_layers": k, "head": head, "score": score,
            "train_size": n, "examples_trained": examples, "train_seconds": rate * examples,
            "eval_seconds": 0.001 * 100 * 6, "evaluations": 6, "epochs": epochs,
            "seconds": rate * examples + 0.6, "description": f"k={k}", "purpose": purpose}


def test_cost_model_rates_interpolation_and_prediction() -> None:
    records = [_rec(0, 0, 0.85, rate=0.010), _rec(1, 0, 0.84, rate=0.012),
               _rec(2, 6, 0.70, rate=0.002)]
    cost = fit_cost_model(records, validation_size=100)
    assert cost.per_example[(0, "linear")] == pytest.approx(0.011)
    assert cost.per_example[(6, "linear")] == pytest.approx(0.002)
    assert cost.seconds_per_example((3, "linear")) == pytest.approx(0.0065)  # interpolated in k
    assert cost.eval_per_example == pytest.approx(0.001)
    # 2,000 examples x 2 epochs x 0.011 s + 4 evaluations x 100 examples x 1 ms
    assert cost.predict((0, "linear"), 2000, 2, 100) == pytest.approx(44.0 + 0.4)
    errors = {e["number"]: e for e in cost.errors}
    assert errors[0]["leave_one_out"] and not errors[2]["leave_one_out"]
    assert errors[0]["predicted_seconds"] == pytest.approx(0.012 * 3000 + 0.6, abs=0.01)
    assert cost.median_abs_error is not None and cost.median_abs_error < 0.2


def test_learning_curve_fit_recovers_log_law() -> None:
    records = [_rec(i, 0, 0.5 + 0.05 * math.log(n), n=n) for i, n in enumerate((100, 300, 1000))]
    records.append(_rec(9, 0, 0.2, n=300))  # a worse trial at the same size is not the best
    (curve,) = fit_learning_curves(records).values()
    assert curve.slope == pytest.approx(0.05) and curve.intercept == pytest.approx(0.5)
    assert curve.predict(4000) == pytest.approx(0.5 + 0.05 * math.log(4000))
    assert curve.predict(10**12) == 1.0  # clipped


def test_table_and_rule_of_thumb() -> None:
    # head-only: cheap, wins at small sizes; full fine-tuning: costly, wins at large sizes
    records = []
    for i, n in enumerate((100, 1000)):
        records.append(_rec(i, 6, {100: 0.70, 1000: 0.75}[n], n=n, rate=0.001))
        records.append(_rec(10 + i, 0, {100: 0.60, 1000: 0.85}[n], n=n, rate=0.05))
    cost = fit_cost_model(records, validation_size=100)
    curves = fit_learning_curves(records)
    best = {(6, "linear"): records[2], (0, "linear"): records[3]}
    table = size_budget_table(curves, cost, best, [100, 1000, 4000], [60.0, 3600.0],
                              validation_size=100)
    cell = {(r["train_size"], r["budget_seconds"]): r for r in table}
    assert cell[(100, 3600.0)]["frozen_layers"] == 6
    assert cell[(4000, 3600.0)]["frozen_layers"] == 0 and cell[(4000, 3600.0)]["extrapolated"]
    assert cell[(1000, 60.0)]["frozen_layers"] == 6  # full fine-tuning needs 150 s > 60 s
    verdict = rule_of_thumb(table, 6)
    assert "confirms the rule of thumb 'small data: freeze more" in verdict
    assert "confirms 'little compute: freeze more'" in verdict


def test_pareto_front() -> None:
    records = [_rec(0, 0, 0.85, rate=0.05), _rec(1, 6, 0.70, rate=0.001),
               _rec(2, 3, 0.80, rate=0.06), _rec(3, 4, 0.82, rate=0.01),
               _rec(4, 5, 0.90, rate=0.01, state="PRUNED")]
    assert [r["number"] for r in pareto_front(records)] == [1, 3, 0]


def test_nested_stratified_subsets() -> None:
    labels = np.array([0] * 80 + [1] * 20)
    small, large = nested_subset(labels, 10, 0), nested_subset(labels, 50, 0)
    assert set(small) <= set(large)
    assert np.bincount(labels[small]).tolist() == [8, 2]
    assert np.bincount(labels[large]).tolist() == [40, 10]
    assert resolve_sizes((0.1, 0.3, 500, 5000), 2000) == [200, 500, 600]
    assert resolve_sizes((0.01,), 2000) == []  # 20 examples: too few to probe
