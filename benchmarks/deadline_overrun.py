"""Benchmark: how far past its time budget does a search end (report included)?

Issue 3 asks that the whole search, the final report included, end within max(2% of the budget,
30 s) of the budget. This runs ``autoft.search`` with a 3-minute budget on 2,000 SST-2 training rows
(dev.tsv as validation), times the call from start to return, and prints the overrun in seconds.

    python benchmarks/deadline_overrun.py [--budget 3m]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

from _common import SHARED_DATA, machine, read_tsv, save

import autoft
from autoft.budget import parse_duration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="3m")
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()
    budget = parse_duration(args.budget)
    assert budget is not None
    work = Path(tempfile.mkdtemp(prefix="autoft-overrun-"))
    train = read_tsv(SHARED_DATA / "sst2" / "train.tsv").sample(n=args.rows, random_state=1)
    path = work / "train.tsv"
    train.to_csv(path, sep="\t", index=False, quoting=csv.QUOTE_NONE)

    started = time.monotonic()
    result = autoft.search(path, validation=SHARED_DATA / "sst2" / "dev.tsv", budget=args.budget,
                           out=work / "out")
    wall = time.monotonic() - started
    allowed = max(0.02 * budget, 30.0)
    overrun = wall - budget
    states = result.trials_["state"]
    payload = {
        "budget_seconds": budget, "wall_seconds": round(wall, 2), "overrun_seconds": round(overrun, 2),
        "allowed_overrun_seconds": allowed, "within_limit": overrun <= allowed,
        "trials": len(states), "last_trial_status": result.trials_["status"][-1] if states else None,
        "data": f"{args.rows} SST-2 train rows, dev.tsv (872 rows)", "machine": machine(),
    }
    path_json = save("deadline_overrun", payload)
    print(f"budget {budget:.0f} s, search returned after {wall:.1f} s (report included)")
    print(f"overrun: {overrun:+.1f} s (allowed {allowed:.0f} s) -> "
          f"{'PASS' if overrun <= allowed else 'FAIL'}; {len(states)} trials")
    print(f"saved {path_json}")


if __name__ == "__main__":
    main()
