"""Database engine, sessions and the declarative base shared by every area's models.

The same code runs on SQLite (embedded default) and PostgreSQL (production). Writes are
serialised: on SQLite every write transaction starts with ``BEGIN IMMEDIATE``; on
PostgreSQL it takes a transaction-scoped advisory lock. That is what keeps the audit hash
chain from forking and lets services allocate ids without races (see etmf.audit.store).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Engine,
    MetaData,
    String,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import QueuePool
from sqlalchemy.types import TypeDecorator

from etmf.errors import ServiceUnavailable
from etmf.settings import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Key of the PostgreSQL advisory lock that serialises write transactions.
WRITE_LOCK_KEY = 0x45544D46  # "ETMF"
#: Connections a process keeps open, and how many more it may open at a peak. A request
#: holds at most one read session, the access checks' session and, while it writes, one
#: write session; gunicorn runs 4-8 threads a worker, and the job runner has its own.
POOL_SIZE = 10
POOL_OVERFLOW = 30
_POOL = {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW, "pool_timeout": 30}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on both databases (SQLite keeps no zone itself)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: pass a UTC-aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def Str(length: int = 255) -> String:  # noqa: N802 - reads like a type in models
    return String(length)


class Database:
    """Owns the engine and hands out read and write sessions."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings)
        self._read = sessionmaker(bind=self.engine, expire_on_commit=False)
        self._write_engine = self.engine.execution_options(etmf_write=True)
        self._write = sessionmaker(bind=self._write_engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def read_session(self) -> Session:
        return self._read()

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """A session whose transaction holds the write lock from its first statement."""
        session = self._write()
        try:
            session.connection()  # begin now, taking the lock
            yield session
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def lock_for_write(self, session: Session) -> None:
        """Take the write lock inside a session that began as a read (PostgreSQL only;
        SQLite takes its lock at the first write)."""
        if self.dialect == "postgresql":
            session.execute(text(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})"))

    def ping(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any driver error means the same to the reader
            raise ServiceUnavailable(
                f"The database cannot be reached: {exc.__class__.__name__}."
            ) from None

    def dispose(self) -> None:
        self.engine.dispose()


def make_engine(settings: Settings) -> Engine:
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    connect_args: dict[str, Any] = {"connect_timeout": 5}
    if settings.database_schema:
        connect_args["options"] = f"-csearch_path={settings.database_schema}"
    engine = create_engine(url, connect_args=connect_args, pool_pre_ping=True, **_POOL)

    @event.listens_for(engine, "begin")
    def _take_write_lock(conn: Any) -> None:
        if conn.get_execution_options().get("etmf_write"):
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")

    return engine


def _sqlite_engine(url: str) -> Engine:
    # A pool, as on PostgreSQL: opening a connection costs four PRAGMAs, and setting the
    # journal mode waits for the database lock, which under load cost more than the
    # requests' own queries. A pooled connection is used by one thread at a time and is
    # rolled back when returned, so no transaction (and no stale snapshot) outlives its
    # session. In-memory databases keep SQLAlchemy's own choice.
    if ":memory:" in url or url in ("sqlite://", "sqlite+pysqlite://"):
        engine = create_engine(url, connect_args={"timeout": 30})
    else:
        engine = create_engine(url, poolclass=QueuePool, **_POOL,
                               connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below decide how transactions start.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("etmf_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine

