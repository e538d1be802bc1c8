"""autoft: search how to fine-tune a pretrained transformer for your text-classification data.

An Optuna study treats the fine-tuning strategy (frozen layers, learning rates, head, pooling) as
hyperparameters, runs real trial fine-tunes, prunes the weak ones and recommends a strategy::

    import autoft
    result = autoft.search("train.csv", budget="30m")
    print(result.best_strategy_, result.best_score_)
"""

from __future__ import annotations

__version__ = "0.1.0"

from autoft.backbone import DEFAULT_BACKBONE, SUPPORTED_MODEL_TYPES, load_backbone, locate_parts
from autoft.budget import Budget, parse_duration
from autoft.data import Split, TaskData, load_task_data
from autoft.errors import (
    AutoftError,
    BackboneError,
    BudgetError,
    DataError,
    SearchSpaceError,
    StrategyError,
    StudyError,
    TrialError,
    UnsupportedArchitectureError,
)
from autoft.finetune import FineTuneResult, TrialOutcome, fine_tune
from autoft.hf_model import AutoftConfig, AutoftForSequenceClassification
from autoft.recommend import Recommendation
from autoft.refit import RefitResult, refit
from autoft.report import build_report, load_study, write_report
from autoft.search import ProgressHook, SearchResult, search
from autoft.space import SearchSpace
from autoft.strategy import AutoftClassifier, Head, Strategy, build_classifier

__all__ = [
    "DEFAULT_BACKBONE",
    "SUPPORTED_MODEL_TYPES",
    "AutoftClassifier",
    "AutoftConfig",
    "AutoftForSequenceClassification",
    "AutoftError",
    "BackboneError",
    "Budget",
    "BudgetError",
    "DataError",
    "FineTuneResult",
    "Head",
    "ProgressHook",
    "Recommendation",
    "RefitResult",
    "SearchResult",
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
