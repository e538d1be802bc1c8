"""Collecting everything a report shows into one JSON-serialisable dict, from the study alone.

The search stores the data summary, backbone, space and settings as study attributes and each
trial's measurements as trial attributes, so ``autoft report DIR`` rebuilds the same report from
the study file alone, without the data or the model.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import optuna

from autoft.analysis import Recommendation, analyse
from autoft.budget import format_duration
from autoft.study.info import stored_info
from autoft.study.records import STATUSES, StudyAttr, TrialRecord, table_rows, trial_records
from autoft.study.status import study_runs
from autoft.tasks import LabelInfo, task_kind

__all__ = ["build_report", "snippet"]

#: Fewer finished trials than this make the report provisional.
FEW_TRIALS = 6


def _clean(value: Any) -> Any:
    """Make a value JSON-safe (NaN and infinities become None)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def snippet(info: dict[str, Any], rec: Recommendation, seed: int) -> str:
    """Python code that reproduces the recommended fine-tune with :func:`autoft.fine_tune`.

    Args:
        info: The study's ``autoft`` attribute.
        rec: The recommendation.
        seed: The training seed of the recommended trial.
    """
    paths = info.get("data_paths", {})
    data = paths.get("data")
    summary = info.get("data", {})
    lines = ["import autoft", "",
             f"strategy = autoft.Strategy.from_dict({rec.strategy.to_dict()!r})",
             "result = autoft.fine_tune("]
    lines.append(f"    {data!r}," if data else "    data,  # the training data of this study")
    lines.append("    strategy,")
    lines.append(f"    model={info.get('backbone')!r},")
    for key in ("validation", "test"):
        if paths.get(key):
            lines.append(f"    {key}={paths[key]!r},")
    lines.append(f"    text_column={summary.get('text_column')!r},")
    if summary.get("text_pair_column"):
        lines.append(f"    text_pair_column={summary.get('text_pair_column')!r},")
    lines.append(f"    label_column={summary.get('label_column')!r},")
    lines.append(f"    task={info.get('task', 'classification')!r},")
    if info.get("encoding", "utf-8") != "utf-8":
        lines.append(f"    encoding={info['encoding']!r},")
    if not paths.get("validation") and info.get("validation_size") is not None:
        lines.append(f"    validation_size={info['validation_size']!r},")
        lines.append(f"    split_seed={info.get('seed', 0)!r},")
    lines.append(f"    metric={info.get('metric', 'accuracy')!r},")
    lines.append(f"    max_length={info.get('max_length', 128)!r},")
    lines.append(f"    evals_per_epoch={info.get('evals_per_epoch', 2)!r},")
    lines.append(f"    seed={seed!r},")
    lines.append(")")
    lines.append(f"print(result.validation_score)  # this trial scored {rec_score(rec):.4f}")
    return "\n".join(lines)


def rec_score(rec: Recommendation) -> float:
    """The score of the recommended trial's own run (the first of its seeds)."""
    first = next((g for g in rec.groups if g["trial_number"] == rec.trial_number), None)
    return float(first["scores"][0]) if first else rec.score


def _provisional(records: list[TrialRecord], rec: Recommendation | None, info: dict[str, Any],
                 analysis: dict[str, Any], stopped: str) -> str:
    """One paragraph when the budget allowed too little for a sound answer ("" otherwise)."""
    finished = [r for r in records if r.finished]
    if rec is not None and rec.confirmed and len(finished) >= FEW_TRIALS:
        return ""
    seeds = int(info.get("seeds", 3))
    costs = [float(r.cost_seconds or 0.0) for r in records if r.cost_seconds]
    typical = statistics.median(costs) if costs else None
    parts = [f"**Provisional:** {len(finished)} trial{'s' if len(finished) != 1 else ''} "
             "trained to the end"]
    if rec is not None and not rec.confirmed:
        parts.append(f"and the recommendation has {rec.seeds} of the {seeds} runs asked for")
    text = " ".join(parts) + (f" ({stopped})." if stopped else ".")
    need = analysis.get("budget_to_finish")
    if not finished and need:
        text += (f" No trial finished: the cheapest one stopped by the budget needed about "
                 f"{need:.0f} s to finish; give a budget of at least "
                 f"{format_duration(max(60.0, 1.5 * need))}, or resume this search with more.")
    elif typical:
        base = sum(float(r.cost_seconds or 0.0) for r in records if r.baseline and r.finished)
        need = base + (seeds - 1) * (rec.seconds if rec else typical) + FEW_TRIALS * typical
        text += (f" A budget of about {format_duration(max(60.0, need))} would let the baselines, "
                 f"{FEW_TRIALS} more trials and the re-seeds of the leader finish here; run the "
                 "same command again with --budget to resume (finished trials are kept).")
    return text


