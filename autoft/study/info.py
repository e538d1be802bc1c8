"""What a study stores about itself: its data, backbone, space and every setting that changes a
score, so that a resumed search can refuse to mix incompatible trials, and a report or a worker
can be built from the study alone."""

from __future__ import annotations

import datetime as _dt
import logging
import os
from pathlib import Path
from typing import Any

import optuna

from autoft._version import __version__
from autoft.errors import DataError, StudyError
from autoft.study.records import StudyAttr

__all__ = ["SCORE_SETTINGS", "check_resume", "now", "stored_info", "task_from_study", "versions"]

logger = logging.getLogger(__name__)

#: Study settings that change what a trial scores; a resumed search must match every one.
SCORE_SETTINGS = (
    ("task", "task"),
    ("metric", "metric"),
    ("max_length", "max_length (tokens per input)"),
    ("evals_per_epoch", "evals_per_epoch (evaluations per epoch, the pruner's steps)"),
    ("pruner", "pruner"),
)


def now() -> str:
    """The current local time, ISO 8601 with its offset, to the second."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def versions() -> dict[str, str]:
    """Versions of the libraries a trial's result depends on."""
    import platform

    import numpy
    import torch
    import transformers

    return {"autoft": __version__, "torch": torch.__version__,
            "transformers": transformers.__version__, "optuna": optuna.__version__,
            "numpy": numpy.__version__, "python": platform.python_version()}


def stored_info(study: optuna.Study) -> dict[str, Any]:
    """The study's ``autoft`` attribute.

    Raises:
        StudyError: The study was not made by ``autoft search``.
    """
    info = study.user_attrs.get(StudyAttr.INFO)
    if not isinstance(info, dict):
        raise StudyError(
            f"study {study.study_name!r} was not made by autoft search (no 'autoft' attributes); "
            "use another --out folder or --study name"
        )
    return info


def check_resume(old: dict[str, Any], new: dict[str, Any], where: str) -> None:
    """Refuse to resume a study with data, a backbone or a setting that changes scores.

    Args:
        old: The study's stored info.
        new: This run's info.
        where: The output folder or storage, for the message.

    Raises:
        StudyError: Naming the first difference, its stored and new value.
    """
    old_data, new_data = old.get("data", {}), new["data"]
    checks: list[tuple[str, Any, Any]] = [
        ("data (fingerprint of the training and validation texts and labels)",
         old_data.get("fingerprint"), new_data.get("fingerprint")),
    ]
    if old.get("backbone_fingerprint") is not None:
        checks.append(("backbone (a hash of its weights)", old["backbone_fingerprint"],
                       new["backbone_fingerprint"]))
    else:  # a study of autoft 0.1 stored only the backbone's shape
        checks.append(("backbone", (old.get("model_type"), old.get("num_layers"),
                                    old.get("backbone_params")),
                       (new["model_type"], new["num_layers"], new["backbone_params"])))
    for key, what in SCORE_SETTINGS:
        if key in old:
            checks.append((what, old[key], new[key]))
    for what, before, current in checks:
        if before != current:
            shown = (before, current) if "fingerprint" not in what and "hash" not in what else (
                str(before)[:12] + "...", str(current)[:12] + "...")
            raise StudyError(
                f"the study in {where!r} was made with a different {what} ({shown[0]!r}, now "
                f"{shown[1]!r}); resume it with the same arguments, or use another --out folder "
                "(or --study name) for a new study"
            )
    if old_data.get("test_fingerprint") != new_data.get("test_fingerprint") and \
            old_data.get("test_fingerprint") is not None:
        logger.warning("the test data differ from the study's; the refit scores the new test "
                       "data")


def _path_or_none(value: Any) -> str | None:
    return str(Path(value).resolve()) if isinstance(value, (str, os.PathLike)) else None


def data_paths(data: Any, validation: Any, test: Any) -> dict[str, str | None]:
    """The absolute paths of the data files (None for inputs that are not files)."""
    return {"data": _path_or_none(data), "validation": _path_or_none(validation),
            "test": _path_or_none(test)}


def _stored_path(path: str | None, what: str) -> str:
    if not path:
        raise DataError(
            f"the study's {what} was not a file, so it cannot be read again here; pass it with "
            "--data (Python: data=)"
        )
    if not Path(path).exists():
        raise DataError(f"the study's {what} file {path!r} does not exist here; pass it with "
                        "--data (Python: data=)")
    return path


def task_from_study(
    info: dict[str, Any], data: Any = None, validation: Any = None, test: Any = None
) -> Any:
    """Load a study's data again: from the paths it stored, or from the given data.

    Args:
        info: The study's ``autoft`` user attribute.
        data, validation, test: Replacements for the stored paths (any supported input type).

    Returns:
        The :class:`~autoft.data.TaskData`.

    Raises:
        DataError: A stored path is missing here, or the data differ from the study's
            (fingerprint of the training and validation texts and labels).
    """
    from autoft.data import load_task_data

    paths = info.get("data_paths", {})
    summary = info["data"]
    task = load_task_data(
        data if data is not None else _stored_path(paths.get("data"), "data"),
        validation=validation if validation is not None else paths.get("validation"),
        test=test if test is not None else paths.get("test"),
        text_column=summary["text_column"], text_pair_column=summary["text_pair_column"],
        label_column=summary["label_column"], validation_size=info["validation_size"],
        seed=info["seed"], task=info.get("task", "classification"),
        encoding=info.get("encoding", "utf-8"),
        validation_split=info.get("validation_split"), test_split=info.get("test_split"),
    )
    if task.fingerprint() != summary["fingerprint"]:
        raise DataError(
            "the data found here differ from the study's (fingerprint of the training and "
            "validation texts and labels); give the study's exact files with --data/--validation"
        )
    return task
