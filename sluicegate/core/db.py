"""Engine, sessions and migrations for SQLite (embedded) and PostgreSQL (scale-out)."""

from __future__ import annotations

import fcntl
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, create_engine, event
from sqlmodel import Session

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(url: str, *, pre_ping: bool = True) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and serialised writers.

    ``pre_ping=False`` saves a round trip per checkout on a hot path that
    retries a statement on a dropped connection itself (the HL7 listener).
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _sqlite_pragmas(engine)
        return engine
    return create_engine(url, pool_pre_ping=pre_ping, pool_size=5, max_overflow=10)


def _sqlite_pragmas(engine: Engine) -> None:
    # pysqlite's own transaction handling would start transactions lazily and
    # let two writers read the same state; BEGIN IMMEDIATE takes the write lock
    # up front, which is what the outbox, the job claim and the audit chain need.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        # WAL is a property of the database file, set by `upgrade`. Asking for it
        # again on every connection would fail at once with "database is
        # locked" (no busy wait) while another process writes.
        if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # FULL: a commit is on disk (WAL fsynced) before it returns, so an AA,
        # a 202 or a bulk line's `accepted` survives a power cut, not only a
        # crashed process (NORMAL's guarantee). ~0.3 ms per commit here.
        cursor.execute("PRAGMA synchronous=FULL")
        # Checkpoint every ~16 MB of WAL rather than SQLite's 4 MB: bulk loads
        # rewrite the same right-edge index pages batch after batch, and each
        # checkpoint copied them again (~9% of the bulk server's CPU at 4 MB).
        # The file is cut back to 64 MB after a checkpoint that left it larger.
        cursor.execute("PRAGMA wal_autocheckpoint=4000")
        cursor.execute("PRAGMA journal_size_limit=67108864")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


RELAY_CHANNEL = "sluicegate_relay"


def notify_relay(conn: Connection) -> None:
    """Wake the relays listening on PostgreSQL when this transaction commits.

    NOTIFY is transactional: sent at commit, never for a rollback, and the
    same notice repeated in one transaction is folded into one. Elsewhere
    (SQLite: one host, an embedded relay) relays poll, and this does nothing.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"NOTIFY {RELAY_CHANNEL}")


def listen(engine: Engine, on_notify: Callable[[], None], stop: threading.Event) -> None:
    """Call ``on_notify`` for each notice on the relay channel until ``stop`` is set.

    Uses a connection of its own, taken out of the pool (it stays in LISTEN
    mode); raises when the connection breaks, so the caller can retry.
    """
    fairy = engine.raw_connection()
    conn: Any = fairy.driver_connection  # psycopg.Connection
    fairy.detach()  # never handed back to the pool in LISTEN mode
    try:
        conn.rollback()  # autocommit can only be switched outside a transaction
        conn.autocommit = True
        conn.execute(f"LISTEN {RELAY_CHANNEL}")
        while not stop.is_set():
            for _ in conn.notifies(timeout=1.0):
                on_notify()
    finally:
        conn.close()


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    """Apply migrations up to ``revision`` (what `sluicegate db upgrade` runs).

    On SQLite several local processes (API, worker) may start at once: a file
    lock beside the database makes them migrate one after the other.
    """
    if not url.startswith("sqlite"):
        command.upgrade(alembic_config(url), revision)
        return
    path = Path(url.split("///", 1)[-1])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".migrate.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            command.upgrade(alembic_config(url), revision)
            # WAL from the start: switching a file that other processes already
            # use needs a moment when none of them holds a lock.
            with closing(sqlite3.connect(path, timeout=30)) as conn:
                conn.execute("PRAGMA journal_mode=WAL")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
