"""Backends for the search contract: Whoosh in a temporary folder, PostgreSQL in a schema of
its own (only when ETMF_TEST_DATABASE_URL is set; in CI an unreachable server fails)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, event, text, update
from sqlalchemy.exc import OperationalError

from etmf.search import SearchIndex
from etmf.search.postgres_index import PostgresIndex, create_schema, search_meta
from etmf.search.whoosh_index import VERSION_FILE, WhooshIndex

Clock = Callable[[], float]
DATABASE_URL_VARIABLE = "ETMF_TEST_DATABASE_URL"


class BackendHandle:
    """One place holding an index: open it (with a clock), count its commits, age it."""

    name: str

    def open(self, clock: Clock = time.monotonic) -> SearchIndex:
        raise NotImplementedError

    def commits(self) -> int:
        """Commits so far: Whoosh's generation on disk, PostgreSQL's COMMITs on the engine."""
        raise NotImplementedError

    def set_stored_version(self, version: int) -> None:
        """Pretend an older server built the index."""
        raise NotImplementedError


class WhooshHandle(BackendHandle):
    name = "whoosh"

    def __init__(self, path: Path) -> None:
        self.path = path

    def open(self, clock: Clock = time.monotonic) -> SearchIndex:
        return WhooshIndex(self.path, clock=clock)

    def commits(self) -> int:
        return WhooshIndex(self.path).generation()

    def set_stored_version(self, version: int) -> None:
        (self.path / VERSION_FILE).write_text(f"{version}\n", encoding="ascii")


class PostgresHandle(BackendHandle):
    name = "postgres"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._commits = 0
        event.listen(engine, "commit", self._count)

    def _count(self, _conn: object) -> None:
        self._commits += 1

    def detach(self) -> None:
        event.remove(self.engine, "commit", self._count)

    def open(self, clock: Clock = time.monotonic) -> SearchIndex:
        return PostgresIndex(self.engine, clock=clock)

    def commits(self) -> int:
        return self._commits

    def set_stored_version(self, version: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(search_meta).values(value=str(version)))


@pytest.fixture(scope="session")
def database_url() -> str:
    """The test PostgreSQL URL; skip without it, fail in CI when it is set but unreachable."""
    url = os.environ.get(DATABASE_URL_VARIABLE)
    if not url:
        pytest.skip(f"{DATABASE_URL_VARIABLE} not set")
    probe = create_engine(url)
    try:
        with probe.connect():
            pass
    except OperationalError as exc:
        message = f"{DATABASE_URL_VARIABLE} is set but PostgreSQL is unreachable: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    finally:
        probe.dispose()
    return url


@pytest.fixture(scope="module")
def pg_schemas(database_url: str) -> Iterator[Callable[[], Engine]]:
    """Make engines bound to fresh schemas (search tables created); all dropped afterwards."""
    admin = create_engine(database_url)
    made: list[tuple[str, Engine]] = []

    def make() -> Engine:
        schema = f"search_test_{uuid.uuid4().hex[:12]}"
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        engine = create_engine(database_url,
                               connect_args={"options": f"-csearch_path={schema}"})
        made.append((schema, engine))
        create_schema(engine)
        return engine

    yield make
    for schema, engine in made:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(scope="module")
def pg_test_engine(pg_schemas: Callable[[], Engine]) -> Engine:
    """One schema for a module's per-test indexes; each test starts from an empty table."""
    return pg_schemas()


BACKENDS = ["whoosh", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test; every contract test runs once per backend."""
    return str(request.param)


@pytest.fixture
def handle(backend: str, request: pytest.FixtureRequest,
           tmp_path: Path) -> Iterator[BackendHandle]:
    """A fresh, empty index location for one test."""
    if backend == "whoosh":
        yield WhooshHandle(tmp_path / "index")
        return
    engine: Engine = request.getfixturevalue("pg_test_engine")
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE search_documents"))
    create_schema(engine)  # also puts back a schema version a test may have changed
    made = PostgresHandle(engine)
    yield made
    made.detach()


@pytest.fixture
def search_index(handle: BackendHandle) -> SearchIndex:
    """A fresh, empty index for one test."""
    return handle.open()


@pytest.fixture(scope="module")
def module_handle(backend: str, request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> BackendHandle:
    """An index location shared by a module's read-only tests (built once, e.g. large)."""
    if backend == "whoosh":
        return WhooshHandle(tmp_path_factory.mktemp("search") / "index")
    make_engine: Callable[[], Engine] = request.getfixturevalue("pg_schemas")
    return PostgresHandle(make_engine())
