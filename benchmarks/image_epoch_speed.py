"""Benchmark: seconds per training epoch of EfficientNet-Lite0 by frozen stages, with and without
the frozen-prefix cache (issue 14; the image counterpart of ``epoch_speed.py``).

Animal-MNIST (``pip install --no-deps animal-mnist``), ``--rows`` training images (seed 0), at
``--resolution`` pixels, batch 32, one epoch per configuration, on this machine's CPU. For each
k = 0..7 (7 = head only) it trains one epoch without the cache and one from the cache (filled
before, its fill timed apart); k where the cache does not pay (``cache_pays``) are run uncached
only.

    python benchmarks/image_epoch_speed.py                          # about 15 minutes
    python benchmarks/image_epoch_speed.py --rows 200 --resolution 64   # smoke

Results: ``benchmarks/results/image_epoch_speed.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import animal_mnist, machine, save


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--work", type=Path, default=Path("/tmp/autoft-image-epoch"))
    args = parser.parse_args()

    import torch

    from autoft.data import load_task_data
    from autoft.models import load_backbone, locate_parts
    from autoft.strategies import Strategy
    from autoft.training import PrefixCache
    from autoft.training.loop import train_strategy
    from autoft.training.prefix_cache import cache_pays

    images, labels = animal_mnist()
    order = np.random.default_rng(0).permutation(len(images))
    train_idx, val_idx = order[:args.rows], order[args.rows:args.rows + 100]
    task = load_task_data((images[train_idx], labels[train_idx]),
                          validation=(images[val_idx], labels[val_idx]))
    encoder, inputs, _ = load_backbone("efficientnet-lite0")
    num_layers = locate_parts(encoder).num_layers
    train = inputs.encode(task.train, args.resolution)
    val = inputs.encode(task.validation, args.resolution)
    rows: list[dict[str, Any]] = []
    payload = {"data": f"animal-mnist, {args.rows} training images (seed 0), 100 validation",
               "backbone": "efficientnet-lite0", "resolution": args.resolution, "batch_size": 32,
               "threads": torch.get_num_threads(), "machine": machine(), "rows": rows}
    for k in range(num_layers + 1):
        strategy = Strategy(frozen_layers=k, learning_rate=1e-4, head_learning_rate=1e-3,
                            epochs=1, batch_size=32, resolution=args.resolution)
        row: dict[str, Any] = {"frozen_layers": k}
        plain, _ = train_strategy(encoder, strategy, train, val, 10, pad_id=0, device="cpu",
                                  evals_per_epoch=1)
        row["uncached_train_seconds"] = round(plain.train_seconds, 2)
        row["trainable_params"] = plain.trainable_params
        if cache_pays(k, num_layers):
            cache = PrefixCache(args.work / "cache", dtype="float16")
            started = time.monotonic()
            cached, _ = train_strategy(encoder, strategy, train, val, 10, pad_id=0,
                                       device="cpu", evals_per_epoch=1, cache=cache)
            row["cache_fill_seconds"] = round(cached.cache_seconds, 2)
            row["cached_train_seconds"] = round(cached.train_seconds, 2)
            row["cached_wall_seconds"] = round(time.monotonic() - started, 2)
        rows.append(row)
        save("image_epoch_speed", payload)
        print(row, flush=True)


if __name__ == "__main__":
    main()
