"""Triggers that refuse UPDATE, DELETE and TRUNCATE of audit events (AUD-2).

Used by the Alembic migration and by the test schema builder, so both carry the same DDL.
"""

from __future__ import annotations

from sqlalchemy import Connection

SQLITE = [
    """CREATE TRIGGER IF NOT EXISTS audit_events_no_update BEFORE UPDATE ON audit_events
       BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_events_no_delete BEFORE DELETE ON audit_events
       BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused'); END""",
]

POSTGRES = [
    """CREATE OR REPLACE FUNCTION etmf_audit_append_only() RETURNS trigger
       LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION USING
           MESSAGE = 'audit_events is append-only: ' || TG_OP || ' refused',
           ERRCODE = 'insufficient_privilege';
       END $$""",
    """CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events
       FOR EACH ROW EXECUTE FUNCTION etmf_audit_append_only()""",
    """CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
       FOR EACH STATEMENT EXECUTE FUNCTION etmf_audit_append_only()""",
]

DROP_SQLITE = [
    "DROP TRIGGER IF EXISTS audit_events_no_update",
    "DROP TRIGGER IF EXISTS audit_events_no_delete",
]
DROP_POSTGRES = [
    "DROP TRIGGER IF EXISTS audit_events_no_update_delete ON audit_events",
    "DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events",
    "DROP FUNCTION IF EXISTS etmf_audit_append_only()",
]


def install(conn: Connection) -> None:
    for statement in POSTGRES if conn.dialect.name == "postgresql" else SQLITE:
        conn.exec_driver_sql(statement)


def uninstall(conn: Connection) -> None:
    for statement in DROP_POSTGRES if conn.dialect.name == "postgresql" else DROP_SQLITE:
        conn.exec_driver_sql(statement)
