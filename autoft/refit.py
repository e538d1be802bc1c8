"""Refit: train a study's recommended strategy once more and save it as a Hugging Face model.

``autoft refit DIR`` (or ``search(..., refit=True)``) trains the recommended strategy on the study's
training split with the trial's seed, keeps the weights of its best validation evaluation, scores
the test split when there is one, and saves model, tokenizer, ``id2label`` and the strategy with
``save_pretrained``. The folder loads with ``transformers.pipeline("text-classification",
model=DIR)`` once ``autoft`` is imported (it registers its model class with transformers).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from autoft.backbone import load_backbone
from autoft.errors import AutoftError, StudyError
from autoft.finetune import encode_split, evaluate, resolve_device, train_strategy
from autoft.hf_model import to_pretrained
from autoft.recommend import recommend
from autoft.report import load_study
from autoft.strategy import Strategy

__all__ = ["RefitResult", "refit"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefitResult:
    """What :func:`refit` trained and saved.

    Attributes:
        path: The saved model folder.
        trial_number: The study trial whose strategy was refit.
        strategy: That strategy (``Strategy.to_dict()``).
        validation_score: Best validation score of the refit.
        test_score: Test score of the saved weights (None without a test split).
        test_size: Examples in the test split (None without one).
        seconds: Wall-clock seconds of the refit's training.
        metric: The study's metric.
    """

    path: str
    trial_number: int
    strategy: dict[str, Any]
    validation_score: float | None
    test_score: float | None
    test_size: int | None
    seconds: float
    metric: str


def refit(
    out: str | Path | None = None,
    *,
    storage: str | None = None,
    study_name: str | None = None,
    save_to: str | Path | None = None,
    data: Any = None,
    validation: Any = None,
    test: Any = None,
    device: str = "auto",
) -> RefitResult:
    """Train the recommended strategy of a study and save it with ``save_pretrained``.

    Args:
        out: The search's output folder. Default None (then give ``storage``).
        storage: The study's RDB URL instead of ``out``. Default None.
        study_name: The study's name; None for the only one. Default None.
        save_to: Folder for the model; default ``OUT/model``.
        data, validation, test: The study's data when its stored paths do not exist here.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``. Default ``"auto"``.

    Returns:
        A :class:`RefitResult`; it is also stored in the study (user attribute ``refit``), so the
        report shows it.

    Raises:
        StudyError: No study, or no completed trial to refit.
        DataError: The study's data cannot be found or differ from the study's.
    """
    from autoft.search import task_from_study

    study = load_study(out, study_name, storage)
    info = study.user_attrs.get("autoft")
    if not isinstance(info, dict):
        raise StudyError(f"study {study.study_name!r} was not made by autoft search")
    rec = recommend(study, info["metric"], int(info["num_layers"]))
    if rec is None:
        raise StudyError("the study has no completed trial, so there is nothing to refit yet")
    if save_to is None:
        if out is None:
            raise AutoftError("give save_to= (where to save the model) with a storage URL")
        save_to = Path(out) / "model"
    target = Path(save_to)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AutoftError(
            f"cannot create the model folder {str(target)!r}: {exc.strerror}; give a folder path"
        ) from exc
    task = task_from_study(info, data=data, validation=validation, test=test)
    try:
        encoder, tokenizer, _ = load_backbone(info.get("backbone"))
    except AutoftError:
        encoder, tokenizer, _ = load_backbone(info["backbone_path"])
    dev = resolve_device(device)
    max_length = int(info["max_length"])
    pad_id = int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else 0
    trial = next(t for t in study.get_trials(deepcopy=False) if t.number == rec.trial_number)
    seed = int(trial.user_attrs.get("seed") or info["seed"])
    strategy: Strategy = rec.strategy
    started = time.monotonic()
    outcome, model = train_strategy(
        encoder, strategy, encode_split(tokenizer, task.train, max_length),
        encode_split(tokenizer, task.validation, max_length), task.num_labels, pad_id=pad_id,
        metric=info["metric"], device=dev, seed=seed,
        evals_per_epoch=int(info["evals_per_epoch"]), keep_best=True,
    )
    seconds = time.monotonic() - started
    test_score = None
    if task.test is not None:
        test_score = evaluate(model, encode_split(tokenizer, task.test, max_length),
                              info["metric"], pad_id, dev)
    hf = to_pretrained(model.cpu(), task.id2label, strategy.to_dict())
    target.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(target)
    tokenizer.save_pretrained(target)
    result = RefitResult(
        path=str(target.resolve()), trial_number=rec.trial_number, strategy=strategy.to_dict(),
        validation_score=outcome.best_score, test_score=test_score,
        test_size=None if task.test is None else len(task.test), seconds=round(seconds, 1),
        metric=info["metric"],
    )
    (target / "autoft_refit.json").write_text(json.dumps(asdict(result), indent=2) + "\n")
    study.set_user_attr("refit", asdict(result))
    logger.info("refit of trial %d saved to %s (test %s)", rec.trial_number, target, test_score)
    return result
