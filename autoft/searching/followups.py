"""The follow-up trials of a search: re-seeded leaders and smaller training sets.

From the moment a search run enters its follow-up phase (see :func:`followups_due`), it plans the
follow-ups again after every trial, so that every strategy that becomes a leader at any time (after
the re-seeds, on a resumed run, found by another worker) is re-seeded before it can be recommended:

* **re-seeds**: the leader (the best mean score over its runs) and, among the ``top_k`` best, the
  strategies that could still be the best, again with new seeds until each has ``seeds`` runs, so
  that the recommendation compares strategies on equal evidence (see
  :mod:`autoft.analysis.recommend`). "Could still be the best" means a mean within one pooled
  seed standard deviation of the leader's (:func:`reseed_candidates`); before any strategy has two
  runs there is no such estimate and only the leader is re-seeded. A strategy that the seed noise
  already puts behind is not re-seeded: on a 20-minute budget, re-seeding the top 3 whatever
  their scores took half the time and left the sampler 5 strategies
  (``benchmarks/results/search_vs_random_v1.json``). They run round-robin: every candidate gets
  its second seed before any gets its third.
* **learning-curve probes**: the best strategy of the leading families (always including full
  fine-tuning and the head-only family when they were tried) on smaller nested, stratified subsets
  of the training split (``curve_sizes``), then, budget allowing, the same probes with more seeds,
  so that each point of a learning curve is a mean like the full-size one. A run enqueues probes
  only once no strategy waits for re-seeds: confirming the answer comes before its curves.

Follow-ups are never pruned and do not report to the pruner (a probe's score on 10% of the data
says nothing about the pruner's rungs). A probe suggests no parameters (its strategy is stored with
it), so the sampler never mistakes a small-data score for its strategy's. Every planned follow-up
has an id (``reseed:N:i``, ``curve:N:n``, ``curve:N:n:i``) and a copy whose id an earlier trial
holds is skipped when it starts (two workers may plan the same follow-ups at once). With only a
trial count, follow-ups take at most :data:`MAX_SHARE` of it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import optuna

from autoft.analysis.recommend import Group, group_runs, pooled_std
from autoft.study.records import Attr, TrialRecord, trial_records

__all__ = [
    "MAX_SHARE",
    "MIN_PROBE_SIZE",
    "PLANNED_STRATEGY",
    "FollowupSettings",
    "enqueue_followups",
    "followup_room",
    "estimate_seconds",
    "fit_to_reserve",
    "followups_due",
    "is_duplicate_followup",
    "nested_subset",
    "plan_followups",
    "reseed_candidates",
    "resolve_sizes",
]

logger = logging.getLogger(__name__)

#: Fewest training examples a learning-curve probe trains on.
MIN_PROBE_SIZE = 32
#: Largest share of a time budget, or of a trial count, the follow-ups may claim.
MAX_SHARE = 0.5
#: User attribute holding a probe's strategy (a probe suggests no parameters).
PLANNED_STRATEGY = Attr.PLANNED_STRATEGY

Plan = tuple[dict[str, Any], dict[str, Any]]


@dataclass(frozen=True)
class FollowupSettings:
    """What the follow-up phase does.

    Attributes:
        seeds: Runs wanted for each leading strategy (1 disables re-seeding). Default 3.
        top_k: Most strategies re-seeded at once: the leader and those of the ``top_k`` best
            within the seed noise of it (:func:`reseed_candidates`). Default 3.
        curve_sizes: Training-set sizes of the learning-curve probes: fractions of the training
            split (floats < 1) or example counts (ints); empty disables. Default (0.1, 0.3).
        reserve: Least share of the time budget kept for the follow-ups. Default 0.25.
        curve_families: Leading families probed (plus full fine-tuning and head-only). Default 4.
        scaled_from: Set when a run scaled the re-seeds down to its trials' cost
            (:func:`fit_to_reserve`): the ``seeds`` and ``top_k`` asked for and the estimated and
            allowed seconds. None when the settings are the ones asked for. Default None.
    """

    seeds: int = 3
    top_k: int = 3
    curve_sizes: tuple[float | int, ...] = (0.1, 0.3)
    reserve: float = 0.25
    curve_families: int = 4
    scaled_from: dict[str, Any] | None = None

    @property
    def enabled(self) -> bool:
        """Whether there is anything to follow up."""
        return self.seeds > 1 or bool(self.curve_sizes)

    def to_dict(self) -> dict[str, Any]:
        """The form stored in the study (``autoft_followups``)."""
        out = {"seeds": self.seeds, "top_k": self.top_k, "curve_sizes": list(self.curve_sizes),
               "reserve": self.reserve}
        if self.scaled_from is not None:
            out["scaled_from"] = dict(self.scaled_from)
        return out

    @classmethod
    def from_dict(cls, stored: Any) -> FollowupSettings:
        """The settings a search stored in its study (the defaults for a study without them)."""
        if not isinstance(stored, dict):
            return cls()
        kwargs: dict[str, Any] = {k: stored[k] for k in ("seeds", "top_k", "reserve",
                                                         "scaled_from") if k in stored}
        if "curve_sizes" in stored:
            kwargs["curve_sizes"] = tuple(stored["curve_sizes"])
        return cls(**kwargs)


def resolve_sizes(curve_sizes: Sequence[float | int], train_size: int) -> list[int]:
    """Turn fractions (floats in (0, 1)) and counts (ints) into sorted example counts below the
    full training size (at least :data:`MIN_PROBE_SIZE`)."""
    sizes = set()
    for size in curve_sizes:
        n = int(round(size * train_size)) if isinstance(size, float) and size < 1 else int(size)
        if MIN_PROBE_SIZE <= n < train_size:
            sizes.add(n)
    return sorted(sizes)


def nested_subset(labels: np.ndarray, size: int, seed: int, stratify: bool = True) -> np.ndarray:
    """Indices of a subset of ``size`` examples; smaller sizes are prefixes of larger ones.

    Stratified: each class is shuffled (seeded); every example gets the key (rank in its class +
    0.5) / (class size), and the examples are taken in key order, so each prefix holds the classes
    in their proportions. Not stratified: a seeded shuffle.

    Args:
        labels: Label of each example, shape ``(N,)``.
        size: Examples wanted, ``1 <= size <= N``.
        seed: Seed of the shuffles.
        stratify: Keep the class proportions (classification). Default True.

    Returns:
        Sorted indices, shape ``(size,)``.
    """
    rng = np.random.default_rng(seed)
    if not stratify:
        return np.sort(rng.permutation(len(labels))[:size])
    keys = np.empty(len(labels), dtype=np.float64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        perm = rng.permutation(idx)
        keys[perm] = (np.arange(len(perm)) + 0.5) / len(perm)
    order = np.lexsort((rng.random(len(labels)), keys))
    return np.sort(order[:size])


def _taken(records: Sequence[TrialRecord]) -> set[str]:
    """Follow-up ids held by trials that ran, run or wait (failed, interrupted and skipped ones
    may run again)."""
    return {r.followup_id for r in records if r.followup_id
            and r.status not in ("failed", "interrupted", "skipped")}


def plan_followups(
    records: Sequence[TrialRecord],
    num_layers: int,
    train_size: int,
    settings: FollowupSettings = FollowupSettings(),
    direction: str = "maximize",
) -> list[Plan]:
    """The follow-up trials still missing, as ``(params, user_attrs)`` for ``enqueue_trial``, in
    the order they should run: re-seeds round-robin, probes, then probe re-seeds.

    Args:
        records: The study's records (:func:`autoft.study.trial_records`).
        num_layers: The backbone's block count L.
        train_size: Examples in the full training split.
        settings: What to follow up.
        direction: The metric's direction.
    """
    params_of = {r.number: r.params for r in records}
    taken = _taken(records)
    groups = group_runs(records, direction)
    plans: list[Plan] = []
    # re-seeds of the leader and of the strategies within the seed noise of it
    top = reseed_candidates(groups, settings.top_k, direction)
    missing: dict[int, list[str]] = {}
    for g in top:
        ids = [f"reseed:{g.trial_number}:{i}" for i in range(1, settings.seeds)]
        have = g.n + sum(1 for r in records if r.reseed_of == g.trial_number
                         and r.status in ("waiting", "running"))
        free = [i for i in ids if i not in taken]
        missing[g.trial_number] = free[:max(0, settings.seeds - have)]
    for round_ in range(max((len(v) for v in missing.values()), default=0)):
        for g in top:
            if len(missing[g.trial_number]) > round_:
                params = params_of.get(g.trial_number, {})
                plans.append((dict(params), {
                    Attr.PURPOSE: "reseed", Attr.RESEED_OF: g.trial_number,
                    Attr.FOLLOWUP_ID: missing[g.trial_number][round_],
                    Attr.PLANNED_PARAMS: params}))
    # learning-curve probes of the leading families, then their re-seeds
    sizes = resolve_sizes(settings.curve_sizes, train_size)
    sources = _curve_sources(groups, num_layers, settings)
    for extra in range(settings.seeds if sizes else 0):
        for g in sources:
            for n in sizes:
                key = f"curve:{g.trial_number}:{n}" + (f":{extra}" if extra else "")
                if key in taken:
                    continue
                plans.append(({}, {
                    Attr.PURPOSE: "learning_curve", Attr.CURVE_OF: g.trial_number,
                    Attr.TRAIN_SIZE: n, Attr.FOLLOWUP_ID: key, PLANNED_STRATEGY: g.strategy}))
    return plans


def reseed_candidates(groups: Sequence[Group], top_k: int,
                      direction: str = "maximize") -> list[Group]:
    """The strategies worth more seeds: the leader and those that could still be the best.

    Args:
        groups: :func:`autoft.analysis.recommend.group_runs` of the study, best mean first.
        top_k: Most strategies returned (the leader included).
        direction: The metric's direction.

    Returns:
        The leader (``groups[0]``, whatever its evidence: it must be confirmed before it can be
        recommended) and every other of the ``top_k`` best whose mean is within one pooled seed
        standard deviation (:func:`autoft.analysis.recommend.pooled_std`) of the leader's; only
        the leader while no strategy has two runs. One standard deviation: were the two strategies
        equally good, a single run would fall that far below a 3-run mean about one time in five
        (their difference has a standard deviation of 1.15 s), too often to pass it over.
    """
    if not groups:
        return []
    leader = groups[0]
    noise = pooled_std(groups)
    sign = -1.0 if direction == "minimize" else 1.0
    return [leader] + [g for g in groups[1:top_k]
                       if noise is not None and sign * (leader.mean - g.mean) <= noise]


def _curve_sources(groups: list[Group], num_layers: int,
                   settings: FollowupSettings) -> list[Group]:
    """The strategy probed per family: the family's best confirmed strategy (else its best)."""
    from autoft.strategies import Strategy

    best: dict[Any, Group] = {}
    for g in sorted(groups, key=lambda g: g.n < settings.seeds):  # confirmed first, best first
        best.setdefault(Strategy.from_dict(g.strategy).family(), g)
    order = sorted(best.items(), key=lambda kv: groups.index(kv[1]))
    leading = [fam for fam, _ in order[:settings.curve_families]]
    leading += [fam for fam, _ in order if fam.frozen_layers in (0, num_layers)
                and fam not in leading]
    return [best[fam] for fam in leading]


