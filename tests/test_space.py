from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from autoft.errors import SearchSpaceError
from autoft.searching.space import SearchSpace, default_space_path
from autoft.strategies import Strategy


def test_default_space_loads_and_resolves() -> None:
    assert default_space_path().name == "default.yaml"
    space = SearchSpace.load().resolved(6)
    fl = space.params["frozen_layers"]
    assert (fl.kind, fl.low, fl.high) == ("int", 0, 6)
    # cheapest first; the fourth (a cosine bi-encoder) is for sentence pairs only
    assert [b["frozen_layers"] for b in space.baselines] == [6, 3, 0, 0]
    assert space.max_epochs == 3


def test_suggest_covers_range_and_conditionals() -> None:
    space = SearchSpace.load().resolved(6)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(60):
        trial = study.ask()
        strategy = space.suggest(trial, 6)
        assert isinstance(strategy, Strategy) and 0 <= strategy.frozen_layers <= 6
        seen.add(strategy.frozen_layers)
        assert ("learning_rate" in trial.params) == (strategy.frozen_layers < 6)
        assert ("head_width" in trial.params) == (strategy.head.kind == "mlp")
        assert 1e-4 <= strategy.effective_head_learning_rate <= 5e-3
        assert strategy.epochs == 3 and strategy.weight_decay == 0.01
        study.tell(trial, 0.0)
    assert seen == set(range(7))


def test_fixed_trial_reproduces_baseline() -> None:
    space = SearchSpace.load().resolved(6)
    params = {**space.baselines[0], "head_dropout": 0.0}
    strategy = space.suggest(optuna.trial.FixedTrial(params), 6)
    assert strategy.frozen_layers == 6 and strategy.head.kind == "linear"
    assert strategy.effective_head_learning_rate == 3e-3


def test_dict_space_with_fixed_values() -> None:
    space = SearchSpace.load({"frozen_layers": {"type": "int", "low": "L/2", "high": "L"},
                              "epochs": {"type": "categorical", "choices": [1, 2]},
                              "head": "mlp", "head_width": 8}).resolved(4)
    strategy = space.suggest(optuna.trial.FixedTrial({"frozen_layers": 3, "epochs": 2}), 4)
    assert (strategy.frozen_layers, strategy.epochs, strategy.head.width) == (3, 2, 8)
    assert space.max_epochs == 2
    assert SearchSpace.load(space.to_dict()).to_dict() == space.to_dict()


@pytest.mark.parametrize(
    ("raw", "message"),
    [({"dora_rank": 8}, "unknown search space fields \\['dora_rank'\\]"),
     ({"learning_rate": {"type": "float", "low": 1e-3, "high": 1e-5}}, "greater than high"),
     ({"learning_rate": {"type": "float", "low": 0.0, "high": 1e-3, "log": True}}, "low > 0"),
     ({"learning_rate": {"type": "gaussian"}}, "type must be"),
     ({"learning_rate": {"type": "float", "low": 1e-5}}, "needs 'low' and 'high'"),
     ({"epochs": {"type": "float", "low": 1, "high": 3}}, "use type: int"),
     ({"head": {"type": "categorical", "choices": ["linear", "cnn"]}}, "not one of"),
     ({"head": {"type": "categorical", "choices": []}}, "non-empty list"),
     ({"pooling": "max"}, "not one of"),
     ({"batch_size": "big"}, "not a number or an expression of L"),
     ({"epochs": {"type": "int", "low": 1, "high": 3, "step": 2}}, "unknown keys"),
     ({"baselines": [{"frozen_layers": 0, "dropout": 1}]}, "baseline 0: unknown fields"),
     (["a", "list"], "must be a mapping")],
)
def test_malformed_spaces_rejected(raw: object, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=message):
        SearchSpace.load(raw)  # type: ignore[arg-type]


def test_frozen_range_beyond_backbone_rejected() -> None:
    space = SearchSpace.load({"frozen_layers": {"type": "int", "low": 0, "high": 12}})
    with pytest.raises(SearchSpaceError, match="outside 0..6"):
        space.resolved(6)


def test_baseline_beyond_backbone_rejected() -> None:
    space = SearchSpace.load({"baselines": [{"frozen_layers": "L+1"}]})
    with pytest.raises(SearchSpaceError, match="baseline 0: frozen_layers=7 is outside 0..6"):
        space.resolved(6)


def test_yaml_file_errors(tmp_path: Path) -> None:
    with pytest.raises(SearchSpaceError, match="does not exist"):
        SearchSpace.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("frozen_layers: {type: int, low: 0\n")
    with pytest.raises(SearchSpaceError, match="not valid YAML"):
        SearchSpace.load(bad)
    good = tmp_path / "good.yaml"
    good.write_text("frozen_layers: L\nhead_learning_rate: 0.001\n")
    space = SearchSpace.load(good).resolved(4)
    assert space.suggest(optuna.trial.FixedTrial({}), 4).frozen_layers == 4


def test_l_expressions_in_choices_are_resolved() -> None:
    space = SearchSpace.load({"frozen_layers": {"type": "categorical",
                                                "choices": [0, "L/2", "L"]}}).resolved(6)
    assert space.params["frozen_layers"].choices == (0, 3, 6)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = {space.suggest(study.ask(), 6).frozen_layers for _ in range(30)}
    assert seen == {0, 3, 6}


def test_resolved_space_has_optuna_distributions() -> None:
    dists = SearchSpace.load().resolved(6).distributions()
    assert dists["frozen_layers"] == optuna.distributions.IntDistribution(0, 6)
    assert dists["learning_rate"] == optuna.distributions.FloatDistribution(1e-5, 2e-4, log=True)
    assert "epochs" not in dists  # fixed fields are not searched


def test_edited_categorical_choices_refused_on_resume() -> None:
    old = SearchSpace.load({"head": "mlp", "head_width": {"type": "categorical",
                                                          "choices": [16, 32]}}).resolved(4)
    study = optuna.create_study()
    for _ in range(2):
        trial = study.ask()
        old.suggest(trial, 4)
        study.tell(trial, 0.5)
    new = SearchSpace.load({"head": "mlp", "head_width": {"type": "categorical",
                                                          "choices": [8, 16]}}).resolved(4)
    with pytest.raises(SearchSpaceError, match=r"'head_width' has choices \[8, 16\], but this "
                       r"study's trials used \[16, 32\]"):
        new.check_against(study)
    wider = SearchSpace.load({"head": "mlp", "head_width": {"type": "categorical",
                                                            "choices": [16, 32]},
                              "learning_rate": 1e-3}).resolved(4)
    wider.check_against(study)  # same choices: fine


def test_kind_is_suggested_first_and_its_fields_only_for_it() -> None:
    space = SearchSpace.load({"kind": "freeze", "frozen_layers": 2}).resolved(4)
    trial = optuna.trial.FixedTrial({})
    strategy = space.suggest(trial, 4)
    assert strategy.kind == "freeze" and strategy.frozen_layers == 2
    assert SearchSpace.load({"kind": {"type": "categorical", "choices": ["freeze"]}}).kinds() == (
        "freeze",)
    with pytest.raises(SearchSpaceError, match="not one of"):
        SearchSpace.load({"kind": "adapters"})


def test_baseline_outside_the_choices_rejected() -> None:
    space = SearchSpace.load({"frozen_layers": {"type": "categorical", "choices": [0, 2]},
                              "baselines": [{"frozen_layers": "L"}]})
    with pytest.raises(SearchSpaceError, match=r"baseline 0: frozen_layers=4 is not one of the "
                       r"space's choices \[0, 2\]"):
        space.resolved(4)
