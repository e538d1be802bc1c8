"""Benchmark: which strategy for which dataset size and budget, on SST-2 (issue 4).

Searches on 8,000 SST-2 training rows (dev.tsv as validation, test_labeled_unofficial.tsv as
test) with learning-curve probes at 500 and 2,000 rows, refits the recommended strategy, loads the
saved model with ``transformers.pipeline`` and scores the test set with it, and renders the HTML
report to a PNG in headless Chromium. Prints the size x budget table and saves everything to
``benchmarks/results/sst2_sizes.json`` (+ ``sst2_sizes_report.md`` and ``.png``).

    python benchmarks/sst2_sizes.py [--budget 60m]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from _common import RESULTS, SHARED_DATA, machine, read_tsv, save

import autoft
from autoft.budget import format_duration


def screenshot(html: Path, png: Path) -> bool:
    chromium = shutil.which("chromium")
    if chromium is None:
        print("chromium not installed: no screenshot (apt-get install chromium)")
        return False
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--hide-scrollbars", "--virtual-time-budget=15000",
                        f"--user-data-dir={profile}", "--window-size=1200,6400",
                        f"--screenshot={png}", html.resolve().as_uri()],
                       capture_output=True, timeout=300, check=True)
    return png.is_file()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="60m")
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--sizes", default="500,2000")
    parser.add_argument("--epochs", type=int, default=2,
                        help="epochs of every trial (the default space's 3 is more than 8,000 rows need)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    sst2 = SHARED_DATA / "sst2"
    work = Path(tempfile.mkdtemp(prefix="autoft-sizes-"))
    train = read_tsv(sst2 / "train.tsv").sample(n=args.rows, random_state=0)
    train_path = work / f"sst2_train_{args.rows}.tsv"
    train.to_csv(train_path, sep="\t", index=False, quoting=csv.QUOTE_NONE)
    out = args.out or work / "out"
    sizes = [int(x) for x in args.sizes.split(",")]

    started = time.monotonic()
    space = autoft.SearchSpace.load().to_dict()
    space["epochs"] = args.epochs
    autoft.search(train_path, validation=sst2 / "dev.tsv", space=space,
                  test=sst2 / "test_labeled_unofficial.tsv", budget=args.budget, out=out,
                  curve_sizes=sizes, top_k=2, reserve=0.4, refit=True)
    wall = time.monotonic() - started
    report = json.loads((out / "report.json").read_text())
    refit = report.get("refit") or {}

    # the saved model, loaded the way a user would, on the test set
    from transformers import pipeline

    test = read_tsv(sst2 / "test_labeled_unofficial.tsv")
    clf = pipeline("text-classification", model=str(out / "model"), device="cpu")
    t0 = time.monotonic()
    predicted = [p["label"] for p in clf(test["sentence"].tolist(), batch_size=64)]
    pipeline_seconds = time.monotonic() - t0
    pipeline_acc = sum(p == str(y) for p, y in zip(predicted, test["label"])) / len(test)

    png = RESULTS / "sst2_sizes_report.png"
    RESULTS.mkdir(parents=True, exist_ok=True)
    shot = screenshot(out / "report.html", png)
    shutil.copy(out / "report.md", RESULTS / "sst2_sizes_report.md")
    analysis = report["analysis"]
    payload = {
        "data": {"train_rows": args.rows, "curve_sizes": sizes, "validation": "dev.tsv (872)",
                 "test": "test_labeled_unofficial.tsv (1821)"},
        "budget": args.budget, "epochs": args.epochs,
        "wall_seconds_search_and_refit": round(wall, 1),
        "trial_counts": report["trial_counts"],
        "recommendation": report["recommendation"],
        "size_budget_table": analysis["size_budget_table"],
        "rule_of_thumb": analysis["rule_of_thumb"],
        "learning_curves": analysis["learning_curves"],
        "cost_model": {k: v for k, v in analysis["cost_model"].items() if k != "errors"},
        "refit": refit,
        "pipeline_test_accuracy": pipeline_acc,
        "pipeline_seconds_for_test_set": round(pipeline_seconds, 1),
        "refit_vs_pipeline_points": None if refit.get("test_score") is None
        else round(100 * abs(refit["test_score"] - pipeline_acc), 3),
        "screenshot": str(png) if shot else None,
        "machine": machine(),
    }
    path = save("sst2_sizes", payload)
    print(f"search + refit wall {wall:.0f} s; trials {report['trial_counts']}")
    budgets = sorted({r["budget_seconds"] for r in analysis["size_budget_table"]})
    print("size x budget (expected dev accuracy, training time):")
    print("  rows   | " + " | ".join(f"{format_duration(b):>34}" for b in budgets))
    for n in sorted({r["train_size"] for r in analysis["size_budget_table"]}):
        cells = []
        for b in budgets:
            r = next(x for x in analysis["size_budget_table"]
                     if x["train_size"] == n and x["budget_seconds"] == b)
            cells.append("nothing fits" if r["family"] is None else
                         f"k={r['frozen_layers']} {r['head']} {r['expected_score']:.3f} "
                         f"{format_duration(r['expected_seconds'])}")
        star = "*" if n > args.rows else " "
        print(f"  {n:>6}{star}| " + " | ".join(f"{c:>34}" for c in cells))
    print(analysis["rule_of_thumb"])
    print(f"refit test accuracy (report): {refit.get('test_score')}; pipeline on the saved model: "
          f"{pipeline_acc:.4f}; difference {payload['refit_vs_pipeline_points']} points")
    print(f"saved {path}" + (f" and {png}" if shot else ""))


if __name__ == "__main__":
    main()
