"""Benchmark: do the learning curves and the cost model of a finished study predict?

Issue 10's checks, on an autoft study of 2,000 SST-2 rows (``benchmarks/search_vs_random.py``
leaves three in its work folder; its probes are at 10% and 30% of the data):

* **Learning curves.** The recommended family's curve predicts the dev accuracy at 8,000 training
  rows; the curve's strategy is then trained on 8,000 rows (SST-2 train.tsv sampled with seed 0,
  so the 2,000 rows are its first quarter) with ``--seeds`` fresh seeds, and the prediction's error
  and 80% interval are compared with the measured mean. The same study's records are also fit the
  way autoft 0.1 did ("before": the best score of the family at each size, ``a + b ln n``).
* **Cost.** The report's predicted seconds for the recommended strategy (training and evaluation,
  plus the one-off cache fill when it trains from the cache) against ``autoft.fine_tune`` of it on
  the same data and machine, with a cold cache and then a warm one.
* **Status.** Wall seconds of ``autoft status`` on the study, and (with ``--old-tree``, a checkout
  of autoft 0.1) of the old code on a study the old code made.

    python benchmarks/curves_and_cost.py --study /tmp/autoft-search-vs-random/autoft-0

Results: ``benchmarks/results/curves_and_cost.json``.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import SHARED_DATA, machine, save, sst2_train

CONFIRM_SEED0 = 10_000


def _old_curve(records: list[Any], family: Any, n: int) -> dict[str, Any]:
    """autoft 0.1's learning curve: the best score of the family at each size (re-seeds and all),
    ``a + b ln n`` by least squares, clipped to [0, 1]."""
    best: dict[int, float] = {}
    for r in records:
        if r.state != "COMPLETE" or r.score is None or not r.train_size or r.status == "budget":
            continue
        if r.family() != family:
            continue
        best[int(r.train_size)] = max(best.get(int(r.train_size), -1.0), float(r.score))
    pts = sorted(best.items())
    if len(pts) < 2:
        return {"points": pts, "prediction": pts[0][1] if pts else None}
    xs, ys = [math.log(p[0]) for p in pts], [p[1] for p in pts]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return {"points": pts, "prediction": min(1.0, max(0.0, my + slope * (math.log(n) - mx)))}


def _fine_tune(train: Any, strategy: Any, dev: Path, seed: int, cache_dir: Path) -> dict:
    import autoft
    from autoft.training import PrefixCache

    started = time.monotonic()
    fit = autoft.fine_tune(train, strategy, validation=dev, seed=seed, device="cpu",
                           cache=PrefixCache(cache_dir))
    return {"seed": seed, "dev_accuracy": fit.validation_score,
            "call_seconds": round(time.monotonic() - started, 1),
            "wall_seconds": round(fit.outcome.wall_seconds, 1),
            "train_eval_seconds": round(fit.outcome.train_seconds + fit.outcome.eval_seconds, 1),
            "cache_seconds": round(fit.outcome.cache_seconds, 1), "cached": fit.outcome.cached}


def _status_seconds(study: Path, tree: Path, runs: int = 7) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "autoft.cli", "status", str(study)], env=env,
                       capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", type=Path, required=True, help="an autoft output folder")
    parser.add_argument("--rows", type=int, default=2000, help="training rows of the study")
    parser.add_argument("--predict-rows", type=int, default=8000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--old-tree", type=Path, default=None,
                        help="a checkout of autoft 0.1 for the status timing")
    parser.add_argument("--old-study", type=Path, default=None,
                        help="a study made by autoft 0.1, for the old status timing")
    args = parser.parse_args()

    from autoft.analysis import fit_learning_curves, pooled_std, recommend_from_info
    from autoft.analysis.cost import fit_cost_model
    from autoft.study import load_study, trial_records
    from autoft.study.info import stored_info

    dev = SHARED_DATA / "sst2" / "dev.tsv"
    study = load_study(args.study)
    info = dict(stored_info(study))
    info.setdefault("seeds", 3)
    records = trial_records(study.get_trials(deepcopy=False))
    rec = recommend_from_info(records, info)
    assert rec is not None, "the study recommends nothing"
    family = rec.strategy.family()
    from autoft.analysis import group_runs

    curves = fit_learning_curves(records, pooled_sigma=pooled_std(group_runs(records)))
    curve = curves.get(family)
    payload: dict[str, Any] = {"study": str(args.study), "machine": machine(),
                               "recommended": rec.strategy.describe(int(info["num_layers"])),
                               "family": str(family)}
    work = Path(tempfile.mkdtemp(prefix="autoft-curves-"))
    if curve is None or len(curve.points) < 2:
        payload["learning_curve"] = {"error": f"the family {family} was not probed"}
    else:
        source = next(r for r in records if r.number == curve.trial)
        new = {"form": curve.form, "points": [list(p) for p in curve.points],
               "prediction": curve.predict(args.predict_rows),
               "interval_80": curve.interval(args.predict_rows)}
        old = _old_curve(records, family, args.predict_rows)
        big = work / "train_big.tsv"
        sst2_train(args.predict_rows, seed=0).to_csv(big, sep="\t", index=False)
        runs = []
        for seed in range(CONFIRM_SEED0, CONFIRM_SEED0 + args.seeds):
            runs.append(_fine_tune(big, source.strategy, dev, seed, work / "cache-big"))
            print(f"  {args.predict_rows} rows, seed {seed}: {runs[-1]['dev_accuracy']:.4f} in "
                  f"{runs[-1]['wall_seconds']:.0f} s", flush=True)
        measured = statistics.fmean(r["dev_accuracy"] for r in runs)
        spread = statistics.stdev(r["dev_accuracy"] for r in runs) if len(runs) > 1 else None
        payload["learning_curve"] = {
            "strategy": source.description, "predict_rows": args.predict_rows, "runs": runs,
            "measured_mean": measured, "measured_std": spread,
            "after": {**new, "error": new["prediction"] - measured,
                      "measured_inside_interval": bool(new["interval_80"]) and
                      new["interval_80"][0] <= measured <= new["interval_80"][1]},
            "before": {**old, "error": None if old["prediction"] is None
                       else old["prediction"] - measured},
        }
        save("curves_and_cost", payload)
    # cost: the report's prediction against fine_tune on the same rows, cold and warm cache
    train = work / "train.tsv"
    sst2_train(args.rows, seed=0).to_csv(train, sep="\t", index=False)
    cost = fit_cost_model(records, int(info["data"]["validation_size"]))
    fill = rec.cache_seconds or (cost.fill_seconds(args.rows, int(info["data"]["validation_size"]))
                                 if rec.cached else 0.0)
    cold = _fine_tune(train, rec.strategy, dev, CONFIRM_SEED0, work / "cache-cost")
    warm = _fine_tune(train, rec.strategy, dev, CONFIRM_SEED0 + 1, work / "cache-cost")
    payload["cost"] = {
        "predicted_seconds": rec.seconds, "predicted_fill_seconds": fill,
        "cold": cold, "warm": warm,
        "cold_error": (cold["wall_seconds"] - (rec.seconds + fill)) / (rec.seconds + fill),
        "warm_error": (warm["wall_seconds"] - rec.seconds) / rec.seconds,
    }
    save("curves_and_cost", payload)
    status = {"new_seconds": _status_seconds(args.study, Path(__file__).resolve().parent.parent)}
    if args.old_tree and args.old_study:
        status["old_seconds_on_old_study"] = _status_seconds(args.old_study, args.old_tree)
        status["new_seconds_on_old_study"] = _status_seconds(
            args.old_study, Path(__file__).resolve().parent.parent)
    payload["status"] = status
    save("curves_and_cost", payload)
    import json

    print(json.dumps({k: v for k, v in payload.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
