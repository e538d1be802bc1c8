"""Benchmark: is memory released between trials? Process RSS after trial 1 and after trial 20.

Issue 3's target: RSS after 20 trials within 200 MB of RSS after the first. Runs a 20-trial search
on a tiny random BERT (built here from a config, no download) and 400 synthetic sentences, reading
``VmRSS`` from ``/proc/self/status`` after every trial (Linux).

    python benchmarks/memory_rss.py [--trials 20]
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

from _common import machine, save

import autoft


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def tiny_bert(folder: Path) -> Path:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(200)]
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(words)})
    config = BertConfig(vocab_size=len(words), hidden_size=64, num_hidden_layers=4,
                        num_attention_heads=2, intermediate_size=128, max_position_embeddings=64)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="autoft-rss-"))
    model = tiny_bert(work / "tiny")
    rng = random.Random(0)
    texts = [" ".join(f"w{rng.randrange(200)}" for _ in range(rng.randint(5, 30))) for _ in range(400)]
    labels = [int("w7" in t.split() or "w13" in t.split()) for t in texts]
    readings: list[float] = []
    result = autoft.search((texts, labels), model=str(model), n_trials=args.trials, out=work / "out",
                           device="cpu", callbacks=[lambda study, trial: readings.append(rss_mb())])
    first, last = readings[0], readings[-1]
    payload = {"trials": len(readings), "rss_mb_after_each_trial": [round(r, 1) for r in readings],
               "rss_mb_after_first": round(first, 1), "rss_mb_after_last": round(last, 1),
               "growth_mb": round(last - first, 1), "within_200_mb": last - first <= 200,
               "states": result.trials_["state"], "machine": machine()}
    path = save("memory_rss", payload)
    print(f"RSS after trial 1: {first:.0f} MB; after trial {len(readings)}: {last:.0f} MB; "
          f"growth {last - first:+.0f} MB -> {'PASS' if last - first <= 200 else 'FAIL'}")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
