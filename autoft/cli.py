"""The ``autoft`` command: ``search``, ``report``, ``refit``, ``status`` and ``worker``.

The CLI owns the terminal: a live progress line while a search runs (trials done, best so far, the
running trial, time left), a line per finished trial and a summary at the end. The library only
logs; library warnings (Optuna's, transformers') go to the log, shown with ``-v``. torch and
transformers are imported only by the commands that train, so ``autoft --help``, ``--version``
and ``autoft status`` answer at once.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from autoft._version import __version__

if TYPE_CHECKING:
    from autoft.study.records import TrialRecord

__all__ = ["main"]

_STATUS_WORDS = {"complete": "complete", "pruned": "pruned", "budget": "stopped by budget",
                 "diverged": "diverged", "skipped": "skipped", "failed": "failed",
                 "interrupted": "interrupted"}


class _Display:
    """Live progress of a search on the terminal (a ``ProgressHook`` rendered with rich)."""

    def __init__(self, console: Any, live: bool = True, backbones: bool = False) -> None:
        from rich.live import Live

        self.console = console
        self.backbones = backbones  # several backbones: each search announced, lines tagged
        self.tag = ""
        self.info: dict[str, Any] = {}
        self.done = self.pruned = self.failed = 0
        self.best: float | None = None
        self.current = ""
        self.live = Live(self, console=console, refresh_per_second=2, transient=True) \
            if live else None

    def __rich__(self) -> str:
        parts = [f"[bold]trials[/] {self.done} done ({self.pruned} stopped early, "
                 f"{self.failed} failed)"]
        target = self.info.get("n_trials")
        if target:
            parts[0] += f" of {target}"
        best = "-" if self.best is None else f"{self.best:.4f}"
        parts.append(f"[bold]best {self.info.get('metric', '')}[/] {best}")
        if self.current:
            parts.append(self.current)
        deadline = self.info.get("deadline")
        if deadline is not None:
            from autoft.budget import format_duration

            parts.append(f"[bold]left[/] {format_duration(max(0.0, deadline - time.monotonic()))}")
        return " | ".join(parts)

    # ProgressHook methods
    def on_search_start(self, info: dict[str, Any]) -> None:
        self.info = info
        self.done = info.get("finished", 0)
        self.pruned = info.get("pruned", 0)
        self.failed = info.get("failed", 0)
        self.best = info.get("best")
        if self.backbones:
            from autoft.searching.backbones import backbone_slug

            self.tag = f"{backbone_slug(str(info.get('backbone', '')))}: "
            self.console.print(f"backbone {info.get('backbone')}", highlight=False,
                               soft_wrap=True, markup=False)
        if self.live is not None:
            self.live.start()

    def on_trial_start(self, number: int, strategy: Any) -> None:
        self.current = f"{self.tag}trial {number}: frozen {strategy.frozen_layers}, training"

    def on_evaluation(self, number: int, index: int, score: float) -> None:
        self.current = f"{self.tag}trial {number}: eval {index} = {score:.4f}"

    def on_trial_end(self, record: TrialRecord) -> None:
        if record.status == "skipped":
            what = "skipped"
        else:
            self.done += 1
            if record.status in ("pruned", "budget", "diverged"):
                self.pruned += 1
            elif record.status == "failed":
                self.failed += 1
            elif record.status == "complete" and record.score is not None:
                sign = -1 if self.info.get("direction") == "minimize" else 1
                if self.best is None or sign * record.score > sign * self.best:
                    self.best = record.score
            what = _STATUS_WORDS.get(record.status, record.status)
        shown = "-" if record.score is None else f"{record.score:.4f}"
        took = "" if record.seconds is None else f" in {record.seconds:.0f}s"
        notes = []
        if record.baseline:
            notes.append("baseline")
        if record.purpose == "reseed":
            notes.append(f"re-seed of trial {record.reseed_of}")
        elif record.purpose == "learning_curve":
            notes.append(f"on {record.train_size} examples")
        if record.status in ("failed", "diverged", "skipped") and record.fail_reason:
            notes.append(str(record.fail_reason))
        note = f" [{'; '.join(notes)}]" if notes else ""
        self.console.print(
            f"{self.tag}trial {record.number:>3} {what:<17} score {shown}{took}{note}  "
            f"{record.description or ''}", highlight=False, soft_wrap=True, markup=False)
        self.current = ""

    def on_search_end(self, stopped_because: str) -> None:
        if self.live is not None:
            self.live.stop()
        if stopped_because and "interrupted" not in stopped_because:
            self.console.print(f"search stopped: {stopped_because}", highlight=False,
                               markup=False)


def _print_summary(console: Any, report: dict[str, Any], out_dir: Path, paths: dict[str, Path],
                   study_file: str | None) -> None:
    from autoft.report.markdown import STATUS_NAMES

    rec = report.get("recommendation")
    counts = report.get("trial_counts", {})
    shown = [f"{counts[s]} {STATUS_NAMES[s]}" for s in STATUS_NAMES
             if counts.get(s) and s != "waiting"]
    console.print("\n" + (", ".join(shown) if shown else "no") + " trials.", highlight=False)
    if report.get("provisional"):
        console.print(report["provisional"].replace("**", ""), highlight=False, markup=False)
    if rec is None:
        console.print("No trial trained to the end: nothing to recommend. Run longer to resume.")
    else:
        trial = next(t for t in report["trials"] if t["number"] == rec["trial_number"])
        seeds = f"mean of {rec['seeds']} seeds" if rec["seeds"] > 1 else "a single run"
        console.print(
            f"[bold]Recommended:[/] {trial['description']}\n"
            f"  validation {report.get('metric')} {rec['score']:.4f} ({seeds}), "
            f"{rec['seconds']:.0f} s to train (trial {rec['trial_number']})", highlight=False)
    report_file = paths.get("html") or paths.get("markdown") or out_dir / "report.md"
    console.print(f"Report: {report_file}  (also {paths.get('markdown', out_dir / 'report.md')})"
                  + (f"\nStudy: {study_file}" if study_file else ""), highlight=False,
                  markup=False, soft_wrap=True)


def _write_reports(out_dir: Path, study_name: str | None, storage: str | None) -> dict[str, Path]:
    """Rewrite the report of OUT_DIR; for a multi-backbone search, every backbone's report and
    the comparison (whose paths are returned)."""
    from autoft.report import write_report
    from autoft.searching.backbones import write_backbone_report
    from autoft.study import BACKBONES_FILE, load_study

    if (out_dir / BACKBONES_FILE).is_file():
        return write_backbone_report(out_dir, storage, backbone_reports=True)
    return write_report(load_study(None if storage else out_dir, study_name, storage), out_dir)


def _print_backbones(console: Any, out_dir: Path) -> None:
    import json

    from autoft.budget import plural

    report = json.loads((out_dir / "report.json").read_text())
    for row in report["backbones"]:
        score = "-" if row.get("score") is None else f"{row['score']:.4f}"
        note = f"screened out ({row['screened_out']})" if row.get("screened_out") else (
            f"{row.get('description') or 'no strategy trained to the end'}: {score}"
            f" ({plural(int(row.get('seeds') or 0), 'run')})")
        console.print(f"  {row['name']}: {note}", highlight=False, markup=False, soft_wrap=True)
    chosen = report.get("chosen")
    console.print(f"[bold]Chosen backbone:[/] {chosen or 'none yet'}\nReport: "
                  f"{out_dir / 'report.md'}  (each backbone's in {out_dir / 'backbones'})",
                  highlight=False, soft_wrap=True)


def _fail(message: str) -> NoReturn:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(2)


def _seconds(value: str | None, flag: str) -> float | None:
    from autoft.budget import parse_duration
    from autoft.errors import BudgetError

    try:
        return parse_duration(value, flag)
    except BudgetError as exc:
        _fail(str(exc))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, package_name="autoft")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug); library "
              "warnings are shown from -v on.")
def main(verbose: int) -> None:
    """autoft: find how to fine-tune a pretrained transformer for your data."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # library warnings (Optuna's experimental and importance warnings, transformers' notices) go
    # to the log, which shows them only with -v
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.INFO if verbose else logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error" if verbose < 2 else "info")


