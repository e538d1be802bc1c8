"""Benchmark: the strategy kinds side by side (issue 12's first must-show).

SST-2, 2,000 training rows (seed 0), validated on dev.tsv (872 rows), MiniLM by default: full
fine-tuning, the best freeze-k (``freeze_k``: k in 1-3 and the rate swept together; ``freeze_half``
is k = L/2), LoRA on the attention (of every block, or only above a frozen and cached bottom
half), LoRA on attention + FFN, BitFit and full fine-tuning with
layer-wise learning-rate decay (0.9). Each method is first swept over a few learning rates with
one seed (``--sweep-seed``), then its best point is trained with ``--seeds`` fresh seeds; the
table gives the dev accuracy (mean, std over those seeds), seconds per epoch (training only,
median over the seeds), trainable parameters and the process's peak RSS after the method
(``ru_maxrss``: it only grows, so the methods run from the lightest to the heaviest and each row
says what that method added, if anything).

    python benchmarks/strategy_kinds.py                        # about 40 minutes on 2 cores
    python benchmarks/strategy_kinds.py --rows 300 --seeds 1 --methods bitfit,lora_attn   # smoke
    python benchmarks/strategy_kinds.py --model /path/to/all-mpnet-base-v2 \\
        --methods bitfit,lora_attn,freeze_half,full --name strategy_kinds_mpnet \\
        --rates bitfit=1e-3,3e-3 --rates lora_attn=1e-3,3e-3 --rates freeze_half=5e-5,1e-4 \\
        --rates full=3e-5                                # about 80 minutes on 2 cores

A method given one rate is not swept (its seeds run at that rate). Methods already in the results
file of the same backbone and data are kept, so a later run can add one (``--methods full``).

Results: ``benchmarks/results/strategy_kinds.json`` (written after every fine-tune).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path
from typing import Any

from _common import RESULTS, SHARED_DATA, machine, save, sst2_train

#: method -> (strategy fields without the learning rate, the learning-rate field, the sweep: rates,
#: or dicts of fields when more than the rate is swept)
METHODS: dict[str, tuple[dict[str, Any], str, tuple[Any, ...]]] = {
    "bitfit": ({"kind": "bitfit", "frozen_layers": 0}, "bitfit_learning_rate",
               (3e-4, 1e-3, 3e-3)),
    "lora_attn": ({"kind": "lora", "frozen_layers": 0, "lora_rank": 8, "lora_alpha": 16,
                   "lora_targets": "attention"}, "lora_learning_rate", (3e-4, 1e-3, 3e-3)),
    "lora_attn_ffn": ({"kind": "lora", "frozen_layers": 0, "lora_rank": 8, "lora_alpha": 16,
                       "lora_targets": "attention_ffn"}, "lora_learning_rate",
                      (3e-4, 1e-3, 3e-3)),
    # LoRA above a frozen bottom half: the half's outputs come from the prefix cache
    "lora_attn_above_half": ({"kind": "lora", "frozen_layers": "L/2", "lora_rank": 8,
                              "lora_alpha": 16, "lora_targets": "attention"},
                             "lora_learning_rate", (3e-4, 1e-3, 3e-3)),
    "freeze_half": ({"kind": "freeze", "frozen_layers": "L/2"}, "learning_rate",
                    (3e-5, 1e-4, 3e-4)),
    # the best freeze-k: k and the rate swept together, around what the SST-2 searches found
    # (k = 1-3 and 1e-4-2e-4 at the top of search_vs_random_v5's runs)
    "freeze_k": ({"kind": "freeze"}, "learning_rate",
                 tuple({"frozen_layers": k, "learning_rate": rate}
                       for k in (1, 2, 3) for rate in (1e-4, 2e-4))),
    "full": ({"kind": "freeze", "frozen_layers": 0}, "learning_rate", (2e-5, 5e-5, 1e-4)),
    "llrd": ({"kind": "freeze", "frozen_layers": 0, "layer_decay": 0.9}, "learning_rate",
             (2e-5, 5e-5, 1e-4)),
}
COMMON = {"head": "linear", "head_learning_rate": 1e-3, "head_dropout": 0.1, "pooling": "mean",
          "epochs": 3, "batch_size": 32}


def _strategy(method: str, point: Any, num_layers: int) -> dict[str, Any]:
    fields, rate_field, _ = METHODS[method]
    out = {**COMMON, **fields, **(point if isinstance(point, dict) else {rate_field: point})}
    if out["frozen_layers"] == "L/2":
        out["frozen_layers"] = num_layers // 2
    return out


def _run(train: Path, dev: Path, strategy: dict[str, Any], seed: int, model: str | None,
         cache_dir: Path) -> dict[str, Any]:
    import autoft
    from autoft.training import PrefixCache

    started = time.monotonic()
    fit = autoft.fine_tune(train, strategy, validation=dev, seed=seed, device="cpu", model=model,
                           cache=PrefixCache(cache_dir))
    o = fit.outcome
    return {"seed": seed, "dev_accuracy": fit.validation_score,
            "seconds_per_epoch": round(o.train_seconds / strategy["epochs"], 2),
            "wall_seconds": round(time.monotonic() - started, 1),
            "cache_seconds": round(o.cache_seconds, 1), "cached": o.cached,
            "trainable_params": o.trainable_params,
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sweep-seed", type=int, default=100)
    parser.add_argument("--methods", default="lora_attn_above_half,bitfit,lora_attn,"
                                             "lora_attn_ffn,freeze_k,full,llrd",
                        help=f"some of {', '.join(METHODS)}, lightest first")
    parser.add_argument("--model", default=None, help="backbone folder (default: MiniLM)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/autoft-strategy-kinds"))
    parser.add_argument("--name", default="strategy_kinds")
    parser.add_argument("--rates", action="append", default=[], metavar="METHOD=R1,R2",
                        help="sweep these learning rates for METHOD instead of its default "
                             "three (repeatable; e.g. full=2e-5,5e-5 on a larger backbone)")
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise SystemExit(f"unknown methods {unknown}; known: {sorted(METHODS)}")

    sweeps = {m: METHODS[m][2] for m in methods}
    for spec in args.rates:
        method, _, rates = spec.partition("=")
        if method not in sweeps or not rates:
            raise SystemExit(f"--rates {spec!r}: expected METHOD=R1,R2 with METHOD one of "
                             f"{methods}")
        sweeps[method] = tuple(float(r) for r in rates.split(","))

    from autoft.models import load_backbone, locate_parts

    num_layers = locate_parts(load_backbone(args.model)[0]).num_layers
    args.work.mkdir(parents=True, exist_ok=True)
    train = args.work / f"sst2_train_{args.rows}.tsv"
    sst2_train(args.rows, seed=0).to_csv(train, sep="\t", index=False)
    dev = SHARED_DATA / "sst2" / "dev.tsv"
    payload: dict[str, Any] = {
        "data": f"SST-2 train.tsv, {args.rows} rows sampled with seed 0; validation dev.tsv",
        "backbone": args.model or "all-MiniLM-L6-v2", "common": COMMON, "machine": machine(),
        "methods": {}}
    saved = RESULTS / f"{args.name}.json"
    if saved.is_file():  # a run of other methods adds to the file; a method run again replaces
        earlier = json.loads(saved.read_text())
        if (earlier.get("backbone"), earlier.get("data")) == (payload["backbone"],
                                                              payload["data"]):
            payload["methods"] = {m: e for m, e in earlier.get("methods", {}).items()
                                  if m not in methods}
    for method in methods:
        rates = sweeps[method]
        entry: dict[str, Any] = {"sweep": [], "runs": []}
        payload["methods"][method] = entry
        for rate in rates if len(rates) > 1 else ():  # one rate: nothing to choose
            strategy = _strategy(method, rate, num_layers)
            row = _run(train, dev, strategy, args.sweep_seed, args.model, args.work / "cache")
            entry["sweep"].append({"rate": rate, **row})
            print(f"[{time.strftime('%H:%M:%S')}] {method} {rate}: "
                  f"{row['dev_accuracy']:.4f} ({row['seconds_per_epoch']} s/epoch)", flush=True)
            save(args.name, payload)
        best = (max(entry["sweep"], key=lambda r: r["dev_accuracy"])["rate"] if entry["sweep"]
                else rates[0])
        entry["best_rate"] = best
        entry["strategy"] = _strategy(method, best, num_layers)
        for seed in range(args.seeds):
            row = _run(train, dev, entry["strategy"], seed, args.model, args.work / "cache")
            entry["runs"].append(row)
            save(args.name, payload)
        scores = [r["dev_accuracy"] for r in entry["runs"]]
        entry["summary"] = {
            "dev_accuracy_mean": statistics.fmean(scores),
            "dev_accuracy_std": statistics.stdev(scores) if len(scores) > 1 else None,
            "seconds_per_epoch": statistics.median(r["seconds_per_epoch"] for r in entry["runs"]),
            "trainable_params": entry["runs"][0]["trainable_params"],
            "peak_rss_mib": max(r["peak_rss_mib"] for r in entry["runs"])}
        save(args.name, payload)
        s = entry["summary"]
        std = "-" if s["dev_accuracy_std"] is None else f"{s['dev_accuracy_std']:.4f}"
        print(f"{method:>14}: {best}, dev {s['dev_accuracy_mean']:.4f} +- {std}, "
              f"{s['seconds_per_epoch']} s/epoch, {s['trainable_params']:,} trainable, "
              f"peak RSS {s['peak_rss_mib']} MiB", flush=True)


if __name__ == "__main__":
    main()
