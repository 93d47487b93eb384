"""The PostgreSQL role the application runs as: INSERT and SELECT only on the audit log.

`etmf db grant-app-role ROLE` sets it up; the schema owner (who runs migrations) stays a
separate role. Triggers refuse UPDATE/DELETE/TRUNCATE of events for the owner too.
"""

from __future__ import annotations

import re

from sqlalchemy import Engine, text

from etmf.errors import ValidationError

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def grant_app_role(engine: Engine, role: str, *, password: str | None = None) -> None:
    if engine.dialect.name != "postgresql":
        raise ValidationError("Application roles exist on PostgreSQL only; "
                              "SQLite relies on its triggers.")
    if not _IDENT.match(role):
        raise ValidationError(f"{role!r} is not a plain lower-case PostgreSQL role name.")
    with engine.begin() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
        if not exists:
            conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        if password:
            conn.execute(text(f'ALTER ROLE "{role}" PASSWORD :p'), {"p": password})
        schema = conn.scalar(text("SELECT current_schema()"))
        conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
        tables = conn.scalars(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": schema}).all()
        for table in tables:
            if table == "audit_events":
                conn.execute(text(f'REVOKE ALL ON "{table}" FROM "{role}"'))
                conn.execute(text(f'GRANT SELECT, INSERT ON "{table}" TO "{role}"'))
            elif table == "alembic_version":
                conn.execute(text(f'GRANT SELECT ON "{table}" TO "{role}"'))
            else:
                conn.execute(text(
                    f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO "{role}"'))
        conn.execute(text(
            f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "{schema}" TO "{role}"'))
