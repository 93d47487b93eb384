"""Thin blueprints: parse input, call one service, render or return JSON."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, g, request
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


def register(app: Flask) -> None:
    from etmf.web import documents, filters, main, studies

    filters.register(app)
    app.register_blueprint(main.bp)
    app.register_blueprint(studies.bp)
    app.register_blueprint(documents.bp)
