"""A background writer's own SQLite connection: a whole batch commit in one hop to one thread.

Through the SQLAlchemy session a commit on SQLite crosses to aiosqlite's thread four times
(begin, insert, commit, the pool's rollback on return), each hop a queue put and a future on
the event loop: on a sequential tool-call load the audit writer was ~30% of the event loop's
samples that way, and the gateway's usage writer ~5% of the process at full load. Here one
sqlite3 connection, owned by one worker thread, runs BEGIN IMMEDIATE, the inserts and COMMIT
for a batch in a single call. The audit log and the usage ledger each own one. The file,
pragmas (`opsgate.db.engine.SQLITE_PRAGMAS`) and rows are the same as through SQLAlchemy
(timestamps are converted with SQLAlchemy's own processor by the caller, `bind_processor`),
so everything else reads them as before. In-memory databases keep the session path (a second
connection would open a different database).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import ColumnElement, Table, insert
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect, make_url

from opsgate.db.engine import SQLITE_PRAGMAS

# (SQL, rows) pairs, run in order in one transaction.
Statements = Sequence[tuple[str, Sequence[tuple[Any, ...]]]]


def bind_processor(column: ColumnElement[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """SQLAlchemy's own conversion of a value for `column` (e.g. a datetime for SQLite), so
    rows written here read back exactly like rows written through the ORM; None when the
    value goes in as it is."""
    return column.type.dialect_impl(dialect).bind_processor(dialect)


def qmark_insert(table: Table, columns: Sequence[str]) -> str:
    """SQLAlchemy's own SQLite INSERT into `table`, one `?` per column in `columns` order."""
    compiled = insert(table).compile(dialect=sqlite.dialect(), column_keys=list(columns))
    if list(compiled.positiontup or ()) != list(columns):
        raise ValueError(f"{table.name}: columns {columns} are not all in the table")
    return str(compiled)


def database_file(url: str) -> str | None:
    """The file of a SQLite URL, or None (not SQLite, or in memory)."""
    u = make_url(url)
    if not u.drivername.startswith("sqlite"):
        return None
    path = u.database or ""
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return path


class SqliteBatchWriter:
    def __init__(self, path: str, name: str) -> None:
        self.path = path
        self.name = name
        self._pool: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are exactly the BEGIN/COMMIT issued below.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        for pragma in SQLITE_PRAGMAS:
            conn.execute(pragma)
        return conn

    def _write(self, statements: Statements) -> None:
        conn = self._conn
        if conn is None:
            conn = self._conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, rows in statements:
                if rows:
                    conn.executemany(sql, rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    async def write(self, statements: Statements) -> None:
        """Run `statements` in one transaction; raises sqlite3 errors unchanged."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"opsgate-{self.name}-sqlite")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._write, statements)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        """Close the connection on its own thread and stop the thread (a later write opens
        both again)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.get_running_loop().run_in_executor(pool, self._close)
            pool.shutdown(wait=True)
