"""Benchmark: does a one-epoch rung rank learning rates as the finished runs do?

Issue 10's diagnostic for the pruner. autoft's default pruner (successive halving, first rung
after one of three epochs, reduction factor 3) keeps a third of the trials that reach the rung.
A linear-decay schedule with warm-up is still near its peak learning rate after one epoch, so a
high learning rate can look worse there than it ends (the short-horizon bias of Wu et al. 2018,
"Understanding Short-Horizon Bias in Stochastic Meta-Optimization", ICLR). This sweeps the
backbone learning rate of one strategy (SST-2, 2,000 training rows, seed 0; dev.tsv; MiniLM;
2 blocks frozen, linear head, mean pooling, batch 32, 3 epochs, 2 evaluations an epoch) over
a few seeds and records every evaluation, so the ranking after epoch 1 can be compared with the
ranking at the end.

    python benchmarks/short_horizon.py                      # about 15 minutes on 2 cores
    python benchmarks/short_horizon.py --lrs 3e-5 2e-4 --seeds 1

Results: ``benchmarks/results/short_horizon.json``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import SHARED_DATA, machine, read_tsv, save, sst2_train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lrs", type=float, nargs="+", default=[3e-5, 6e-5, 1.2e-4, 2e-4, 3e-4])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--frozen", type=int, default=2)
    parser.add_argument("--name", default="short_horizon")
    args = parser.parse_args()

    import autoft

    train = sst2_train(args.rows)
    dev_df = read_tsv(SHARED_DATA / "sst2" / "dev.tsv")
    runs = []
    payload = {"data": f"SST-2 {args.rows} rows (seed 0), dev.tsv", "backbone": "all-MiniLM-L6-v2",
               "frozen_layers": args.frozen, "machine": machine(), "runs": runs}
    for seed in range(args.seeds):
        for lr in args.lrs:
            scores: list[float] = []
            strategy = {"frozen_layers": args.frozen, "learning_rate": lr,
                        "head_learning_rate": 1.5e-3, "head": "linear", "head_dropout": 0.1,
                        "pooling": "mean", "batch_size": 32, "epochs": 3}
            started = time.monotonic()
            autoft.fine_tune(train, strategy, validation=dev_df, seed=seed, device="cpu",
                             progress=lambda i, n, s, scores=scores: scores.append(s))
            runs.append({"learning_rate": lr, "seed": seed, "scores": scores,
                         "seconds": round(time.monotonic() - started, 1)})
            print(f"lr {lr:.1e} seed {seed}: " + " ".join(f"{s:.4f}" for s in scores), flush=True)
            save(args.name, payload)
    payload["summary"] = summarise(runs, args.lrs)
    save(args.name, payload)
    for lr, row in payload["summary"]["by_learning_rate"].items():
        print(f"lr {lr}: mean by evaluation " + " ".join(f"{m:.4f}" for m in row))
    print("Spearman of each evaluation's means with the final means:",
          " ".join(f"{r:+.2f}" for r in payload["summary"]["spearman_with_final"]))


def summarise(runs: list[dict], lrs: list[float]) -> dict:
    """Mean score per learning rate at each evaluation, and how well each evaluation's means rank
    the learning rates as the last evaluation's do (Spearman's rho; +1: the same order)."""
    from scipy.stats import spearmanr

    means = {}
    for lr in lrs:
        rows = [r["scores"] for r in runs if r["learning_rate"] == lr]
        means[f"{lr:.1e}"] = [statistics.fmean(col) for col in zip(*rows, strict=True)]
    table = list(means.values())
    final = [row[-1] for row in table]
    rho = [float(spearmanr([row[i] for row in table], final).statistic)
           for i in range(len(table[0]))]
    return {"by_learning_rate": means, "spearman_with_final": rho,
            "seeds": len({r["seed"] for r in runs})}


if __name__ == "__main__":
    main()
