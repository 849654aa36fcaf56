"""Packages that export names from their modules lazily, so that importing the package loads
nothing heavy until a name is used (``from arena import OBS_SIZE`` without numba,
``policies.runtime`` before torch)."""

from __future__ import annotations

import importlib


def lazy_exports(package: str, exports: dict[str, str]):
    """A package's module-level ``__getattr__`` and ``__dir__`` for ``exports`` (name -> the
    module that defines it): ``__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)``."""

    def __getattr__(name):
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(exports)

    return __getattr__, __dir__