def estimate_seconds(records: Sequence[TrialRecord], plans: Sequence[Plan],
                     train_size: int) -> float:
    """Estimated wall-clock seconds of running ``plans`` (from :func:`plan_followups`).

    A re-seed costs what the strategy's runs took (median, without the cache fill); a probe on
    ``n`` examples costs the source's training seconds scaled by ``n / train_size``, plus its
    evaluation seconds (the validation split does not shrink).
    """
    by_number = {r.number: r for r in records}
    total = 0.0
    for _, attrs in plans:
        source = by_number.get(attrs.get(Attr.RESEED_OF, attrs.get(Attr.CURVE_OF)))
        if source is None:
            continue
        if attrs.get(Attr.PURPOSE) == "learning_curve":
            train = float(source.train_seconds or source.seconds or 0.0)
            evals = float(source.eval_seconds or 0.0)
            total += train * attrs[Attr.TRAIN_SIZE] / max(train_size, 1) + evals
        else:
            total += float(source.cost_seconds or 0.0)
    return total


def fit_in_time(records: Sequence[TrialRecord], plans: Sequence[Plan], train_size: int,
                seconds_left: float, margin: float = 1.1) -> list[Plan]:
    """The plans that fit in the time left *together*, in their order: each is kept when the
    ``margin`` x estimated seconds of it and of every plan kept before it fit in
    ``seconds_left`` (one that does not fit is passed over, so a cheaper one after it may still
    be kept). The queue runs first in, first out, so a plan queued behind others starts only
    after them; checking each plan alone left 22 learning-curve probes queued, never run, at the
    end of an SMS spam search.

    Args:
        records: The study's trials (the cost of each plan's source).
        plans: Follow-up plans, in queue order (waiting ones count too: they run first).
        train_size: Training examples of the full split.
        seconds_left: Wall-clock seconds to the deadline.
        margin: Safety factor on the estimates. Default 1.1 (the runner's, for a single trial).
    """
    kept: list[Plan] = []
    total = 0.0
    for plan in plans:
        cost = margin * estimate_seconds(records, [plan], train_size)
        if total + cost <= seconds_left:
            kept.append(plan)
            total += cost
    return kept


