"""The self-contained HTML report: the Markdown report's sections plus interactive plots.

The sections are rendered with markdown-it-py (CommonMark with tables); plots are Plotly figures
(Optuna's ``optuna.visualization`` where it has one) inserted after the recommendation. plotly.js
is inlined once, so the file works offline: no external scripts or fonts.
"""

from __future__ import annotations

import html
import logging
import warnings
from pathlib import Path
from typing import Any

import optuna

from autoft.report.build import build_report
from autoft.report.markdown import sections

__all__ = ["MIN_TRIALS_FOR_IMPORTANCES", "PLOT_TITLES", "figures", "render_html", "write_html"]

logger = logging.getLogger(__name__)

#: The plots, in report order, by key.
PLOT_TITLES = {
    "history": "Optimization history",
    "intermediate": "Validation score at each evaluation (pruned trials included)",
    "frozen_layers": "Score by frozen_layers",
    "learning_rate": "Learning rate vs score",
    "importances": "Parameter importances",
    "pareto": "Pareto front: mean score vs training cost",
    "training_progress": "Training progress: validation score vs training examples seen",
    "size_curves": "Learning curves: validation score vs training-set size (80% interval)",
    "predictions": "The recommendation on validation: predicted vs true value",
    "confusion": "The recommendation on validation: confusion matrix (summed over its runs)",
}
#: Parameter importances are computed only from this many trials that finished training.
MIN_TRIALS_FOR_IMPORTANCES = 10


def _scored(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in report["trials"] if t.get("score") is not None
            and t["status"] in ("complete", "pruned", "budget")]


def figures(study: optuna.Study, report: dict[str, Any]) -> dict[str, Any]:
    """The report's Plotly figures by key (see :data:`PLOT_TITLES`); a plot whose data are too
    few (e.g. importances before :data:`MIN_TRIALS_FOR_IMPORTANCES` finished trials, or a
    scatter of a single trial) is left out."""
    import plotly.graph_objects as go
    from optuna import visualization as vis

    metric = report.get("metric") or "score"
    out: dict[str, Any] = {}
    scored = _scored(report)
    finished = [t for t in scored if t["status"] == "complete"]
    with warnings.catch_warnings():  # library warnings belong in the log, not the output
        warnings.simplefilter("ignore")
        if len(scored) >= 2:
            try:
                out["history"] = vis.plot_optimization_history(study, target_name=metric)
                out["intermediate"] = vis.plot_intermediate_values(study)
            except (ValueError, RuntimeError) as exc:
                logger.info("history plots skipped: %s", exc)
        if len(finished) >= MIN_TRIALS_FOR_IMPORTANCES:
            try:
                out["importances"] = vis.plot_param_importances(study)
            except (ValueError, RuntimeError, ZeroDivisionError) as exc:
                logger.info("importances skipped: %s", exc)
    colors = {"complete": "#1f77b4", "pruned": "#ff7f0e", "budget": "#999999"}
    if len(scored) >= 2:
        fig = go.Figure()
        for status, color in colors.items():
            group = [t for t in scored if t["status"] == status]
            fig.add_trace(go.Scatter(
                x=[t["frozen_layers"] for t in group], y=[t["score"] for t in group],
                mode="markers", name=status, marker={"color": color, "size": 10},
                text=[f"trial {t['number']}: {t['description']}" for t in group],
            ))
        fig.update_layout(xaxis_title="frozen_layers (0 = full fine-tuning)", yaxis_title=metric)
        out["frozen_layers"] = fig
        with_lr = [t for t in scored if t["learning_rate"] is not None]
        if len(with_lr) >= 2:
            fig = go.Figure(go.Scatter(
                x=[t["learning_rate"] for t in with_lr], y=[t["score"] for t in with_lr],
                mode="markers", marker={"color": [t["frozen_layers"] for t in with_lr], "size": 10,
                                        "colorscale": "Viridis", "showscale": True,
                                        "colorbar": {"title": "frozen"}},
                text=[f"trial {t['number']} ({t['status']})" for t in with_lr],
            ))
            fig.update_layout(xaxis_type="log", xaxis_title="backbone learning_rate",
                              yaxis_title=metric)
            out["learning_rate"] = fig
    rec = report.get("recommendation") or {}
    groups = rec.get("groups") or []
    front = set((report.get("analysis") or {}).get("pareto_front") or [])
    if len(groups) >= 2:
        on = sorted((g for g in groups if g["trial_number"] in front), key=lambda g: g["seconds"])
        fig = go.Figure()
        fig.add_trace(go.Scatter(
            x=[g["seconds"] for g in groups], y=[g["mean"] for g in groups], mode="markers",
            name="strategies", marker={"size": [8 + 3 * g["n"] for g in groups]},
            text=[f"trial {g['trial_number']} ({g['n']} runs): {g['description']}"
                  for g in groups]))
        fig.add_trace(go.Scatter(
            x=[g["seconds"] for g in on], y=[g["mean"] for g in on], mode="lines+markers",
            name="Pareto front", line={"shape": "hv"}, marker={"size": 11},
            text=[f"trial {g['trial_number']}" for g in on]))
        fig.update_layout(xaxis_title="seconds of one fine-tune (training and evaluation)",
                          yaxis_title=f"mean {metric} over seeds")
        out["pareto"] = fig
    progress: dict[Any, dict[str, Any]] = {}
    sign = -1.0 if report.get("direction") == "minimize" else 1.0
    for t in scored:
        if len(t.get("examples_at_eval") or ()) < 2 or not t.get("scores"):
            continue  # one evaluation is a single point: no curve to draw
        k = t["frozen_layers"]
        if k not in progress or sign * t["score"] > sign * progress[k]["score"]:
            progress[k] = t
    if progress:
        fig = go.Figure()
        for k in sorted(progress, key=lambda v: (v is None, v)):
            t = progress[k]
            fig.add_trace(go.Scatter(x=t["examples_at_eval"], y=t["scores"], mode="lines+markers",
                                     name=f"frozen {k} (trial {t['number']})"))
        fig.update_layout(xaxis_title="training examples seen", yaxis_title=metric)
        out["training_progress"] = fig
    size_curves = [c for c in (report.get("analysis") or {}).get("learning_curves", [])
                   if len(c["points"]) > 1 and c.get("grid")]
    if size_curves:
        fig = go.Figure()
        for c in size_curves:
            grid = [g for g in c["grid"] if g[1] is not None]
            band = [g for g in grid if g[2] is not None]
            if band:
                fig.add_trace(go.Scatter(
                    x=[g[0] for g in band] + [g[0] for g in reversed(band)],
                    y=[g[3] for g in band] + [g[2] for g in reversed(band)],
                    fill="toself", opacity=0.2, line={"width": 0}, showlegend=False,
                    name=f"{c['family']} 80% interval", hoverinfo="skip"))
            fig.add_trace(go.Scatter(x=[g[0] for g in grid], y=[g[1] for g in grid],
                                     mode="lines", name=f"{c['family']} fit",
                                     line={"dash": "dot"}))
            fig.add_trace(go.Scatter(
                x=[p[0] for p in c["points"]], y=[p[1] for p in c["points"]],
                error_y={"type": "data", "array": [p[3] for p in c["points"]]},
                mode="markers", name=f"{c['family']} measured (mean)", marker={"size": 10}))
        fig.update_layout(xaxis_type="log", xaxis_title="training examples", yaxis_title=metric)
        out["size_curves"] = fig
    view = report.get("task_view") or {}
    if view.get("type") == "regression" and view.get("points"):
        true, predicted = zip(*view["points"])
        low, high = min(min(true), min(predicted)), max(max(true), max(predicted))
        fig = go.Figure()
        fig.add_trace(go.Scatter(x=list(true), y=list(predicted), mode="markers",
                                 name="validation examples", marker={"size": 6, "opacity": 0.6}))
        fig.add_trace(go.Scatter(x=[low, high], y=[low, high], mode="lines", name="predicted = true",
                                 line={"dash": "dot", "color": "#888"}))
        fig.update_layout(xaxis_title="true value", yaxis_title="predicted value")
        out["predictions"] = fig
    elif view.get("type") == "classification" and view.get("confusion"):
        names = [str(n) for n in view["labels"]]
        fig = go.Figure(go.Heatmap(z=view["confusion"], x=names, y=names, colorscale="Blues",
                                   text=view["confusion"], texttemplate="%{text}"))
        fig.update_layout(xaxis_title="predicted class", yaxis_title="true class",
                          yaxis_autorange="reversed")
        out["confusion"] = fig
    for key, fig in out.items():
        fig.update_layout(title=PLOT_TITLES[key], height=420, margin={"t": 60, "b": 50})
    return out


