"""Registering autoft's exported model class with transformers, without importing transformers.

A model saved by :func:`autoft.refit` has ``model_type: "autoft"``; transformers' Auto classes (and
``pipeline``) can load it once :func:`autoft.models.hf_model.register_auto_classes` has run. That
module imports transformers' modeling code (seconds), which ``import autoft`` must not pay. So
``import autoft`` calls :func:`install`: when transformers' Auto classes are already imported it
registers at once; otherwise it adds a one-shot import hook that registers right after
``transformers.models.auto.modeling_auto`` is first imported (by ``pipeline``,
``AutoModelForSequenceClassification`` or anything else).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import sys
from types import ModuleType
from typing import Any

__all__ = ["TARGET", "install"]

logger = logging.getLogger(__name__)

#: The module after whose import the Auto classes can take registrations.
TARGET = "transformers.models.auto.modeling_auto"


def _register() -> None:
    module = sys.modules.get("autoft.models.hf_model")
    if module is not None and not hasattr(module, "register_auto_classes"):
        return  # it is being imported (it imported transformers' Auto classes): it registers
        # the classes itself when its import ends
    try:
        from autoft.models.hf_model import register_auto_classes

        register_auto_classes()
    except Exception:  # never break the user's import of transformers
        logger.warning("could not register autoft's model with transformers", exc_info=True)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: it asks the other finders for :data:`TARGET` and wraps the loader so
    that :func:`_register` runs after the module is executed. It removes itself when used."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != TARGET:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        original = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            original(module)
            _register()

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Register now if transformers' Auto classes are loaded, else when they first load."""
    if TARGET in sys.modules:
        _register()
        return
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
