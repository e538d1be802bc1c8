"""Refit: train a study's recommended strategy once more and save it as a Hugging Face model.

``autoft refit DIR`` (or ``search(..., refit=True)``) trains the recommended strategy on the study's
training split with the trial's seed (and the frozen-prefix cache where it pays, as the trials
did), keeps the weights of its best validation evaluation, scores the test split when there is one,
and saves model, tokenizer, ``id2label`` and the strategy with ``save_pretrained``. The folder loads
with ``transformers.pipeline("text-classification", model=DIR)`` once ``autoft`` is imported.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from autoft.analysis import recommend_from_info
from autoft.errors import AutoftError, StrategyError, StudyError
from autoft.models.backbone import load_backbone
from autoft.study import StudyAttr, load_study, trial_records
from autoft.study.info import stored_info, task_from_study
from autoft.training import (
    PrefixCache,
    encode_split,
    eval_steps,
    pad_id,
    predict_outputs,
    resolve_device,
    train_strategy,
)
from autoft.training.pixels import ImageInputs

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
        pipeline_task: The ``transformers.pipeline`` task that loads the model.
        validation_view, test_view: The task's own view of the saved weights on each split
            (:meth:`autoft.tasks.TaskKind.view`: per-class table and confusion matrix, or
            residuals and scatter points); None without it.
    """

    path: str
    trial_number: int
    strategy: dict[str, Any]
    validation_score: float | None
    test_score: float | None
    test_size: int | None
    seconds: float
    metric: str
    pipeline_task: str = "text-classification"
    validation_view: dict[str, Any] | None = None
    test_view: dict[str, Any] | None = None


def model_card(info: dict[str, Any], rec: Any, result: RefitResult, pipeline_task: str,
               portable: bool) -> str:
    """The ``README.md`` of a saved model folder: what it is, its strategy, scores and data, and
    how to load it (a Hugging Face model card with its YAML header)."""
    data = info.get("data", {})
    name = Path(result.path).name
    metric = result.metric
    scores = [f"| validation (this refit, best evaluation) | {metric} | "
              f"{result.validation_score:.4f} |"]
    if result.test_score is not None:
        scores.append(f"| test ({result.test_size} examples) | {metric} | {result.test_score:.4f} |")
    spread = "" if rec.score_std is None else f" (standard deviation {rec.score_std:.4f})"
    scores.append(f"| validation, the search's runs of this strategy | {metric} | "
                  f"{rec.score:.4f}, mean of {rec.seeds}{spread} |")
    load = ['import autoft, transformers  # autoft registers the model class',
            f'clf = transformers.pipeline("{pipeline_task}", model="{result.path}")']
    if portable:
        load += ["", "# without autoft installed (the folder carries modeling_autoft.py):",
                 f'clf = transformers.pipeline("{pipeline_task}", model="{result.path}", '
                 "trust_remote_code=True)"]
    classes = ", ".join(f"{i} = {n}" for i, n in (data.get("id2label") or {}).items())
    image = data.get("modality") == "image"
    inputs = (f"- inputs: images (any size and mode), read as RGB, resized so the shorter side is "
              f"{result.strategy.get('resolution') or 'the backbone resolution'} px and "
              "centre-cropped, as in training (the folder's preprocessor_config.json)"
              if image else
              f"- inputs: at most {info.get('max_length')} tokens, as in training; longer texts "
              "are cut to that length (the first tokens and the end-of-text token).")
    return "\n".join([
        "---", "library_name: transformers", f"pipeline_tag: {pipeline_task}",
        "tags: [autoft]", "---", "",
        f"# {name}", "",
        f"A `{info.get('backbone')}` backbone ({info.get('model_type')}, "
        f"{info.get('num_layers')} blocks) fine-tuned for {data.get('task', 'classification')} "
        f"by autoft, which searched how to fine-tune it and recommended "
        f"trial {result.trial_number}'s strategy:", "",
        f"**{rec.strategy.describe(info.get('num_layers'))}**", "",
        "```json", json.dumps(result.strategy, indent=2, sort_keys=True), "```", "",
        "## Scores", "", "| data | metric | value |", "|---|---|---|", *scores, "",
        "## Data", "",
        f"- training: {data.get('train_size')} examples from `{data.get('source')}` "
        f"({'image' if image else 'text'} column `{data.get('text_column')}`"
        + (f", pair column `{data.get('text_pair_column')}`" if data.get("text_pair_column")
           else "") + f", label column `{data.get('label_column')}`)",
        f"- validation: {data.get('validation_size')} examples",
        f"- classes: {classes}",
        inputs, "",
        "## How to load it", "", "```python", *load, "```", "",
        "The backbone's own terms (licence) apply to this model.", "",
    ])