def _quiet_optuna(verbose: int) -> None:
    import optuna

    # autoft prints each trial (failures with their reasons) itself; Optuna's own lines only with -vv
    optuna.logging.set_verbosity(optuna.logging.ERROR if verbose < 2 else optuna.logging.INFO)


@main.command("search")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--model", "models", multiple=True, help="Backbone: minilm (the bundled "
              "all-MiniLM-L6-v2, the default for text), mpnet (all-mpnet-base-v2), "
              "efficientnet-lite0 (the default for images), a local Hugging Face "
              "folder or a hub id. Repeat it to search the backbone too (each is screened by its "
              "linear probe, then the budget is shared).")
@click.option("--budget", default=None, help="Wall-clock budget of this run, e.g. 600, 30m, 8h "
              "(default 30m when --n-trials is not given).")
@click.option("--n-trials", type=click.IntRange(min=1), default=None,
              help="Total trials the study should reach, counting earlier runs.")
@click.option("--trial-budget", default=None, help="Cap on each trial's time, e.g. 5m.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("autoft-out"),
              show_default=True, help="Output folder: the study and the report. Reuse it to "
              "resume.")
@click.option("--validation", type=click.Path(path_type=Path), default=None,
              help="Separate validation file (default: a stratified split of DATA).")
@click.option("--test", type=click.Path(path_type=Path), default=None,
              help="Separate labelled test file (not used by the search).")