def fit_to_reserve(
    records: Sequence[TrialRecord], settings: FollowupSettings, *, num_layers: int,
    train_size: int, budget_seconds: float, direction: str = "maximize",
) -> FollowupSettings:
    """The follow-up settings scaled to the trials' cost: when re-seeding as asked would cost more
    than the ``reserve`` share of the budget, re-seed the leader alone (``top_k = 1``), then with
    fewer seeds, down to 2 runs (one re-seed: the least that lets the recommendation compare
    strategies on equal evidence). The settings as given when they fit, when there is no leader
    yet, or when they are already scaled.

    Why: on all-mpnet-base-v2 the re-seeds of 7-minute trials took the whole reserve of a
    30-minute search and no sampled trial ever ran (issue "More ways to fine-tune", item 4).

    Args:
        records: The study's records.
        settings: The follow-up settings asked for.
        num_layers, train_size, direction: As for :func:`plan_followups`.
        budget_seconds: The run's time budget, in seconds.

    Returns:
        ``settings`` itself, or a copy with fewer ``seeds``/``top_k`` and ``scaled_from`` set.
    """
    if settings.scaled_from is not None or settings.seeds <= 2 and settings.top_k <= 1:
        return settings
    allowed = settings.reserve * budget_seconds

    def cost(candidate: FollowupSettings) -> float:
        plans = [p for p in plan_followups(records, num_layers, train_size, candidate, direction)
                 if p[1].get(Attr.PURPOSE) == "reseed"]
        return 1.15 * estimate_seconds(records, plans, train_size)

    asked = cost(settings)
    if asked <= allowed:
        return settings
    options = [replace(settings, top_k=1, seeds=s) for s in range(settings.seeds, 1, -1)]
    chosen = next((o for o in options if cost(o) <= allowed), options[-1] if options else
                  settings)
    if (chosen.seeds, chosen.top_k) == (settings.seeds, settings.top_k):
        return settings
    return replace(chosen, scaled_from={
        "seeds": settings.seeds, "top_k": settings.top_k, "estimated_seconds": round(asked, 1),
        "allowed_seconds": round(allowed, 1)})


