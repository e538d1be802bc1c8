"""The backbone as a searched choice: ``search(data, model=[a, b])`` (issue 12, item 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import autoft
from autoft.errors import BackboneError, BudgetError
from autoft.models.backbone import SHORT_NAMES, models_dir, resolve_backbone
from autoft.searching.backbones import (
    BackboneSearchResult,
    backbone_slug,
    check_models,
    choose,
    counted_trials,
    plan_shares,
    render_backbone_markdown,
    screening_trial,
    share_trials,
)
from autoft.study import load_study

from .helpers import make_tiny_bert, synthetic_texts

SPACE = {
    "frozen_layers": {"type": "int", "low": 0, "high": "L"},
    "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
    "head_learning_rate": 5e-3,
    "head": "linear",
    "pooling": "mean",
    "epochs": 1,
    "batch_size": 16,
    "baselines": [{"frozen_layers": "L"}, {"frozen_layers": 0, "learning_rate": 5e-3}],
}


@pytest.fixture(scope="module")
def two_backbones(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two tiny random BERTs of different depth (2 and 4 blocks) in folders ``small``/``big``."""
    root = tmp_path_factory.mktemp("backbones")
    return (make_tiny_bert(root / "small", num_layers=2, seed=1),
            make_tiny_bert(root / "big", num_layers=4, seed=2))


def test_short_names_and_local_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_backbone("minilm") == resolve_backbone(None)
    assert resolve_backbone("MiniLM") == resolve_backbone(None)
    monkeypatch.setenv("AUTOFT_MODELS_DIR", str(tmp_path))
    assert models_dir() == tmp_path
    # no local copy: the hub id is what from_pretrained is given
    assert resolve_backbone("mpnet") == SHORT_NAMES["mpnet"]
    copy = make_tiny_bert(tmp_path / "all-mpnet-base-v2")
    assert resolve_backbone("mpnet") == str(copy.resolve())
    assert resolve_backbone("sentence-transformers/all-mpnet-base-v2") == str(copy.resolve())
    # another org's model of that name is not the copy; a copy by the whole id is
    assert resolve_backbone("someone-else/all-mpnet-base-v2") == "someone-else/all-mpnet-base-v2"
    other = make_tiny_bert(tmp_path / "someone-else--all-mpnet-base-v2")
    assert resolve_backbone("someone-else/all-mpnet-base-v2") == str(other.resolve())
    # a folder named like a short name wins over the short name
    monkeypatch.chdir(tmp_path)
    make_tiny_bert(tmp_path / "mpnet")
    assert resolve_backbone("mpnet") == str((tmp_path / "mpnet").resolve())