@click.option("--text-column", default=None, help="Text column (default: found by name).")
@click.option("--text-pair-column", default=None, help="Second text column for pair tasks.")
@click.option("--label-column", default=None, help="Label column (default: found by name).")
@click.option("--validation-size", type=float, default=0.2, show_default=True,
              help="Fraction (or number of rows) held out for validation when --validation is "
              "not given.")
@click.option("--encoding", default="utf-8", show_default=True,
              help="Text encoding of the data files, e.g. latin-1 or cp1252.")
@click.option("--space", default=None, help="Search space: a YAML file or a bundled space's name "
              "(default: search_spaces/default.yaml).")
@click.option("--task", type=click.Choice(["classification", "regression"]), default=None,
              help="The task kind. Default: regression when the labels are numbers and one is "
              "not an integer (3.8), else classification.")
@click.option("--metric", default=None, help="The validation metric: one of the task's "
              "(classification: accuracy, the default, balanced_accuracy, macro_f1, weighted_f1, "
              "macro_precision, macro_recall, weighted_precision, weighted_recall; with 2 "
              "classes also f1 and roc_auc; regression: rmse, the default, mae, r2, pearson, "
              "spearman).")
@click.option("--pruner", type=click.Choice(["successive_halving", "hyperband", "median", "none"]),
              default="successive_halving", show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--max-length", type=click.IntRange(min=8), default=128, show_default=True,
              help="Tokens per input.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes on this machine sharing the study (journal file storage).")
@click.option("--storage", default=None, help="Keep the study in a database instead of --out, "
              "e.g. postgresql://user:pw@host/db, or env:NAME to read the URL from environment "
              "variable NAME (keeps the password out of the shell history); other machines join "
              "with 'autoft worker'.")
@click.option("--study", "study_name", default="autoft", show_default=True, help="Study name.")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Runs each leading strategy needs before it is recommended (noise check); "
              "1 disables.")
@click.option("--curve-sizes", default="0.1,0.3", show_default=True,
              help="Smaller training sizes for learning curves: fractions or example counts, "
              "comma-separated; empty disables.")
@click.option("--refit", is_flag=True, help="After the search, train the recommended strategy "
              "again and save it to OUT/model for transformers.pipeline.")
@click.option("--no-progress", is_flag=True, help="No live progress line (a line per finished "
              "trial is still printed).")
