"""Writing a study's report files: ``report.json``, ``report.md``, ``trials.csv``, ``report.html``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import optuna

from autoft.report.build import build_report
from autoft.report.markdown import render_markdown

__all__ = ["INT_COLUMNS", "write_report"]

logger = logging.getLogger(__name__)

#: Columns of ``trials.csv`` that hold whole numbers (written without a decimal point).
INT_COLUMNS = ("number", "frozen_layers", "head_width", "head_depth", "epochs", "batch_size",
               "trainable_params", "total_params", "examples_trained", "steps", "total_steps",
               "train_size", "seed", "reseed_of", "curve_of", "retry_of", "cache_examples",
               "evaluations")


def write_report(study: optuna.Study, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.json``, ``report.md``, ``trials.csv`` (trials that ran; queued ones left out)
    and ``report.html`` into ``out_dir``; each file is replaced atomically, and the HTML report
    (plots) never costs the others.

    Returns:
        The written paths by kind (``"json"``, ``"markdown"``, ``"csv"``, ``"html"``).

    Raises:
        StudyError: The study was not made by ``autoft search``.
    """
    import pandas as pd

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = build_report(study)
    from autoft.report.images import GRID_FILE

    if (out / GRID_FILE).is_file():  # drawn by the search for image classification
        report["misclassified_grid"] = GRID_FILE
    paths = {"json": out / "report.json", "markdown": out / "report.md", "csv": out / "trials.csv"}
    tmp = {k: p.with_suffix(p.suffix + ".tmp") for k, p in paths.items()}
    tmp["json"].write_text(json.dumps(report, indent=2) + "\n")
    tmp["markdown"].write_text(render_markdown(report))
    frame = pd.DataFrame([t for t in report["trials"] if t["status"] != "waiting"])
    for column in INT_COLUMNS:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    for column in ("scores", "examples_at_eval"):
        if column in frame:
            frame[column] = frame[column].map(lambda v: " ".join(f"{x:g}" for x in v or []))
    frame.to_csv(tmp["csv"], index=False)
    for key, path in paths.items():
        tmp[key].replace(path)  # atomic: a crash never leaves half a report
    try:
        from autoft.report.html import write_html

        paths["html"] = write_html(study, out / "report.html", report)
    except Exception:  # the plots are a bonus: never lose the text report over them
        logger.warning("the HTML report could not be written", exc_info=True)
    return paths
