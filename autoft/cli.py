"""The ``autoft`` command: ``autoft search DATA`` and ``autoft report DIR``.

The CLI owns the terminal: a live progress line while a search runs (trials done, best so far, the
running trial, time left) and a summary table at the end. The library itself only logs.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

__all__ = ["main"]


class _Display:
    """Live progress of a search on the terminal (a ``ProgressHook`` rendered with rich)."""

    def __init__(self, console: Any) -> None:
        from rich.live import Live

        self.console = console
        self.info: dict[str, Any] = {}
        self.done = self.pruned = self.failed = 0
        self.best: float | None = None
        self.current = ""
        self.live = Live(self, console=console, refresh_per_second=2, transient=True)

    def __rich__(self) -> str:
        parts = [f"[bold]trials[/] {self.done} done ({self.pruned} pruned, {self.failed} failed)"]
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
        self.live.start()

    def on_trial_start(self, number: int, strategy: Any) -> None:
        self.current = f"trial {number}: frozen {strategy.frozen_layers}, training"

    def on_evaluation(self, number: int, index: int, score: float) -> None:
        self.current = f"trial {number}: eval {index} = {score:.4f}"

    def on_trial_end(self, trial: Any) -> None:
        from optuna.trial import TrialState

        self.done += 1
        score = trial.user_attrs.get("best_score")
        if trial.state == TrialState.PRUNED:
            self.pruned += 1
            what = "pruned"
        elif trial.state == TrialState.FAIL:
            self.failed += 1
            what = f"failed: {trial.user_attrs.get('fail_reason', '')}"
        else:
            what = "complete"
            if score is not None and (self.best is None or score > self.best):
                self.best = score
        shown = "-" if score is None else f"{score:.4f}"
        seconds = trial.user_attrs.get("wall_seconds")
        took = "" if seconds is None else f" in {seconds:.0f}s"
        attrs = trial.user_attrs
        notes = []
        if attrs.get("baseline"):
            notes.append("baseline")
        if attrs.get("purpose") == "reseed":
            notes.append(f"re-seed of trial {attrs.get('reseed_of')}")
        elif attrs.get("purpose") == "learning_curve":
            notes.append(f"on {attrs.get('train_size')} examples")
        if attrs.get("status") == "deadline":
            notes.append("cut at the budget's end")
        note = f" [{'; '.join(notes)}]" if notes else ""
        self.console.print(
            f"trial {trial.number:>3} {what:<9} score {shown}{took}{note}  "
            f"{attrs.get('description', '')}", highlight=False, soft_wrap=True,
        )
        self.current = ""

    def on_search_end(self, stopped_because: str) -> None:
        self.live.stop()
        if stopped_because:
            self.console.print(f"search stopped: {stopped_because}", highlight=False)


def _print_summary(console: Any, report: dict[str, Any], out_dir: Path) -> None:
    rec = report.get("recommendation")
    counts = report.get("trial_counts", {})
    console.print(
        f"\n{counts.get('COMPLETE', 0)} complete, {counts.get('PRUNED', 0)} pruned, "
        f"{counts.get('FAIL', 0)} failed trials.", highlight=False,
    )
    if rec is None:
        console.print("No trial completed yet: nothing to recommend. Run longer to resume.")
    else:
        trial = next(t for t in report["trials"] if t["number"] == rec["trial_number"])
        console.print(
            f"[bold]Recommended:[/] {trial['description']}\n"
            f"  validation {report.get('metric')} {rec['score']:.4f}, "
            f"{rec['seconds']:.0f} s to train (trial {rec['trial_number']})", highlight=False,
        )
    console.print(f"Report: {out_dir / 'report.md'}  Study: {out_dir / 'study.db'}",
                  highlight=False)


def _fail(message: str) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="autoft")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """autoft: find how to fine-tune a pretrained transformer for your text-classification data."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    import optuna

    # autoft prints each trial (failures with their reasons) itself; Optuna's own lines only with -vv
    optuna.logging.set_verbosity(optuna.logging.ERROR if verbose < 2 else optuna.logging.INFO)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@main.command("search")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", default=None, help="Backbone: a local Hugging Face folder or hub id "
              "(default: the bundled all-MiniLM-L6-v2).")
@click.option("--budget", default=None, help="Wall-clock budget of this run, e.g. 600, 30m, 8h "
              "(default 30m when --n-trials is not given).")
@click.option("--n-trials", type=int, default=None, help="Total trials the study should reach, "
              "counting earlier runs.")
@click.option("--trial-budget", default=None, help="Cap on each trial's time, e.g. 5m.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("autoft-out"),
              show_default=True, help="Output folder: study.db and the report. Reuse it to resume.")