@click.pass_context
def search_command(ctx: click.Context, data: Path, models: tuple[str, ...], budget: str | None,
                   n_trials: int | None, trial_budget: str | None, out: Path,
                   validation: Path | None, test: Path | None, text_column: str | None,
                   text_pair_column: str | None, label_column: str | None,
                   validation_size: float, encoding: str, space: str | None, task: str | None,
                   metric: str | None, pruner: str, device: str, seed: int, max_length: int, workers: int,
                   storage: str | None, study_name: str, seeds: int, curve_sizes: str,
                   refit: bool, no_progress: bool) -> None:
    """Search fine-tuning strategies for DATA (CSV, TSV, JSON lines, JSON or Parquet; or a folder
    of images with one subfolder per class) and write a report."""
    from rich.console import Console

    console = Console(stderr=True)
    if not (0 < validation_size < 1 or (validation_size >= 1 and float(validation_size).is_integer()
                                          and validation_size < 1e12)):
        _fail(f"--validation-size {validation_size}: give a fraction in (0, 1) or a whole number "
              "of rows")
    size: float | int = int(validation_size) if validation_size >= 1 else validation_size
    try:
        sizes = [float(x) if "." in x else int(x) for x in curve_sizes.split(",") if x.strip()]
    except ValueError:
        _fail(f"--curve-sizes {curve_sizes!r}: give fractions or counts such as 0.1,0.3 or 500,2000")
    budget_s = _seconds(budget, "--budget")
    trial_s = _seconds(trial_budget, "--trial-budget")
    console.print(f"autoft {__version__}: searching {data} -> {out}", highlight=False,
                  soft_wrap=True, markup=False)
    import autoft
    from autoft.report import build_report
    from autoft.study.storage import open_storage, study_file

    _quiet_optuna(ctx.parent.params.get("verbose", 0) if ctx.parent else 0)
    display = _Display(console, live=not no_progress, backbones=len(models) > 1)
    try:
        result = autoft.search(
            data, model=list(models) if len(models) > 1 else (models[0] if models else None),
            budget=budget_s, n_trials=n_trials, trial_budget=trial_s,
            out=out, validation=validation, test=test, text_column=text_column,
            text_pair_column=text_pair_column, label_column=label_column,
            validation_size=size, encoding=encoding, space=space, task=task, metric=metric,
            pruner=pruner,
            device=device, seed=seed, max_length=max_length, workers=workers, storage=storage,
            study_name=study_name, seeds=seeds, curve_sizes=sizes, refit=refit,
            progress=display,  # type: ignore[arg-type]
        )
    except KeyboardInterrupt:
        console.print(f"\ninterrupted; the study in {out} is kept and the report is written. Run "
                      "the same command again to resume it.", highlight=False)
        sys.exit(130)
    except autoft.AutoftError as exc:
        _fail(str(exc))
    if len(models) > 1:
        _print_backbones(console, Path(out))
        return
    where = study_file(out, open_storage(out, storage, create=False))
    _print_summary(console, build_report(result.study_), Path(result.out_dir or out),
                   result.report_paths_, where)


@main.command("report")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--study", "study_name", default=None, help="Study name (default: the only one).")
@click.option("--storage", default=None, help="Read the study from this database URL instead "
              "(or env:NAME).")
def report_command(out_dir: Path, study_name: str | None, storage: str | None) -> None:
    """Rebuild the report of OUT_DIR from its study file (or --storage) alone."""
    from rich.console import Console

    from autoft.errors import AutoftError
    from autoft.report import build_report
    from autoft.study import BACKBONES_FILE, load_study

    console = Console(stderr=True)
    try:
        paths = _write_reports(out_dir, study_name, storage)
        if (out_dir / BACKBONES_FILE).is_file():
            _print_backbones(console, out_dir)
        else:
            study = load_study(None if storage else out_dir, study_name, storage)
            _print_summary(console, build_report(study), out_dir, paths, None)
    except AutoftError as exc:
        _fail(str(exc))
    click.echo(str(paths.get("html") or paths["markdown"]))


