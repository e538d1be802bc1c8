"""Benchmark: does searching the backbone pay? ``--model minilm --model mpnet`` against MiniLM alone.

Issue 12's must-show: 2,000 SST-2 training rows (seed 0), the 872 rows of ``sst2/dev.tsv`` as
validation, the ``all`` space (freeze with LLRD, LoRA, BitFit), a 30-minute budget:

1. **choice**: ``autoft.search(..., model=["minilm", "mpnet"])``: per backbone the screening probe,
   its share, the trials by status, the strategy kinds and ``frozen_layers`` values tried; the
   chosen backbone and strategy, retrained with 3 fresh seeds (10000..) on the same data.
2. **minilm**: the same search and budget on MiniLM alone, its recommendation on fresh seeds too.

Targets: trials on both backbones, >= 10 finished and >= 1 pruned in all, >= 3 strategy kinds
tried, the choice's fresh-seed mean >= 0.90 dev accuracy.

    python benchmarks/fetch_mpnet.py                  # once: MPNet into ~/.cache/autoft/models
    python benchmarks/backbone_choice.py              # both stages: about 80 minutes on 2 cores
    python benchmarks/backbone_choice.py --stages choice --budget 5m --seeds 1   # a quick look

Results (saved after each stage): ``benchmarks/results/backbone_choice.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import RESULTS, SHARED_DATA, machine, save, sst2_train
from sst2_search import confirm

import autoft

STAGES = ("choice", "minilm")
FINISHED = ("complete", "pruned", "budget", "diverged")


def summarise(result: Any) -> dict[str, Any]:
    """Trial counts, kinds and frozen_layers tried, and the recommendation of one study."""
    t = result.trials_
    statuses = t.get("status", [])
    ran = [i for i, s in enumerate(statuses) if s in FINISHED]
    rec = result.recommendation_
    return {
        "trials": {s: statuses.count(s) for s in sorted(set(statuses))},
        "finished": sum(statuses[i] in ("complete", "pruned", "budget") for i in ran),
        "pruned": sum(statuses[i] == "pruned" for i in ran),
        "kinds_tried": sorted({t["kind"][i] or "freeze" for i in ran}),
        "frozen_layers_tried": sorted({t["frozen_layers"][i] for i in ran}),
        "recommendation": None if rec is None else {
            "description": rec.strategy.describe(), "strategy": rec.strategy.to_dict(),
            "search_mean": rec.score, "search_std": rec.score_std, "search_runs": rec.seeds,
            "confirmed": rec.confirmed, "seconds": round(rec.seconds, 1)},
    }


def fresh_seeds(model: str, train_path: Path, result: Any, seeds: int) -> dict[str, Any] | None:
    if result.best_strategy_ is None or seeds < 1:
        return None
    runs = confirm(model, train_path, result.best_strategy_, seeds)
    scores = [r["dev_accuracy"] for r in runs]
    return {"runs": runs, "mean": round(statistics.mean(scores), 4),
            "std": round(statistics.stdev(scores), 4) if len(scores) > 1 else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="30m")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=3, help="fresh seeds per recommendation")
    parser.add_argument("--space", default="all")
    parser.add_argument("--out", type=Path, default=Path("/tmp/autoft-backbone-choice"))
    parser.add_argument("--stages", default=",".join(STAGES))
    args = parser.parse_args()
    stages = set(args.stages.split(","))
    if stages - set(STAGES):
        raise SystemExit(f"unknown stages {sorted(stages - set(STAGES))}; known: {STAGES}")

    train = sst2_train(args.rows, 0)
    work = Path(tempfile.mkdtemp(prefix="autoft-choice-"))
    train_path = work / f"sst2_train_{args.rows}.tsv"
    train.to_csv(train_path, sep="\t", index=False, quoting=csv.QUOTE_NONE)
    dev = SHARED_DATA / "sst2" / "dev.tsv"
    saved = RESULTS / "backbone_choice.json"
    payload: dict[str, Any] = json.loads(saved.read_text()) if saved.is_file() else {}
    payload |= {"data": f"SST-2 train.tsv, {args.rows} rows sampled with seed 0; validation "
                        "dev.tsv (872 rows)", "budget": args.budget, "space": args.space,
                "fresh_seeds": list(range(10_000, 10_000 + args.seeds)), "machine": machine()}

    if "choice" in stages:
        started = time.monotonic()
        result = autoft.search(train_path, validation=dev, model=["minilm", "mpnet"],
                               budget=args.budget, space=args.space, out=args.out / "choice")
        wall = time.monotonic() - started
        per = {name: summarise(r) for name, r in result.results_.items()}
        screen = {r["name"]: {k: r.get(k) for k in ("screen_score", "screen_seconds", "share",
                                                       "screened_out", "budget_seconds")}
                  for r in result.backbones_}
        stage = {"wall_seconds": round(wall, 1), "chosen": result.backbone_,
                 "screening": screen, "backbones": per,
                 "finished": sum(p["finished"] for p in per.values()),
                 "pruned": sum(p["pruned"] for p in per.values()),
                 "kinds_tried": sorted({k for p in per.values() for k in p["kinds_tried"]}),
                 "report": str(args.out / "choice" / "report.md")}
        payload["choice"] = stage
        save("backbone_choice", payload)
        print(json.dumps(stage, indent=1, default=str)[:3000], flush=True)
        if result.backbone_ is not None:
            stage["fresh_seeds"] = fresh_seeds(result.backbone_, train_path, result, args.seeds)
            save("backbone_choice", payload)
    if "minilm" in stages:
        started = time.monotonic()
        result = autoft.search(train_path, validation=dev, model="minilm", budget=args.budget,
                               space=args.space, out=args.out / "minilm")
        stage = {"wall_seconds": round(time.monotonic() - started, 1), **summarise(result)}
        payload["minilm"] = stage
        save("backbone_choice", payload)
        stage["fresh_seeds"] = fresh_seeds("minilm", train_path, result, args.seeds)
        save("backbone_choice", payload)
    choice = payload.get("choice") or {}
    both = [n for n, p in (choice.get("backbones") or {}).items()
            if p["finished"] + p["pruned"] > 0]
    payload["targets"] = {
        "trials_on_both_backbones": len(both) == 2,
        "finished>=10": (choice.get("finished") or 0) >= 10,
        "pruned>=1": (choice.get("pruned") or 0) >= 1,
        "kinds>=3": len(choice.get("kinds_tried") or []) >= 3,
        "fresh_mean>=0.90": ((choice.get("fresh_seeds") or {}).get("mean") or 0) >= 0.90,
    }
    print(f"targets: {payload['targets']}")
    print(f"saved {save('backbone_choice', payload)}")


if __name__ == "__main__":
    main()
