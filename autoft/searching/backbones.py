"""The backbone as a searched choice: ``search(data, model=["minilm", "mpnet"])``.

Each backbone gets its own study (``OUT/backbones/<name>/``, or the study ``<study>-<name>`` of a
database), because a backbone fixes the tokenizer, the number of blocks that ``frozen_layers``
counts, the frozen-prefix cache and the cost of every trial; the cost model, learning curves,
Pareto front and size x budget table of each are in its own report. The run:

1. **Screening.** Every backbone's first trial: its space's cheapest baseline (most blocks
   frozen), in the default and ``all`` spaces the linear probe trained from the frozen-prefix
   cache (on 2,000 SST-2 rows MiniLM's probe scored 0.775 in 2 s from a warm cache, MPNet's
   0.883 in 103 s with its cache fill: ``benchmarks/results/backbone_choice.json``). The
   ``peft`` space has no probe baseline: there the first is a LoRA strategy, a slower and
   noisier screen.
2. **Shares.** A backbone whose probe scored no better than another's *and* cost more is
   screened out (another is better and cheaper, the one rule that needs no model of the future).
   The time left is shared among the others by their probe's rank: half to the best, a quarter
   to the next, and so on (weights 2^-rank, normalised). This is a rank heuristic, not a
   measured expected value per second: a probe's score says which backbone's features suit the
   data, and within its share each study's own cost model decides which of its strategies fit
   (a large backbone's frozen and PEFT strategies run first, its full fine-tuning only when it
   fits: baselines go cheapest first and trials that cannot finish are skipped).
3. **Searches.** The backbones run one after the other, lowest share first; the best-screened one
   runs last and gets all the time left (what the others did not use). Each search keeps its
   share of follow-ups, so its leader is re-seeded.
4. **Choice.** The recommendation is the best recommendation among the backbones, comparing
   confirmed ones (re-seeded to ``seeds`` runs) first, as within one study, so that a lucky
   single run does not outrank a mean over seeds; unless the unconfirmed one is ahead by more
   than twice the standard error of the difference (from the pooled seed standard deviation of
   the re-seeded recommendations), which seed luck does not explain. Without that exception a
   30-minute run chose MiniLM's confirmed 0.821 over MPNet's unconfirmed 0.912, when MPNet's
   four strategies that trained to the end had all scored 0.883-0.916.

``OUT/backbones.json`` records the screening, shares and choice; ``OUT/report.md`` compares the
backbones and names the chosen one; ``autoft refit OUT`` and ``autoft status OUT`` follow it to
the chosen backbone's study.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from autoft.budget import Budget, format_duration
from autoft.errors import BackboneError, BudgetError, StudyError
from autoft.models.backbone import SHORT_NAMES, resolve_backbone
from autoft.study.records import StudyAttr
from autoft.study.status import (
    BACKBONES_DIR,
    BACKBONES_FILE,
    backbone_entry_dir,
    read_backbones_state,
)
from autoft.study.storage import hide_password, holds_study_file, lock_folder

__all__ = [
    "BACKBONES_FILE",
    "BackboneSearchResult",
    "backbone_slug",
    "plan_shares",
    "search_backbones",
    "write_backbone_report",
]

logger = logging.getLogger(__name__)

def backbone_slug(name: str) -> str:
    """A folder-safe name for a backbone: the short name, else the last part of the path or hub
    id (``sentence-transformers/all-mpnet-base-v2`` -> ``all-mpnet-base-v2``)."""
    text = str(name).rstrip("/\\")
    if text.lower() in SHORT_NAMES:
        return text.lower()
    last = re.split(r"[/\\]", text)[-1] or "backbone"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", last)


def check_models(models: Sequence[Any]) -> list[str]:
    """The backbone names of ``model=[...]``, checked before any data or model is loaded.

    Raises:
        BackboneError: Not a list of names, a name given twice (by short name, path or id), two
            names sharing a folder name, a folder that is not a model folder, or text and image
            backbones mixed.
    """
    names = []
    for item in models:
        if item is None:
            item = "minilm"
        if not isinstance(item, (str, Path)) or not str(item).strip():
            raise BackboneError(f"model={list(models)!r}: each backbone must be a folder path, a "
                                "hub id or a short name (minilm, mpnet)")
        names.append(str(item))
    for name in names:
        if name.startswith(("/", ".", "~")) and not Path(name).expanduser().exists():
            raise BackboneError(f"model=: no such folder {name!r}")
    resolved = [resolve_backbone(n) for n in names]
    for name, where in zip(names, resolved):  # the config only: no weights load here
        from transformers import AutoConfig

        from autoft.models.backbone import BUILTIN_IMAGE_BACKBONES

        if where in BUILTIN_IMAGE_BACKBONES:  # built by autoft, not a transformers model
            continue
        try:
            AutoConfig.from_pretrained(where, local_files_only=Path(where).exists())
        except (OSError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackboneError(
                f"cannot load backbone {name!r} ({where}): {first}; without internet give a "
                "local folder or a short name whose copy is in the models folder") from None
    from autoft.models.backbone import backbone_modality

    reads = {backbone_modality(n) for n in names}
    if len(reads) > 1:
        raise BackboneError(f"model={names}: some of these backbones read text and some images; "
                            "give backbones of one kind, the kind of the data")
    seen: dict[str, str] = {}
    for name, where in zip(names, resolved):
        if where in seen:
            raise BackboneError(f"model=: {name!r} and {seen[where]!r} are the same backbone "
                                f"({where}); give each backbone once")
        seen[where] = name
    slugs = [backbone_slug(n) for n in names]
    for slug in set(slugs):
        if slugs.count(slug) > 1:
            clash = [n for n, s in zip(names, slugs) if s == slug]
            raise BackboneError(f"model=: {clash} would share the folder backbones/{slug}; copy "
                                "one to a folder with another name")
    return names


#: A backbone is screened out only when another's probe scored as well and cost less than
#: ``(seconds - DOMINANCE_SECONDS) / DOMINANCE_FACTOR``: timing noise must not decide it.
DOMINANCE_FACTOR = 1.5
DOMINANCE_SECONDS = 1.0


def plan_shares(screen: list[dict[str, Any]], direction: str) -> list[dict[str, Any]]:
    """Share the time left among screened backbones (module docstring, step 2).

    Args:
        screen: One dict per backbone with ``name``, ``score`` (the probe's validation score,
            None when it did not finish) and ``seconds`` (its training and evaluation seconds,
            without the prefix-cache fill, which a warm cache skips). A backbone is screened out
            only when another scored as well and cost less than ``1 / DOMINANCE_FACTOR`` of it
            minus ``DOMINANCE_SECONDS`` (probes of a few seconds differ by timing noise).
        direction: ``"maximize"`` or ``"minimize"``.

    Returns:
        The same dicts with ``rank`` (0 = best probe), ``share`` (a fraction; the shares sum to
        1) and ``screened_out`` (the reason, or None), in the order the searches run (lowest
        share first, the best probe last).
    """
    sign = -1.0 if direction == "minimize" else 1.0
    rows = [dict(r) for r in screen]
    scored = [r for r in rows if r.get("score") is not None]
    scored.sort(key=lambda r: (-sign * float(r["score"]), float(r.get("seconds") or 0.0)))
    for rank, row in enumerate(scored):
        row["rank"], row["screened_out"] = rank, None
        cost = float(row.get("seconds") or 0.0)
        better = [o for o in scored[:rank]  # cheaper by a margin timing noise does not reach
                  if float(o.get("seconds") or 0.0) * DOMINANCE_FACTOR + DOMINANCE_SECONDS
                  < cost]
        if better:
            cheapest = min(better, key=lambda o: float(o.get("seconds") or 0.0))
            row["screened_out"] = (f"{cheapest['name']}'s probe scored as well or better and "
                                   "cost less")
    for row in rows:
        if row.get("score") is None:
            row["rank"], row["screened_out"] = len(scored), "its probe did not finish"
    kept = [r for r in scored if r["screened_out"] is None]
    if kept:
        weights = {r["name"]: 2.0 ** -i for i, r in enumerate(kept)}
    else:  # nothing screened: share alike (every search is its own evidence)
        for row in rows:
            row["screened_out"] = None
        weights = {r["name"]: 1.0 for r in rows}
    total = sum(weights.values())
    for row in rows:
        row["share"] = weights.get(row["name"], 0.0) / total
    return sorted(rows, key=lambda r: (r["share"], -r["rank"]))


#: Trial statuses that count toward ``n_trials`` (as in :class:`autoft.budget.Budget`).
_COUNTED = ("complete", "pruned", "budget", "diverged", "failed")


def counted_trials(trials: dict[str, list[Any]]) -> int:
    """Trials of a study's ``trials_`` columns that count toward ``n_trials``."""
    return sum(s in _COUNTED for s in trials.get("status", []))


