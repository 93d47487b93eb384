"""Imports every area's ``projections`` module so that each registers its event handlers
before any event is applied. An area adds projections by creating ``<area>/projections.py``:
nothing here needs editing."""

from __future__ import annotations

import importlib
import pkgutil

import etmf


def _discover() -> list[str]:
    names = []
    for info in pkgutil.iter_modules(etmf.__path__):
        if info.ispkg:
            candidate = f"etmf.{info.name}.projections"
            try:
                importlib.import_module(candidate)
            except ModuleNotFoundError as exc:
                if exc.name != candidate:
                    raise
                continue
            names.append(candidate)
    try:
        import ctms

        for info in pkgutil.iter_modules(ctms.__path__):
            if info.ispkg:
                candidate = f"ctms.{info.name}.projections"
                try:
                    importlib.import_module(candidate)
                except ModuleNotFoundError as exc:
                    if exc.name != candidate:
                        raise
                    continue
                names.append(candidate)
    except ModuleNotFoundError:  # pragma: no cover - ctms ships with etmf
        pass
    return names


LOADED = _discover()