_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #222; line-height: 1.45; padding: 0 1rem; }
h1 { border-bottom: 2px solid #333; } h2 { margin-top: 2rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85rem; } td, th { border: 1px solid #ccc;
padding: 2px 6px; text-align: right; } th { background: #f0f0f0; }
pre { background: #f6f6f6; padding: 0.8rem; white-space: pre-wrap; word-break: break-all;
      font-size: 0.85rem; }
.plot { margin: 1rem 0 2rem 0; border: 1px solid #eee; }
.rec { background: #eef6ee; border-left: 4px solid #3a3; padding: 0.6rem 1rem; }
"""


def render_html(study: optuna.Study, report: dict[str, Any] | None = None) -> str:
    """The report as one self-contained HTML page (plotly.js inlined once)."""
    from markdown_it import MarkdownIt

    report = report or build_report(study)
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    body = ["<h1>autoft report</h1>"]
    for key, title, text in sections(report):
        inner = md.render(text)
        if key == "recommendation":
            inner = f"<div class='rec'>{inner}</div>"
        body.append(f"<h2 id='{key}'>{html.escape(title)}</h2>{inner}")
        if key == "recommendation":
            plots = []
            for n, (plot, fig) in enumerate(figures(study, report).items()):
                div = fig.to_html(full_html=False, include_plotlyjs=(n == 0),
                                  div_id=f"plot-{plot}", config={"displaylogo": False})
                plots.append(f"<div class='plot' data-plot='{plot}'>{div}</div>")
            body.append("<h2 id='plots'>Plots</h2>"
                        + ("\n".join(plots) if plots else "<p>Too few trials to plot yet.</p>"))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>autoft report: "
            f"{html.escape(report['study_name'])}</title><style>{_STYLE}</style></head>"
            f"<body>{''.join(body)}</body></html>")


def write_html(study: optuna.Study, path: str | Path, report: dict[str, Any] | None = None) -> Path:
    """Write :func:`render_html` to ``path`` (atomically) and return it."""
    path = Path(path)
    text = render_html(study, report)
    grid = (report or {}).get("misclassified_grid")
    if grid and (path.parent / grid).is_file():  # inlined: the page stays self-contained
        import base64

        data = base64.b64encode((path.parent / grid).read_bytes()).decode()
        text = text.replace(f'src="{grid}"', f'src="data:image/png;base64,{data}"')
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
