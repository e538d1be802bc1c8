"""The Markdown text of a report built by :func:`autoft.report.build_report`, as named sections
(the HTML report renders the same sections and puts its plots between them)."""

from __future__ import annotations

from typing import Any

from autoft.budget import format_duration, plural

__all__ = ["STATUS_NAMES", "render_markdown", "sections"]

#: How each trial status is shown.
STATUS_NAMES = {
    "complete": "complete", "pruned": "pruned", "budget": "stopped by budget",
    "diverged": "diverged", "skipped": "skipped (no time)", "failed": "failed",
    "interrupted": "interrupted",
    "running": "running", "waiting": "queued",
}


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e6 and digits == 0:
            return f"{value:.0f}"
        if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e5):
            return f"{value:.2e}"
        return f"{value:.{digits}g}" if digits else f"{value:.0f}"
    return str(value)


def _recommendation(report: dict[str, Any]) -> list[str]:
    data = report.get("data") or {}
    metric = report.get("metric")
    rec = report.get("recommendation")
    out: list[str] = []
    if report.get("provisional"):
        out += [report["provisional"], ""]
    if rec is None:
        out += ["No trial trained its strategy to the end, so there is nothing to recommend yet. "
                "Run the search longer (a larger --budget or --n-trials); finished trials are kept "
                "when it resumes.", ""]
        return out
    trial = next(t for t in report["trials"] if t["number"] == rec["trial_number"])
    cost = f"about **{rec['seconds']:.0f} s** of training"
    if rec.get("cached") and rec.get("cache_seconds"):
        cost += (f" (plus {rec['cache_seconds']:.0f} s once to fill the frozen-prefix cache, the "
                 "first time this backbone and data are used)")
    out += [f"**{trial['description']}** (trial {rec['trial_number']}): expected {metric} "
            f"**{rec['score']:.4f}**"
            + (f" (mean of {rec['seeds']} seeds)" if rec["seeds"] > 1 else " (a single run)")
            + f" at {cost} on this machine for {data.get('train_size')} training examples.", "",
            rec["reason"], ""]
    scaled = report.get("followups_scaled")
    if scaled:
        seeds = (report.get("settings") or {}).get("seeds")
        out += [f"Follow-ups were scaled to the trials' cost: re-seeding "
                f"{plural(int(scaled['top_k']), 'strategy', 'strategies')} to {scaled['seeds']} "
                f"seeds would have taken about {scaled['estimated_seconds'] / 60:.0f} minutes, "
                f"more than the {scaled['allowed_seconds'] / 60:.0f} minutes kept for follow-ups, "
                f"so the plan re-seeds the leader alone, to {seeds} runs in all. A larger --budget "
                "restores the full re-seeding.", ""]
    refit = report.get("refit")
    if refit:
        test = refit.get("test_score")
        out += [f"Refit (trial {refit['trial_number']}, {refit['seconds']:.0f} s): validation "
                f"{metric} {refit['validation_score']:.4f}"
                + ("" if test is None else f", **test {metric} {test:.4f}** on "
                   f"{refit['test_size']} examples")
                + f". Saved to `{refit['path']}`; load it with `import autoft` then "
                f"`transformers.pipeline(\"{refit.get('pipeline_task', 'text-classification')}\", "
                f"model=\"{refit['path']}\")`.",
                ""]
    out += ["Reproduce it:", "", "```python", report["snippet"], "```", ""]
    seeded = [g for g in rec.get("groups", []) if len(g["scores"]) > 1]
    if seeded:
        out += ["### Seeds", "", "Strategies run with several seeds (noise check):", "",
                "| trial | strategy | seeds | mean | std | seconds |", "|---|---|---|---|---|---|"]
        out += [f"| {g['trial_number']} | {g['description']} | {len(g['scores'])} | "
                f"{g['mean']:.4f} | {g['std']:.4f} | {g['seconds']:.0f} |" for g in seeded]
        out.append("")
    return out


#: Largest over smallest training class count above which the report suggests a balanced metric.
IMBALANCE = 3.0
#: Classification metrics that weigh every class alike (no balanced-metric note with them).
BALANCED_METRICS = ("balanced_accuracy", "macro_f1", "macro_precision", "macro_recall", "f1",
                    "roc_auc")


def _baseline(report: dict[str, Any]) -> list[str]:
    base = (report.get("data") or {}).get("baseline") or {}
    metric = report.get("metric")
    out = []
    for role in ("validation", "test"):
        scores = base.get(role)
        if not scores:
            continue
        shown = ", ".join(f"{'**' if m == metric else ''}{m} {v:.4f}{'**' if m == metric else ''}"
                          for m, v in scores.items())
        out.append(f"- trivial baseline on {role} (always {base.get('predictor')}): {shown}")
    return out


