"""The one exception hierarchy of autoft.

Every error autoft raises on purpose for bad input derives from :class:`AutoftError`, so callers can
catch all of them at once. Each also derives from the matching built-in (``ValueError`` for bad
values, ``RuntimeError`` for an unusable state) so code written against the built-ins keeps working.
"""

from __future__ import annotations

__all__ = [
    "AutoftError",
    "DataError",
    "BackboneError",
    "UnsupportedArchitectureError",
    "SearchSpaceError",
    "StrategyError",
    "BudgetError",
    "StudyError",
    "TrialError",
    "DivergedError",
]


class AutoftError(Exception):
    """Base class of every error autoft raises for bad input or an unusable state."""


class DataError(AutoftError, ValueError):
    """The dataset cannot be used: missing column, empty text, unknown label, too few rows, ..."""


class BackboneError(AutoftError, ValueError):
    """The backbone model or its tokenizer cannot be found or loaded."""


class UnsupportedArchitectureError(BackboneError):
    """The backbone's architecture is not one whose embeddings and blocks autoft can locate."""


class SearchSpaceError(AutoftError, ValueError):
    """The search space (YAML file or dict) is malformed."""


class StrategyError(AutoftError, ValueError):
    """A fine-tuning strategy is invalid or was not applied to the model as specified."""


class BudgetError(AutoftError, ValueError):
    """A budget, duration or trial count cannot be parsed or is out of range."""


class StudyError(AutoftError, RuntimeError):
    """The Optuna study in the output folder cannot be used for this search."""


class TrialError(AutoftError, RuntimeError):
    """A trial's training broke down."""


class DivergedError(TrialError):
    """The training loss became NaN or infinite: a property of the strategy (usually a learning
    rate too high for it), not of the machine. A search records such a trial as pruned
    (``diverged``) and does not count it among the failures that stop a search."""
