"""Benchmark: the seed article's experiment, measured (issue 14's must-show).

Animal-MNIST (``pip install --no-deps animal-mnist``: 10,000 28x28 silhouettes, 10 classes),
shuffled with seed 0: 2,000 training images, 1,000 validation images, and 6,000 more that make the
8,000-image training set of the size check. Written as PNG files in class folders (the layout
users keep images in) and searched with the offline default image backbone, EfficientNet-Lite0:

1. ``search``: ``autoft.search(train/, validation=val/, budget=--budget)`` with the image space
   (frozen stages, learning rates, head, resolution 96-224, augmentation);
2. ``confirm``: the recommendation trained again with ``--seeds`` fresh seeds (10000, ...);
3. ``probe``: the linear probe of the article: logistic regression (scikit-learn, C chosen by
   5-fold cross-validation on the training images) on the frozen backbone's pooled features at
   224 px;
4. ``full``: full fine-tuning at 224 px, lr 1e-4 (head 1e-3), 3 epochs, batch 32, ``--full-seeds``
   seeds;
5. ``size``: the report's size x budget table at 8,000 images against the recommended strategy
   trained on the 8,000 images (``--size-seeds`` seeds). The table has rows at the probes' sizes
   (``--curve-sizes``, 200 and 500 images here, so that the 500 row is measured), at 2,000 and at
   8,000. ``table``: the strategy the table names at 8,000 images (it may differ from the
   recommendation), trained there with ``--table-seeds`` seeds. ``curve`` (no training) adds
   the recommended family's own learning curve and its prediction at 8,000, to compare with
   the same strategy measured there.

Each step is saved as it ends; ``--steps`` runs some of them and keeps the others' results.

    python benchmarks/image_seed_experiment.py                  # several hours on 2 CPU cores
    python benchmarks/image_seed_experiment.py --steps search,confirm,probe
    python benchmarks/image_seed_experiment.py --budget 3m --train 300 --validation 200 \\
        --seeds 1 --full-seeds 1 --size-seeds 1 --name image_seed_smoke     # smoke

Results: ``benchmarks/results/image_seed_experiment.json`` (and ``_report.md``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import RESULTS, animal_mnist, image_folder, machine, save

STEPS = ("search", "confirm", "probe", "full", "size", "table", "curve")
CONFIRM_SEED0 = 10_000


def _summary(scores: list[float]) -> dict[str, Any]:
    return {"scores": scores, "mean": statistics.fmean(scores),
            "std": statistics.stdev(scores) if len(scores) > 1 else None}


def _fine_tunes(train: Path, val: Path, strategy: dict[str, Any], seeds: list[int],
                cache: Path) -> dict[str, Any]:
    import autoft
    from autoft.training import PrefixCache

    runs = []
    for seed in seeds:
        started = time.monotonic()
        fit = autoft.fine_tune(train, strategy, validation=val, seed=seed, device="auto",
                               cache=PrefixCache(cache))
        runs.append({"seed": seed, "accuracy": fit.validation_score,
                     "seconds": round(time.monotonic() - started, 1),
                     "train_seconds": round(fit.outcome.train_seconds, 1)})
        print(f"[{time.strftime('%H:%M:%S')}]   seed {seed}: {fit.validation_score:.4f} "
              f"({runs[-1]['seconds']} s)", flush=True)
    return {"strategy": strategy, "runs": runs,
            **_summary([float(r["accuracy"]) for r in runs])}


def _probe(train: Path, val: Path) -> dict[str, Any]:
    """Logistic regression on frozen EfficientNet-Lite0 features at 224 px."""
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from autoft.data import load_task_data
    from autoft.models import load_backbone

    started = time.monotonic()
    task = load_task_data(train, validation=val)
    encoder, inputs, _ = load_backbone("efficientnet-lite0")

    def features(split: Any) -> np.ndarray:
        pixels = inputs.encode(split, 224)
        out = []
        with torch.inference_mode():
            for start in range(0, len(pixels), 64):
                batch = pixels.collate(np.arange(start, min(start + 64, len(pixels))),
                                       torch.device("cpu"))
                out.append(encoder(batch["pixel_values"]).numpy())
        return np.concatenate(out)

    x_train, x_val = features(task.train), features(task.validation)
    search = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)),
                          {"logisticregression__C": [0.01, 0.1, 1.0, 10.0]}, cv=5, n_jobs=1)
    search.fit(x_train, task.train.labels)
    accuracy = float((search.predict(x_val) == task.validation.labels).mean())
    return {"accuracy": accuracy, "C": search.best_params_["logisticregression__C"],
            "seconds": round(time.monotonic() - started, 1),
            "method": "StandardScaler + LogisticRegression on the pooled 1,280 features at 224 "
                      "px, C from {0.01, 0.1, 1, 10} by 5-fold CV on the training images"}


def _recommended_curve(out: Path, strategy: dict[str, Any], size: int) -> dict[str, Any]:
    """The learning curve of the recommended strategy's family (as the report fits it): its
    points, form, and prediction with the 80% interval at ``size`` images (no training)."""
    from autoft.analysis import fit_learning_curves, group_runs, pooled_std
    from autoft.strategies import Strategy
    from autoft.study import load_study, trial_records

    records = trial_records(load_study(out).get_trials(deepcopy=False))
    family = Strategy.from_dict(strategy).family()
    curve = fit_learning_curves(records, pooled_sigma=pooled_std(group_runs(records))).get(family)
    if curve is None:
        return {"family": str(family), "error": "no curve: the family did not train to the end"}
    return {"family": str(family), "form": curve.form,
            "points": [list(p) for p in curve.points], "train_size": size,
            "prediction": curve.predict(size), "interval_80": curve.interval(size)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", default="30m")
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--validation", type=int, default=1000)
    parser.add_argument("--big", type=int, default=8000, help="training images of the size check")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--full-seeds", type=int, default=3)
    parser.add_argument("--size-seeds", type=int, default=1)
    parser.add_argument("--table-seeds", type=int, default=3,
                        help="seeds of the table's own strategy at --big images")
    parser.add_argument("--curve-sizes", default="200,500",
                        help="training-set sizes of the learning-curve probes (the size x budget "
                             "table has a row at each, at the full size and at 4x it)")
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument("--work", type=Path, default=Path("/tmp/autoft-image-seed"))
    parser.add_argument("--name", default="image_seed_experiment")
    args = parser.parse_args()
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    if set(steps) - set(STEPS):
        raise SystemExit(f"unknown steps {sorted(set(steps) - set(STEPS))}; known: {STEPS}")

    import autoft
    from autoft.study import trial_records

    images, labels = animal_mnist()
    order = np.random.default_rng(0).permutation(len(images))
    val_idx = order[:args.validation]
    big_idx = order[args.validation:args.validation + args.big]
    train_idx = big_idx[:args.train]  # nested: the small training set is part of the big one
    work = args.work
    train = image_folder(images[train_idx], labels[train_idx], work / f"train_{args.train}")
    val = image_folder(images[val_idx], labels[val_idx], work / f"validation_{args.validation}")
    path = RESULTS / f"{args.name}.json"
    payload: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    payload.update({
        "data": f"animal-mnist shuffled with seed 0: {args.train} training, {args.validation} "
                f"validation, {args.big} for the size check (nested), as PNG class folders",
        "backbone": "efficientnet-lite0", "budget": args.budget, "machine": machine()})
    out = work / "search"
    if "search" in steps:
        print(f"[{time.strftime('%H:%M:%S')}] search ({args.budget})", flush=True)
        started = time.monotonic()
        sizes = [int(v) for v in args.curve_sizes.split(",") if v.strip()]
        result = autoft.search(train, validation=val, budget=args.budget, out=out, seed=0,
                               cache_dir=work / "cache", curve_sizes=sizes)
        records = trial_records(result.study_.get_trials(deepcopy=False))
        statuses = [r.status for r in records]
        rec = result.recommendation_
        payload["search"] = {
            "seconds": round(time.monotonic() - started, 1), "trials": len(records),
            "curve_sizes": sizes,
            "complete": statuses.count("complete"), "pruned": statuses.count("pruned"),
            "skipped": statuses.count("skipped"),
            "frozen_layers_tried": sorted({r.frozen_layers for r in records
                                           if r.frozen_layers is not None
                                           and r.status != "skipped"}),
            "resolutions_tried": sorted({r.strategy.get("resolution") for r in records
                                         if r.status != "skipped" and r.strategy}),
            "recommended": None if rec is None else {
                "trial": rec.trial_number, "description": rec.strategy.describe(7),
                "strategy": rec.strategy.to_dict(), "search_score": rec.score,
                "search_runs": rec.seeds, "confirmed_in_search": rec.confirmed},
            "report": str(out / "report.md")}
        save(args.name, payload)
        (RESULTS / f"{args.name}_report.md").write_text((out / "report.md").read_text())
    recommended = (payload.get("search") or {}).get("recommended")
    if "confirm" in steps and recommended:
        print(f"[{time.strftime('%H:%M:%S')}] confirm: {recommended['description']}", flush=True)
        seeds = [CONFIRM_SEED0 + i for i in range(args.seeds)]
        payload["confirm"] = _fine_tunes(train, val, recommended["strategy"], seeds,
                                         work / "cache")
        save(args.name, payload)
    if "probe" in steps:
        print(f"[{time.strftime('%H:%M:%S')}] logistic-regression probe", flush=True)
        payload["probe"] = _probe(train, val)
        save(args.name, payload)
    if "full" in steps:
        print(f"[{time.strftime('%H:%M:%S')}] full fine-tuning at 224", flush=True)
        full = {"frozen_layers": 0, "learning_rate": 1e-4, "head_learning_rate": 1e-3,
                "epochs": 3, "batch_size": 32, "resolution": 224, "head": "linear"}
        payload["full"] = _fine_tunes(train, val, full, list(range(args.full_seeds)),
                                      work / "cache")
        save(args.name, payload)
    if "size" in steps and recommended:
        print(f"[{time.strftime('%H:%M:%S')}] size check at {args.big}", flush=True)
        report = json.loads((out / "report.json").read_text())
        table = report["analysis"].get("size_budget_table") or []
        predicted = [row for row in table if row["train_size"] == args.big]
        big = image_folder(images[big_idx], labels[big_idx], work / f"train_{args.big}")
        measured = _fine_tunes(big, val, recommended["strategy"],
                               [CONFIRM_SEED0 + i for i in range(args.size_seeds)],
                               work / "cache")
        payload["size"] = {"table_at_size": predicted, "measured": measured,
                           "table": [{k: row.get(k) for k in (
                               "train_size", "budget_seconds", "description", "expected_score",
                               "interval", "expected_seconds", "extrapolated")} for row in table]}
        save(args.name, payload)
    if "table" in steps and "size" in payload:
        # the table's own strategy at the big size (it may not be the recommendation)
        rows = [r for r in payload["size"]["table_at_size"] if r.get("trial_number") is not None]
        if rows:
            from autoft.study import load_study

            trial = rows[-1]["trial_number"]
            strategy = next(r.strategy for r in trial_records(
                load_study(out).get_trials(deepcopy=False)) if r.number == trial)
            print(f"[{time.strftime('%H:%M:%S')}] the table's strategy at {args.big}: trial "
                  f"{trial}", flush=True)
            big = image_folder(images[big_idx], labels[big_idx], work / f"train_{args.big}")
            payload["size"]["table_strategy_measured"] = {
                "trial": trial, "predicted": {k: rows[-1].get(k) for k in (
                    "expected_score", "interval", "expected_seconds", "fill_seconds")},
                **_fine_tunes(big, val, strategy, [CONFIRM_SEED0 + i
                                                   for i in range(args.table_seeds)],
                              work / "cache")}
            save(args.name, payload)
    if "curve" in steps and recommended and "size" in payload:
        payload["size"]["recommended_curve"] = _recommended_curve(out, recommended["strategy"],
                                                                  args.big)
        save(args.name, payload)
    print(json.dumps({k: payload.get(k) for k in ("search", "confirm", "probe", "full")},
                     indent=1, default=str)[:4000])


if __name__ == "__main__":
    main()
