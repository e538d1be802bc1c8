"""The search stage: the space (``space``), the settings and their checks (``config``), the trial
runner and the sampler/pruner pairing (``runner``), the follow-ups (``followups``), the workers
(``workers``), the public :func:`search` (``api``) and :func:`refit` (``refit``).

(The package is named ``searching`` so that ``autoft.search`` stays the function.)
"""

from autoft.searching.api import SearchResult, search
from autoft.searching.backbones import BackboneSearchResult
from autoft.searching.config import SearchConfig
from autoft.searching.followups import FollowupSettings
from autoft.searching.refit import RefitResult, refit
from autoft.searching.runner import (
    DEFAULT_PRUNER,
    MAX_CONSECUTIVE_FAILURES,
    PRUNERS,
    ProgressHook,
    make_pruner,
    make_sampler,
)
from autoft.searching.space import ParamSpec, SearchSpace, default_space_path
from autoft.searching.workers import run_worker

__all__ = [
    "BackboneSearchResult",
    "DEFAULT_PRUNER",
    "MAX_CONSECUTIVE_FAILURES",
    "PRUNERS",
    "FollowupSettings",
    "ParamSpec",
    "ProgressHook",
    "RefitResult",
    "SearchConfig",
    "SearchResult",
    "SearchSpace",
    "default_space_path",
    "make_pruner",
    "make_sampler",
    "refit",
    "run_worker",
    "search",
]
