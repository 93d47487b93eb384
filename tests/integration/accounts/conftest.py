"""Helpers for account tests: sign in without asserting success, inspectors with grants."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from flask.testing import FlaskClient

from tests.conftest import PASSWORD, User, csrf_from


def try_sign_in(client: FlaskClient, email: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    """POST the sign-in form; returns the response whatever it is."""
    token = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": password,
                                       "csrf_token": token})


def post_form(client: FlaskClient, url: str, data: dict[str, object] | None = None,
              page: str = "/"):  # type: ignore[no-untyped-def]
    """POST with a CSRF token taken from ``page``."""
    token = csrf_from(client.get(page).get_data(as_text=True))
    return client.post(url, data={**(data or {}), "csrf_token": token})


@pytest.fixture
def make_inspector(world, svc) -> Callable[..., tuple[User, int]]:  # type: ignore[no-untyped-def]
    """An inspector account with one grant; the window defaults to now … now + 2 days."""
    from etmf.accounts.services import NewInspection, NewUser, create_user, grant_inspection

    def _make(*, starts: datetime | None = None, ends: datetime | None = None,
              zones: tuple[str, ...] = (), sites: tuple[str, ...] = (),
              name: str = "Ian Inspector") -> tuple[User, int]:
        now = svc.clock.now()
        email = f"inspector-{len(name)}-{now.timestamp():.0f}-{id(zones)}@agency.example"
        with world.app.app_context(), world.uow("Alex Admin") as uow:
            user = create_user(uow, NewUser(email=email, full_name=name, password=PASSWORD))
            grant_id = grant_inspection(uow, NewInspection(
                user_id=user.id, study_id=world.study_id,
                starts_at=starts or now, ends_at=ends or now + timedelta(days=2),
                zones=zones, site_ids=tuple(world.site_ids[s] for s in sites)))
            uow.commit()
        return User(id=user.id, email=email, name=name, role="inspector"), grant_id

    return _make


def events_of(svc, stream_type: str, stream_id: int | str) -> list:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from etmf.audit.models import Event

    with svc.db.read_session() as s:
        return list(s.scalars(select(Event).where(
            Event.stream_type == stream_type, Event.stream_id == str(stream_id))
            .order_by(Event.seq)))
