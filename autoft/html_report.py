"""The self-contained HTML report: the Markdown report's content plus interactive plots.

Plots are Plotly figures (Optuna's ``optuna.visualization`` where it has one). plotly.js is inlined
once, so the file works offline: no external scripts or fonts.
"""

from __future__ import annotations

import html
import logging
import math
from pathlib import Path
from typing import Any

import optuna

from autoft.report import build_report, render_markdown

__all__ = ["PLOT_TITLES", "figures", "render_html", "write_html"]

logger = logging.getLogger(__name__)

#: The plots, in report order, by key.
PLOT_TITLES = {
    "history": "Optimization history",
    "intermediate": "Validation score at each evaluation (pruned trials included)",
    "frozen_layers": "Score by frozen_layers",
    "learning_rate": "Learning rate vs score",
    "importances": "Parameter importances",
    "pareto": "Pareto front: score vs training cost",
    "learning_curves": "Training progress: validation score vs training examples seen",
    "size_curves": "Learning curves: validation score vs training-set size",
}


def _scored(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in report["trials"] if t.get("score") is not None
            and t["state"] in ("COMPLETE", "PRUNED")]


def _pareto(points: list[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
    """Points (cost, score, number) not dominated by a cheaper-and-better one, by cost."""
    front: list[tuple[float, float, int]] = []
    best = -math.inf
    for cost, score, number in sorted(points, key=lambda p: (p[0], -p[1])):
        if score > best:
            front.append((cost, score, number))
            best = score
    return front


def figures(study: optuna.Study, report: dict[str, Any]) -> dict[str, Any]:
    """The report's Plotly figures by key (see :data:`PLOT_TITLES`); a plot whose data are
    missing (e.g. importances before 2 completed trials) is left out."""
    import plotly.graph_objects as go
    from optuna import visualization as vis

    metric = report.get("metric") or "score"
    out: dict[str, Any] = {}
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    try:
        out["history"] = vis.plot_optimization_history(study, target_name=metric)
        out["intermediate"] = vis.plot_intermediate_values(study)
    except (ValueError, RuntimeError) as exc:
        logger.info("history plots skipped: %s", exc)
    scored = _scored(report)
    states = {"COMPLETE": "#1f77b4", "PRUNED": "#ff7f0e"}
    if scored:
        fig = go.Figure()
        for state, color in states.items():
            group = [t for t in scored if t["state"] == state]
            fig.add_trace(go.Scatter(
                x=[t["frozen_layers"] for t in group], y=[t["score"] for t in group],
                mode="markers", name=state.lower(), marker={"color": color, "size": 10},
                text=[f"trial {t['number']}: {t['description']}" for t in group],
            ))
        fig.update_layout(xaxis_title="frozen_layers (0 = full fine-tuning)", yaxis_title=metric)
        out["frozen_layers"] = fig
        with_lr = [t for t in scored if t["frozen_layers"] != report["backbone"]["num_layers"]]
        fig = go.Figure(go.Scatter(
            x=[t["learning_rate"] for t in with_lr], y=[t["score"] for t in with_lr],
            mode="markers", marker={"color": [t["frozen_layers"] for t in with_lr], "size": 10,
                                    "colorscale": "Viridis", "showscale": True,
                                    "colorbar": {"title": "frozen"}},
            text=[f"trial {t['number']} ({t['state'].lower()})" for t in with_lr],
        ))
        fig.update_layout(xaxis_type="log", xaxis_title="backbone learning_rate",
                          yaxis_title=metric)
        out["learning_rate"] = fig
    if len(done) >= 2:
        try:
            out["importances"] = vis.plot_param_importances(study)
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            logger.info("importances skipped: %s", exc)
    complete = [t for t in scored if t["state"] == "COMPLETE" and t.get("seconds")]
    if complete:
        points = [(float(t["seconds"]), float(t["score"]), int(t["number"])) for t in complete]
        front = _pareto(points)
        fig = go.Figure()
        fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points],
                                 mode="markers", name="trials", marker={"size": 9},
                                 text=[f"trial {p[2]}" for p in points]))
        fig.add_trace(go.Scatter(x=[p[0] for p in front], y=[p[1] for p in front],
                                 mode="lines+markers", name="Pareto front",
                                 line={"shape": "hv"}, marker={"size": 11},
                                 text=[f"trial {p[2]}" for p in front]))
        fig.update_layout(xaxis_title="training cost (wall seconds of the trial)",
                          yaxis_title=metric)
        out["pareto"] = fig
    curves: dict[int, tuple[list[int], list[float], float, int]] = {}
    for trial in study.get_trials(deepcopy=False):
        k = trial.user_attrs.get("strategy", {}).get("frozen_layers")
        xs, ys = trial.user_attrs.get("examples_at_eval"), trial.user_attrs.get("scores")
        best = trial.user_attrs.get("best_score")
        if k is None or not xs or not ys or best is None:
            continue
        if k not in curves or best > curves[k][2]:
            curves[k] = (xs, ys, best, trial.number)
    if curves:
        fig = go.Figure()
        for k in sorted(curves):
            xs, ys, _, number = curves[k]
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers",
                                     name=f"frozen {k} (trial {number})"))
        fig.update_layout(xaxis_title="training examples seen", yaxis_title=metric)
        out["learning_curves"] = fig
    size_curves = [c for c in (report.get("analysis") or {}).get("learning_curves", [])
                   if len(c["points"]) > 1]
    if size_curves:
        fig = go.Figure()
        for c in size_curves:
            ns = [p[0] for p in c["points"]]
            grid = [min(ns) * (4 * max(ns) / min(ns)) ** (i / 40) for i in range(41)]
            fig.add_trace(go.Scatter(x=ns, y=[p[1] for p in c["points"]], mode="markers",
                                     name=f"{c['family']} measured", marker={"size": 10}))
            fig.add_trace(go.Scatter(
                x=grid, y=[min(1.0, max(0.0, c["intercept"] + c["slope"] * math.log(n)))
                           for n in grid],
                mode="lines", name=f"{c['family']} fit", line={"dash": "dot"}))
        fig.update_layout(xaxis_type="log", xaxis_title="training examples", yaxis_title=metric)
        out["size_curves"] = fig
    for key, fig in out.items():
        fig.update_layout(title=PLOT_TITLES[key], height=420, margin={"t": 60, "b": 50})
    return out