def followups_due(
    records: Sequence[TrialRecord], plans: Sequence[Plan], *, settings: FollowupSettings,
    train_size: int, budget_seconds: float | None, deadline: float | None,
    n_trials: int | None,
) -> bool:
    """Whether this run should enter its follow-up phase now.

    With a time budget: once the time left is no more than the larger of the ``reserve`` share of
    the budget and the estimated cost of the planned re-seeds plus 15%
    (:func:`estimate_seconds`), the latter capped at :data:`MAX_SHARE` of the budget. Probes do
    not move the phase earlier: they run in the time the re-seeds leave. Counting the first
    probes too started the phase at half of a 20-minute budget, so the sampler's strategies
    stopped at 6 and 9 while random search tried 14 and 22
    (``benchmarks/results/search_vs_random_v2.json``). With
    ``n_trials``: once 6 trials trained to the end and the trials left are no more than the plan
    (capped at :data:`MAX_SHARE` of ``n_trials``).
    """
    if not settings.enabled or not plans:
        return False
    if deadline is not None and budget_seconds is not None:
        left = deadline - time.monotonic()
        if left <= settings.reserve * budget_seconds:
            return True
        if left <= MAX_SHARE * budget_seconds:
            # what the recommendation needs: the re-seeds (probes only use the time left)
            needed = 1.15 * estimate_seconds(
                records, [p for p in plans if p[1].get(Attr.PURPOSE) == "reseed"], train_size)
            if left <= min(needed, MAX_SHARE * budget_seconds):
                return True
    if n_trials is not None:
        done = sum(r.finished for r in records)
        taken = sum(r.counts or r.status == "running" for r in records)
        if done >= 6 and n_trials - taken <= followup_room(records, n_trials, len(plans)):
            return True
    return False