def test_backbone_names_checked_before_anything_loads(tmp_path: Path, tiny_bert: Path) -> None:
    assert backbone_slug("sentence-transformers/all-mpnet-base-v2") == "all-mpnet-base-v2"
    assert backbone_slug("MPNet") == "mpnet"
    with pytest.raises(BackboneError, match="'minilm' and None|same backbone"):
        check_models(["minilm", None])
    with pytest.raises(BackboneError, match="same backbone"):
        check_models(["minilm", "all-MiniLM-L6-v2"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackboneError, match="no config.json"):
        check_models(["minilm", str(tmp_path / "empty")])
    with pytest.raises(BackboneError, match="each backbone must be"):
        check_models(["minilm", 3])
    with pytest.raises(BackboneError, match="no such folder '/no/such/model'"):
        check_models(["minilm", "/no/such/model"])
    with pytest.raises(BackboneError, match="cannot load backbone 'someorg/no-such-model'"):
        check_models(["minilm", "someorg/no-such-model"])  # offline: before any screening
    with pytest.raises(BackboneError, match=r"model=\[\]"):
        autoft.search(synthetic_texts(40), model=[], out=tmp_path / "out", n_trials=2)
    with pytest.raises(BudgetError, match="n_trials=3 cannot search 2 backbones"):
        # (two local backbones: "mpnet" would need its copy in the models folder, or the hub)
        autoft.search(synthetic_texts(40), model=["minilm", str(tiny_bert)], out=tmp_path / "o2",
                      n_trials=3)


def test_shares_follow_the_probe_ranks_and_drop_a_dominated_backbone() -> None:
    screen = [{"name": "a", "score": 0.80, "seconds": 5.0},
              {"name": "b", "score": 0.88, "seconds": 20.0},
              {"name": "c", "score": 0.70, "seconds": 50.0},  # worse and dearer than a
              {"name": "d", "score": None, "seconds": None}]
    plan = {p["name"]: p for p in plan_shares(screen, "maximize")}
    assert [p["name"] for p in plan_shares(screen, "maximize")][-1] == "b"  # best runs last
    assert plan["b"]["rank"] == 0 and plan["b"]["share"] == pytest.approx(2 / 3)
    assert plan["a"]["share"] == pytest.approx(1 / 3)
    assert plan["c"]["share"] == 0 and "a's probe scored as well or better" in plan["c"][
        "screened_out"]
    assert plan["d"]["share"] == 0 and plan["d"]["screened_out"] == "its probe did not finish"
    # probes of a few seconds: timing noise does not screen one out
    close = {p["name"]: p for p in plan_shares(
        [{"name": "a", "score": 0.8, "seconds": 0.14}, {"name": "b", "score": 0.7,
                                                        "seconds": 0.21}], "maximize")}
    assert close["b"]["screened_out"] is None and close["b"]["share"] == pytest.approx(1 / 3)
    # no probe finished: the shares are equal, whatever the list order
    none = plan_shares([{"name": "a", "score": None, "seconds": None},
                        {"name": "b", "score": None, "seconds": None}], "maximize")
    assert [p["share"] for p in none] == [0.5, 0.5]
    # an error metric: lower is better
    low = {p["name"]: p for p in plan_shares(
        [{"name": "a", "score": 0.5, "seconds": 9.0}, {"name": "b", "score": 0.7, "seconds": 1.0}],
        "minimize")}
    assert low["a"]["share"] == pytest.approx(2 / 3) and low["b"]["share"] == pytest.approx(1 / 3)


def test_a_confirmed_backbone_beats_a_single_run() -> None:
    rows = [{"name": "a", "score": 0.90, "confirmed": False},
            {"name": "b", "score": 0.85, "confirmed": True},
            {"name": "c", "score": None, "confirmed": False}]
    assert choose(rows, "maximize")["name"] == "b"
    rows[0]["confirmed"] = True
    assert choose(rows, "maximize")["name"] == "a"
    assert choose(rows, "minimize")["name"] == "b"


def test_a_single_run_far_beyond_the_seed_noise_outranks_a_confirmed_backbone() -> None:
    # the backbone_choice run that chose MiniLM: its confirmed 0.8215 (3 seeds, std 0.0024)
    # against MPNet's unconfirmed 0.9117; the margin is 2 x 0.0024 x sqrt(1 + 1/3) = 0.0055
    minilm = {"name": "minilm", "score": 0.8215, "score_std": 0.0024, "seeds": 3,
              "confirmed": True}
    mpnet = {"name": "mpnet", "score": 0.9117, "score_std": None, "seeds": 1, "confirmed": False}
    assert choose([minilm, mpnet], "maximize")["name"] == "mpnet"
    assert choose([mpnet, minilm], "maximize")["name"] == "mpnet"  # order does not matter
    mpnet["score"] = 0.8265  # ahead by 0.005, inside the margin: the confirmed one wins
    assert choose([minilm, mpnet], "maximize")["name"] == "minilm"
    mpnet["score"] = 0.8275  # ahead by 0.006: beyond it
    assert choose([minilm, mpnet], "maximize")["name"] == "mpnet"
    # an error metric: the unconfirmed one must be lower by the margin
    low = [{**minilm, "score": 0.50}, {**mpnet, "score": 0.45}]
    assert choose(low, "minimize")["name"] == "mpnet"
    low[1]["score"] = 0.496
    assert choose(low, "minimize")["name"] == "minilm"
    # no seed spread measured anywhere: confirmed first, however far behind
    bare = [{**minilm, "score_std": None}, {**mpnet, "score": 0.95}]
    assert choose(bare, "maximize")["name"] == "minilm"
    # the comparison report says why the unconfirmed one was chosen
    mpnet["score"] = 0.9117
    rows = [{**r, "folder": f"backbones/{r['name']}", "seconds": 157.0, "share": 0.5}
            for r in (minilm, mpnet)]
    md = render_backbone_markdown({"metric": "accuracy", "direction": "maximize",
                                   "chosen": "mpnet", "backbones": rows})
    assert ("It is chosen over `minilm`'s confirmed 0.8215 because it is ahead by 0.0902, more "
            "than twice the standard error of the difference (0.0055") in md
    md = render_backbone_markdown({"metric": "accuracy", "direction": "maximize",
                                   "chosen": "minilm", "backbones": rows})
    assert "It is chosen over" not in md


def test_search_over_two_backbones(two_backbones: tuple[Path, Path], tmp_path: Path) -> None:
    small, big = two_backbones
    result = autoft.search(synthetic_texts(160), model=[str(small), str(big)], space=SPACE,
                           out=tmp_path, n_trials=8, device="cpu", validation_size=40, seeds=2,
                           curve_sizes=())
    assert isinstance(result, BackboneSearchResult)
    state = json.loads((tmp_path / "backbones.json").read_text())
    names = {e["name"] for e in state["backbones"]}
    assert names == {str(small), str(big)}
    for entry in state["backbones"]:  # each backbone's probe was its first trial
        assert entry["folder"] == f"backbones/{Path(entry['name']).name}"  # relative to OUT
        study = load_study(tmp_path / entry["folder"])
        first = study.trials[0]
        assert first.user_attrs["baseline"] and first.params["frozen_layers"] in (2, 4)
        assert entry["screen_score"] == pytest.approx(first.value)
        if entry["screened_out"] is None:  # the probe and at least one more
            assert entry["share"] > 0 and len(study.trials) >= 2
        else:  # dominated: the other's probe scored as well and cost less; nothing more ran
            assert "scored as well or better and cost less" in entry["screened_out"]
            assert entry["share"] == 0 and len(study.trials) == 1
    assert sum(e["share"] for e in state["backbones"]) == pytest.approx(1.0)
    assert result.backbone_ == state["chosen"] in names
    chosen = next(r for r in result.backbones_ if r["name"] == result.backbone_)
    other = next(r for r in result.backbones_ if r["name"] != result.backbone_)
    assert result.recommended_score_ == pytest.approx(chosen["score"])
    if chosen["confirmed"] == other["confirmed"] and other["score"] is not None:
        assert chosen["score"] >= other["score"]
    assert result.recommended_strategy_ == result.results_[result.backbone_].recommended_strategy_
    with pytest.raises(AttributeError, match="no attribute 'best_parms_'"):
        _ = result.best_parms_  # a typo is an error, not None
    assert repr(result).startswith(f"BackboneSearchResult(backbone_={result.backbone_!r}")
    md = (tmp_path / "report.md").read_text()
    assert f"**Backbone `{result.backbone_}`**" in md and "## Backbones" in md
    assert md.count("| " + str(small)) == 1 and md.count("| " + str(big)) == 1
    # `autoft refit OUT` / `load_study(OUT)` follow the choice
    assert load_study(tmp_path).study_name == "autoft"
    assert Path(chosen["folder"]).name == Path(result.backbone_).name
    # a one-backbone search into this folder is refused, and the other way round
    with pytest.raises(autoft.AutoftError, match="holds a multi-backbone search"):
        autoft.search(synthetic_texts(160), model=str(small), space=SPACE, out=tmp_path,
                      n_trials=1, device="cpu", validation_size=40)
    single = tmp_path / "single"
    autoft.search(synthetic_texts(160), model=str(small), space=SPACE, out=single, n_trials=1,
                  device="cpu", validation_size=40, seeds=1, curve_sizes=())
    with pytest.raises(autoft.AutoftError, match="holds the study of a one-backbone search"):
        autoft.search(synthetic_texts(160), model=[str(small), str(big)], space=SPACE,
                      out=single, n_trials=4, device="cpu", validation_size=40)


def test_cli_model_repeated_then_report_status_and_refit(two_backbones: tuple[Path, Path],
                                                         tmp_path: Path) -> None:
    from click.testing import CliRunner

    from autoft.cli import main

    from .helpers import synthetic_csv

    small, big = two_backbones
    data = synthetic_csv(tmp_path / "reviews.csv", n=160)
    space = tmp_path / "space.yaml"
    space.write_text("frozen_layers: {type: int, low: 0, high: L}\nhead_learning_rate: 0.005\n"
                     "learning_rate: 0.005\nepochs: 1\nbatch_size: 16\nbaselines:\n"
                     "  - {frozen_layers: L}\n")
    out = tmp_path / "out"
    runner = CliRunner()
    result = runner.invoke(main, [
        "search", str(data), "--model", str(small), "--model", str(big), "--n-trials", "5",
        "--out", str(out), "--space", str(space), "--device", "cpu", "--no-progress",
        "--seeds", "1", "--curve-sizes", ""])
    assert result.exit_code == 0, result.output
    chosen = json.loads((out / "backbones.json").read_text())["chosen"]
    assert f"Chosen backbone: {chosen}" in result.output
    # each search is announced and its trial lines name the backbone
    assert f"backbone {small}\n" in result.output and f"backbone {big}\n" in result.output
    assert "small: trial   0 " in result.output and "big: trial   0 " in result.output
    assert (out / "backbones" / "small" / "report.md").is_file()
    assert (out / "backbones" / "big" / "report.md").is_file()
    (out / "report.md").unlink()
    rebuilt = runner.invoke(main, ["report", str(out)])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert f"**Backbone `{chosen}`**" in (out / "report.md").read_text()
    status = runner.invoke(main, ["status", str(out)])
    assert status.exit_code == 0, status.output
    # every backbone's study, the chosen one marked
    assert f"chosen backbone: {chosen}" in status.output
    assert f"backbone {chosen} (chosen):" in status.output
    assert status.output.count("  study autoft: ") == 2, status.output
    other = str(big) if chosen == str(small) else str(small)
    assert f"backbone {other}:" in status.output
    # a second multi-backbone run on the folder in use is refused before anything loads
    from autoft.study import lock_folder

    with lock_folder(out):
        busy = runner.invoke(main, [
            "search", str(data), "--model", str(small), "--model", str(big), "--n-trials", "5",
            "--out", str(out), "--space", str(space), "--device", "cpu", "--no-progress"])
    assert busy.exit_code == 2 and "is in use by another autoft search" in busy.output
    refit = runner.invoke(main, ["refit", str(out), "--device", "cpu"])
    assert refit.exit_code == 0, refit.output
    saved = json.loads((out / "model" / "config.json").read_text())
    expected = 2 if Path(chosen).name == "small" else 4
    assert saved["backbone_config"]["num_hidden_layers"] == expected  # the chosen backbone
    # the comparison report survived the refit's report rewrite
    assert f"**Backbone `{chosen}`**" in (out / "report.md").read_text()
    # while the backbones are screened (backbones.json not written yet), status lists their studies
    (out / "backbones.json").unlink()
    screening = runner.invoke(main, ["status", str(out)])
    assert screening.exit_code == 0, screening.output
    assert "multi-backbone search, screening its backbones" in screening.output
    assert "backbone big:\n  study autoft: " in screening.output
    assert "backbone small:\n  study autoft: " in screening.output


def test_screening_trial_trial_counts_and_trial_shares() -> None:
    trials = {"number": [0, 1, 2, 3], "status": ["interrupted", "complete", "complete", "skipped"],
              "baseline": [True, True, False, False], "score": [None, 0.7, 0.9, None],
              "seconds": [3.0, 12.0, 5.0, None], "cache_seconds": [0.0, 10.0, 0.0, 0.0]}
    # the first baseline that finished; its seconds without the cache fill
    assert screening_trial(trials) == {"number": 1, "score": 0.7, "seconds": 2.0}
    assert screening_trial({**trials, "status": ["interrupted", "pruned", "complete",
                                                 "skipped"]}) is None
    assert counted_trials(trials) == 2  # interrupted and skipped trials do not count
    assert share_trials(3, [("c", 1 / 7), ("b", 2 / 7), ("a", 4 / 7)]) == {"c": 1, "b": 1, "a": 1}
    assert sum(share_trials(10, [("c", 1 / 7), ("b", 2 / 7), ("a", 4 / 7)]).values()) == 10
    assert share_trials(0, [("b", 0.5), ("a", 0.5)]) == {"b": 0, "a": 0}


def test_a_rerun_resumes_without_growing_past_n_trials(two_backbones: tuple[Path, Path],
                                                        tmp_path: Path) -> None:
    small, big = two_backbones
    args = {"model": [str(small), str(big)], "space": SPACE, "out": tmp_path, "n_trials": 6,
            "device": "cpu", "validation_size": 40, "seeds": 1, "curve_sizes": ()}
    first = autoft.search(synthetic_texts(160), **args)
    counts = {n: counted_trials(r.trials_) for n, r in first.results_.items()}
    assert sum(counts.values()) == 6
    again = autoft.search(synthetic_texts(160), **args)
    assert {n: counted_trials(r.trials_) for n, r in again.results_.items()} == counts
    assert again.backbone_ == first.backbone_
