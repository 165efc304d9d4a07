"""Row-level security and grants on PostgreSQL, used by migrations and `db upgrade`.

Rules (see shared SECURITY.md): ENABLE and FORCE RLS on every tenant table; policies read
the transaction-local `app.tenant_id`; the application role owns no table and has no
BYPASSRLS; append-only tables get SELECT and INSERT only.
"""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.engine import Connection

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

TENANT_PREDICATE = "tenant_id = current_setting('app.tenant_id', true)"


def _ident(name: str) -> str:
    # Identifiers cannot be bound parameters, so they are checked against a strict pattern.
    if not _IDENT.match(name):
        raise ValueError(f"invalid SQL identifier: {name!r}")
    return name


def enable_tenant_rls(conn: Connection, table: str) -> None:
    """Turn on forced RLS with a tenant policy for `table` (PostgreSQL only; no-op elsewhere)."""
    if conn.dialect.name != "postgresql":
        return
    t = _ident(table)
    conn.execute(text(f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY"))
    conn.execute(text(f"ALTER TABLE {t} FORCE ROW LEVEL SECURITY"))
    conn.execute(text(f"DROP POLICY IF EXISTS tenant_isolation ON {t}"))
    conn.execute(
        text(
            f"CREATE POLICY tenant_isolation ON {t} "
            f"USING ({TENANT_PREDICATE}) WITH CHECK ({TENANT_PREDICATE})"
        )
    )


def make_append_only(conn: Connection, table: str) -> None:
    """A trigger that refuses UPDATE and DELETE on `table` (PostgreSQL only)."""
    if conn.dialect.name != "postgresql":
        return
    t = _ident(table)
    conn.execute(
        text(
            """
            CREATE OR REPLACE FUNCTION opsgate_refuse_change() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
              RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME;
            END $$
            """
        )
    )
    conn.execute(text(f"DROP TRIGGER IF EXISTS {t}_append_only ON {t}"))
    conn.execute(
        text(
            f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {t} "
            "FOR EACH STATEMENT EXECUTE FUNCTION opsgate_refuse_change()"
        )
    )


def apply_grants(conn: Connection, app_role: str, append_only: set[str]) -> None:
    """Create the application role if needed and grant it DML on every table.

    Append-only tables get SELECT, INSERT only. Idempotent; runs after each upgrade.
    """
    if conn.dialect.name != "postgresql":
        return
    role = _ident(app_role)
    # Roles are cluster-wide and several databases may upgrade at once: tolerate the race.
    conn.execute(
        text(
            "DO $$ BEGIN "
            f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB; "
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        )
    )
    conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {role}"))
    tables = conn.execute(
        text("select tablename from pg_tables where schemaname = 'public'")
    ).scalars()
    for table in tables:
        t = _ident(table)
        if t == "alembic_version":
            conn.execute(text(f"GRANT SELECT ON {t} TO {role}"))
        elif t in append_only:
            conn.execute(text(f"REVOKE UPDATE, DELETE, TRUNCATE ON {t} FROM {role}"))
            conn.execute(text(f"GRANT SELECT, INSERT ON {t} TO {role}"))
        else:
            conn.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {t} TO {role}"))
    conn.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"))