@main.command("refit")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path), required=False)
@click.option("--storage", default=None, help="Database URL of the study instead of OUT_DIR "
              "(or env:NAME).")
@click.option("--study", "study_name", default=None, help="Study name (default: the only one).")
@click.option("--save-to", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Model folder (default OUT_DIR/model).")
@click.option("--device", default="auto", show_default=True)
@click.option("--portable", is_flag=True, help="Also copy the model's code into the folder, so it "
              "loads without autoft (with trust_remote_code=True).")
@click.option("--adapter", is_flag=True, help="Also save a LoRA recommendation's adapters alone "
              "(peft format) to SAVE_TO/adapter, to serve many adapters on one backbone.")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="The study's training file or folder, when its stored path does not exist "
              "here (e.g. a study copied from another machine).")
@click.option("--validation", type=click.Path(path_type=Path), default=None,
              help="The study's validation file, when its stored path does not exist here.")
@click.option("--test", type=click.Path(path_type=Path), default=None,
              help="The study's test file, when its stored path does not exist here.")
def refit_command(out_dir: Path | None, storage: str | None, study_name: str | None,
                  save_to: Path | None, device: str, portable: bool, adapter: bool,
                  data: Path | None, validation: Path | None, test: Path | None) -> None:
    """Train the recommended strategy again, score the test split, save a pipeline-ready model."""
    if out_dir is None and storage is None:
        _fail("give the search's output folder, or --storage URL --study NAME")
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    import autoft

    bar = Progress(TextColumn("refit"), BarColumn(), TextColumn("{task.completed}/{task.total} "
                   "evaluations, validation {task.fields[score]}"), TimeElapsedColumn(),
                   console=Console(stderr=True), transient=True)
    job = bar.add_task("refit", total=None, score="-")

    def progress(index: int, total: int, score: float) -> None:
        bar.update(job, completed=index, total=total, score=f"{score:.4f}")

    try:
        with bar:
            result = autoft.refit(out_dir, storage=storage, study_name=study_name,
                                  save_to=save_to, device=device, progress=progress,
                                  portable=portable, adapter=adapter, data=data,
                                  validation=validation, test=test)
        if out_dir is not None:
            _write_reports(out_dir, study_name, storage)
    except autoft.AutoftError as exc:
        _fail(str(exc))
    shown = "-" if result.test_score is None else f"{result.test_score:.4f}"
    click.echo(f"refit trial {result.trial_number}: validation {result.validation_score:.4f}, "
               f"test {shown}; saved to {result.path}")
    click.echo(f'load it: import autoft, transformers; '
               f'transformers.pipeline("{result.pipeline_task}", model="{result.path}")'
               + ("; or, without autoft, add trust_remote_code=True" if portable else ""))


@main.command("status")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path), required=False)
@click.option("--storage", default=None, help="Database URL of the study instead of OUT_DIR "
              "(or env:NAME).")
@click.option("--study", "study_name", default=None, help="Study name (default: the only one).")
def status_command(out_dir: Path | None, storage: str | None, study_name: str | None) -> None:
    """Where a (running) search stands: trials by status, running ones, the best, time left.

    For a multi-backbone search's folder: one such block per backbone, the chosen one marked."""
    if out_dir is None and storage is None:
        _fail("give the search's output folder, or --storage URL --study NAME")
    from autoft.errors import AutoftError
    from autoft.study import (
        backbone_entry_dir,
        load_study,
        read_backbones_state,
        screening_backbones,
        study_status,
    )
    from autoft.study.storage import holds_study_file

    try:
        state, screening = None, None
        if storage is None and study_name is None and out_dir is not None and \
                not holds_study_file(out_dir):
            state = read_backbones_state(out_dir)
            if state is None:  # backbones.json is written once every backbone is screened
                screening = screening_backbones(out_dir)
                state = None if screening is None else {"chosen": None, "backbones": screening}
        if state is None or out_dir is None:
            _echo_status(study_status(load_study(out_dir, study_name, storage)))
            return
        chosen = state.get("chosen")
        click.echo("multi-backbone search" + (
            ", screening its backbones (no shares or choice yet)" if screening else
            "; chosen backbone: " + (chosen or "none yet")))
        for entry in state.get("backbones", []):
            mark = " (chosen)" if entry["name"] == chosen else ""
            if entry.get("screened_out"):
                mark += " (screened out)"
            click.echo(f"backbone {entry['name']}{mark}:")
            db = state.get("storage")
            if db and "***" in str(db):
                click.echo(f"  kept in {db}; give --storage URL --study {entry.get('study_name')}")
                continue
            try:
                study = (load_study(None, entry.get("study_name"), db) if db else
                         load_study(backbone_entry_dir(out_dir, entry)))
            except AutoftError:
                click.echo("  not started")
                continue
            _echo_status(study_status(study), indent="  ")
    except AutoftError as exc:
        _fail(str(exc))


