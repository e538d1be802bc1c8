"""The search space: which strategies a study may try, read from YAML or a dict.

The format (see ``search_spaces/default.yaml``): each key is a strategy field in the flat form of
:meth:`autoft.Strategy.to_dict`; a plain value fixes it, a mapping searches it::

    kind: freeze                                          # the strategy kind (default freeze)
    frozen_layers: {type: int, low: 0, high: L}           # L = the backbone's block count
    learning_rate: {type: float, low: 1.0e-5, high: 2.0e-4, log: true}
    head: {type: categorical, choices: [linear, mlp]}
    epochs: 3

Fields are suggested only when they matter (Optuna's define-by-run conditional spaces): a strategy
kind's own fields only for that kind, the backbone learning rate only when some block trains
(``frozen_layers < L``), the MLP head's width and depth only for an MLP head (see
:meth:`autoft.Strategy.uses`). Integer bounds, fixed integers, categorical choices and baseline
values may be written with L: ``L``, ``L/2``, ``L-1``. Each resolved field is an Optuna
distribution (``optuna.distributions``), so enqueued parameters and resumed studies are checked
against real distributions. An optional ``baselines`` list holds strategies (partial parameter
dicts) a new study tries first.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from autoft.errors import SearchSpaceError, StrategyError
from autoft.strategies import DEFAULT_KIND, Strategy, strategy_class, strategy_kinds

__all__ = ["ParamSpec", "SearchSpace", "default_space_path", "space_fields"]

_L_EXPR = re.compile(r"^\s*L\s*(?:([-+*/])\s*(\d+))?\s*$")


def space_fields() -> dict[str, type]:
    """Every field a space may set (the fields of every registered strategy kind) with its type."""
    out: dict[str, type] = {}
    for cls in strategy_kinds().values():
        out.update(cls.space_fields())
    return out


def _choices() -> dict[str, tuple[Any, ...]]:
    out: dict[str, tuple[Any, ...]] = {}
    for cls in strategy_kinds().values():
        for name, values in cls.field_choices().items():
            out[name] = tuple(dict.fromkeys(out.get(name, ()) + tuple(values)))
    return out


def _resolve_int(value: Any, num_layers: int | None, where: str) -> Any:
    """Turn ``"L"``, ``"L/2"``, ``"L-1"`` into integers given L (left as is when L is unknown)."""
    if not isinstance(value, str):
        return value
    match = _L_EXPR.match(value)
    if match is None:
        raise SearchSpaceError(
            f"{where}: {value!r} is not a number or an expression of L such as 'L', 'L/2', 'L-1'"
        )
    if num_layers is None:
        return value
    op, num = match.groups()
    if op is None:
        return num_layers
    n = int(num)
    if op == "/" and n == 0:
        raise SearchSpaceError(f"{where}: division by zero in {value!r}")
    return {"+": num_layers + n, "-": num_layers - n, "*": num_layers * n,
            "/": num_layers // max(n, 1)}[op]


def _check_value(name: str, value: Any, where: str) -> None:
    expected = space_fields()[name]
    if expected is int and isinstance(value, str):
        _resolve_int(value, None, where)
        return
    ok = (
        isinstance(value, str) if expected is str
        else isinstance(value, int) and not isinstance(value, bool) if expected is int
        else isinstance(value, (int, float)) and not isinstance(value, bool)
    )
    if not ok:
        raise SearchSpaceError(f"{where}: value {value!r} is not a {expected.__name__}")
    choices = _choices().get(name)
    if choices is not None and value not in choices:
        raise SearchSpaceError(f"{where}: value {value!r} is not one of {choices}")


@dataclass(frozen=True)
class ParamSpec:
    """One field of the space.

    Attributes:
        name: The strategy field.
        kind: ``"fixed"``, ``"int"``, ``"float"`` or ``"categorical"``.
        low: Lower bound (int/float); may be an L expression for ints until resolved.
        high: Upper bound (int/float), inclusive.
        log: Log-uniform sampling (floats and ints).
        choices: The values of a categorical field (L expressions allowed for integer fields).
        value: The value of a fixed field.
    """

    name: str
    kind: str
    low: Any = None
    high: Any = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    value: Any = None

    @classmethod
    def parse(cls, name: str, raw: Any) -> ParamSpec:
        """Read one entry of the YAML mapping.

        Raises:
            SearchSpaceError: The entry is malformed (the message names the field and the rule).
        """
        where = f"search space field {name!r}"
        expected = space_fields()[name]
        if not isinstance(raw, dict):
            _check_value(name, raw, where)
            return cls(name=name, kind="fixed", value=raw)
        raw = dict(raw)
        kind = raw.pop("type", None)
        if kind not in ("int", "float", "categorical"):
            raise SearchSpaceError(
                f"{where}: type must be 'int', 'float' or 'categorical', got {kind!r}"
            )
        if kind == "categorical":
            choices = raw.pop("choices", None)
            if not isinstance(choices, list) or not choices:
                raise SearchSpaceError(f"{where}: 'choices' must be a non-empty list")
            for choice in choices:
                _check_value(name, choice, where)
            _no_extra(raw, where)
            return cls(name=name, kind=kind, choices=tuple(choices))
        if kind == "float" and expected is int:
            raise SearchSpaceError(f"{where}: this field is an integer; use type: int")
        if kind == "int" and expected is not int:
            raise SearchSpaceError(f"{where}: this field is not an integer; use type: float")
        if "low" not in raw or "high" not in raw:
            raise SearchSpaceError(f"{where}: a {kind} field needs 'low' and 'high'")
        low, high, log = raw.pop("low"), raw.pop("high"), bool(raw.pop("log", False))
        _no_extra(raw, where)
        if kind == "int":
            low, high = _resolve_int(low, None, where), _resolve_int(high, None, where)
        for bound in (low, high):
            if isinstance(bound, str) and kind == "float":
                raise SearchSpaceError(f"{where}: bound {bound!r} is not a number")
            if not isinstance(bound, str) and (
                isinstance(bound, bool) or not isinstance(bound, (int, float))
                or not math.isfinite(bound)
            ):
                raise SearchSpaceError(f"{where}: bound {bound!r} is not a finite number")
        if not isinstance(low, str) and not isinstance(high, str) and low > high:
            raise SearchSpaceError(f"{where}: low={low!r} is greater than high={high!r}")
        if log and not isinstance(low, str) and low <= 0:
            raise SearchSpaceError(f"{where}: log scale needs low > 0, got low={low!r}")
        return cls(name=name, kind=kind, low=low, high=high, log=log)

    def resolved(self, num_layers: int) -> ParamSpec:
        """This spec with L expressions replaced by integers.

        Raises:
            SearchSpaceError: An int range whose low exceeds its high for this backbone.
        """
        where = f"search space field {self.name!r}"
        if space_fields()[self.name] is not int:
            return self
        if self.kind == "int":
            low = _resolve_int(self.low, num_layers, where)
            high = _resolve_int(self.high, num_layers, where)
            if low > high:
                raise SearchSpaceError(
                    f"{where}: low={self.low!r} ({low}) is greater than high={self.high!r} ({high}) "
                    f"for a backbone of {num_layers} blocks"
                )
            return replace(self, low=low, high=high)
        if self.kind == "categorical":
            values = [_resolve_int(c, num_layers, where) for c in self.choices]
            return replace(self, choices=tuple(dict.fromkeys(values)))
        return replace(self, value=_resolve_int(self.value, num_layers, where))

    def distribution(self) -> BaseDistribution | None:
        """The Optuna distribution of a resolved searched field (None for a fixed field)."""
        if self.kind == "categorical":
            return CategoricalDistribution(list(self.choices))
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        if self.kind == "float":
            return FloatDistribution(float(self.low), float(self.high), log=self.log)
        return None

    def suggest(self, trial: optuna.Trial) -> Any:
        """Ask the trial for this field's value (fixed fields are returned, not suggested)."""
        if self.kind == "fixed":
            return self.value
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def values(self) -> tuple[Any, ...]:
        """The extreme values of the field: the fixed value, the choices, or the bounds."""
        if self.kind == "fixed":
            return (self.value,)
        if self.kind == "categorical":
            return self.choices
        return (self.low, self.high)

    def to_dict(self) -> Any:
        """The YAML form of this entry."""
        if self.kind == "fixed":
            return self.value
        if self.kind == "categorical":
            return {"type": "categorical", "choices": list(self.choices)}
        out = {"type": self.kind, "low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        return out


def _no_extra(raw: dict[str, Any], where: str) -> None:
    if raw:
        raise SearchSpaceError(f"{where}: unknown keys {sorted(raw)}")


def default_space_path(name: str = "default") -> Path:
    """Path of a bundled search space (``search_spaces/NAME.yaml``, installed with the package).

    Raises:
        SearchSpaceError: No bundled space has that name.
    """
    candidates = []
    try:
        candidates.append(Path(str(resources.files("autoft.search_spaces") / f"{name}.yaml")))
    except (ModuleNotFoundError, TypeError):
        pass
    candidates.append(Path(__file__).resolve().parents[2] / "search_spaces" / f"{name}.yaml")
    for path in candidates:
        if path.is_file():
            return path
    raise SearchSpaceError(f"no bundled search space named {name!r}")


class SearchSpace:
    """The strategies a study may try.

    Args:
        params: The fields, each a :class:`ParamSpec`. Fields left out take the strategy kind's
            defaults.
        baselines: Partial parameter dicts (values may use L expressions) a new study tries first.
            Default none.

    Use :meth:`load` to read a YAML file or dict, and :meth:`resolved` before sampling.
    """

    def __init__(
        self, params: dict[str, ParamSpec], baselines: list[dict[str, Any]] | None = None
    ) -> None:
        self.params = dict(params)
        self.baselines = [dict(b) for b in baselines or []]

    @classmethod
    def load(cls, source: str | Path | dict[str, Any] | SearchSpace | None = None) -> SearchSpace:
        """Read a search space.

        Args:
            source: None for the bundled default; a path to a YAML file; the name of a bundled
                file (``"default"``); a dict in the same format; or a ``SearchSpace`` (returned
                as is).

        Raises:
            SearchSpaceError: The file is missing or is not valid YAML, a field is unknown, a type,
                bound, choice or baseline is invalid.
        """
        if isinstance(source, SearchSpace):
            return source
        if source is None:
            source = default_space_path()
        elif isinstance(source, str) and "/" not in source and not source.endswith(".yaml") \
                and not Path(source).exists():
            source = default_space_path(source)
        if isinstance(source, (str, Path)):
            path = Path(source)
            if not path.is_file():
                raise SearchSpaceError(f"search space file {str(path)!r} does not exist")
            text = path.read_text()
            if not text.strip():
                raise SearchSpaceError(f"search space file {str(path)!r} is empty")
            try:
                raw = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise SearchSpaceError(
                    f"search space file {str(path)!r} is not valid YAML: {exc}"
                ) from None
        else:
            raw = copy.deepcopy(source)
        if not isinstance(raw, dict):
            raise SearchSpaceError(
                f"a search space must be a mapping of strategy fields, got {type(raw).__name__}"
            )
        baselines = raw.pop("baselines", None) or []
        known = space_fields()
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise SearchSpaceError(
                f"unknown search space fields {unknown}; known fields: {sorted(known)}"
            )
        params = {name: ParamSpec.parse(name, value) for name, value in raw.items()}
        if not isinstance(baselines, list) or not all(isinstance(b, dict) for b in baselines):
            raise SearchSpaceError("'baselines' must be a list of mappings of strategy fields")
        for i, baseline in enumerate(baselines):
            bad = sorted(set(baseline) - set(known))
            if bad:
                raise SearchSpaceError(f"baseline {i}: unknown fields {bad}")
            for name, value in baseline.items():
                _check_value(name, value, f"baseline {i}, field {name!r}")
        return cls(params, baselines)

    def to_dict(self) -> dict[str, Any]:
        """The YAML form of the space (stored in the study, so a report can show it)."""
        out: dict[str, Any] = {name: spec.to_dict() for name, spec in self.params.items()}
        if self.baselines:
            out["baselines"] = [dict(b) for b in self.baselines]
        return out

    def field_values(self, name: str) -> list[Any]:
        """Every value the space may give field ``name``: its fixed value or choices (a numeric
        range gives its bounds) and the baselines' values; empty when the space leaves it out."""
        spec = self.params.get(name)
        out = list(spec.values()) if spec is not None else []
        out += [b[name] for b in self.baselines if name in b]
        return out

    def without(self, name: str) -> SearchSpace:
        """This space with field ``name`` left out (in its baselines too): the strategies then
        take that field's default."""
        return SearchSpace({k: v for k, v in self.params.items() if k != name},
                           [{k: v for k, v in b.items() if k != name} for b in self.baselines])

    def for_single_texts(self) -> SearchSpace:
        """This space for data of one text per example: ``pair_encoding`` left out, and the
        baselines that predict from a pair's cosine similarity (meaningless for one text)
        dropped; a baseline with ``separate`` becomes the same strategy read jointly."""
        kept = [b for b in self.baselines if b.get("pair_encoding") != "cosine"]
        return SearchSpace(self.params, kept).without("pair_encoding")

    def kinds(self) -> tuple[str, ...]:
        """The strategy kinds this space can produce."""
        spec = self.params.get("kind")
        return tuple(spec.values()) if spec is not None else (DEFAULT_KIND,)

    def resolved(self, num_layers: int) -> SearchSpace:
        """The space for a backbone of ``num_layers`` blocks, checked.

        Raises:
            SearchSpaceError: ``frozen_layers`` outside ``0..L``, a baseline that is not a valid
                strategy for this backbone, or a bound that makes an invalid strategy.
        """
        params = {name: spec.resolved(num_layers) for name, spec in self.params.items()}
        fl = params.get("frozen_layers")
        if fl is not None:
            values = fl.values()
            lo, hi = min(values), max(values)
            if lo < 0 or hi > num_layers:
                raise SearchSpaceError(
                    f"search space field 'frozen_layers' spans {lo}..{hi}, outside 0..{num_layers} "
                    f"for a backbone of {num_layers} blocks"
                )
        ints = {n for n, t in space_fields().items() if t is int}
        baselines = []
        for i, baseline in enumerate(self.baselines):
            values = {k: _resolve_int(v, num_layers, f"baseline {i}") if k in ints else v
                      for k, v in baseline.items()}
            k = values.get("frozen_layers", 0)
            if not 0 <= k <= num_layers:
                raise SearchSpaceError(
                    f"baseline {i}: frozen_layers={k} is outside 0..{num_layers}"
                )
            baselines.append(values)
        space = SearchSpace(params, baselines)
        for kind in space.kinds():
            for high in (False, True):  # fixed values and bounds must make valid strategies
                try:
                    space._strategy({**space._corner(high), "kind": kind}, num_layers)
                except StrategyError as exc:
                    raise SearchSpaceError(
                        f"the search space allows an invalid strategy: {exc}") from None
        for i, baseline in enumerate(baselines):
            for name, value in baseline.items():
                spec = params.get(name)
                if spec is not None and spec.kind == "categorical" and value not in spec.choices:
                    raise SearchSpaceError(
                        f"baseline {i}: {name}={value!r} is not one of the space's choices "
                        f"{list(spec.choices)}; add it to the choices or change the baseline")
            try:
                space._strategy({**space._corner(False), **baseline}, num_layers)
            except StrategyError as exc:
                raise SearchSpaceError(f"baseline {i} is not a valid strategy: {exc}") from None
        return space

    def _corner(self, high: bool = False) -> dict[str, Any]:
        """One value of each field: fixed values, first (last) choices, lower (upper) bounds."""
        return {name: spec.values()[-1 if high else 0] for name, spec in self.params.items()}

    def _strategy(self, values: dict[str, Any], num_layers: int) -> Strategy:
        values = dict(values)
        cls = strategy_class(str(values.get("kind", DEFAULT_KIND)))
        fields = cls.space_fields()
        values = {k: v for k, v in values.items() if k in fields}
        if "learning_rate" not in values or not cls.uses("learning_rate", values, num_layers):
            # nothing in the backbone trains: the head's rate stands in (it is never used)
            values.setdefault("learning_rate",
                              values.get("head_learning_rate", Strategy.learning_rate))
        if not cls.uses("head_width", values, num_layers):
            values.pop("head_width", None)
            values.pop("head_depth", None)
        return Strategy.from_dict(values)

    def suggest(self, trial: optuna.Trial, num_layers: int) -> Strategy:
        """Sample a strategy for ``trial`` (the space must be :meth:`resolved` first): the kind
        first, then each field the kind uses, in the kind's field order, when it matters.

        Args:
            trial: The Optuna trial that records the sampled parameters.
            num_layers: The backbone's block count L.

        Raises:
            StrategyError: The sampled values do not make a valid strategy.
        """
        spec = self.params.get("kind")
        kind = spec.suggest(trial) if spec is not None else DEFAULT_KIND
        cls = strategy_class(str(kind))
        values: dict[str, Any] = {"kind": kind}
        for name in cls.space_fields():
            spec = self.params.get(name)
            if name == "kind" or spec is None or not cls.uses(name, values, num_layers):
                continue
            values[name] = spec.suggest(trial)
        return self._strategy(values, num_layers)

    def distributions(self) -> dict[str, BaseDistribution]:
        """The Optuna distribution of each searched field of a resolved space."""
        return {name: d for name, spec in self.params.items()
                if (d := spec.distribution()) is not None}

    def check_against(self, study: optuna.Study) -> None:
        """Check that this (resolved) space can continue ``study``: Optuna keeps the choices of a
        categorical parameter fixed for the life of a study.

        Raises:
            SearchSpaceError: A categorical field's choices differ from those the study's trials
                used (the message names the field, the old and the new choices). Changed numeric
                ranges are allowed: new trials use the new range.
        """
        new = self.distributions()
        seen: dict[str, BaseDistribution] = {}
        for trial in study.get_trials(deepcopy=False):
            for name, dist in trial.distributions.items():
                seen.setdefault(name, dist)
        for name, old in seen.items():
            current = new.get(name)
            if isinstance(old, CategoricalDistribution) and isinstance(
                    current, CategoricalDistribution) and list(old.choices) != list(
                    current.choices):
                raise SearchSpaceError(
                    f"search space field {name!r} has choices {list(current.choices)}, but this "
                    f"study's trials used {list(old.choices)}; Optuna cannot change the choices of "
                    "a study's categorical field. Keep the old choices to resume, or start a new "
                    "study (another --out folder, or --study NAME)"
                )

    @property
    def searched(self) -> list[str]:
        """Names of the fields the space varies (not fixed, and with more than one value)."""
        out = []
        for name, spec in self.params.items():
            if spec.kind == "categorical" and len(set(spec.choices)) > 1:
                out.append(name)
            elif spec.kind in ("int", "float") and spec.low != spec.high:
                out.append(name)
        return out

    @property
    def max_epochs(self) -> int:
        """The largest number of epochs a trial of this space can train (for the pruner)."""
        spec = self.params.get("epochs")
        if spec is None:
            return Strategy.epochs  # type: ignore[return-value]
        return int(max(spec.values()))
