"""Benchmark: does training longer help on 2,000 SST-2 rows? (evidence for a default-space change)

Trains one strategy (by default the best full fine-tuning strategy the issue-2 benchmark found:
lr 1.2e-4, head lr 1.5e-4, linear head with dropout 0.29, mean pooling, batch 32) for each number
of epochs and seed, and reports the best dev accuracy over its evaluations (the search's
objective) and the wall time. Longer training on small data is the lever suggested by Mosbach
et al. 2021, "On the stability of fine-tuning BERT". Saves ``benchmarks/results/epochs_small_data.json``.

    python benchmarks/epochs_small_data.py [--epochs 3,5] [--seeds 0,1] [--frozen 0]
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import SHARED_DATA, encoded_task, machine, read_tsv, save, sst2_train

from autoft.strategies import Head, Strategy
from autoft.training import train_strategy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--epochs", default="3,5")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--frozen", type=int, default=0)
    parser.add_argument("--lr", type=float, default=1.2308e-4)
    parser.add_argument("--head-lr", type=float, default=1.4564e-4)
    parser.add_argument("--dropout", type=float, default=0.293)
    args = parser.parse_args()
    task, encoder, tokenizer, tr, va = encoded_task(
        sst2_train(args.rows), read_tsv(SHARED_DATA / "sst2" / "dev.tsv"))
    rows = []
    for epochs in (int(e) for e in args.epochs.split(",")):
        for seed in (int(s) for s in args.seeds.split(",")):
            strategy = Strategy(frozen_layers=args.frozen, learning_rate=args.lr,
                                head_learning_rate=args.head_lr, head=Head("linear", dropout=args.dropout),
                                pooling="mean", epochs=epochs, batch_size=32)
            t0 = time.monotonic()
            outcome, _ = train_strategy(encoder, strategy, tr, va, task.num_labels,
                                        pad_id=int(tokenizer.pad_token_id), device="cpu",
                                        seed=seed, evals_per_epoch=2)
            row = {"epochs": epochs, "seed": seed, "best_dev_accuracy": outcome.best_score,
                   "scores": outcome.scores, "seconds": round(time.monotonic() - t0, 1)}
            rows.append(row)
            print(row, flush=True)
    summary = {}
    for epochs in sorted({r["epochs"] for r in rows}):
        got = [r["best_dev_accuracy"] for r in rows if r["epochs"] == epochs]
        summary[epochs] = {"mean": statistics.mean(got), "runs": len(got),
                           "seconds": statistics.mean(r["seconds"] for r in rows
                                                      if r["epochs"] == epochs)}
    path = save("epochs_small_data", {"rows": args.rows, "frozen_layers": args.frozen,
                                      "lr": args.lr, "head_lr": args.head_lr, "runs": rows,
                                      "summary": summary, "machine": machine()})
    for epochs, s in summary.items():
        print(f"epochs={epochs}: mean best dev accuracy {s['mean']:.4f} over {s['runs']} seeds, "
              f"{s['seconds']:.0f} s per run")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
