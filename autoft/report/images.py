"""The report's grid of misclassified validation images (image classification)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from autoft.analysis import recommend_from_info
from autoft.study import trial_records
from autoft.study.info import stored_info

__all__ = ["GRID_FILE", "write_misclassified_grid"]

logger = logging.getLogger(__name__)

#: The grid's file name in the output folder (the Markdown report shows it when present).
GRID_FILE = "misclassified.png"
def write_misclassified_grid(study: Any, images: list[Any], out_dir: str | Path,
                             tile: int = 96) -> Path | None:
    """Draw the recommended strategy's misclassified validation images (from its best
    evaluation) as one PNG, each captioned ``true -> predicted``; remove a stale grid when there
    is nothing to show.

    Args:
        study: The study (its recommendation and the trials' stored details).
        images: The validation split's image references, in the split's order.
        out_dir: Where :data:`GRID_FILE` goes.
        tile: Side of each thumbnail, in pixels. Default 96.

    Returns:
        The file written, or None (no recommendation, no mistakes, no details).
    """
    from PIL import Image, ImageDraw

    from autoft.data.images import open_image

    path = Path(out_dir) / GRID_FILE
    info = stored_info(study)
    records = trial_records(study.get_trials(deepcopy=False))
    rec = recommend_from_info(records, info)
    chosen = None if rec is None else next(
        (r for r in records if r.number == rec.trial_number), None)
    shown = (chosen.details or {}).get("misclassified") if chosen is not None else None
    if not shown:
        path.unlink(missing_ok=True)
        return None
    names = {int(k): str(v) for k, v in (info.get("data", {}).get("id2label") or {}).items()}
    true = (chosen.details or {}).get("labels") or []
    columns = min(8, len(shown))
    rows = -(-len(shown) // columns)
    caption = 14
    grid = Image.new("RGB", (columns * tile, rows * (tile + caption)), "white")
    draw = ImageDraw.Draw(grid)
    for n, (index, predicted) in enumerate(shown):
        if not 0 <= index < len(images):
            continue
        thumb = open_image(images[index])
        scale = tile / max(thumb.width, thumb.height)  # small images are enlarged, pixelated
        thumb = thumb.resize((max(1, round(thumb.width * scale)),
                              max(1, round(thumb.height * scale))),
                             Image.Resampling.NEAREST if scale > 1 else Image.Resampling.BILINEAR)
        x, y = (n % columns) * tile, (n // columns) * (tile + caption)
        grid.paste(thumb, (x + (tile - thumb.width) // 2, y + (tile - thumb.height) // 2))
        label = names.get(int(true[n]), str(true[n])) if n < len(true) else "?"
        text = f"{label} -> {names.get(int(predicted), str(predicted))}"
        draw.text((x + 2, y + tile), text[: tile // 6], fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    grid.save(tmp)
    tmp.replace(path)
    return path
