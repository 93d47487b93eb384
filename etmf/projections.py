"""Imports every area's projections so that they are registered before any event is applied."""

from etmf.accounts import projections as _accounts  # noqa: F401
from etmf.documents import projections as _documents  # noqa: F401
from etmf.studies import projections as _studies  # noqa: F401