def screening_trial(trials: dict[str, list[Any]]) -> dict[str, Any] | None:
    """The screening of one backbone: its first baseline that trained to the end (the space's
    cheapest, run first), as ``{"number", "score", "seconds"}``; the seconds leave out the
    prefix-cache fill (a warm cache skips it). None when no baseline finished."""
    columns = trials.get("number", [])
    for i in sorted(range(len(columns)), key=lambda i: columns[i]):
        if trials["status"][i] == "complete" and trials.get("baseline", [False] * len(columns))[i]:
            seconds = float(trials["seconds"][i] or 0.0) - float(
                (trials.get("cache_seconds") or [0.0] * len(columns))[i] or 0.0)
            return {"number": columns[i], "score": trials["score"][i],
                    "seconds": round(max(seconds, 0.0), 3)}
    return None


def share_trials(total: int, shares: list[tuple[str, float]]) -> dict[str, int]:
    """Split ``total`` trials by ``shares`` (largest remainder), at least 1 each when there are
    enough, the last (best-screened) taking what rounding leaves."""
    if not shares:
        return {}
    weight = sum(w for _, w in shares) or 1.0
    exact = {n: total * w / weight for n, w in shares}
    counts = {n: int(v) for n, v in exact.items()}
    for n, _ in sorted(exact.items(), key=lambda kv: kv[1] - int(kv[1]), reverse=True)[
            :total - sum(counts.values())]:
        counts[n] += 1
    for n, _ in shares[:-1]:  # one more trial each, taken from the last, when it can spare it
        if counts[n] == 0 and counts[shares[-1][0]] > 1:
            counts[n], counts[shares[-1][0]] = 1, counts[shares[-1][0]] - 1
    return counts


