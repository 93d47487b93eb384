"""A second, empty instance (its own database and blob folder) to import into."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.conftest import FROZEN_AT, _admin_engine, _worker, postgres_url
from tests.integration.accounts.conftest import make_inspector  # noqa: F401


@pytest.fixture
def second_app(tmp_path: Path, _sqlite_template: Path, _pg_template: str | None,
               app: Flask) -> Iterator[Flask]:
    from etmf import create_app
    from etmf.bootstrap import services, shutdown
    from etmf.clock import FrozenClock
    from etmf.keys import ensure_system_keys
    from etmf.settings import load_settings

    instance = tmp_path / "second-instance"
    instance.mkdir()
    dropped = None
    if _pg_template is None:
        shutil.copyfile(_sqlite_template, instance / "etmf.db")
        url = f"sqlite:///{instance / 'etmf.db'}"
    else:
        name = f"etmf_t2_{_worker()}_{uuid.uuid4().hex[:10]}"
        admin = _admin_engine(postgres_url())  # type: ignore[arg-type]
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE '
                              f'"{make_url(_pg_template).database}"'))
        url = make_url(_pg_template).set(database=name).render_as_string(hide_password=False)
        dropped = (admin, name)
    settings = load_settings(overrides={"instance_path": str(instance), "database_url": url,
                                        "testing": True, "log_level": "WARNING",
                                        "jobs_runner": "inline"}, environ={})
    other = create_app(settings)
    svc = services(other)
    svc.clock = FrozenClock(FROZEN_AT)
    ensure_system_keys(svc.settings)
    yield other
    shutdown(other)
    if dropped:
        admin, name = dropped
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
