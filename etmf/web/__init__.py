"""Thin blueprints: parse input, call one service, render or return JSON.

Every module in ``etmf/web/`` (and ``ctms/web/`` once it exists) that defines a Blueprint
named ``bp`` is registered; a module may also define ``NAV = [(label, endpoint, order)]``
for the top navigation (``(label, endpoint, order, "admin")`` shows a link to administrators
only), and ``DOCUMENT_PANELS = ["area/_panel.html"]`` for sections of the document page
(the template gets ``doc``; fetch more through a template global). Adding a page area
needs no edit here.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Blueprint, Flask, g, request
from sqlalchemy.orm import Session

from etmf.audit.store import Context, UnitOfWork, unit_of_work
from etmf.bootstrap import services


def db_session() -> Session:
    """The request's read session (closed at teardown)."""
    session = g.get("db_session")
    if session is None:
        session = g.db_session = services().db.read_session()
    return session


@contextmanager
def command() -> Iterator[UnitOfWork]:
    """A unit of work acting as the signed-in user, from this request."""
    from etmf.accounts.security import current_access

    svc = services()
    ctx = Context(request_id=g.get("request_id"), client_addr=request.remote_addr)
    with unit_of_work(svc.db, svc.clock, current_access().actor, ctx) as uow:
        yield uow


def _web_modules() -> list[str]:
    import etmf.web

    names = [f"etmf.web.{m.name}" for m in pkgutil.iter_modules(etmf.web.__path__)]
    try:
        import ctms.web  # type: ignore[import-not-found]

        names += [f"ctms.web.{m.name}" for m in pkgutil.iter_modules(ctms.web.__path__)]
    except ModuleNotFoundError:
        pass
    return sorted(names)


def register(app: Flask) -> None:
    from etmf.web import filters

    filters.register(app)
    nav: list[tuple[int, str, str, str]] = []
    panels: list[str] = []
    for name in _web_modules():
        module = importlib.import_module(name)
        bp = getattr(module, "bp", None)
        if isinstance(bp, Blueprint):
            app.register_blueprint(bp)
        panels.extend(getattr(module, "DOCUMENT_PANELS", []))
        for entry in getattr(module, "NAV", []):
            label, endpoint, order, *who = entry
            nav.append((order, label, endpoint, who[0] if who else "all"))
    app.config["ETMF_DOCUMENT_PANELS"] = panels
    app.config["ETMF_NAV"] = [(label, endpoint, who) for _o, label, endpoint, who in sorted(nav)]
