"""Exporting a trained classifier as a Hugging Face model: ``save_pretrained`` and ``pipeline``.

The classes live in :mod:`autoft.models.modeling_autoft` (standalone). Importing this module
registers them with transformers' Auto classes; ``import autoft`` arranges for that to happen as
soon as transformers' Auto classes are imported (see :mod:`autoft._hf_hook`), so a saved folder
loads with ``transformers.pipeline("text-classification", model=DIR)`` without
``trust_remote_code``. :func:`make_portable` copies the modeling file into a saved folder, so it
loads where autoft is not installed (``trust_remote_code=True``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForImageClassification,
    AutoModelForSequenceClassification,
)

from autoft.models import modeling_autoft
from autoft.models.classifier import AutoftClassifier
from autoft.models.modeling_autoft import (
    AutoftConfig,
    AutoftForImageClassification,
    AutoftForSequenceClassification,
)
from autoft.strategies.base import Head
from autoft.tasks import task_kind

__all__ = ["AutoftConfig", "AutoftForSequenceClassification", "make_portable",
           "register_auto_classes", "to_pretrained"]


def to_pretrained(
    model: AutoftClassifier, id2label: dict[int, str], strategy: dict[str, Any],
    task: str = "classification", max_length: int | None = None,
    output_transform: tuple[float, float] = (1.0, 0.0),
) -> AutoftForSequenceClassification | AutoftForImageClassification:
    """Turn a trained classifier into a ``PreTrainedModel`` with the same weights (an
    :class:`AutoftForImageClassification` for an image backbone).

    Args:
        model: The trained classifier (already passed through the strategy's ``export`` hook).
        id2label: Label name of each class id.
        strategy: ``Strategy.to_dict()`` of its training: the head and pooling are read from it
            and it is stored in the config.
        task: The task kind's name. Default ``"classification"``.
        max_length: Tokens per input in training; longer inputs are cut to it. Default None.
        output_transform: ``(scale, shift)`` folded into the head's last linear layer, so the
            exported model outputs ``scale * output + shift`` (a regression target's units, see
            :meth:`autoft.tasks.TaskKind.output_transform`). Default ``(1.0, 0.0)``.

    Raises:
        RuntimeError: The classifier's weights do not fit the rebuilt model.
    """
    head = Head(kind=strategy.get("head", "linear"), width=strategy.get("head_width", 256),
                depth=strategy.get("head_depth", 1), dropout=strategy.get("head_dropout", 0.1))
    config = AutoftConfig(
        backbone_config=model.encoder.config.to_dict(),  # type: ignore[operator,union-attr]
        head=head.to_dict(),
        pooling=model.pooling,
        pair_encoding=model.pair_encoding,
        strategy=strategy,
        task=task,
        trained_max_length=max_length,
        problem_type=task_kind(task).problem_type,
        id2label={int(i): str(n) for i, n in id2label.items()},
        label2id={str(n): int(i) for i, n in id2label.items()},
    )
    from autoft.models.image import ImageAdapter

    image = isinstance(model.adapter, ImageAdapter)
    out = AutoftForImageClassification(config) if image else AutoftForSequenceClassification(config)
    missing, unexpected = out.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(not k.endswith("position_ids") for k in missing):
        raise RuntimeError(f"weights do not fit: missing {missing}, unexpected {unexpected}")
    scale, shift = (float(v) for v in output_transform)
    if (scale, shift) != (1.0, 0.0):
        last = [m for m in out.head.modules() if isinstance(m, torch.nn.Linear)][-1]
        with torch.no_grad():
            last.weight.mul_(scale)
            last.bias.mul_(scale).add_(shift)
    return out.eval()


def make_portable(folder: str | Path) -> None:
    """Make a saved model folder load without autoft: copy ``modeling_autoft.py`` into it and
    name its classes in ``config.json``'s ``auto_map``; it then loads with
    ``AutoModelForSequenceClassification.from_pretrained(DIR, trust_remote_code=True)`` or
    ``pipeline(..., trust_remote_code=True)``.

    Raises:
        FileNotFoundError: The folder has no ``config.json``.
    """
    folder = Path(folder)
    shutil.copyfile(modeling_autoft.__file__, folder / "modeling_autoft.py")
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config["auto_map"] = {
        "AutoConfig": "modeling_autoft.AutoftConfig",
        "AutoModelForSequenceClassification": "modeling_autoft.AutoftForSequenceClassification",
    }
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def register_auto_classes() -> None:
    """Register :class:`AutoftConfig`, :class:`AutoftForSequenceClassification` and
    :class:`AutoftForImageClassification` with transformers' ``AutoConfig``,
    ``AutoModelForSequenceClassification`` and ``AutoModelForImageClassification``
    (idempotent)."""
    AutoConfig.register("autoft", AutoftConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(
        AutoftConfig, AutoftForSequenceClassification, exist_ok=True
    )
    AutoModelForImageClassification.register(
        AutoftConfig, AutoftForImageClassification, exist_ok=True
    )


register_auto_classes()