def _write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically (a crash never leaves half a file)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _write_state(path: Path, state: dict[str, Any]) -> None:
    _write_atomic(path, json.dumps(state, indent=2) + "\n")


#: Standard errors of the difference by which an unconfirmed recommendation must beat a
#: confirmed one of another backbone to outrank it (one-sided, about 98% under normal seed noise).
OUTRANK_Z = 2.0


def _seed_spread(rows: list[dict[str, Any]]) -> float | None:
    """The pooled seed standard deviation of the backbones' re-seeded recommendations (None
    when none has two runs)."""
    pairs = [(int(r.get("seeds") or 0), float(r["score_std"])) for r in rows
             if r.get("score") is not None and r.get("score_std") is not None
             and int(r.get("seeds") or 0) > 1]
    dof = sum(n - 1 for n, _ in pairs)
    if not dof:
        return None
    return (sum((n - 1) * sd * sd for n, sd in pairs) / dof) ** 0.5


def _margin(a: dict[str, Any], b: dict[str, Any], spread: float) -> float:
    """:data:`OUTRANK_Z` standard errors of the difference of two recommendations' means."""
    n_a, n_b = max(1, int(a.get("seeds") or 1)), max(1, int(b.get("seeds") or 1))
    return OUTRANK_Z * spread * (1 / n_a + 1 / n_b) ** 0.5


