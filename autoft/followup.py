"""The follow-up phase of a search: re-seeded top strategies and smaller training sets.

When a search nears its end (a share of the time budget left, or few trials left), it enqueues

* **re-seeds**: the ``top_k`` best strategies so far again with new seeds, until each has ``seeds``
  runs, so the report can tell a real win from seed noise (mean and standard deviation);
* **learning-curve probes**: the best strategy of the leading families (always including full
  fine-tuning and the head-only family when they were tried) on smaller nested, stratified subsets
  of the training split (``curve_sizes``), so the report can fit learning curves.

Both run as ordinary trials marked with a ``purpose`` user attribute; they are never pruned by the
pruner (a copy that two workers enqueued at once is skipped, see :func:`is_duplicate_followup`). The
re-seeds come first, round-robin over the top strategies (second seed of each, then third), because
the recommendation rests on them; the probes follow. A follow-up cut short by the deadline is left
out of the statistics. :func:`estimate_seconds` prices a plan from the trials it repeats, so the
search can start the follow-ups early enough to finish them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from autoft.curves import family_of
from autoft.recommend import strategy_key, trial_records

__all__ = ["estimate_seconds", "is_duplicate_followup", "nested_subset", "plan_followups",
           "resolve_sizes"]

#: User attributes of a follow-up that a retry of the interrupted trial keeps.
FOLLOWUP_ATTRS = ("purpose", "reseed_of", "curve_of", "train_size", "followup_id")

logger = logging.getLogger(__name__)

#: Fewest training examples a learning-curve probe trains on.
MIN_PROBE_SIZE = 32


def resolve_sizes(curve_sizes: Sequence[float | int], train_size: int) -> list[int]:
    """Turn fractions (floats in (0, 1)) and counts (ints) into sorted example counts below the
    full training size (at least :data:`MIN_PROBE_SIZE`)."""
    sizes = set()
    for size in curve_sizes:
        n = int(round(size * train_size)) if isinstance(size, float) and size < 1 else int(size)
        if MIN_PROBE_SIZE <= n < train_size:
            sizes.add(n)
    return sorted(sizes)


def nested_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Indices of a stratified subset of ``size`` examples; smaller sizes are prefixes of larger.

    Each class is shuffled (seeded); every example gets the key (rank in its class + 0.5) /
    (class size), and the examples are taken in key order, so each prefix holds the classes in
    their proportions.

    Args:
        labels: Class id of each example, shape ``(N,)``.
        size: Examples wanted, ``1 <= size <= N``.
        seed: Seed of the per-class shuffles.

    Returns:
        Sorted indices, shape ``(size,)``.
    """
    rng = np.random.default_rng(seed)
    keys = np.empty(len(labels), dtype=np.float64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        perm = rng.permutation(idx)
        keys[perm] = (np.arange(len(perm)) + 0.5) / len(perm)
    order = np.lexsort((rng.random(len(labels)), keys))
    return np.sort(order[:size])


def plan_followups(
    study: optuna.Study,
    num_layers: int,
    train_size: int,
    *,
    seeds: int = 3,
    top_k: int = 3,
    curve_sizes: Sequence[float | int] = (0.1, 0.3),
    curve_families: int = 4,
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The follow-up trials still missing, as ``(params, user_attrs)`` for ``enqueue_trial``.

    Args:
        study: The study.
        num_layers: The backbone's block count L.
        train_size: Examples in the full training split.
        seeds: Runs (seeds) wanted for each of the top strategies. Default 3.
        top_k: How many of the best strategies to re-seed. Default 3.
        curve_sizes: Training-set sizes of the learning-curve probes: fractions of the training
            split (floats < 1) or example counts (ints). Default (0.1, 0.3).
        curve_families: Leading families probed (plus full fine-tuning and head-only). Default 4.

    Each plan's ``user_attrs`` holds a ``followup_id`` naming the run it adds
    (``"reseed:N:i"``, the i-th extra seed of trial N; ``"curve:N:n"``, trial N's strategy on n
    examples). Two workers that plan from the same finished trials produce the same ids, and the
    search runs each id once (see :func:`is_duplicate_followup`).
    """
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    records = trial_records(list(trials.values()))
    queued = [r for r in records if r["state"] in ("WAITING", "RUNNING", "COMPLETE", "PRUNED")]
    main = [r for r in records if r["state"] == "COMPLETE" and r.get("purpose") is None
            and r.get("score") is not None]
    plans: list[tuple[dict[str, Any], dict[str, Any]]] = []
    # re-seeds of the top strategies, round-robin: every top strategy gets its second seed before
    # any gets its third, so a search cut short still compares them on equal evidence
    by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in sorted(main, key=lambda r: -r["score"]):
        by_key.setdefault(strategy_key(r), r)
    top = list(by_key.values())[:top_k]
    missing = {r["number"]: max(0, seeds - 1 - sum(1 for q in queued
                                                    if q.get("reseed_of") == r["number"]))
               for r in top}
    # the i-th extra seed of trial N is "reseed:N:i"; a plan takes the lowest free indices
    taken = {q.get("followup_id") for q in queued}
    free = {n: [f"reseed:{n}:{i}" for i in range(1, seeds) if f"reseed:{n}:{i}" not in taken]
            for n in missing}
    for round_ in range(max(missing.values(), default=0)):
        for r in top:
            if missing[r["number"]] > round_:
                plans.append((dict(trials[r["number"]].params),
                              {"purpose": "reseed", "reseed_of": r["number"],
                               "followup_id": free[r["number"]][round_]}))
    # learning-curve probes of the leading families
    best_of: dict[tuple[int, str], dict[str, Any]] = {}
    for r in sorted(main, key=lambda r: -r["score"]):
        best_of.setdefault(family_of(r), r)
    leading = list(best_of)[:curve_families]
    for fam in best_of:
        if fam[0] in (0, num_layers) and fam not in leading:
            leading.append(fam)
    for fam in leading:
        r = best_of[fam]
        for n in resolve_sizes(curve_sizes, train_size):
            if any(q.get("curve_of") == r["number"] and q.get("train_size") == n for q in queued):
                continue
            plans.append((dict(trials[r["number"]].params),
                          {"purpose": "learning_curve", "curve_of": r["number"],
                           "train_size": n, "followup_id": f"curve:{r['number']}:{n}"}))
    return plans


def estimate_seconds(
    study: optuna.Study, plans: Sequence[tuple[dict[str, Any], dict[str, Any]]], train_size: int
) -> float:
    """Estimated wall-clock seconds of running ``plans`` (from :func:`plan_followups`).

    A re-seed costs what the trial it repeats took; a learning-curve probe on ``n`` examples costs
    that trial's training seconds scaled by ``n / train_size``, plus its evaluation seconds (the
    validation split does not shrink).

    Args:
        study: The study holding the repeated trials.
        plans: The follow-ups, as ``(params, user_attrs)``.
        train_size: Examples in the full training split.

    Returns:
        Seconds; 0.0 for an empty plan.
    """
    records = {r["number"]: r for r in trial_records(study.get_trials(deepcopy=False))}
    total = 0.0
    for _, attrs in plans:
        source = records.get(attrs.get("reseed_of", attrs.get("curve_of")))
        if source is None:
            continue
        seconds = float(source.get("seconds") or 0.0)
        if attrs.get("purpose") == "learning_curve":
            train = float(source.get("train_seconds") or seconds)
            evals = float(source.get("eval_seconds") or 0.0)
            seconds = train * attrs["train_size"] / max(train_size, 1) + evals
        total += seconds
    return total


def is_duplicate_followup(trial: optuna.trial.BaseTrial, trials: Sequence[FrozenTrial]) -> int | None:
    """The number of an earlier trial that makes follow-up ``trial`` redundant, else None.

    Two workers can plan the follow-ups at the same moment and both enqueue them (reading and
    setting the study's ``followups_enqueued`` flag is not atomic across processes). Each run
    has a ``followup_id``; the trial with the lowest number among those sharing an id runs, the
    others are skipped (marked ``duplicate_of`` and pruned before training; reports leave them
    out, though Optuna's own tools show them as pruned). Failed trials do not count, so an
    interrupted follow-up's retry runs, and a follow-up that failed may run again.

    Args:
        trial: The trial about to run.
        trials: All trials of the study (``study.get_trials(deepcopy=False)``).
    """
    key = trial.user_attrs.get("followup_id")
    if key is None:
        return None
    for other in trials:
        if (other.number < trial.number and other.user_attrs.get("followup_id") == key
                and other.state != TrialState.FAIL
                and other.user_attrs.get("duplicate_of") is None):
            return other.number
    return None
