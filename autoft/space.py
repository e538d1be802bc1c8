"""The search space: which strategies a study may try, read from YAML or a dict.

The format (see ``search_spaces/default.yaml``): each key is a strategy field in the flat form of
:meth:`autoft.Strategy.to_dict`; a plain value fixes it, a mapping searches it::

    frozen_layers: {type: int, low: 0, high: L}          # L = the backbone's block count
    learning_rate: {type: float, low: 1.0e-5, high: 2.0e-4, log: true}
    head: {type: categorical, choices: [linear, mlp]}
    epochs: 3

``learning_rate`` is only suggested when some block trains (``frozen_layers < L``) and
``head_width``/``head_depth`` only for an MLP head: Optuna's define-by-run conditional spaces.
An optional ``baselines`` list holds strategies (partial parameter dicts) to try first.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import optuna
import yaml

from autoft.errors import SearchSpaceError, StrategyError
from autoft.strategy import HEAD_KINDS, POOLINGS, Strategy

__all__ = ["ParamSpec", "SearchSpace", "default_space_path"]

#: Every field a space may set, with the Python type of its values.
FIELDS: dict[str, type] = {
    "frozen_layers": int,
    "learning_rate": float,
    "head_learning_rate": float,
    "head": str,
    "head_width": int,
    "head_depth": int,
    "head_dropout": float,
    "pooling": str,
    "epochs": int,
    "batch_size": int,
    "weight_decay": float,
    "warmup_ratio": float,
}
_CHOICES = {"head": HEAD_KINDS, "pooling": POOLINGS}
_L_EXPR = re.compile(r"^\s*L\s*(?:([-+*/])\s*(\d+))?\s*$")


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
    result = {"+": num_layers + n, "-": num_layers - n, "*": num_layers * n,
              "/": num_layers // n if n else -1}[op]
    if op == "/" and n == 0:
        raise SearchSpaceError(f"{where}: division by zero in {value!r}")
    return result


@dataclass(frozen=True)
class ParamSpec:
    """One field of the space.

    Attributes:
        name: The strategy field.
        kind: ``"fixed"``, ``"int"``, ``"float"`` or ``"categorical"``.
        low: Lower bound (int/float), may be an L expression for ints.
        high: Upper bound (int/float), inclusive.
        log: Log-uniform sampling (floats and ints).
        choices: The values of a categorical field.
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
        """Read one entry of the YAML mapping; raises :class:`SearchSpaceError` when malformed."""
        where = f"search space field {name!r}"
        expected = FIELDS[name]
        if not isinstance(raw, dict):
            value = _resolve_int(raw, None, where) if expected is int else raw
            _check_value(name, value, where)
            return cls(name=name, kind="fixed", value=value)
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

    def resolved(self, num_layers: int | None) -> ParamSpec:
        """This spec with L expressions replaced by integers."""
        if num_layers is None:
            return self
        where = f"search space field {self.name!r}"
        spec = copy.copy(self)
        if self.kind == "int":
            low = _resolve_int(self.low, num_layers, where)
            high = _resolve_int(self.high, num_layers, where)
            if low > high:
                raise SearchSpaceError(
                    f"{where}: low={self.low!r} ({low}) is greater than high={self.high!r} ({high}) "
                    f"for a backbone of {num_layers} blocks"
                )
            object.__setattr__(spec, "low", low)
            object.__setattr__(spec, "high", high)
        elif self.kind == "fixed" and FIELDS[self.name] is int:
            object.__setattr__(spec, "value", _resolve_int(self.value, num_layers, where))
        return spec

    def suggest(self, trial: optuna.Trial) -> Any:
        """Ask the trial for this field's value (fixed fields are returned, not suggested)."""
        if self.kind == "fixed":
            return self.value
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

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


def _check_value(name: str, value: Any, where: str) -> None:
    expected = FIELDS[name]
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
    if name in _CHOICES and value not in _CHOICES[name]:
        raise SearchSpaceError(f"{where}: value {value!r} is not one of {_CHOICES[name]}")


def default_space_path() -> Path:
    """Path of the bundled ``default.yaml`` (installed with the package)."""
    try:
        path = Path(str(resources.files("autoft.search_spaces") / "default.yaml"))
        if path.is_file():
            return path
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parent.parent / "search_spaces" / "default.yaml"