def _confusion(view: dict[str, Any], caption: str) -> list[str]:
    names = [str(n).replace("|", "/") for n in view["labels"]]
    out = [caption, "", "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    out += [f"| {str(c['label']).replace('|', '/')} | {c['precision']:.3f} | {c['recall']:.3f} | "
            f"{c['f1']:.3f} | {c['support']} |" for c in view["per_class"]]
    if len(names) <= 20:
        out += ["", "Confusion matrix (rows: true class, columns: predicted"
                + (f"; summed over {view['runs']} runs" if view.get("runs", 1) > 1 else "")
                + "):", "", "| true \\ predicted | " + " | ".join(names) + " |",
                "|---|" + "---|" * len(names)]
        out += [f"| {names[i]} | " + " | ".join(str(v) for v in row) + " |"
                for i, row in enumerate(view["confusion"])]
    return out + [""]


def _residuals(view: dict[str, Any], caption: str) -> list[str]:
    return [caption, "",
            f"- residual (predicted - true): mean {view['residual_mean']:+.4f}, standard "
            f"deviation {view['residual_std']:.4f}; 90% of the errors are within "
            f"{view['abs_residual_p90']:.4f}"
            + (f" (averaged over {view['runs']} runs)" if view.get("runs", 1) > 1 else ""),
            "- the HTML report plots predicted against true values", ""]


def _task_view(report: dict[str, Any]) -> list[str]:
    """The task's own view: the trivial baseline, then per-class results and the confusion
    matrix (classification) or the residuals (regression) of the recommended strategy."""
    out = _baseline(report)
    data = report.get("data") or {}
    counts = data.get("train_class_counts")
    metric = report.get("metric")
    if isinstance(counts, list) and counts and min(counts) > 0:
        ratio = max(counts) / min(counts)
        if ratio > IMBALANCE and metric not in BALANCED_METRICS:
            out.append(f"- the classes are imbalanced (largest / smallest training class = "
                       f"{ratio:.1f}): {metric} rewards predicting the common classes; consider "
                       "a metric that weighs every class alike, e.g. `--metric macro_f1` or "
                       "`--metric balanced_accuracy`")
    if out:
        out.append("")
    views = [(report.get("task_view"), "The recommended strategy on the validation split, over "
              "its runs:")]
    refit = report.get("refit") or {}
    views += [(refit.get("validation_view"), "The refit model on the validation split:"),
              (refit.get("test_view"), "The refit model on the test split:")]
    for view, caption in views:
        if not view:
            continue
        out += (_confusion if view.get("type") == "classification" else _residuals)(view, caption)
    if report.get("misclassified_grid"):
        out += ["Misclassified validation images of the recommended strategy (its best evaluation; "
                "most confident mistakes first; captions: true -> predicted):", "",
                f"![misclassified validation images]({report['misclassified_grid']})", ""]
    return out


def _table(report: dict[str, Any]) -> list[str]:
    analysis = report.get("analysis") or {}
    table = analysis.get("size_budget_table") or []
    if analysis.get("no_trial_finished"):
        need = analysis.get("budget_to_finish")
        return ["No trial trained to the end, so there is no learning curve or cost model to "
                "say which strategy fits which data size and budget"
                + (f"; the cheapest trial stopped by the budget needed about {need:.0f} s to "
                   "finish." if need else "."), ""]
    if not table:
        return []
    budgets = sorted({r["budget_seconds"] for r in table})
    out = ["Expected validation score (80% interval) and time of one fine-tune, from the learning "
           "curves and the cost model below. Sizes beyond the largest one a strategy's curve was "
           "measured at are extrapolated (marked *): there the interval also reaches the "
           "log-linear curve through the same points, as the curve's shape is uncertain too; "
           "none is predicted beyond 4 times it.", "",
           "| training examples | " + " | ".join(format_duration(b) for b in budgets) + " |",
           "|---|" + "---|" * len(budgets)]
    for n in sorted({r["train_size"] for r in table}):
        cells = []
        for b in budgets:
            r = next(x for x in table if x["train_size"] == n and x["budget_seconds"] == b)
            if r["family"] is None:
                cells.append("nothing fits")
                continue
            interval = r.get("interval")
            spread = f" ({interval[0]:.3f}-{interval[1]:.3f})" if interval else ""
            fill = f" + {format_duration(r['fill_seconds'])} cache" if r.get("fill_seconds") else ""
            cells.append(f"{r['family']} (trial {r['trial_number']}): {r['expected_score']:.3f}"
                         f"{spread}, {format_duration(r['expected_seconds'])}{fill}"
                         + ("*" if r["extrapolated"] else ""))
        out.append(f"| {n} | " + " | ".join(cells) + " |")
    out.append("")
    if analysis.get("rule_of_thumb"):
        out += ["**The rule of thumb, measured.** " + analysis["rule_of_thumb"], ""]
    return out


