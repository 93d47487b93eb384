"""Schema migrations with Alembic, on SQLite and PostgreSQL (`etmf db upgrade`)."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(files("etmf") / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "heads") -> None:
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    """The applied revision(s), comma-separated (areas may add parallel branches)."""
    with engine.connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    return ",".join(sorted(heads)) or None


def head_revision(engine: Engine) -> str | None:
    heads = ScriptDirectory.from_config(alembic_config(engine)).get_heads()
    return ",".join(sorted(heads)) or None


def pending_revisions(engine: Engine) -> list[str]:
    """Revisions of the code not yet applied to the database (empty: up to date).

    Comparing the database's heads with the code's is not enough: a revision that another
    one depends on (``depends_on``) is applied without being a head in the database.
    """
    script = ScriptDirectory.from_config(alembic_config(engine))
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_heads()
    applied = ({r.revision for r in script.revision_map.iterate_revisions(current, "base")
                if r is not None} if current else set())
    return sorted(r.revision for r in script.walk_revisions() if r.revision not in applied)


def autogenerate(engine: Engine, message: str) -> None:  # pragma: no cover - developer tool
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True)
