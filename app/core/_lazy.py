"""Lazy re-exports for the packages of ``app`` (PEP 562), so importing a package costs only what is used.

Each package lists its public names and the private module defining each; a name is imported on first use.
``import app.video`` then loads neither PyAV nor OpenCV, and ``python -m app --version`` stays instant, while
``from app.video import probe`` works as an eager re-export would. The same names are imported under
``TYPE_CHECKING`` in each ``__init__`` so type checkers and import-linter see them.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def attach(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package`` whose ``exports`` map each public name to the
    private module (relative to the package, e.g. ``"_types"``) that defines it."""
    names = sorted(exports)

    def __getattr__(name: str) -> Any:
        if name in exports:
            module = import_module(f"{package}.{exports[name]}")
            value = getattr(module, name)
            globals_of_package = import_module(package).__dict__
            globals_of_package[name] = value  # the next lookup is a plain attribute
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__, names
