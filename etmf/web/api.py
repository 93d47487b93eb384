"""Registers the JSON API blueprint (it lives in etmf.api; this module exposes it here)."""

from __future__ import annotations

from etmf.api import bp

__all__ = ["bp"]