def _better(a: dict[str, Any], b: dict[str, Any], sign: float, spread: float | None) -> bool:
    """Whether backbone summary ``a`` beats ``b``: a confirmed recommendation beats an
    unconfirmed one, unless the unconfirmed one is ahead by more than :data:`OUTRANK_Z`
    standard errors of the difference (from ``spread``, the pooled seed standard deviation);
    otherwise the higher score (the lower one when minimising) wins."""
    diff = sign * (float(a["score"]) - float(b["score"]))
    if bool(a["confirmed"]) != bool(b["confirmed"]):
        if spread is not None:
            unconfirmed_ahead = diff if not a["confirmed"] else -diff
            if unconfirmed_ahead > _margin(a, b, spread):
                return not a["confirmed"]
        return bool(a["confirmed"])
    return diff > 0


def choose(rows: list[dict[str, Any]], direction: str) -> dict[str, Any] | None:
    """The backbone whose recommendation wins (module docstring, step 4), or None.

    Args:
        rows: One dict per backbone with ``name``, ``score`` (its recommendation's mean
            validation score, None without one), ``confirmed`` (re-seeded as asked), ``seeds``
            (its runs) and ``score_std`` (their standard deviation, None for one run).
        direction: ``"maximize"`` or ``"minimize"``.
    """
    sign = -1.0 if direction == "minimize" else 1.0
    spread = _seed_spread(rows)
    best = None
    for row in rows:
        if row.get("score") is None:
            continue
        if best is None or _better(row, best, sign, spread):
            best = row
    return best


def _summary(name: str, folder: Path, report: dict[str, Any]) -> dict[str, Any]:
    """One backbone's line of the comparison, from its study's report dict."""
    rec = report.get("recommendation") or {}
    counts = report.get("trial_counts") or {}
    backbone = report.get("backbone") or {}
    return {
        "name": name, "folder": str(folder), "model_type": backbone.get("model_type"),
        "num_layers": backbone.get("num_layers"), "total_params": backbone.get("total_params"),
        "trials": {k: v for k, v in counts.items() if v},
        "kinds_tried": sorted({t.get("kind") or "freeze" for t in report.get("trials", [])
                               if t.get("status") not in ("waiting", "skipped")}),
        "score": rec.get("score"), "score_std": rec.get("score_std"), "seeds": rec.get("seeds"),
        "confirmed": bool(rec.get("confirmed")), "seconds": rec.get("seconds"),
        "cache_seconds": rec.get("cache_seconds"), "strategy": rec.get("strategy"),
        "description": next((t.get("description") for t in report.get("trials", [])
                             if t.get("number") == rec.get("trial_number")), None),
        "trial_number": rec.get("trial_number"),
        "seconds_used": (report.get("budget") or {}).get("seconds_used"),
        "snippet": report.get("snippet"),
    }