def task_view(records: list[TrialRecord], rec: Recommendation | None,
              info: dict[str, Any]) -> dict[str, Any] | None:
    """The task kind's own view of the recommended strategy (:meth:`autoft.tasks.TaskKind.view`)
    from the stored details of its full-size runs (one per seed): per-class precision, recall, F1
    and the summed confusion matrix, or residuals and scatter points. None without a
    recommendation or details (studies of autoft before 0.3)."""
    if rec is None:
        return None
    chosen = next((r for r in records if r.number == rec.trial_number), None)
    if chosen is None:
        return None
    runs = [r.details for r in records
            if r.finished and not r.is_probe and r.key == chosen.key and r.details]
    data = info.get("data") or {}
    labels = LabelInfo(
        id2label={int(k): str(v) for k, v in (data.get("id2label") or {}).items()} or None,
        label_type=str(data.get("label_type", "str")))
    return task_kind(str(info.get("task", "classification"))).view(runs, labels)


def build_report(study: optuna.Study) -> dict[str, Any]:
    """Collect everything the report shows into one JSON-serialisable dict.

    Raises:
        StudyError: The study was not made by ``autoft search`` (it lacks autoft's attributes).
    """
    info = dict(stored_info(study))
    settings = study.user_attrs.get(StudyAttr.FOLLOWUPS) or {}
    info.setdefault("seeds", settings.get("seeds", 3))
    records = trial_records(study.get_trials(deepcopy=False))
    analysis = analyse(records, info)
    rec: Recommendation | None = analysis.pop("recommendation")
    runs = study_runs(study)
    counts = {status: sum(1 for r in records if r.status == status) for status in STATUSES}
    last = runs[-1] if runs else {}
    stopped = "" if not last else (
        "the run was interrupted" if last.get("ended") is None or "interrupted" in str(
            last.get("stopped_because")) else f"the run ended because {last.get('stopped_because')}")
    seed = None
    if rec is not None:
        seed = next((r.seed for r in records if r.number == rec.trial_number), None)
    report = {
        "analysis": analysis,
        "autoft_version": info.get("version"),
        "study_name": study.study_name,
        "task": info.get("task", "classification"),
        "metric": info.get("metric"),
        "direction": info.get("direction", "maximize"),
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
        "settings": {k: info.get(k) for k in ("seed", "max_length", "evals_per_epoch", "pruner",
                                              "sampler", "seeds", "storage")},
        "budget": {
            "runs": runs,
            "seconds_used": sum(float(r.get("seconds") or 0.0) for r in runs
                                if "/worker-" not in str(r.get("worker", ""))),
            "trial_seconds_total": sum(float(r.seconds or 0.0) for r in records),
            "last_run_ended": stopped,
        },
        "trial_counts": counts,
        "trials": table_rows(records, int(info.get("num_layers") or 0) or None),
        "recommendation": None if rec is None else rec.to_dict(),
        "task_view": task_view(records, rec, info),
        "provisional": _provisional(records, rec, info, analysis, stopped),
        "followups_scaled": settings.get("scaled_from"),
        "refit": study.user_attrs.get(StudyAttr.REFIT),
        "snippet": None if rec is None else snippet(info, rec, int(seed or info.get("seed", 0))),
    }
    return _clean(report)