def followup_room(records: Sequence[TrialRecord], n_trials: int | None, planned: int) -> int:
    """How many of ``planned`` follow-ups may still be enqueued under ``n_trials`` (all of them
    without a trial count)."""
    if n_trials is None:
        return planned
    used = sum(1 for r in records if r.purpose and (r.counts or r.status in ("running",
                                                                               "waiting")))
    return max(0, min(planned, int(MAX_SHARE * n_trials) - used))


def enqueue_followups(study: optuna.Study, plans: Sequence[Plan], room: int | None = None) -> int:
    """Enqueue the plans not yet waiting (by id), at most ``room`` of them; returns how many."""
    waiting = {r.followup_id for r in trial_records(study.get_trials(deepcopy=False))
               if r.status == "waiting"}
    added = 0
    for params, attrs in plans:
        if room is not None and added >= room:
            break
        if attrs[Attr.FOLLOWUP_ID] in waiting:
            continue
        study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=False)
        added += 1
    if added:
        logger.info("enqueued %d follow-up trials (re-seeds and learning-curve probes)", added)
    return added


def is_duplicate_followup(trial: optuna.trial.BaseTrial,
                          records: Sequence[TrialRecord]) -> int | None:
    """The number of an earlier trial that makes follow-up or retry ``trial`` redundant, else
    None.

    Two workers can plan the follow-ups at the same moment and both enqueue them; two workers
    that find the same interrupted trial can both enqueue its retry. Each follow-up has a
    ``followup_id``, each retry the ``retry_of`` of the trial it runs again; the trial with the
    lowest number among those sharing the key runs, the others are skipped (marked
    ``duplicate_of`` and pruned before training; reports leave them out, though Optuna's own
    tools show them as pruned). Failed trials do not count, so an interrupted follow-up's retry
    runs, and a follow-up that failed may run again.
    """
    key = trial.user_attrs.get(Attr.FOLLOWUP_ID)
    retry_of = trial.user_attrs.get(Attr.RETRY_OF)
    if key is None and retry_of is None:
        return None
    for other in records:  # skipped duplicates have no record
        if other.number >= trial.number or other.status in ("failed", "interrupted", "skipped"):
            continue
        same = other.followup_id == key if key is not None else other.retry_of == retry_of
        if same:
            return other.number
    return None
    for other in records:  # skipped duplicates have no record
        if (other.number < trial.number and other.followup_id == key
                and other.status not in ("failed", "interrupted", "skipped")):
            return other.number
    return None