class SearchSpace:
    """The strategies a study may try.

    Args:
        params: The fields, each a :class:`ParamSpec`. Fields left out take the
            :class:`~autoft.Strategy` defaults.
        baselines: Partial parameter dicts (values may use L expressions) enqueued as the first
            trials of a new study. Default none.

    Use :meth:`load` to read a YAML file or dict.
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
            source: None for the bundled default; a path to a YAML file; a name of a bundled file
                (``"default"``); a dict in the same format; or a ``SearchSpace`` (returned as is).

        Raises:
            SearchSpaceError: The file is missing or is not valid YAML, a field is unknown, a type,
                bound, choice or baseline is invalid.
        """
        if isinstance(source, SearchSpace):
            return source
        if source is None or source == "default":
            source = default_space_path()
        if isinstance(source, (str, Path)):
            path = Path(source)
            if not path.is_file():
                raise SearchSpaceError(f"search space file {str(path)!r} does not exist")
            if not path.read_text().strip():
                raise SearchSpaceError(f"search space file {str(path)!r} is empty")
            try:
                raw = yaml.safe_load(path.read_text())
            except yaml.YAMLError as exc:
                raise SearchSpaceError(
                    f"search space file {str(path)!r} is not valid YAML: {exc}"
                ) from exc
        else:
            raw = copy.deepcopy(source)
        if not isinstance(raw, dict):
            raise SearchSpaceError(
                f"a search space must be a mapping of strategy fields, got {type(raw).__name__}"
            )
        baselines = raw.pop("baselines", None) or []
        unknown = sorted(set(raw) - set(FIELDS))
        if unknown:
            raise SearchSpaceError(
                f"unknown search space fields {unknown}; known fields: {sorted(FIELDS)}"
            )
        params = {name: ParamSpec.parse(name, value) for name, value in raw.items()}
        if not isinstance(baselines, list) or not all(isinstance(b, dict) for b in baselines):
            raise SearchSpaceError("'baselines' must be a list of mappings of strategy fields")
        for i, baseline in enumerate(baselines):
            bad = sorted(set(baseline) - set(FIELDS))
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

    def resolved(self, num_layers: int) -> SearchSpace:
        """The space for a backbone of ``num_layers`` blocks, checked.

        Raises:
            SearchSpaceError: ``frozen_layers`` outside ``0..L``, or a baseline that is not a valid
                strategy for this backbone.
        """
        params = {name: spec.resolved(num_layers) for name, spec in self.params.items()}
        fl = params.get("frozen_layers")
        if fl is not None:
            lo, hi = (fl.value, fl.value) if fl.kind == "fixed" else (
                (min(fl.choices), max(fl.choices)) if fl.kind == "categorical" else (fl.low, fl.high)
            )
            if lo < 0 or hi > num_layers:
                raise SearchSpaceError(
                    f"search space field 'frozen_layers' spans {lo}..{hi}, outside 0..{num_layers} "
                    f"for a backbone of {num_layers} blocks"
                )
        baselines = []
        for i, baseline in enumerate(self.baselines):
            resolved = {
                k: _resolve_int(v, num_layers, f"baseline {i}") if FIELDS[k] is int else v
                for k, v in baseline.items()
            }
            k = resolved.get("frozen_layers", 0)
            if not 0 <= k <= num_layers:
                raise SearchSpaceError(
                    f"baseline {i}: frozen_layers={k} is outside 0..{num_layers}"
                )
            baselines.append(resolved)
        space = SearchSpace(params, baselines)
        corners = [space._defaults(), space._defaults(high=True)]
        for values in corners:  # fixed values and bounds must make valid strategies
            try:
                space._strategy(values, num_layers)
            except StrategyError as exc:
                raise SearchSpaceError(f"the search space allows an invalid strategy: {exc}") from exc
        for i, baseline in enumerate(baselines):
            try:
                space._strategy({**space._defaults(), **baseline}, num_layers)
            except StrategyError as exc:
                raise SearchSpaceError(f"baseline {i} is not a valid strategy: {exc}") from exc
        return space

    def _defaults(self, high: bool = False) -> dict[str, Any]:
        """One value of each field: fixed values, first (last) choices, lower (upper) bounds."""
        out: dict[str, Any] = {}
        for name, spec in self.params.items():
            out[name] = (
                spec.value if spec.kind == "fixed"
                else spec.choices[-1 if high else 0] if spec.kind == "categorical"
                else (spec.high if high else spec.low)
            )
        return out

    def _strategy(self, values: dict[str, Any], num_layers: int) -> Strategy:
        values = dict(values)
        if values.get("frozen_layers", 0) >= num_layers and "learning_rate" not in values:
            values["learning_rate"] = values.get("head_learning_rate", Strategy.learning_rate)
        if values.get("head", "linear") != "mlp":
            values.pop("head_width", None)
            values.pop("head_depth", None)
        return Strategy.from_dict(values)

    def suggest(self, trial: optuna.Trial, num_layers: int) -> Strategy:
        """Sample a strategy for ``trial`` (the space must be :meth:`resolved` first).

        Args:
            trial: The Optuna trial that records the sampled parameters.
            num_layers: The backbone's block count L.

        Returns:
            The strategy. When ``frozen_layers = L`` the backbone learning rate is not sampled and
            is set to the head's (it trains nothing).

        Raises:
            StrategyError: The sampled values do not make a valid strategy.
        """
        values: dict[str, Any] = {}
        order = list(FIELDS)
        for name in order:
            spec = self.params.get(name)
            if spec is None:
                continue
            if name == "learning_rate" and values.get("frozen_layers", 0) >= num_layers:
                continue
            if name in ("head_width", "head_depth") and values.get("head", "linear") != "mlp":
                continue
            values[name] = spec.suggest(trial)
        return self._strategy(values, num_layers)

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
            return Strategy.epochs
        if spec.kind == "fixed":
            return int(spec.value)
        if spec.kind == "categorical":
            return int(max(spec.choices))
        return int(spec.high)
