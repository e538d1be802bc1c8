"""Benchmark: seconds per training epoch by frozen_layers, with and without the frozen-prefix cache.

Issue 5 (a). On 8,000 SST-2 training rows with the bundled MiniLM (6 blocks), for k = 0..L: one
epoch without the cache, and with it the first epoch (which fills the cache) and a later epoch
(which reads it). Ratios are to the full fine-tuning epoch (k = 0). Evaluation time is excluded
(a 64-row validation split, evaluated once). Prints a table and saves
``benchmarks/results/epoch_speed.json``.

    python benchmarks/epoch_speed.py [--rows 8000]

Targets: k = L at least 10x faster than k = 0 from the second epoch on; k = L/2 at least 1.7x.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from _common import SHARED_DATA, encoded_task, machine, read_tsv, save, sst2_train

from autoft.models import locate_parts
from autoft.strategies import Strategy
from autoft.training import PrefixCache, train_strategy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    dev = read_tsv(SHARED_DATA / "sst2" / "dev.tsv").sample(n=64, random_state=0)
    task, encoder, tokenizer, tr, va = encoded_task(sst2_train(args.rows), dev)
    num_layers = locate_parts(encoder).num_layers
    pad = int(tokenizer.pad_token_id)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for k in range(num_layers + 1):
            strategy = Strategy(frozen_layers=k, learning_rate=5e-5, head_learning_rate=1e-3,
                                epochs=1, batch_size=args.batch_size, pooling="mean")
            plain, _ = train_strategy(encoder, strategy, tr, va, 2, pad_id=pad, device="cpu",
                                      evals_per_epoch=1)
            row = {"frozen_layers": k, "epoch_seconds_uncached": round(plain.train_seconds, 2),
                   "trainable_params": plain.trainable_params}
            if k >= 1:
                cache = PrefixCache(folder)
                t0 = time.monotonic()
                first, _ = train_strategy(encoder, strategy, tr, va, 2, pad_id=pad, device="cpu",
                                          evals_per_epoch=1, cache=cache)
                fill = time.monotonic() - t0 - first.train_seconds - first.eval_seconds
                later, _ = train_strategy(encoder, strategy, tr, va, 2, pad_id=pad,
                                          device="cpu", evals_per_epoch=1, cache=cache)
                row.update(cache_fill_seconds=round(fill, 2),
                           first_epoch_seconds_cached=round(first.train_seconds + fill, 2),
                           later_epoch_seconds_cached=round(later.train_seconds, 2))
            rows.append(row)
            print(row, flush=True)
    full = rows[0]["epoch_seconds_uncached"]
    for row in rows:
        row["speedup_uncached"] = round(full / row["epoch_seconds_uncached"], 2)
        if "later_epoch_seconds_cached" in row:
            row["speedup_cached_later_epochs"] = round(full / row["later_epoch_seconds_cached"], 2)
    half = rows[num_layers // 2].get("speedup_cached_later_epochs", 0.0)
    top = rows[num_layers].get("speedup_cached_later_epochs", 0.0)
    payload = {"rows": args.rows, "batch_size": args.batch_size, "num_layers": num_layers,
               "table": rows, "targets": {"k=L >= 10x": top >= 10, "k=L/2 >= 1.7x": half >= 1.7},
               "machine": machine()}
    path = save("epoch_speed", payload)
    print(f"\n{args.rows} SST-2 rows, MiniLM-L6, batch {args.batch_size}, CPU")
    print(" k | epoch s (no cache) | speedup | cache fill s | later epoch s (cache) | speedup")
    for r in rows:
        print(f"{r['frozen_layers']:>2} | {r['epoch_seconds_uncached']:>18.1f} | "
              f"{r['speedup_uncached']:>7.2f} | {r.get('cache_fill_seconds', 0):>12.1f} | "
              f"{r.get('later_epoch_seconds_cached', float('nan')):>21.2f} | "
              f"{r.get('speedup_cached_later_epochs', float('nan')):>7.2f}")
    print(f"targets: k=L {top:.1f}x (>= 10), k=L/2 {half:.2f}x (>= 1.7); saved {path}")


if __name__ == "__main__":
    main()
