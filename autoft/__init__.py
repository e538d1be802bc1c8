"""autoft: search how to fine-tune a pretrained transformer for your data.

An Optuna study treats the fine-tuning strategy (frozen layers, learning rates, head, pooling) as
hyperparameters, runs real trial fine-tunes, prunes the weak ones and recommends a strategy::

    import autoft
    result = autoft.search("train.csv", budget="30m")
    print(result.best_strategy_, result.best_score_)

``import autoft`` is light: the public names below are imported from their modules on first use
(PEP 562), so ``autoft --help`` and ``autoft status`` never load torch or transformers. (The
search stage lives in the subpackage :mod:`autoft.searching`, so that ``autoft.search`` is always
the function.) It also
arranges for autoft's exported model class to be registered with transformers' Auto classes as
soon as those are imported (see :mod:`autoft._hf_hook`), so ``transformers.pipeline(model=DIR)``
loads a refit model after ``import autoft``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from autoft import _hf_hook
from autoft._version import __version__

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
    from autoft.analysis.recommend import Recommendation
    from autoft.budget import Budget, parse_duration
    from autoft.data import Split, TaskData, load_task_data
    from autoft.errors import (
        AutoftError,
        BackboneError,
        BudgetError,
        DataError,
        DivergedError,
        SearchSpaceError,
        StrategyError,
        StudyError,
        TrialError,
        UnsupportedArchitectureError,
    )
    from autoft.models.backbone import DEFAULT_BACKBONE, load_backbone, locate_parts
    from autoft.models.classifier import AutoftClassifier
    from autoft.models.hf_model import AutoftConfig, AutoftForSequenceClassification
    from autoft.report import build_report, write_report
    from autoft.searching import (
        BackboneSearchResult,
        ProgressHook,
        SearchResult,
        SearchSpace,
        refit,
        search,
    )
    from autoft.searching.refit import RefitResult
    from autoft.strategies import FreezeStrategy, Head, Strategy
    from autoft.strategies.apply import build_classifier
    from autoft.study import load_study
    from autoft.training import FineTuneResult, TrialOutcome, fine_tune

#: Public name -> module that defines it.
_EXPORTS = {
    "AutoftClassifier": "autoft.models.classifier",
    "AutoftConfig": "autoft.models.hf_model",
    "AutoftError": "autoft.errors",
    "AutoftForSequenceClassification": "autoft.models.hf_model",
    "BackboneError": "autoft.errors",
    "Budget": "autoft.budget",
    "BudgetError": "autoft.errors",
    "DEFAULT_BACKBONE": "autoft.models.backbone",
    "DataError": "autoft.errors",
    "DivergedError": "autoft.errors",
    "FineTuneResult": "autoft.training",
    "FreezeStrategy": "autoft.strategies",
    "Head": "autoft.strategies",
    "ProgressHook": "autoft.searching",
    "Recommendation": "autoft.analysis.recommend",
    "RefitResult": "autoft.searching.refit",
    "SearchResult": "autoft.searching",
    "BackboneSearchResult": "autoft.searching",
    "SearchSpace": "autoft.searching",
    "SearchSpaceError": "autoft.errors",
    "Split": "autoft.data",
    "Strategy": "autoft.strategies",
    "StrategyError": "autoft.errors",
    "StudyError": "autoft.errors",
    "TaskData": "autoft.data",
    "TrialError": "autoft.errors",
    "TrialOutcome": "autoft.training",
    "UnsupportedArchitectureError": "autoft.errors",
    "build_classifier": "autoft.strategies.apply",
    "build_report": "autoft.report",
    "fine_tune": "autoft.training",
    "load_backbone": "autoft.models.backbone",
    "load_study": "autoft.study",
    "load_task_data": "autoft.data",
    "locate_parts": "autoft.models.backbone",
    "parse_duration": "autoft.budget",
    "refit": "autoft.searching",
    "search": "autoft.searching",
    "write_report": "autoft.report",
}

__all__ = [
    "AutoftClassifier",
    "AutoftConfig",
    "AutoftError",
    "AutoftForSequenceClassification",
    "BackboneError",
    "Budget",
    "BudgetError",
    "DEFAULT_BACKBONE",
    "DataError",
    "DivergedError",
    "FineTuneResult",
    "FreezeStrategy",
    "Head",
    "ProgressHook",
    "Recommendation",
    "RefitResult",
    "SearchResult",
    "BackboneSearchResult",
    "SearchSpace",
    "SearchSpaceError",
    "Split",
    "Strategy",
    "StrategyError",
    "StudyError",
    "TaskData",
    "TrialError",
    "TrialOutcome",
    "UnsupportedArchitectureError",
    "__version__",
    "build_classifier",
    "build_report",
    "fine_tune",
    "load_backbone",
    "load_study",
    "load_task_data",
    "locate_parts",
    "parse_duration",
    "refit",
    "search",
    "write_report",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'autoft' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__


_hf_hook.install()