def write_backbone_report(out: str | Path, storage: str | None = None,
                          backbone_reports: bool = False) -> dict[str, Path]:
    """(Re)write ``OUT/report.md`` and ``OUT/report.json`` of a multi-backbone search from
    ``OUT/backbones.json`` and each backbone's study, and update the choice in
    ``backbones.json``.

    Args:
        out: The search's output folder.
        storage: The studies' database URL when they are in one (``backbones.json`` keeps it
            with the password hidden); None for the stored one, or the folders.
        backbone_reports: Also rewrite each backbone's own report in its folder. Default False.

    Returns:
        The written paths by kind (``"markdown"``, ``"json"``).

    Raises:
        StudyError: ``OUT`` holds no multi-backbone search, or a backbone's study is missing.
    """
    from autoft.report import build_report, write_report
    from autoft.study import load_study

    out = Path(out)
    state_path = out / BACKBONES_FILE
    state = read_backbones_state(out)
    if state is None:
        raise StudyError(f"{str(out)!r} holds no {BACKBONES_FILE}: not a multi-backbone search")
    storage = storage or state.get("storage")
    rows = []
    for entry in state["backbones"]:
        folder = backbone_entry_dir(out, entry)
        try:
            study = load_study(None if storage else folder, entry.get("study_name"), storage)
        except StudyError:  # not screened yet (an interrupted first run)
            rows.append({**entry, "score": None, "confirmed": False})
            continue
        if backbone_reports:
            write_report(study, folder)
        row = {**entry, **_summary(entry["name"], folder, build_report(study)),
               "folder": entry["folder"]}
        rows.append(row)
    direction = state.get("direction", "maximize")
    best = choose(rows, direction)
    state["chosen"] = None if best is None else best["name"]
    state["backbones"] = [{k: r[k] for k in ("name", "folder", "study_name", "screen_score",
                                             "screen_seconds", "rank", "share", "screened_out",
                                             "budget_seconds", "trials_allowed") if k in r}
                          for r in rows]
    _write_state(state_path, state)
    report = {"metric": state.get("metric"), "direction": direction,
              "budget_seconds": state.get("budget_seconds"), "chosen": state["chosen"],
              "backbones": rows}
    paths = {"json": out / "report.json", "markdown": out / "report.md"}
    _write_atomic(paths["json"], json.dumps(report, indent=2, default=str) + "\n")
    _write_atomic(paths["markdown"], render_backbone_markdown(report))
    return paths