def _echo_status(status: dict[str, Any], indent: str = "") -> None:
    from autoft.budget import format_duration

    c = status["counts"]
    click.echo(f"{indent}study {status['study']}: {c.get('complete', 0)} complete, "
               f"{c.get('pruned', 0) + c.get('budget', 0) + c.get('diverged', 0)} stopped early "
               f"({c.get('budget', 0)} by the budget), {c.get('failed', 0)} failed, "
               f"{c.get('running', 0)} running, {c.get('waiting', 0)} queued")
    best = status["best"]
    click.echo(indent + ("best: -" if best is None else
                         f"best {status['metric']}: {best:.4f} (trial {status['best_trial']})"))
    for run in status["running"]:
        age = run["heartbeat_age"]
        click.echo(f"{indent}running: trial {run['number']} for "
                   f"{format_duration(run['seconds'])}"
                   + ("" if age is None else f", last heartbeat {age:.0f}s ago"))
    left = status["seconds_left"]
    click.echo(f"{indent}time left: " + ("-" if left is None else format_duration(left)))


@main.command("worker")
@click.option("--storage", default=None, help="Database URL of the study (postgresql://..., or "
              "env:NAME).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Or the output folder of a local study (journal storage).")
@click.option("--study", "study_name", default="autoft", show_default=True)
@click.option("--budget", default=None, help="This worker's wall-clock budget, e.g. 8h "
              "(default 30m when --n-trials is not given).")
@click.option("--n-trials", type=click.IntRange(min=1), default=None,
              help="The study's total trial count.")
@click.option("--trial-budget", default=None, help="Cap on each trial's time.")
@click.option("--seed", type=int, default=None, help="Sampler seed (default: drawn per worker).")
@click.option("--device", default="auto", show_default=True)
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="The study's training file, when its stored path does not exist here.")
@click.option("--validation", type=click.Path(path_type=Path), default=None,
              help="The study's validation file, when its stored path does not exist here.")
@click.option("--test", type=click.Path(path_type=Path), default=None,
              help="The study's test file, when its stored path does not exist here.")
@click.pass_context
def worker_command(ctx: click.Context, storage: str | None, out: Path | None, study_name: str,
                   budget: str | None, n_trials: int | None, trial_budget: str | None,
                   seed: int | None, device: str, data: Path | None, validation: Path | None,
                   test: Path | None) -> None:
    """Join a study as one more worker (e.g. from another machine, through a database)."""
    budget_s = _seconds(budget, "--budget")
    trial_s = _seconds(trial_budget, "--trial-budget")
    import autoft
    from autoft.budget import plural
    from autoft.searching import run_worker

    _quiet_optuna(ctx.parent.params.get("verbose", 0) if ctx.parent else 0)
    try:
        state = run_worker(storage, study_name, out=out, budget=budget_s, n_trials=n_trials,
                           trial_budget=trial_s, seed=seed, device=device, data=data,
                           validation=validation, test=test)
    except autoft.AutoftError as exc:
        _fail(str(exc))
    click.echo(f"worker ran {plural(state.trials_run, 'trial')}; stopped: {state.stopped_because}")


if __name__ == "__main__":  # pragma: no cover
    main()