def _models(report: dict[str, Any]) -> list[str]:
    analysis = report.get("analysis") or {}
    out: list[str] = []
    cost = analysis.get("cost_model") or {}
    if cost.get("seconds_per_train_example"):
        err = cost.get("median_abs_relative_error")
        fill = cost.get("seconds_per_fill_example")
        out += ["### Cost model", "",
                f"Training seconds per example (one pass) on this machine, by family, fit to "
                f"{plural(cost['trials_used'], 'trial')}; evaluation "
                f"{1000 * cost['seconds_per_eval_example']:.2f} ms per validation example"
                + (f"; filling the frozen-prefix cache {1000 * fill:.2f} ms per example, once"
                   if fill else "") + ". "
                + ("Its error cannot be measured yet: no family has two trials." if err is None
                   else f"Median error predicting a trial's seconds from the other trials of its "
                   f"family (leave-one-out): {100 * err:.1f}%."), "",
                "| family | ms per example |", "|---|---|"]
        out += [f"| {fam} | {1000 * v:.2f} |" for fam, v in cost["seconds_per_train_example"].items()]
        out.append("")
    curves = [c for c in analysis.get("learning_curves", []) if len(c["points"]) > 1]
    if curves:
        forms = {"power": "a - b n^-c", "log": "a + b ln n"}
        out += ["### Learning curves", "",
                "Each family's curve follows one strategy: the mean score of its runs at each "
                "training size (runs in brackets), fit as a - b n^-c (with 2 sizes, a is the "
                "metric's best score; a + b ln n for a metric without a bound):", "",
                "| family | trial | points (n: score [runs]) | form | parameters |",
                "|---|---|---|---|---|"]
        out += [f"| {c['family']} | {c['trial']} | "
                + ", ".join(f"{p[0]}: {p[1]:.3f} [{p[2]}]" for p in c["points"])
                + f" | {forms.get(c['form'], c['form'])} | "
                + ", ".join(f"{v:.4g}" for v in c["params"]) + " |" for c in curves]
        out.append("")
    return out


def _data(report: dict[str, Any]) -> list[str]:
    data = report.get("data") or {}
    checks = data.get("checks") or {}
    column = "image" if data.get("modality") == "image" else "text"
    out = [
        f"- source: `{data.get('source')}`; {column} column `{data.get('text_column')}`"
        + (f", pair column `{data.get('text_pair_column')}`" if data.get("text_pair_column") else "")
        + f", label column `{data.get('label_column')}`",
        f"- task: {report.get('task', 'classification')}; "
        + (f"classes ({data.get('num_labels')}): "
           + ", ".join(f"{i} = {n}" for i, n in (data.get("id2label") or {}).items())
           if data.get("id2label") else "a numeric target"),
        f"- train: {data.get('train_size')} examples ("
        + ("per class" if isinstance(data.get("train_class_counts"), list) else "target")
        + f" {data.get('train_class_counts')})",
        f"- validation: {data.get('validation_size')} examples"
        + (" (a seeded stratified split of the training data, identical texts kept on one side)"
           if data.get("validation_source") == "split" else ""),
        f"- test: {data.get('test_size') if data.get('test_size') is not None else 'none'}",
    ]
    dropped = checks.get("blank_texts_dropped") or {}
    for role, rows in dropped.items():
        shown = ", ".join(str(r) for r in rows[:10]) + (" ..." if len(rows) > 10 else "")
        out.append(f"- {role}: {plural(len([r for r in rows if r != '...']), 'row')} with a blank "
                   f"text dropped (rows {shown})")
    if checks.get("train_duplicate_rows"):
        out.append(f"- {checks['train_duplicate_rows']} training rows repeat an earlier text")
    if checks.get("conflicting_label_texts"):
        out.append(f"- {checks['conflicting_label_texts']} training texts appear with different "
                   "labels")
    for role in ("validation", "test"):
        shared = checks.get(f"{role}_texts_in_train")
        if shared:
            out.append(f"- {shared} distinct {role} texts also occur in the training data")
    unknown = checks.get("unknown_token_rate")
    if unknown is not None:
        out.append(f"- {100 * unknown:.1f}% of the training tokens are unknown to the backbone's "
                   "tokenizer" + (" (it cannot read much of this text: use a backbone for its "
                                  "language)" if unknown > 0.05 else ""))
    return out + [""]