def hub_name(info: dict[str, Any]) -> str:
    """The study's backbone as a name that loads elsewhere: a short name or the bundled default
    becomes its hub id; a folder stays a folder."""
    from autoft.models.backbone import DEFAULT_BACKBONE, SHORT_NAMES

    name = str(info.get("backbone") or info.get("backbone_path"))
    name = SHORT_NAMES.get(name.lower(), name)
    if name == DEFAULT_BACKBONE:
        return f"sentence-transformers/{DEFAULT_BACKBONE}"
    path = info.get("backbone_path")
    if path and (name.startswith((".", "/", "~")) or Path(name).expanduser().is_dir()):
        return str(Path(str(path)).resolve())  # a local folder: absolute, so it loads anywhere
    return name


def _match_umask(folder: Path) -> None:
    """Give every file in ``folder`` the permissions a new file gets (some writers, such as
    safetensors, create theirs readable by the owner only)."""
    mask = os.umask(0)
    os.umask(mask)
    for path in folder.iterdir():
        if path.is_file():
            path.chmod(0o666 & ~mask)


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
    seed: int | None = None,
    cache: bool = True,
    progress: Callable[[int, int, float], None] | None = None,
    portable: bool = False,
    adapter: bool = False,
) -> RefitResult:
    """Train the recommended strategy of a study and save it with ``save_pretrained``.

    Args:
        out: The search's output folder. Default None (then give ``storage``).
        storage: The study's database URL instead of ``out``. Default None.
        study_name: The study's name; None for the only one. Default None.
        save_to: Folder for the model; default ``OUT/model``.
        data, validation, test: The study's data when its stored paths do not exist here.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``. Default ``"auto"``.
        seed: Training seed; None for the recommended trial's own seed. Default None.
        cache: Use the frozen-prefix cache where it pays, as the trials did. Default True.
        progress: Called as ``progress(eval_index, evals_total, score)`` after each validation
            evaluation (a line per evaluation is also logged at INFO level). Default None.
        portable: Also copy the model's code into the folder (see
            :func:`autoft.models.hf_model.make_portable`), so it loads where autoft is not
            installed, with ``trust_remote_code=True``. Default False.
        adapter: Also save a LoRA recommendation's adapters alone, in peft's format, to
            ``SAVE_TO/adapter`` (see :meth:`autoft.strategies.lora.LoraStrategy.save_adapter`),
            for serving many adapters on one backbone. Default False.

    Returns:
        A :class:`RefitResult`; it is also stored in the study (user attribute ``refit``), so the
        report shows it.

    Raises:
        StudyError: No study, or no trial that trained to the end.
        StrategyError: ``adapter=True`` for a strategy without adapters (before training).
        DataError: The study's data cannot be found or differ from the study's.
    """
    study = load_study(out, study_name, storage)
    info = dict(stored_info(study))
    info.setdefault("seeds", (study.user_attrs.get(StudyAttr.FOLLOWUPS) or {}).get("seeds", 3))
    records = trial_records(study.get_trials(deepcopy=False))
    rec = recommend_from_info(records, info)
    if rec is None:
        raise StudyError("no trial of the study trained its strategy to the end, so there is "
                         "nothing to refit yet; resume the search with a larger budget")
    if adapter:
        problem = rec.strategy.adapter_problem(int(info["num_layers"]))
        if problem is not None:
            raise StrategyError(f"adapter=True: {problem}")
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
        ) from None
    task = task_from_study(info, data=data, validation=validation, test=test)
    try:
        encoder, tokenizer, _ = load_backbone(info.get("backbone"))
    except AutoftError:
        encoder, tokenizer, _ = load_backbone(info["backbone_path"])
    dev = resolve_device(device)
    max_length = int(info["max_length"])
    pad = pad_id(tokenizer)
    if seed is None:
        trial_seed = next((r.seed for r in records if r.number == rec.trial_number), None)
        seed = int(trial_seed) if trial_seed is not None else int(info["seed"])
    strategy = rec.strategy
    started = time.monotonic()
    train_enc = encode_split(tokenizer, task.train, max_length, strategy.resolution)
    evals_per_epoch = int(info["evals_per_epoch"])
    total = len(eval_steps(-(-len(train_enc) // strategy.batch_size), strategy.epochs,
                           evals_per_epoch))

    def report(index: int, score: float) -> bool:
        logger.info("refit: evaluation %d/%d, validation %s %.4f (%.0f s)", index, total,
                    info["metric"], score, time.monotonic() - started)
        if progress is not None:
            progress(index, total, score)
        return False

    kind = task.kind  # bound to the labels once (regression: their mean and spread)
    outcome, model = train_strategy(
        encoder, strategy, train_enc,
        encode_split(tokenizer, task.validation, max_length, strategy.resolution),
        task.num_labels, pad_id=pad, metric=info["metric"], task=kind, device=dev,
        seed=seed, evals_per_epoch=evals_per_epoch, keep_best=True,
        cache=PrefixCache() if cache else None, report=report,
    )
    seconds = time.monotonic() - started
    model.cached_layers = 0
    test_score = test_view = None
    if task.test is not None:
        test_enc = encode_split(tokenizer, task.test, max_length, strategy.resolution)
        outputs = predict_outputs(model, test_enc, pad, dev)  # (N, K)
        test_score = kind.score(info["metric"], test_enc.labels, outputs)
        test_view = kind.view([kind.details(test_enc.labels, outputs)], task.labels)
    from autoft.models.hf_model import make_portable, to_pretrained

    pipeline_task = ("image-classification" if task.modality == "image"
                     else kind.pipeline_task)

    if adapter:
        strategy.save_adapter(model, target / "adapter", hub_name(info), extra={
            "task": task.task, "max_length": max_length,
            "labels": kind.export_labels(task.labels, task.label_column),
            # a regression head predicts standardised scores: output * scale + shift
            "output_transform": kind.output_transform()})
    hf = to_pretrained(strategy.export(model).cpu(),
                       kind.export_labels(task.labels, task.label_column),
                       strategy.to_dict(), task=task.task, max_length=max_length,
                       output_transform=kind.output_transform())
    hf.save_pretrained(target)
    if isinstance(tokenizer, ImageInputs):  # the image processor, at the trained resolution
        dataclasses.replace(tokenizer, resolution=strategy.resolution or tokenizer.resolution
                            ).save_pretrained(target)
    else:
        tokenizer.model_max_length = max_length  # truncation=True cuts where training cut
        tokenizer.save_pretrained(target)
    if portable:
        make_portable(target)
    result = RefitResult(
        path=str(target.resolve()), trial_number=rec.trial_number, strategy=strategy.to_dict(),
        validation_score=outcome.best_score, test_score=test_score,
        test_size=None if task.test is None else len(task.test), seconds=round(seconds, 1),
        metric=info["metric"], pipeline_task=pipeline_task,
        validation_view=kind.view([outcome.details], task.labels), test_view=test_view,
    )
    (target / "autoft_refit.json").write_text(json.dumps(asdict(result), indent=2) + "\n")
    (target / "README.md").write_text(model_card(info, rec, result, pipeline_task, portable))
    _match_umask(target)
    study.set_user_attr(StudyAttr.REFIT, asdict(result))
    logger.info("refit of trial %d saved to %s (test %s)", rec.trial_number, target, test_score)
    return result
