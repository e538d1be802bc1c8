"""A short real search: the bundled all-MiniLM-L6-v2 on 200 shipped SST-2 rows."""

from __future__ import annotations

from pathlib import Path

import pytest

import autoft
from autoft.searching import SearchSpace

from .helpers import DATA

pytestmark = pytest.mark.integration


def test_real_minilm_search_on_shipped_sst2(tmp_path: Path) -> None:
    space = SearchSpace.load().to_dict()
    space["epochs"] = 2
    result = autoft.search(
        DATA / "sst2_train_200.tsv", validation=DATA / "sst2_dev_100.tsv", n_trials=3,
        space=space, out=tmp_path, device="cpu", pruner="none",
    )
    trials = result.trials_
    # the three baselines, cheapest first: linear probe, half frozen, full fine-tuning
    assert trials["frozen_layers"] == [6, 3, 0]
    assert trials["status"] == ["complete"] * 3
    minilm = 22_713_216 - 147_840  # all-MiniLM-L6-v2 without its pooler
    assert trials["total_params"][2] == minilm + 384 * 2 + 2
    assert trials["trainable_params"][2] == minilm + 384 * 2 + 2
    assert trials["trainable_params"][0] == 384 * 2 + 2  # linear probe: the head only
    # 200 noisy movie-review phrases still beat chance (0.5) on real dev sentences
    assert result.best_score_ is not None and result.best_score_ >= 0.65
    report = (tmp_path / "report.md").read_text()
    assert "## Recommendation" in report and "linear probe" in report
