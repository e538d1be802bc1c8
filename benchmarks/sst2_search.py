"""Benchmark: ``autoft search`` on 2,000 SST-2 training rows, validating on the 872 dev rows.

Issue 2's acceptance run. Prints the trial counts, the distinct ``frozen_layers`` tried and the
recommended strategy's dev accuracy, and saves them to ``benchmarks/results/sst2_search.json``.

    python benchmarks/sst2_search.py                  # 20-minute budget, as in the issue
    python benchmarks/sst2_search.py --budget 5m      # a quicker look

Targets (issue 2): >= 6 trials completed or pruned, >= 1 pruned, >= 3 distinct frozen_layers,
recommended strategy's dev accuracy >= 0.83.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import time
from pathlib import Path

from _common import RESULTS, SHARED_DATA, machine, read_tsv, save

import autoft


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="20m")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="study folder (default: a fresh temp)")
    args = parser.parse_args()

    train = read_tsv(SHARED_DATA / "sst2" / "train.tsv").sample(n=args.rows, random_state=args.seed)
    work = Path(tempfile.mkdtemp(prefix="autoft-bench-"))
    train_path = work / f"sst2_train_{args.rows}.tsv"
    train.to_csv(train_path, sep="\t", index=False, quoting=csv.QUOTE_NONE)
    out = args.out or work / "out"
    if args.out is not None and out.exists():
        shutil.rmtree(out)

    started = time.monotonic()
    result = autoft.search(
        train_path, validation=SHARED_DATA / "sst2" / "dev.tsv", budget=args.budget,
        out=out, seed=args.seed,
    )
    wall = time.monotonic() - started
    trials = result.trials_
    states = trials["state"]
    finished = sum(s in ("COMPLETE", "PRUNED") for s in states)
    pruned = sum(s == "PRUNED" for s in states)
    rec = result.recommendation_
    frozen = sorted({k for k, s in zip(trials["frozen_layers"], states) if s in ("COMPLETE", "PRUNED")})
    payload = {
        "data": {"train_rows": len(train), "validation": "sst2/dev.tsv (872 rows)",
                 "sample_seed": args.seed},
        "budget": args.budget,
        "wall_seconds": round(wall, 1),
        "trials_completed_or_pruned": finished,
        "trials_pruned": pruned,
        "trials_failed": sum(s == "FAIL" for s in states),
        "distinct_frozen_layers": frozen,
        "recommended": None if result.best_strategy_ is None else result.best_strategy_.to_dict(),
        "recommended_dev_accuracy": result.best_score_,
        "recommended_seeds": None if rec is None else {
            "trial_number": rec.trial_number, "runs": rec.seeds, "std": rec.score_std,
            "scores": next((g["scores"] for g in rec.groups
                            if g["trial_number"] == rec.trial_number), None),
            "reason": rec.reason},
        "trials": [
            {k: trials[k][i] for k in ("number", "state", "frozen_layers", "learning_rate",
                                       "head_learning_rate", "head", "pooling", "batch_size",
                                       "score", "seconds", "trainable_params", "purpose",
                                       "train_size", "status")}
            for i in range(len(states))
        ],
        "targets": {"finished>=6": finished >= 6, "pruned>=1": pruned >= 1,
                    "distinct_frozen>=3": len(frozen) >= 3,
                    "dev_accuracy>=0.83": (result.best_score_ or 0) >= 0.83},
        "machine": machine(),
        "report": str(out / "report.md"),
    }
    path = save("sst2_search", payload)
    shutil.copy(out / "report.md", RESULTS / "sst2_search_report.md")
    print(f"budget {args.budget}, wall {wall:.0f} s, {len(train)} train rows, 872 dev rows")
    print(f"trials completed or pruned: {finished}  pruned: {pruned}  "
          f"failed: {payload['trials_failed']}")
    print(f"distinct frozen_layers tried: {frozen}")
    if result.best_strategy_ is not None:
        print(f"recommended: {result.best_strategy_.describe(6)}")
        print(f"recommended dev accuracy: {result.best_score_:.4f}"
              + (f" (mean of {rec.seeds} seeds, std {rec.score_std:.4f})"
                 if rec is not None and rec.score_std is not None else ""))
    for name, ok in payload["targets"].items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