@click.option("--validation", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Separate validation file (default: a stratified split of DATA).")
@click.option("--test", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Separate labelled test file (not used by the search).")
@click.option("--text-column", default=None, help="Text column (default: found by name).")
@click.option("--text-pair-column", default=None, help="Second text column for pair tasks.")
@click.option("--label-column", default=None, help="Label column (default: found by name).")
@click.option("--validation-size", type=float, default=0.2, show_default=True,
              help="Fraction held out for validation when --validation is not given.")
@click.option("--space", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Search space YAML (default: search_spaces/default.yaml).")
@click.option("--metric", type=click.Choice(["accuracy", "macro_f1"]), default="accuracy",
              show_default=True)
@click.option("--pruner", type=click.Choice(["hyperband", "successive_halving", "median", "none"]),
              default="hyperband", show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-length", type=int, default=128, show_default=True, help="Tokens per input.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes on this machine sharing the study (journal file storage).")
@click.option("--storage", default=None, help="Keep the study in a database instead of --out, e.g. "
              "postgresql://user:pw@host/db; other machines join with 'autoft worker'.")
@click.option("--study", "study_name", default="autoft", show_default=True, help="Study name.")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Runs of each top strategy near the end (noise check); 1 disables.")
@click.option("--curve-sizes", default="0.1,0.3", show_default=True,
              help="Smaller training sizes for learning curves: fractions or example counts, "
              "comma-separated; empty disables.")
@click.option("--refit", is_flag=True, help="After the search, train the recommended strategy "
              "again and save it to OUT/model for transformers.pipeline.")
@click.option("--no-progress", is_flag=True, help="No live progress display.")
def search_command(data: Path, model: str | None, budget: str | None, n_trials: int | None,
                   trial_budget: str | None, out: Path, validation: Path | None, test: Path | None,
                   text_column: str | None, text_pair_column: str | None,
                   label_column: str | None, validation_size: float, space: Path | None,
                   metric: str, pruner: str, device: str, seed: int, max_length: int,
                   workers: int, storage: str | None, study_name: str, seeds: int,
                   curve_sizes: str, refit: bool, no_progress: bool) -> None:
    """Search fine-tuning strategies for DATA (CSV, TSV, JSONL or Parquet) and write a report."""
    from rich.console import Console

    import autoft
    from autoft.report import build_report

    console = Console(stderr=True)
    display = None if no_progress else _Display(console)
    console.print(f"autoft {autoft.__version__}: searching {data} -> {out}", highlight=False)
    if not (0 < validation_size < 1 or (validation_size >= 1 and float(validation_size).is_integer()
                                          and validation_size < 1e12)):
        _fail(f"--validation-size {validation_size}: give a fraction in (0, 1) or a whole number "
              "of rows")
    size: float | int = int(validation_size) if validation_size >= 1 else validation_size
    try:
        sizes = [float(x) if "." in x else int(x) for x in curve_sizes.split(",") if x.strip()]
    except ValueError:
        _fail(f"--curve-sizes {curve_sizes!r}: give fractions or counts such as 0.1,0.3 or 500,2000")
        return
    try:
        result = autoft.search(
            data, model=model, budget=budget, n_trials=n_trials, trial_budget=trial_budget,
            out=out, validation=validation, test=test, text_column=text_column,
            text_pair_column=text_pair_column, label_column=label_column,
            validation_size=size, space=space, metric=metric, pruner=pruner, device=device,
            seed=seed, max_length=max_length, workers=workers, storage=storage,
            study_name=study_name, seeds=seeds, curve_sizes=sizes, refit=refit,
            progress=display,  # type: ignore[arg-type]
        )
    except KeyboardInterrupt:
        console.print(f"\ninterrupted; the study in {out} is kept. Run the same command again "
                      "to resume it.", highlight=False)
        sys.exit(130)
    except autoft.AutoftError as exc:
        _fail(str(exc))
        return
    _print_summary(console, build_report(result.study_), Path(result.out_dir or out))


@main.command("report")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--study", "study_name", default=None, help="Study name (default: the only one).")
@click.option("--storage", default=None, help="Read the study from this database URL instead.")
def report_command(out_dir: Path, study_name: str | None, storage: str | None) -> None:
    """Rebuild the report of OUT_DIR from its study file (or --storage) alone."""
    from rich.console import Console

    import autoft
    from autoft.report import build_report, load_study, write_report

    console = Console(stderr=True)
    try:
        study = load_study(None if storage else out_dir, study_name, storage)
        paths = write_report(study, out_dir)
        _print_summary(console, build_report(study), out_dir)
    except autoft.AutoftError as exc:
        _fail(str(exc))
        return
    click.echo(str(paths["markdown"]))


@main.command("refit")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path), required=False)
@click.option("--storage", default=None, help="Database URL of the study instead of OUT_DIR.")
@click.option("--study", "study_name", default=None, help="Study name (default: the only one).")
@click.option("--save-to", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Model folder (default OUT_DIR/model).")
@click.option("--device", default="auto", show_default=True)
def refit_command(out_dir: Path | None, storage: str | None, study_name: str | None,
                  save_to: Path | None, device: str) -> None:
    """Train the recommended strategy again, score the test split, save a pipeline-ready model."""
    import autoft
    from autoft.report import load_study, write_report

    if out_dir is None and storage is None:
        _fail("give the search's output folder, or --storage URL --study NAME")
    try:
        result = autoft.refit(out_dir, storage=storage, study_name=study_name, save_to=save_to,
                              device=device)
        if out_dir is not None:
            write_report(load_study(out_dir, study_name, storage), out_dir)
    except autoft.AutoftError as exc:
        _fail(str(exc))
        return
    test = "-" if result.test_score is None else f"{result.test_score:.4f}"
    click.echo(f"refit trial {result.trial_number}: validation {result.validation_score:.4f}, "
               f"test {test}; saved to {result.path}")
    click.echo(f'load it: import autoft, transformers; '
               f'transformers.pipeline("text-classification", model="{result.path}")')


@main.command("status")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path), required=False)
@click.option("--storage", default=None, help="Database URL of the study instead of OUT_DIR.")
@click.option("--study", "study_name", default=None, help="Study name (default: the only one).")
def status_command(out_dir: Path | None, storage: str | None, study_name: str | None) -> None:
    """Where a (running) search stands: trials done, running, pruned, failed; best; time left."""
    import autoft
    from autoft.budget import format_duration
    from autoft.report import load_study, study_status

    if out_dir is None and storage is None:
        _fail("give the search's output folder, or --storage URL --study NAME")
    try:
        status = study_status(load_study(out_dir, study_name, storage))
    except autoft.AutoftError as exc:
        _fail(str(exc))
        return
    c = status["counts"]
    click.echo(f"study {status['study']}: {c.get('COMPLETE', 0)} complete, "
               f"{c.get('PRUNED', 0)} pruned, {c.get('FAIL', 0)} failed, "
               f"{c.get('RUNNING', 0)} running, {c.get('WAITING', 0)} waiting")
    best = status["best"]
    click.echo("best: -" if best is None else
               f"best {status['metric']}: {best:.4f} (trial {status['best_trial']})")
    for run in status["running"]:
        age = run["heartbeat_age"]
        click.echo(f"running: trial {run['number']} for {format_duration(run['seconds'])}"
                   + ("" if age is None else f", last heartbeat {age:.0f}s ago"))
    left = status["seconds_left"]
    click.echo("time left: " + ("-" if left is None else format_duration(left)))


@main.command("worker")
@click.option("--storage", default=None, help="Database URL of the study (postgresql://...).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Or the output folder of a local study (journal storage).")
@click.option("--study", "study_name", default="autoft", show_default=True)
@click.option("--budget", default=None, help="This worker's wall-clock budget, e.g. 8h.")
@click.option("--n-trials", type=int, default=None, help="The study's total trial count.")
@click.option("--trial-budget", default=None, help="Cap on each trial's time.")
@click.option("--seed", type=int, default=None, help="Sampler seed (default: drawn per worker).")
@click.option("--device", default="auto", show_default=True)
@click.option("--data", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The study's training file, when its stored path does not exist here.")
@click.option("--validation", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--test", type=click.Path(dir_okay=False, path_type=Path), default=None)
def worker_command(storage: str | None, out: Path | None, study_name: str, budget: str | None,
                   n_trials: int | None, trial_budget: str | None, seed: int | None, device: str,
                   data: Path | None, validation: Path | None, test: Path | None) -> None:
    """Join a study as one more worker (e.g. from another machine, through a database)."""
    import autoft
    from autoft.search import run_worker

    try:
        state = run_worker(storage, study_name, out=out, budget=budget, n_trials=n_trials,
                           trial_budget=trial_budget, seed=seed, device=device, data=data,
                           validation=validation, test=test)
    except autoft.AutoftError as exc:
        _fail(str(exc))
        return
    click.echo(f"worker ran {state.trials_run} trials; stopped: {state.stopped_because}")


if __name__ == "__main__":  # pragma: no cover
    main()