_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #333; } h2 { margin-top: 2rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85rem; } td, th { border: 1px solid #ccc;
padding: 2px 6px; text-align: right; } th { background: #f0f0f0; }
pre { background: #f6f6f6; padding: 0.8rem; overflow-x: auto; font-size: 0.85rem; }
.plot { margin: 1rem 0 2rem 0; border: 1px solid #eee; }
.rec { background: #eef6ee; border-left: 4px solid #3a3; padding: 0.6rem 1rem; }
"""


def _markdown_to_html(text: str) -> str:
    """A small Markdown subset (headings, lists, tables, code blocks, bold, code) to HTML."""
    import re

    def inline(s: str) -> str:
        s = html.escape(s)
        s = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", s)
        return re.sub(r"`([^`]+)`", r"<code>\1</code>", s)

    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            j = i + 1
            block = []
            while j < len(lines) and not lines[j].startswith("```"):
                block.append(lines[j])
                j += 1
            out.append("<pre><code>" + html.escape("\n".join(block)) + "</code></pre>")
            i = j + 1
            continue
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{inline(line[level:].strip())}</h{level}>")
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(set(c) <= {"-", ":"} for c in cells):
                    rows.append(cells)
                i += 1
            head, *body = rows
            out.append("<table><tr>" + "".join(f"<th>{inline(c)}</th>" for c in head) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>"
                                 for r in body) + "</table>")
            continue
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{inline(lines[i][2:])}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
            continue
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
        i += 1
    return "\n".join(out)


def render_html(study: optuna.Study, report: dict[str, Any] | None = None) -> str:
    """The report as one self-contained HTML page (plotly.js inlined once)."""
    report = report or build_report(study)
    body = _markdown_to_html(render_markdown(report))
    body = body.replace("<h2>Recommendation</h2>", "<h2>Recommendation</h2><div class='rec'>", 1)
    body = body.replace("<h2>Data</h2>", "</div><h2>Plots</h2>{PLOTS}<h2>Data</h2>", 1)
    plots = []
    for n, (key, fig) in enumerate(figures(study, report).items()):
        snippet = fig.to_html(full_html=False, include_plotlyjs=(n == 0), div_id=f"plot-{key}",
                              config={"displaylogo": False})
        plots.append(f"<div class='plot' data-plot='{key}'>{snippet}</div>")
    body = body.replace("{PLOTS}", "\n".join(plots) if plots else "<p>No trial to plot yet.</p>")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>autoft report: "
            f"{html.escape(report['study_name'])}</title><style>{_STYLE}</style></head>"
            f"<body>{body}</body></html>")


def write_html(study: optuna.Study, path: str | Path, report: dict[str, Any] | None = None) -> Path:
    """Write :func:`render_html` to ``path`` (atomically) and return it."""
    path = Path(path)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render_html(study, report), encoding="utf-8")
    tmp.replace(path)
    return path
