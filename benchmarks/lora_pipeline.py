"""Benchmark: a LoRA recommendation's refit folder through ``transformers.pipeline`` (issue 12).

SST-2, 2,000 training rows (seed 0), dev.tsv (872 rows), MiniLM. A one-trial search with a fixed
LoRA strategy (rank 8 on attention + FFN above 2 frozen blocks, lr 1e-3), then ``autoft.refit``
(which merges the adapters into the weights) and ``transformers.pipeline("text-classification")``
on the dev sentences: its accuracy against the refit's own validation score, and the adapter-only
export (``refit(adapter=True)``) reloaded with peft.

    python benchmarks/lora_pipeline.py          # about 5 minutes on 2 cores

Results: ``benchmarks/results/lora_pipeline.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import SHARED_DATA, machine, read_tsv, save, sst2_train

STRATEGY = {"kind": "lora", "frozen_layers": 2, "lora_rank": 8, "lora_alpha": 16,
            "lora_targets": "attention_ffn", "lora_learning_rate": 1e-3, "head": "linear",
            "head_learning_rate": 1e-3, "head_dropout": 0.1, "pooling": "mean", "epochs": 3,
            "batch_size": 32}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/autoft-lora-pipeline"))
    args = parser.parse_args()

    import transformers

    import autoft

    args.work.mkdir(parents=True, exist_ok=True)
    train = args.work / "sst2_train.tsv"
    sst2_train(args.rows, seed=0).to_csv(train, sep="\t", index=False)
    dev_path = SHARED_DATA / "sst2" / "dev.tsv"
    started = time.monotonic()
    space = {**STRATEGY, "baselines": []}
    autoft.search(train, validation=dev_path, space=space, n_trials=1, out=args.work / "out",
                  seeds=1, curve_sizes=(), device="cpu")
    refit = autoft.refit(args.work / "out", save_to=args.work / "model", device="cpu",
                         adapter=True)
    clf = transformers.pipeline("text-classification", model=str(args.work / "model"),
                                device="cpu")
    dev = read_tsv(dev_path)
    predicted = [int(out["label"]) if str(out["label"]).isdigit() else out["label"]
                 for out in clf(dev["sentence"].tolist(), batch_size=64, truncation=True)]
    truth = dev["label"].tolist()
    accuracy = sum(str(p) == str(t) for p, t in zip(predicted, truth)) / len(truth)
    adapter_files = sorted(p.name for p in (args.work / "model" / "adapter").iterdir())
    payload = {
        "data": f"SST-2 train.tsv, {args.rows} rows (seed 0); validation dev.tsv",
        "strategy": STRATEGY, "refit_validation_accuracy": refit.validation_score,
        "pipeline_dev_accuracy": accuracy,
        "difference": accuracy - float(refit.validation_score or 0.0),
        "adapter_files": adapter_files, "seconds": round(time.monotonic() - started, 1),
        "machine": machine()}
    save("lora_pipeline", payload)
    print(payload)


if __name__ == "__main__":
    main()
