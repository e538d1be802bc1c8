"""Writing the report of a study: ``report.md`` and ``report.json``, from the study storage alone.

Every number comes from the study: the search stores the dataset summary, backbone, space and runs
as study user attributes and each trial's measurements as trial user attributes, so
``autoft report DIR`` rebuilds the same report from the study file alone, without the data or the model.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import optuna

from autoft.budget import format_duration
from autoft.errors import StudyError
from autoft.recommend import Recommendation, recommend, trial_records
from autoft.storage import open_storage

__all__ = ["STUDY_NAME", "build_report", "load_study", "render_markdown", "study_runs",
           "study_status", "write_report"]

logger = logging.getLogger(__name__)

#: Default study name.
STUDY_NAME = "autoft"


def load_study(
    out_dir: str | Path | None = None, study_name: str | None = None, storage: str | None = None
) -> optuna.Study:
    """Open the study of an earlier search.

    Args:
        out_dir: The search's output folder (holding ``study.db`` or ``study.journal``).
        study_name: The study's name; None for the only study in the storage. Default None.
        storage: An RDB URL instead of ``out_dir`` (e.g. ``postgresql://...``). Default None.

    Raises:
        StudyError: No study file or storage, or no (unique) study in it.
    """
    store = open_storage(out_dir, storage, create=False)
    names = [s.study_name for s in store.get_all_studies()]
    where = storage or str(out_dir)
    if not names:
        raise StudyError(f"{where!r} holds no study; give the --out folder of an earlier "
                         "'autoft search'")
    if study_name is None:
        if len(names) != 1:
            raise StudyError(f"{where!r} holds studies {names}; name one with --study")
        study_name = names[0]
    if study_name not in names:
        raise StudyError(f"{where!r} has no study {study_name!r}; it holds {names}")
    return optuna.load_study(study_name=study_name, storage=store)


def study_runs(study: optuna.Study) -> list[dict[str, Any]]:
    """The records of every search run and worker of a study, oldest first.

    A record whose ``ended`` is None belongs to a run that never finished (killed or crashed).
    """
    runs = [dict(v) for k, v in study.user_attrs.items() if k.startswith("run:")]
    return sorted(runs, key=lambda r: str(r.get("started")))


def _clean(value: Any) -> Any:
    """Make a value JSON-safe (NaN and infinities become None)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def snippet(info: dict[str, Any], rec: Recommendation) -> str:
    """Python code that reproduces the recommended fine-tune with :func:`autoft.fine_tune`."""
    paths = info.get("data_paths", {})
    data = paths.get("data")
    lines = ["import autoft", "", f"strategy = autoft.Strategy.from_dict({rec.strategy.to_dict()!r})",
             "result = autoft.fine_tune("]
    lines.append(f"    {data!r}," if data else "    data,  # the training data of this study")
    lines.append("    strategy,")
    lines.append(f"    model={info.get('backbone')!r},")
    for key in ("validation", "test"):
        if paths.get(key):
            lines.append(f"    {key}={paths[key]!r},")
    summary = info.get("data", {})
    lines.append(f"    text_column={summary.get('text_column')!r},")
    if summary.get("text_pair_column"):
        lines.append(f"    text_pair_column={summary.get('text_pair_column')!r},")
    lines.append(f"    label_column={summary.get('label_column')!r},")
    if not paths.get("validation") and info.get("validation_size") is not None:
        lines.append(f"    validation_size={info['validation_size']!r},")
        lines.append(f"    split_seed={info.get('seed', 0)!r},")
    lines.append(f"    metric={info.get('metric', 'accuracy')!r},")
    lines.append(f"    max_length={info.get('max_length', 128)!r},")
    lines.append(f"    evals_per_epoch={info.get('evals_per_epoch', 2)!r},")
    lines.append(f"    seed={rec_seed(info, rec)!r},")
    lines.append(")")
    lines.append(f"print(result.validation_score)  # the study measured {rec.score:.4f}")
    return "\n".join(lines)


def rec_seed(info: dict[str, Any], rec: Recommendation) -> int:
    """The training seed of the recommended trial."""
    return int(info.get("trial_seeds", {}).get(str(rec.trial_number), info.get("seed", 0)))


def build_report(study: optuna.Study) -> dict[str, Any]:
    """Collect everything the report shows into one JSON-serialisable dict.

    Raises:
        StudyError: The study was not made by ``autoft search`` (it lacks autoft's attributes).
    """
    info = study.user_attrs.get("autoft")
    if not isinstance(info, dict):
        raise StudyError(
            f"study {study.study_name!r} was not made by autoft search (no 'autoft' attributes)"
        )
    trials = study.get_trials(deepcopy=False)
    records = trial_records(trials)
    info = dict(info)
    info["trial_seeds"] = {str(r["number"]): r["seed"] for r in records if r["seed"] is not None}
    rec = recommend(study, info.get("metric", "accuracy"), int(info.get("num_layers", 0)))
    runs = study_runs(study)
    counts = {state: sum(1 for r in records if r["state"] == state)
              for state in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")}
    report = {
        "analysis": _analysis(records, info),
        "autoft_version": info.get("version"),
        "study_name": study.study_name,
        "metric": info.get("metric"),
        "backbone": {
            "name": info.get("backbone"),
            "path": info.get("backbone_path"),
            "model_type": info.get("model_type"),
            "num_layers": info.get("num_layers"),
            "total_params": info.get("backbone_params"),
        },
        "data": info.get("data"),
        "data_paths": info.get("data_paths"),
        "search_space": info.get("space"),
        "budget": {
            "runs": runs,
            "seconds_used": sum(float(r.get("seconds") or 0.0) for r in runs
                                if not str(r.get("worker", "")).count("/worker-")),
            "trial_seconds_total": sum(float(r["seconds"] or 0.0) for r in records
                                       if r["seconds"] is not None),
        },
        "trial_counts": counts,
        "trials": records,
        "recommendation": None if rec is None else rec.to_dict(),
        "refit": study.user_attrs.get("refit"),
        "snippet": None if rec is None else snippet(info, rec),
    }
    return _clean(report)


def _analysis(records: list[dict[str, Any]], info: dict[str, Any]) -> dict[str, Any]:
    """Cost model, learning curves, the size x budget table, the rule-of-thumb verdict, Pareto."""
    from autoft.curves import (
        family_of,
        fit_cost_model,
        fit_learning_curves,
        pareto_front,
        rule_of_thumb,
        size_budget_table,
    )

    data = info.get("data", {})
    n_val = int(data.get("validation_size") or 0)
    n_train = int(data.get("train_size") or 0)
    cost = fit_cost_model(records, n_val)
    curves = fit_learning_curves(records)
    best: dict[tuple[int, str], dict[str, Any]] = {}
    for r in sorted(records, key=lambda r: -(r["score"] or 0.0)):
        if (r["state"] == "COMPLETE" and r["score"] is not None
                and r.get("purpose") != "learning_curve"):
            best.setdefault(family_of(r), r)
    measured = {n for c in curves.values() for n, _ in c.points}
    sizes = sorted(measured | ({n_train, 4 * n_train} if n_train else set()))
    table = [] if not cost.per_example else size_budget_table(
        curves, cost, best, sizes, validation_size=n_val,
        evals_per_epoch=int(info.get("evals_per_epoch", 2)))
    return {
        "cost_model": cost.to_dict(),
        "learning_curves": [c.to_dict() for c in curves.values()],
        "size_budget_table": table,
        "rule_of_thumb": rule_of_thumb(table, int(info.get("num_layers") or 0)),
        "pareto_front": [r["number"] for r in pareto_front(records)],
    }


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e5):
            return f"{value:.2e}"
        return f"{value:.{digits}g}" if digits else f"{value:.0f}"
    return str(value)


def render_markdown(report: dict[str, Any]) -> str:
    """The Markdown text of a report built by :func:`build_report`."""
    data = report.get("data") or {}
    bb = report.get("backbone") or {}
    metric = report.get("metric")
    rec = report.get("recommendation")
    out: list[str] = ["# autoft report", ""]
    out += ["## Recommendation", ""]
    if rec is None:
        out += ["No trial completed, so there is nothing to recommend yet. Run the search longer "
                "(a larger --budget or --n-trials); completed trials are kept when it resumes.", ""]
    else:
        trial = next(t for t in report["trials"] if t["number"] == rec["trial_number"])
        out += [f"**{trial['description']}** (trial {rec['trial_number']}): "
                f"expected {metric} **{rec['score']:.4f}** at about **{rec['seconds']:.0f} s** "
                f"of training on this machine for {data.get('train_size')} training examples.", "",
                rec["reason"], ""]
        refit = report.get("refit")
        if refit:
            test = refit.get("test_score")
            out += [f"Refit (trial {refit['trial_number']}, {refit['seconds']:.0f} s): validation "
                    f"{metric} {refit['validation_score']:.4f}"
                    + ("" if test is None else f", **test {metric} {test:.4f}** on "
                       f"{refit['test_size']} examples")
                    + f". Saved to `{refit['path']}`; load it with `import autoft` then "
                    f"`transformers.pipeline(\"text-classification\", model=\"{refit['path']}\")`.",
                    ""]
        out += ["Reproduce it:", "", "```python", report["snippet"], "```", ""]
        seeded = [g for g in rec.get("groups", []) if len(g["scores"]) > 1]
        if seeded:
            out += ["### Seeds", "", "Strategies run with several seeds (noise check):", "",
                    "| trial | strategy | seeds | mean | std | seconds |", "|---|---|---|---|---|---|"]
            out += [f"| {g['trial_number']} | {g['description']} | {len(g['scores'])} | "
                    f"{g['mean']:.4f} | {g['std']:.4f} | {g['seconds']:.0f} |" for g in seeded]
            out.append("")
    analysis = report.get("analysis") or {}
    table = analysis.get("size_budget_table") or []
    if table:
        budgets = sorted({r["budget_seconds"] for r in table})
        out += ["## Strategy by dataset size and budget", "",
                "Expected validation score and training time of one fine-tune, from the learning "
                "curves and the cost model below (sizes beyond the largest one trained on are "
                "extrapolated, marked *).", "",
                "| training examples | " + " | ".join(format_duration(b) for b in budgets) + " |",
                "|---|" + "---|" * len(budgets)]
        for n in sorted({r["train_size"] for r in table}):
            cells = []
            for b in budgets:
                r = next(x for x in table if x["train_size"] == n and x["budget_seconds"] == b)
                cells.append("nothing fits" if r["family"] is None else
                             f"k={r['frozen_layers']} {r['head']} (trial {r['trial_number']}): "
                             f"{r['expected_score']:.3f}, {format_duration(r['expected_seconds'])}")
            star = "*" if any(x["extrapolated"] for x in table if x["train_size"] == n) else ""
            out.append(f"| {n}{star} | " + " | ".join(cells) + " |")
        out.append("")
        if analysis.get("rule_of_thumb"):
            out += ["**The rule of thumb, measured.** " + analysis["rule_of_thumb"], ""]
    cost = analysis.get("cost_model") or {}
    if cost.get("seconds_per_train_example"):
        err = cost.get("median_abs_relative_error")
        out += ["### Cost model", "",
                "Training seconds per example (one pass) on this machine, by frozen_layers/head, "
                f"fit to {cost['trials_used']} trials; evaluation "
                f"{1000 * cost['seconds_per_eval_example']:.2f} ms per validation example. "
                + ("Its error cannot be measured yet: no family has two trials." if err is None
                   else f"Median error predicting a trial's seconds from the other trials of its "
                   f"family (leave-one-out): {100 * err:.1f}%."), "",
                "| family | ms per example |", "|---|---|"]
        out += [f"| {fam} | {1000 * v:.2f} |" for fam, v in cost["seconds_per_train_example"].items()]
        out.append("")
    curves = [c for c in analysis.get("learning_curves", []) if len(c["points"]) > 1]
    if curves:
        out += ["### Learning curves", "", "score = a + b ln(n), fit per family to its best score "
                "at each training size:", "", "| family | points (n: score) | a | b |",
                "|---|---|---|---|"]
        out += [f"| {c['family']} | " + ", ".join(f"{n}: {v:.3f}" for n, v in c["points"])
                + f" | {c['intercept']:.3f} | {c['slope']:.4f} |" for c in curves]
        out.append("")
    out += ["## Data", ""]
    out += [
        f"- source: `{data.get('source')}`; text column `{data.get('text_column')}`"
        + (f", pair column `{data.get('text_pair_column')}`" if data.get("text_pair_column") else "")
        + f", label column `{data.get('label_column')}`",
        f"- classes ({data.get('num_labels')}): "
        + ", ".join(f"{i} = {n}" for i, n in (data.get("id2label") or {}).items()),
        f"- train: {data.get('train_size')} examples (per class {data.get('train_class_counts')})",
        f"- validation: {data.get('validation_size')} examples"
        + (" (a seeded stratified split of the training data)"
           if data.get("validation_source") == "split" else ""),
        f"- test: {data.get('test_size') if data.get('test_size') is not None else 'none'}",
        "",
    ]
    out += ["## Backbone and budget", ""]
    params = bb.get("total_params")
    out += [f"- backbone: `{bb.get('name')}` ({bb.get('model_type')}, {bb.get('num_layers')} blocks"
            + (f", {params / 1e6:.1f}M parameters" if params else "") + ")"]
    budget = report.get("budget") or {}
    for i, run in enumerate(budget.get("runs", [])):
        who = f" ({run['worker']})" if run.get("worker") and "/worker-" in str(run["worker"]) else ""
        if run.get("ended") is None:
            out.append(f"- run {i + 1}{who}: started {run.get('started')} with budget "
                       f"{run.get('budget')}; it never finished (the process was killed or crashed); "
                       "its running trial was marked failed and retried")
            continue
        out.append(
            f"- run {i + 1}{who}: started {run.get('started')}, {format_duration(run.get('seconds'))} "
            f"of budget {run.get('budget')}; {run.get('trials_run')} trials; ended because "
            f"{run.get('stopped_because')}"
        )
    out += [f"- wall time used by all runs: {format_duration(budget.get('seconds_used'))}; "
            f"in trials: {format_duration(budget.get('trial_seconds_total'))}"]
    counts = report.get("trial_counts", {})
    out += [f"- trials: {counts.get('COMPLETE', 0)} complete, {counts.get('PRUNED', 0)} pruned, "
            f"{counts.get('FAIL', 0)} failed"
            + (f", {counts['RUNNING']} running" if counts.get("RUNNING") else ""), ""]
    out += ["## Trials", "",
            f"Score is the best validation {metric} the trial reached (pruned trials stopped early).",
            "",
            "| # | state | frozen | lr | head lr | head | pooling | epochs | batch | score | "
            "seconds | trainable | note |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    waiting = [t for t in report["trials"] if t["state"] == "WAITING"]
    if waiting:
        out += [f"{len(waiting)} queued trials (follow-ups or retries) did not run before the "
                "budget ended; they run first when the search is resumed.", ""]
    for t in report["trials"]:
        if t["state"] == "WAITING":
            continue
        head = t["head"] or "-"
        if head == "mlp":
            head = f"mlp {t['head_depth']}x{t['head_width']}"
        note = t.get("fail_reason") or ""
        if t.get("retry_of") is not None:
            note = f"retry of trial {t['retry_of']}" + (f"; {note}" if note else "")
        if t.get("status") == "deadline":
            note = "stopped at the budget's end" + (f"; {note}" if note else "")
        if t.get("purpose") == "reseed":
            note = f"re-seed of trial {t['reseed_of']}" + (f"; {note}" if note else "")
        elif t.get("purpose") == "learning_curve":
            note = (f"trial {t['curve_of']} on {t['train_size']} examples"
                    + (f"; {note}" if note else ""))
        lr = t["learning_rate"] if t["frozen_layers"] != bb.get("num_layers") else None
        out.append(
            f"| {t['number']} | {t['state'].lower()} | {_fmt(t['frozen_layers'])} | {_fmt(lr)} | "
            f"{_fmt(t['head_learning_rate'])} | {head} | {t['pooling'] or '-'} | "
            f"{_fmt(t['epochs'])} | {_fmt(t['batch_size'])} | {_fmt(t['score'])} | "
            f"{_fmt(t['seconds'], 0)} | {_fmt(t['trainable_params'])} | "
            f"{note.replace('|', '/').replace(chr(10), ' ')} |"
        )
    out.append("")
    return "\n".join(out)


def write_report(study: optuna.Study, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.json``, ``report.md``, ``trials.csv`` and ``report.html`` into ``out_dir``.

    Returns:
        The written paths by kind (``"json"``, ``"markdown"``, ``"csv"``, ``"html"``).

    Raises:
        StudyError: As for :func:`build_report`.
    """
    import pandas as pd

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = build_report(study)
    paths = {"json": out / "report.json", "markdown": out / "report.md", "csv": out / "trials.csv"}
    tmp = {k: p.with_suffix(p.suffix + ".tmp") for k, p in paths.items()}
    tmp["json"].write_text(json.dumps(report, indent=2) + "\n")
    tmp["markdown"].write_text(render_markdown(report))
    pd.DataFrame(report["trials"]).to_csv(tmp["csv"], index=False)
    for key, path in paths.items():
        tmp[key].replace(path)  # atomic: a crash never leaves half a report
    try:
        from autoft.html_report import write_html

        paths["html"] = write_html(study, out / "report.html", report)
    except Exception:  # the plots are a bonus: never lose the text report over them
        logger.warning("the HTML report could not be written", exc_info=True)
    return paths


def study_status(study: optuna.Study) -> dict[str, Any]:
    """Where a (possibly running) study stands, from its storage alone.

    Returns:
        A dict with ``counts`` (trials by state), ``best`` (best completed score or None),
        ``best_trial``, ``running`` (``[{"number", "seconds", "heartbeat_age"}]``),
        ``seconds_left`` (of the newest unfinished run with a time budget, else None),
        ``metric``.
    """
    import time

    from optuna.trial import TrialState

    now = time.time()
    trials = [t for t in study.get_trials(deepcopy=False)
              if t.user_attrs.get("duplicate_of") is None]  # skipped duplicate follow-ups
    counts = {state.name: sum(1 for t in trials if t.state == state) for state in TrialState}
    done = [t for t in trials if t.state == TrialState.COMPLETE
            and t.user_attrs.get("best_score") is not None]
    best = max(done, key=lambda t: float(t.user_attrs["best_score"]), default=None)
    running = []
    for t in trials:
        if t.state == TrialState.RUNNING:
            start = t.datetime_start.timestamp() if t.datetime_start else now
            beat = t.system_attrs.get("autoft_heartbeat")
            running.append({"number": t.number, "seconds": round(now - start, 1),
                            "heartbeat_age": None if beat is None else round(now - float(beat), 1)})
    open_runs = [r for r in study_runs(study) if r.get("ended") is None and r.get("deadline_unix")]
    left = max((float(r["deadline_unix"]) - now for r in open_runs), default=None)
    info = study.user_attrs.get("autoft", {})
    return {
        "study": study.study_name,
        "metric": info.get("metric"),
        "counts": counts,
        "best": None if best is None else float(best.user_attrs["best_score"]),
        "best_trial": None if best is None else best.number,
        "running": running,
        "seconds_left": None if left is None else max(0.0, left),
    }