def _fmt(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{float(value):.{digits}f}"


def _outranks_note(chosen: dict[str, Any], rows: list[dict[str, Any]],
                   direction: str | None) -> str:
    """Why an unconfirmed recommendation was chosen over confirmed ones ("" when none was
    passed over)."""
    sign = -1.0 if direction == "minimize" else 1.0
    others = [r for r in rows if r is not chosen and r.get("confirmed")
              and r.get("score") is not None]
    spread = _seed_spread(rows)
    if not others or spread is None:
        return ""
    best = max(others, key=lambda r: sign * float(r["score"]))
    margin = _margin(chosen, best, spread)
    return (f" It is chosen over `{best['name']}`'s confirmed {_fmt(best['score'])} because it "
            f"is ahead by {abs(float(chosen['score']) - float(best['score'])):.4f}, more than "
            f"twice the standard error of the difference ({margin:.4f}, from the pooled seed "
            f"standard deviation {spread:.4f}): seed luck does not explain that.")


def render_backbone_markdown(report: dict[str, Any]) -> str:
    """The comparison report of a multi-backbone search as Markdown.

    Args:
        report: The dict written to ``OUT/report.json`` by :func:`write_backbone_report`
            (``metric``, ``chosen`` and one row per backbone in ``backbones``).
    """
    metric = report.get("metric") or "score"
    rows = report["backbones"]
    chosen = next((r for r in rows if r["name"] == report.get("chosen")), None)
    lines = ["# autoft: which backbone, and how to fine-tune it", ""]
    if chosen is None:
        lines += ["No backbone's search trained a strategy to the end yet; resume with a larger "
                  "budget.", ""]
    else:
        runs = (f"mean of {chosen['seeds']} runs, std {_fmt(chosen['score_std'])}"
                if (chosen.get("seeds") or 1) > 1 else "a single run")
        what = chosen.get("description") or "its recommended strategy"
        lines += [
            "## Recommendation", "",
            f"**Backbone `{chosen['name']}`**: {what}.",
            f"Validation {metric} {_fmt(chosen['score'])} ({runs}); about "
            f"{format_duration(float(chosen.get('seconds') or 0.0))} per fine-tune on the search's "
            "machine." + ("" if chosen["confirmed"] else
                          " **Unconfirmed**: it has fewer runs than the search asked for."
                          + _outranks_note(chosen, rows, report.get("direction"))),
            "",
            f"The strategy search of each backbone, with its cost model, learning curves, Pareto "
            f"front and size x budget table, is in its own report; the chosen one: "
            f"`{Path(chosen['folder']) / 'report.md'}`.", ""]
    lines += ["## Backbones", "",
              f"| backbone | blocks | parameters | probe {metric} | probe s | share | trials "
              f"| kinds tried | recommended | {metric} | runs | s per fine-tune |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        trials = ", ".join(f"{v} {k}" for k, v in (r.get("trials") or {}).items()
                           if k in ("complete", "pruned", "budget", "skipped"))
        params = r.get("total_params")
        share = "screened out" if r.get("screened_out") else f"{100 * float(r['share']):.0f}%"
        size = ("-" if params is None else f"{params / 1e6:.1f}M" if params >= 1e5
                else f"{params:,}")
        lines.append(
            f"| {r['name']}{' (chosen)' if chosen is r else ''} | {r.get('num_layers') or '-'} "
            f"| {size} "
            f"| {_fmt(r.get('screen_score'))} | {_fmt(r.get('screen_seconds'), 0)} | {share} "
            f"| {trials or '-'} | {', '.join(r.get('kinds_tried') or []) or '-'} "
            f"| {r.get('description') or '-'} | {_fmt(r.get('score'))} "
            f"| {r.get('seeds') or '-'}"
            f"{'' if r.get('confirmed') or r.get('score') is None else ' (unconfirmed)'} "
            f"| {_fmt(r.get('seconds'), 0)} |")
    lines += ["", "## How the budget was shared", "",
              "Each backbone's first trial (the space's cheapest baseline, the linear probe in "
              "the default space) was its screening. A backbone whose "
              "probe scored no better than another's and cost more was screened out; the time "
              "left went half to the best probe's backbone, a quarter to the next, and so on, "
              "the best one searching last with all the time the others left.", ""]
    for r in rows:
        if r.get("screened_out"):
            lines.append(f"- `{r['name']}` screened out: {r['screened_out']}.")
        elif r.get("budget_seconds") is not None:
            lines.append(f"- `{r['name']}`: {format_duration(float(r['budget_seconds']))} of "
                         f"search, {format_duration(float(r.get('seconds_used') or 0.0))} used in "
                         "all (its study's runs).")
    if chosen is not None and chosen.get("snippet"):
        lines += ["", "## Reproduce", "", "```python", chosen["snippet"].rstrip(), "```"]
    return "\n".join(lines) + "\n"


class BackboneSearchResult:
    """The outcome of a multi-backbone search: the chosen backbone's :class:`SearchResult`
    attributes, plus the comparison.

    Attributes:
        backbone_: The chosen backbone's name (None when no search trained a strategy to the end).
        backbones_: One dict per backbone: ``name``, ``folder``, ``screen_score``,
            ``screen_seconds``, ``share``, ``screened_out``, ``score``, ``seeds``, ``confirmed``,
            ``description``, ... (as in ``OUT/report.json``).
        results_: Each backbone's :class:`SearchResult` by name.
        report_paths_: The comparison report's paths (``"markdown"``, ``"json"``).
        out_dir: The output folder.
        recommendation_, recommended_strategy_, recommended_score_, best_params_, best_trial_,
            best_score_, best_strategy_, trials_, study_: Those of the chosen backbone's result
            (None when there is no choice).
    """

    def __init__(self, out_dir: Path, results: dict[str, Any], chosen: str | None,
                 rows: list[dict[str, Any]], report_paths: dict[str, Path]) -> None:
        self.out_dir = out_dir
        self.results_ = results
        self.backbone_ = chosen
        self.backbones_ = rows
        self.report_paths_ = report_paths

    #: The chosen result's attributes this result passes on (None without a choice).
    FORWARDED = ("recommendation_", "recommended_strategy_", "recommended_score_",
                 "best_params_", "best_trial_", "best_score_", "best_strategy_", "trials_",
                 "study_")

    def __getattr__(self, name: str) -> Any:
        if name not in BackboneSearchResult.FORWARDED:
            raise AttributeError(f"BackboneSearchResult has no attribute {name!r}")
        if self.backbone_ is None:
            return {} if name == "trials_" else None
        return getattr(self.results_[self.backbone_], name)

    def __repr__(self) -> str:
        return (f"BackboneSearchResult(backbone_={self.backbone_!r}, "
                f"backbones={[r['name'] for r in self.backbones_]!r}, out_dir={self.out_dir!r})")


def search_backbones(search: Callable[..., Any], data: Any, models: Sequence[Any], *,
                     budget: Any = None,
                     n_trials: int | None = None, out: str | Path = "autoft-out",
                     storage: str | None = None, study_name: str = "autoft",
                     refit: bool = False, **kwargs: Any) -> BackboneSearchResult:
    """Search strategies on several backbones and recommend a backbone and a strategy.

    Called by :func:`autoft.search` when ``model`` is a list of two or more backbones; the
    arguments are ``search``'s (``kwargs`` are passed to each backbone's search). The steps are
    in this module's docstring.

    Args:
        search: :func:`autoft.search`, run once per backbone and run (passed in, so that this
            module does not import the one that calls it).
        data: As for :func:`autoft.search`.
        models: Backbone names (short names ``minilm``/``mpnet``, folders or hub ids), 2 or more.
        budget: The whole run's time budget (seconds or ``"30m"``), screening included; None
            with ``n_trials`` None means 30 minutes.
        n_trials: Without a budget: trials in all, shared like the time (each backbone gets at
            least 2: its probe and one more).
        out: Output folder; each backbone's study goes to ``OUT/backbones/<name>/``.
        storage, study_name: A database URL holds the studies ``<study_name>-<name>``.
        refit: Refit the chosen strategy on its backbone to ``OUT/model``.

    Returns:
        A :class:`BackboneSearchResult`.

    Raises:
        BackboneError: A name is not a backbone, or one is given twice (before any data loads).
        BudgetError: An invalid budget, or fewer ``n_trials`` than two per backbone.
        StudyError: ``out`` holds a one-backbone study, or another search uses it.
        Everything :func:`autoft.search` raises.
    """
    start = time.monotonic()
    names = check_models(models)
    if budget is None and n_trials is None:
        budget = "30m"
    limits = Budget.from_args(budget, n_trials, None)
    if limits.n_trials is not None and limits.n_trials < 2 * len(names):
        raise BudgetError(f"n_trials={limits.n_trials} cannot search {len(names)} backbones: "
                          f"give at least {2 * len(names)} (a probe and one more trial each)")
    out = Path(out)
    if storage is None and holds_study_file(out):
        raise StudyError(f"{str(out)!r} holds the study of a one-backbone search; give a "
                         "multi-backbone search another --out folder")
    # a second multi-backbone run on this folder would interleave its screening, shares and
    # report with this one's; refused before anything loads, like a second one-backbone search
    with lock_folder(out):
        return _search_backbones(search, data, names, limits, start, out, storage, study_name,
                                 refit, kwargs)


def _search_backbones(search: Callable[..., Any], data: Any, names: list[str], limits: Budget,
                      start: float, out: Path, storage: str | None, study_name: str,
                      refit: bool, kwargs: dict[str, Any]) -> BackboneSearchResult:
    deadline = None if limits.seconds is None else start + limits.seconds

    def left() -> float | None:
        return None if deadline is None else max(1.0, deadline - time.monotonic())

    def run(name: str, **extra: Any) -> Any:
        slug = backbone_slug(name)
        return search(data, model=name, out=out / BACKBONES_DIR / slug, storage=storage,
                      study_name=f"{study_name}-{slug}" if storage else study_name,
                      **kwargs, **extra)

    state_path = out / BACKBONES_FILE
    earlier = read_backbones_state(out) or {}
    screen, results = [], {}
    for i, name in enumerate(names):
        logger.info("screening backbone %s (%d of %d): its cheapest baseline", name, i + 1,
                    len(names))
        # each screening may use its part of the time left, so one slow probe cannot starve
        # the others of their screening
        cap = None if left() is None else max(1.0, float(left() or 0.0) / (len(names) - i))
        result = run(name, n_trials=1, budget=cap)
        probe = screening_trial(result.trials_)
        if probe is None and counted_trials(result.trials_) > 0:  # resumed: screen again
            result = run(name, n_trials=counted_trials(result.trials_) + 1, budget=cap)
            probe = screening_trial(result.trials_)
        results[name] = result
        screen.append({"name": name, **(probe or {"score": None, "seconds": None})})
    direction = next(iter(results.values())).study_.direction.name.lower()
    plan = plan_shares(screen, direction)
    time_left = left()
    state = {"metric": next(iter(results.values())).study_.user_attrs.get(StudyAttr.INFO, {}).get(
                 "metric"),
             "direction": direction, "budget_seconds": limits.seconds, "n_trials": limits.n_trials,
             "storage": None if storage is None else hide_password(storage),
             "chosen": earlier.get("chosen"),
             "backbones": [{"name": p["name"],
                            "folder": f"{BACKBONES_DIR}/{backbone_slug(p['name'])}",
                            "study_name": (f"{study_name}-{backbone_slug(p['name'])}"
                                           if storage else None),
                            "screen_score": p["score"], "screen_seconds": p["seconds"],
                            "rank": p["rank"], "share": round(p["share"], 4),
                            "screened_out": p["screened_out"], "budget_seconds": None,
                            "trials_allowed": None}
                           for p in plan]}
    active = [p for p in plan if p["share"] > 0]
    allowed: dict[str, int] = {}
    if limits.n_trials is not None:
        done = {n: counted_trials(r.trials_) for n, r in results.items()}
        allowed = share_trials(max(0, limits.n_trials - sum(done.values())),
                               [(p["name"], p["share"]) for p in active])
        allowed = {n: done[n] + k for n, k in allowed.items()}
    for entry in state["backbones"]:
        entry["trials_allowed"] = allowed.get(entry["name"])
    _write_state(state_path, state)
    try:
        for i, p in enumerate(active):
            last = i == len(active) - 1
            extra: dict[str, Any] = {}
            if time_left is not None:
                if float(left() or 0.0) <= 1.0:
                    break
                extra["budget"] = left() if last else max(1.0, p["share"] * time_left)
            if allowed:
                if allowed[p["name"]] <= counted_trials(results[p["name"]].trials_):
                    continue
                extra["n_trials"] = allowed[p["name"]]
            entry = next(e for e in state["backbones"] if e["name"] == p["name"])
            entry["budget_seconds"] = extra.get("budget")
            _write_state(state_path, state)
            logger.info("searching backbone %s (%s)", p["name"],
                        "all the time left" if last and time_left is not None else
                        f"{100 * p['share']:.0f}% of the " + (
                            "time left" if time_left is not None else "trials left"))
            results[p["name"]] = run(p["name"], **extra)
    finally:  # an interrupted run keeps a report and the last choice
        paths = write_backbone_report(out, storage)
    report = json.loads(paths["json"].read_text())
    chosen = report["chosen"]
    if chosen is not None:
        logger.info("chosen backbone: %s", chosen)
    if refit and chosen is not None:
        from autoft.searching.refit import refit as refit_study

        folder = out / BACKBONES_DIR / backbone_slug(chosen)
        name = f"{study_name}-{backbone_slug(chosen)}" if storage else None
        refit_study(None if storage else folder, storage=storage, study_name=name,
                    save_to=out / "model", data=data, validation=kwargs.get("validation"),
                    test=kwargs.get("test"), device=kwargs.get("device", "auto"))
        paths = write_backbone_report(out, storage, backbone_reports=True)
        report = json.loads(paths["json"].read_text())
    return BackboneSearchResult(out, results, chosen, report["backbones"], paths)

