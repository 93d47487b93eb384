"""Areas plug in by convention: ``<area>/<name>.py`` modules found in etmf and ctms."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def area_modules(name: str) -> list[ModuleType]:
    """Every ``etmf.<area>.<name>`` and ``ctms.<area>.<name>`` module, in area order.

    A missing module is skipped; a module that exists but fails to import raises.
    """
    import ctms
    import etmf

    found = []
    for package in (etmf, ctms):
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            if not info.ispkg:
                continue
            full = f"{package.__name__}.{info.name}.{name}"
            try:
                found.append(importlib.import_module(full))
            except ModuleNotFoundError as exc:
                if exc.name != full:
                    raise
    return found
