"""Imports every area's ``projections`` module so that each registers its event handlers
before any event is applied. An area adds projections by creating ``<area>/projections.py``:
nothing here needs editing."""

from __future__ import annotations

from etmf.areas import area_modules

LOADED = [module.__name__ for module in area_modules("projections")]
