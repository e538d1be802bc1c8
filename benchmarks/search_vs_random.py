"""Benchmark: autoft's search against random search, judged on fresh seeds.

Issue 10's acceptance run. SST-2, 2,000 training rows (seed 0), validated on the 872 rows of
dev.tsv, the default MiniLM backbone, 20 minutes per search:

* ``autoft``: ``autoft.search`` with its defaults (TPE with successive halving, baselines,
  re-seeds and learning-curve probes), sampler seed r;
* ``random``: random search over the same space (``optuna.samplers.RandomSampler``), no pruning,
  no baselines, no follow-ups, sampler seed 1000 + r; its recommendation is its best single run.

The arms are interleaved (autoft, random, autoft, ...) so that the machine's noise falls on both
alike. A search's own best score is biased upwards (the best of many noisy runs on one validation
set), so each run's recommendation is trained again with fresh seeds (``--confirm-seeds``, seeds
10000, 10001, ... that no trial used) and the arms are compared on those confirmed means. The next
best strategies of each run (``--top``, its top 3 by the search's own means) are confirmed too, to
report how far the pick is from the best strategy the run found; every run's pick is confirmed
before any run's second strategy. The confirmations run
``autoft.fine_tune`` (the report's snippet), so they also time it: the cost prediction is checked
against them (``benchmarks/curves_and_cost.py`` does the learning-curve check from these studies).

    python benchmarks/search_vs_random.py                       # about 4 hours on 2 cores
    python benchmarks/search_vs_random.py --repeats 2           # the first 2 repeats ...
    python benchmarks/search_vs_random.py --resume              # ... and later the third
    python benchmarks/search_vs_random.py --budget 2m --repeats 1 --rows 300 --confirm-seeds 1
    python benchmarks/search_vs_random.py --first-repeat 3 --name search_vs_random_v6  # new seeds
    python benchmarks/search_vs_random.py --restat --name search_vs_random_v5   # statistics only
    python benchmarks/search_vs_random.py --pool search_vs_random_v5,search_vs_random_v6 \
        --name search_vs_random_pooled                                  # several files' runs

Besides the confirmed means, each run records where its sampled strategies land (their scores at
the pruner's first rung, which every trial reaches), and the summary pools the picks' confirmed
runs of each arm (their difference with Welch's standard error) and measures how far apart the
confirmed strategies are beyond their seed noise (``top_spread``: when the best strategies both arms
find do not differ, which arm is ahead after 3 repeats is a coin toss).

Results: ``benchmarks/results/search_vs_random.json`` (written after every search and confirmation,
so an interrupted run keeps what it measured; ``--resume`` continues one).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from _common import RESULTS, SHARED_DATA, machine, save, sst2_train

CONFIRM_SEED0 = 10_000


def _arm_kwargs(arm: str, repeat: int) -> dict[str, Any]:
    import optuna

    if arm == "autoft":
        return {"seed": repeat}
    if arm == "autoft-nopruner":  # a diagnostic arm: autoft's defaults without the pruner
        return {"seed": repeat, "pruner": "none"}
    return {"seed": repeat, "sampler": optuna.samplers.RandomSampler(seed=1000 + repeat),
            "pruner": "none", "seeds": 1, "curve_sizes": (), "baselines": False}


def _sampled_stats(study: Any) -> dict[str, Any]:
    """Where the sampler's own strategies land (no baselines, re-seeds or probes): their
    validation scores at successive halving's first rung (after 2 of 3 epochs, evaluation 4),
    which every sampled trial reaches, pruned or not, so the pruner does not flatter the arm that
    prunes. Whether the sampler learns shows here, apart from the noise of picking one trial."""
    from autoft.study import trial_records

    trials = study.get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}
    scores = [by_number[r.number].intermediate_values[4] for r in trial_records(trials)
              if not r.purpose and not r.baseline and 4 in by_number[r.number].intermediate_values]
    return {"step": 4, "n": len(scores), "mean": statistics.fmean(scores) if scores else None,
            "median": statistics.median(scores) if scores else None}


def _search(arm: str, repeat: int, train: Path, dev: Path, budget: str, work: Path) -> dict:
    import autoft
    from autoft.study import trial_records

    out = work / f"{arm}-{repeat}"
    started = time.monotonic()
    result = autoft.search(train, validation=dev, budget=budget, out=out, device="cpu",
                           **_arm_kwargs(arm, repeat))
    seconds = time.monotonic() - started
    records = trial_records(result.study_.get_trials(deepcopy=False))
    rec = result.recommendation_
    assert rec is not None, f"{arm} run {repeat} recommended nothing"
    by_mean = sorted(rec.groups, key=lambda g: -g["mean"])
    # random search's answer is its best single run; autoft's is its recommendation
    pick = by_mean[0] if arm == "random" else next(
        g for g in rec.groups if g["trial_number"] == rec.trial_number)
    top = [pick] + [g for g in by_mean if g["trial_number"] != pick["trial_number"]][:2]
    statuses = [r.status for r in records]
    return {
        "arm": arm, "repeat": repeat, "out": str(out), "seconds": round(seconds, 1),
        "trials": len(records), "complete": statuses.count("complete"),
        "pruned": statuses.count("pruned"), "budget_stopped": statuses.count("budget"),
        "skipped": statuses.count("skipped"),
        "sampled": sum(1 for r in records if not r.purpose and not r.baseline
                       and r.status != "skipped"),
        "frozen_layers_tried": sorted({r.frozen_layers for r in records
                                       if r.frozen_layers is not None}),
        "sampled_at_first_rung": _sampled_stats(result.study_),
        "pick": {"trial": pick["trial_number"], "description": pick["description"],
                 "search_score": pick["mean"], "search_runs": pick["n"],
                 "confirmed_in_search": arm != "random" and rec.confirmed,
                 "predicted_seconds": pick["seconds"], "cache_seconds_in_search":
                 pick["cache_seconds"], "cached": pick["cached"]},
        "top": [{"trial": g["trial_number"], "description": g["description"],
                 "search_mean": g["mean"], "search_runs": g["n"],
                 "strategy": next(r.strategy for r in records if r.number == g["trial_number"])}
                for g in top],
    }


def _confirm(strategy: dict, train: Path, dev: Path, seeds: int, cache_dir: Path) -> list[dict]:
    import autoft
    from autoft.training import PrefixCache

    cache = PrefixCache(cache_dir)
    rows = []
    for seed in range(CONFIRM_SEED0, CONFIRM_SEED0 + seeds):
        started = time.monotonic()
        fit = autoft.fine_tune(train, strategy, validation=dev, seed=seed, device="cpu",
                               cache=cache)
        rows.append({"seed": seed, "dev_accuracy": fit.validation_score,
                     "call_seconds": round(time.monotonic() - started, 1),
                     "wall_seconds": round(fit.outcome.wall_seconds, 1),
                     "train_eval_seconds": round(fit.outcome.train_seconds
                                                 + fit.outcome.eval_seconds, 1),
                     "cache_seconds": round(fit.outcome.cache_seconds, 1)})
        print(f"    seed {seed}: {fit.validation_score:.4f} in {fit.outcome.wall_seconds:.0f} s"
              f" (cache fill {fit.outcome.cache_seconds:.0f} s)", flush=True)
    return rows


def _summary(runs: list[dict]) -> dict:
    out: dict[str, Any] = {}
    for arm in sorted({r["arm"] for r in runs}):
        picks = [r["pick_confirmed_mean"] for r in runs if r["arm"] == arm
                 and "pick_confirmed_mean" in r]
        if picks:
            out[arm] = {"pick_confirmed_means": picks, "mean": statistics.fmean(picks),
                        "std": statistics.stdev(picks) if len(picks) > 1 else None,
                        "trials": [r["trials"] for r in runs if r["arm"] == arm],
                        "pick_gap_to_best_of_top": [r.get("pick_gap") for r in runs
                                                    if r["arm"] == arm]}
    # every confirmed run of every pick, pooled over the repeats: the difference of the two
    # arms' means with Welch's standard error (each seed one observation)
    pooled = {arm: [c["dev_accuracy"] for r in runs if r["arm"] == arm and r["top"]
                    for c in r["top"][0].get("confirmed", [])] for arm in out}
    for arm, scores in pooled.items():
        out[arm]["sampled_at_first_rung_means"] = [
            r.get("sampled_at_first_rung", {}).get("mean") for r in runs if r["arm"] == arm]
        out[arm]["pick_confirmed_runs"] = {"n": len(scores), "mean": statistics.fmean(scores),
                                           "std": statistics.stdev(scores)
                                           if len(scores) > 1 else None}
    if all(len(pooled.get(a, [])) > 1 for a in ("autoft", "random")):
        a, b = out["autoft"]["pick_confirmed_runs"], out["random"]["pick_confirmed_runs"]
        out["pooled_difference_autoft_minus_random"] = {
            "mean": a["mean"] - b["mean"],
            "standard_error": (a["std"] ** 2 / a["n"] + b["std"] ** 2 / b["n"]) ** 0.5}
    pairs = {}
    for r in runs:
        if "pick_confirmed_mean" in r:
            pairs.setdefault(r["repeat"], {})[r["arm"]] = r["pick_confirmed_mean"]
    diffs = [p["autoft"] - p["random"] for p in pairs.values() if "autoft" in p and "random" in p]
    if diffs:
        out["difference_autoft_minus_random"] = {
            "per_repeat": diffs, "mean": statistics.fmean(diffs),
            "std": statistics.stdev(diffs) if len(diffs) > 1 else None}
    spread = _top_spread([e for r in runs for e in r["top"]])
    if spread:
        out["top_spread"] = spread
    return out


def _top_spread(entries: list[dict]) -> dict | None:
    """How far apart the confirmed strategies are, beyond their seed noise.

    A one-way random-effects analysis of variance over every strategy confirmed with at least 2
    fresh seeds (all arms and repeats): the seed standard deviation within a strategy, the spread
    of the confirmed means, and the standard deviation of the strategies' true scores
    (``between_sd``, method of moments, 0 when the means spread no more than their seed noise
    predicts) with a 95% upper bound from the F distribution (the exact interval for the ratio
    of the variance components, balanced case: Searle, Casella & McCulloch, *Variance
    Components*, 1992, section 3.5). When ``between_sd_upper_95`` is small against the seed
    noise of a 3-seed mean, no rule for picking among these strategies can be told apart from
    another by a few repeats.
    """
    from scipy import stats

    groups = [[c["dev_accuracy"] for c in e["confirmed"]] for e in entries
              if len(e.get("confirmed", [])) > 1]
    k, n_total = len(groups), sum(len(g) for g in groups)
    if k < 2:
        return None
    means = [statistics.fmean(g) for g in groups]
    grand = statistics.fmean(x for g in groups for x in g)
    ms_between = sum(len(g) * (m - grand) ** 2 for g, m in zip(groups, means)) / (k - 1)
    ms_within = sum((x - m) ** 2 for g, m in zip(groups, means) for x in g) / (n_total - k)
    n0 = (n_total - sum(len(g) ** 2 for g in groups) / n_total) / (k - 1)
    ratio = ms_between / ms_within
    upper = (ratio / stats.f.ppf(0.05, k - 1, n_total - k) - 1) / n0  # of sigma_b^2 / sigma_w^2
    return {"strategies": k, "runs": n_total,
            "confirmed_means_range": [min(means), max(means)],
            "confirmed_means_sd": statistics.stdev(means),
            "seed_sd": ms_within ** 0.5,
            "seed_sd_of_a_3_seed_mean": (ms_within / 3) ** 0.5,
            "between_sd": max(0.0, (ms_between - ms_within) / n0) ** 0.5,
            "between_sd_upper_95": max(0.0, upper) ** 0.5 * ms_within ** 0.5,
            "f_ratio": ratio, "p_value": float(stats.f.sf(ratio, k - 1, n_total - k))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", default="20m")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--first-repeat", type=int, default=0,
                        help="number of the first repeat: repeat r uses sampler seeds r (autoft) "
                             "and 1000 + r (random), so a rerun with the same numbers replays "
                             "the same trials; give a new range for new draws")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--confirm-seeds", type=int, default=3)
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/autoft-search-vs-random"))
    parser.add_argument("--resume", action="store_true", help="keep finished searches")
    parser.add_argument("--name", default="search_vs_random")
    parser.add_argument("--arms", default="autoft,random",
                        help="arms in the order they run within a repeat (also: autoft-nopruner, "
                             "autoft's defaults without pruning, a diagnostic)")
    parser.add_argument("--restat", action="store_true",
                        help="only recompute the statistics of the runs in --name's JSON from "
                             "their study folders (no training)")
    parser.add_argument("--pool", default=None, metavar="NAME,NAME",
                        help="only pool the runs of these results files (no training) into "
                             "--name's JSON: their repeats stay paired within each file")
    args = parser.parse_args()
    path = RESULTS / f"{args.name}.json"
    if args.pool:
        runs = []
        for name in [n.strip() for n in args.pool.split(",") if n.strip()]:
            for run in json.loads((RESULTS / f"{name}.json").read_text())["runs"]:
                runs.append({**run, "repeat": f"{name}:{run['repeat']}"})
        pooled = {"sources": args.pool, "runs": runs, "summary": _summary(runs),
                  "note": "runs of several results files (different code versions): see each"}
        save(args.name, pooled)
        print(json.dumps(pooled["summary"], indent=2))
        return
    if args.restat:
        from autoft.study import load_study

        payload = json.loads(path.read_text())
        for run in payload["runs"]:
            if Path(run["out"]).is_dir():
                run["sampled_at_first_rung"] = _sampled_stats(load_study(run["out"]))
        payload["summary"] = _summary(payload["runs"])
        save(args.name, payload)
        print(json.dumps(payload["summary"], indent=2))
        return

    args.work.mkdir(parents=True, exist_ok=True)
    train = args.work / "sst2_train.tsv"
    sst2_train(args.rows, seed=0).to_csv(train, sep="\t", index=False)
    dev = SHARED_DATA / "sst2" / "dev.tsv"
    payload: dict[str, Any] = {"runs": []}
    repeats = range(args.first_repeat, args.first_repeat + args.repeats)
    if args.resume and path.is_file():
        payload = json.loads(path.read_text())
    payload.update({
        "data": f"SST-2 train.tsv, {args.rows} rows sampled with seed 0; validation dev.tsv (872)",
        "backbone": "all-MiniLM-L6-v2", "budget": args.budget, "repeats": list(repeats),
        "confirm_seeds": args.confirm_seeds, "machine": machine(),
    })
    done = {(r["arm"], r["repeat"]) for r in payload["runs"]}
    for repeat in repeats:  # interleaved: autoft, random, autoft, random, ...
        for arm in [a.strip() for a in args.arms.split(",") if a.strip()]:
            if (arm, repeat) in done:
                continue
            print(f"[{time.strftime('%H:%M:%S')}] search: {arm}, repeat {repeat}", flush=True)
            payload["runs"].append(_search(arm, repeat, train, dev, args.budget, args.work))
            save(args.name, payload)
    # every run's pick first, then every run's second strategy, ...: a run cut short keeps the
    # comparison that matters
    # (after the picks, autoft's runs first: whether its pick is the best it found is the question)
    order = [(i, run) for i in range(args.top)
             for run in sorted(payload["runs"], key=lambda r: i > 0 and r["arm"] == "random")]
    for i, run in order:
        if i >= len(run["top"]) or "confirmed" in run["top"][i]:
            continue
        entry = run["top"][i]
        print(f"[{time.strftime('%H:%M:%S')}] confirm {run['arm']} {run['repeat']} top {i}: "
              f"{entry['description']}", flush=True)
        cache_dir = args.work / f"cache-{run['arm']}-{run['repeat']}-{i}"
        entry["confirmed"] = _confirm(entry["strategy"], train, dev, args.confirm_seeds,
                                      cache_dir)
        scores = [c["dev_accuracy"] for c in entry["confirmed"]]
        entry["confirmed_mean"] = statistics.fmean(scores)
        entry["confirmed_std"] = statistics.stdev(scores) if len(scores) > 1 else None
        if i == 0:
            run["pick_confirmed_mean"] = entry["confirmed_mean"]
        confirmed = [e["confirmed_mean"] for e in run["top"] if "confirmed_mean" in e]
        run["best_of_top_confirmed_mean"] = max(confirmed)
        run["pick_gap"] = run["best_of_top_confirmed_mean"] - run["pick_confirmed_mean"]
        payload["summary"] = _summary(payload["runs"])
        save(args.name, payload)
    payload["summary"] = _summary(payload["runs"])
    save(args.name, payload)
    print(json.dumps(payload["summary"], indent=2))
    for run in payload["runs"]:
        print(f"{run['arm']:>7} {run['repeat']}: {run['trials']} trials "
              f"({run['pruned']} pruned), pick {run['pick']['description']}: search "
              f"{run['pick']['search_score']:.4f} ({run['pick']['search_runs']} runs), confirmed "
              f"{run.get('pick_confirmed_mean', float('nan')):.4f}; best of top "
              f"{run.get('best_of_top_confirmed_mean', float('nan')):.4f}")


if __name__ == "__main__":
    main()