def _budget(report: dict[str, Any]) -> list[str]:
    bb = report.get("backbone") or {}
    params = bb.get("total_params")
    out = [f"- backbone: `{bb.get('name')}` ({bb.get('model_type')}, {bb.get('num_layers')} blocks"
           + (f", {params / 1e6:.1f}M parameters" if params else "") + ")"]
    budget = report.get("budget") or {}
    for i, run in enumerate(budget.get("runs", [])):
        who = f" ({run['worker']})" if run.get("worker") and "/worker-" in str(run["worker"]) else ""
        if run.get("ended") is None:
            out.append(f"- run {i + 1}{who}: started {run.get('started')} with budget "
                       f"{run.get('budget')}; it never finished (the process was killed or "
                       "crashed); its running trial was marked interrupted and retried")
            continue
        out.append(
            f"- run {i + 1}{who}: started {run.get('started')}, {format_duration(run.get('seconds'))} "
            f"of budget {run.get('budget')}; {plural(int(run.get('trials_run') or 0), 'trial')}; "
            f"ended because {run.get('stopped_because')}"
        )
    out.append(f"- wall time used by all runs: {format_duration(budget.get('seconds_used'))}; "
               f"in trials: {format_duration(budget.get('trial_seconds_total'))}")
    counts = report.get("trial_counts", {})
    shown = [f"{counts[s]} {STATUS_NAMES[s]}" for s in STATUS_NAMES if counts.get(s)]
    out += ["- trials: " + (", ".join(shown) if shown else "none"), ""]
    return out


def _trials(report: dict[str, Any]) -> list[str]:
    metric = report.get("metric")
    rows = [t for t in report["trials"] if t["status"] != "waiting"]
    waiting = len(report["trials"]) - len(rows)
    out = [f"Score is the best validation {metric} the trial reached (pruned trials and trials "
           "stopped by the budget stopped early). Seconds are training and evaluation, without a "
           "prefix-cache fill.", ""]
    if waiting:
        ended = (report.get("budget") or {}).get("last_run_ended") or "the run ended"
        out += [f"{plural(waiting, 'queued trial')} (follow-ups or retries) did not run ({ended}); "
                "they run first when the search is resumed.", ""]
    out += ["| # | status | frozen | lr | head lr | head | pooling | epochs | batch | score | "
            "seconds | trainable | note |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in rows:
        head = t["head"] or "-"
        if head == "mlp":
            head = f"mlp {t['head_depth']}x{t['head_width']}"
        if t.get("kind") not in (None, "freeze"):
            head = f"{t['kind']}; {head}"
        if t.get("loss"):
            head = f"{head}; {t['loss']} loss"
        pooling = t["pooling"] or "-"
        if t.get("pair_encoding") in ("separate", "cosine"):
            pooling = f"{pooling}, texts apart"
        if t.get("pair_encoding") == "cosine":
            head = "cosine"
        notes = []
        if t.get("baseline"):
            notes.append("baseline")
        if t.get("purpose") == "reseed":
            notes.append(f"re-seed of trial {t['reseed_of']}")
        elif t.get("purpose") == "learning_curve":
            notes.append(f"trial {t['curve_of']} on {t['train_size']} examples")
        if t.get("retry_of") is not None:
            notes.append(f"retry of trial {t['retry_of']}")
        if t.get("status") == "budget" and t.get("total_steps"):
            notes.append(f"stopped by the budget at step {t['steps']} of {t['total_steps']}")
        if t.get("fail_reason"):
            notes.append(str(t["fail_reason"]))
        note = "; ".join(notes)
        lr = t["learning_rate"]
        seconds = None if t.get("train_seconds") is None else (
            float(t["train_seconds"]) + float(t.get("eval_seconds") or 0.0))
        out.append(
            f"| {t['number']} | {STATUS_NAMES.get(t['status'], t['status'])} | "
            f"{_fmt(t['frozen_layers'])} | {_fmt(lr)} | {_fmt(t['head_learning_rate'])} | {head} | "
            f"{pooling} | {_fmt(t['epochs'])} | {_fmt(t['batch_size'])} | "
            f"{_fmt(t['score'])} | {_fmt(seconds, 0)} | {_fmt(t['trainable_params'])} | "
            f"{note.replace('|', '/').replace(chr(10), ' ')} |"
        )
    return out + [""]


def sections(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The report's sections as ``(key, title, markdown body)``, in order: ``recommendation``,
    ``table``, ``models``, ``task``, ``data``, ``budget``, ``trials`` (empty ones left out)."""
    parts = [
        ("recommendation", "Recommendation", _recommendation(report)),
        ("table", "Strategy by dataset size and budget", _table(report)),
        ("models", "Cost model and learning curves", _models(report)),
        ("task", "Predictions of the recommendation", _task_view(report)),
        ("data", "Data", _data(report)),
        ("budget", "Backbone and budget", _budget(report)),
        ("trials", "Trials", _trials(report)),
    ]
    return [(key, title, "\n".join(body)) for key, title, body in parts if body]


def render_markdown(report: dict[str, Any]) -> str:
    """The Markdown text of a report built by :func:`autoft.report.build_report`."""
    out = ["# autoft report", ""]
    for _, title, body in sections(report):
        out += [f"## {title}", "", body]
    return "\n".join(out)
