"""Benchmark: the same fine-tune by Hugging Face ``Trainer`` and by autoft (issue 5 b).

Same model (autoft's classifier class, built once from MiniLM with the same head initialisation),
same frozen layers, hyperparameters (AdamW, lr, linear warmup 10% and decay, weight decay 0.01,
gradient clipping 1.0, batch size, epochs) and data (2,000 SST-2 training rows, dev.tsv). Trainer
runs with its defaults for everything else (no evaluation during training), once as is and once with
``train_sampling_strategy="group_by_length"``; autoft with one evaluation per epoch (its time
included). Prints wall
times, their ratio and both dev accuracies; saves ``benchmarks/results/vs_trainer.json``.

    python benchmarks/vs_trainer.py [--rows 2000] [--frozen 0,3]
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time

import numpy as np
import torch
from _common import SHARED_DATA, encoded_task, machine, read_tsv, save, sst2_train

from autoft.models.hf_model import to_pretrained
from autoft.strategies import Strategy
from autoft.strategies.apply import build_classifier
from autoft.training import evaluate, train_strategy


def run_trainer(encoder, tokenizer, task, strategy, group_by_length):  # type: ignore[no-untyped-def]
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    clf, _ = build_classifier(copy.deepcopy(encoder), strategy, task.num_labels, seed=0)
    model = to_pretrained(clf, task.id2label, strategy.to_dict())
    for name, param in model.named_parameters():  # the same frozen prefix
        param.requires_grad = dict(clf.named_parameters())[name].requires_grad

    def tok(batch):  # type: ignore[no-untyped-def]
        return tokenizer(batch["text"], truncation=True, max_length=128)

    train = Dataset.from_dict({"text": task.train.texts, "labels": task.train.labels.tolist()})
    dev = Dataset.from_dict({"text": task.validation.texts,
                             "labels": task.validation.labels.tolist()})
    train, dev = train.map(tok, batched=True), dev.map(tok, batched=True)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, learning_rate=strategy.learning_rate,
            per_device_train_batch_size=strategy.batch_size, per_device_eval_batch_size=128,
            num_train_epochs=strategy.epochs, warmup_steps=strategy.warmup_ratio,  # v5: a ratio
            lr_scheduler_type="linear", weight_decay=strategy.weight_decay, max_grad_norm=1.0,
            save_strategy="no", eval_strategy="no", report_to=[], logging_strategy="no",
            train_sampling_strategy="group_by_length" if group_by_length else "random",
            seed=0, use_cpu=True, dataloader_num_workers=0,
        )
        trainer = Trainer(model=model, args=args, train_dataset=train.remove_columns(["text"]),
                          data_collator=DataCollatorWithPadding(tokenizer))
        t0 = time.monotonic()
        trainer.train()
        seconds = time.monotonic() - t0
        preds = trainer.predict(dev.remove_columns(["text"])).predictions.argmax(-1)
    return seconds, float(np.mean(preds == task.validation.labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--frozen", default="0,3")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    task, encoder, tokenizer, tr, va = encoded_task(
        sst2_train(args.rows), read_tsv(SHARED_DATA / "sst2" / "dev.tsv"))
    pad = int(tokenizer.pad_token_id)
    rows = []
    for k in (int(x) for x in args.frozen.split(",")):
        # one learning rate for all trainable parameters: Trainer has no separate head rate
        strategy = Strategy(frozen_layers=k, learning_rate=1e-4, head_learning_rate=1e-4,
                            epochs=args.epochs, batch_size=32, pooling="mean")
        t0 = time.monotonic()
        outcome, model = train_strategy(encoder, strategy, tr, va, task.num_labels, pad_id=pad,
                                        device="cpu", seed=0, evals_per_epoch=1)
        autoft_seconds = time.monotonic() - t0
        autoft_acc = evaluate(model, va, va.labels, "accuracy", pad, torch.device("cpu"))
        row = {"frozen_layers": k, "autoft_seconds": round(autoft_seconds, 1),
               "autoft_final_dev_accuracy": round(autoft_acc, 4)}
        for group in (False, True):
            seconds, acc = run_trainer(encoder, tokenizer, task, strategy, group)
            tag = "trainer_grouped" if group else "trainer"
            row[f"{tag}_seconds"] = round(seconds, 1)
            row[f"{tag}_dev_accuracy"] = round(acc, 4)
            row[f"autoft_over_{tag}_time"] = round(autoft_seconds / seconds, 3)
        rows.append(row)
        print(row, flush=True)
    payload = {"rows": args.rows, "epochs": args.epochs, "table": rows, "machine": machine()}
    path = save("vs_trainer", payload)
    print(f"\n{args.rows} SST-2 rows, {args.epochs} epochs, MiniLM-L6, CPU")
    for r in rows:
        print(f"k={r['frozen_layers']}: autoft {r['autoft_seconds']} s (dev "
              f"{r['autoft_final_dev_accuracy']}), Trainer {r['trainer_seconds']} s (dev "
              f"{r['trainer_dev_accuracy']}), Trainer grouped {r['trainer_grouped_seconds']} s "
              f"(dev {r['trainer_grouped_dev_accuracy']}); time ratio autoft/Trainer "
              f"{r['autoft_over_trainer_time']}")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
