"""PostgreSQL: the write of core's ``accept`` as one statement that commits itself.

Over one MLLP connection or one HTTP client each message waits for its own
commit, and on PostgreSQL every statement is a network round trip; under load
each costs far more than the SQL. The locking path (BEGIN, the existing-jobs
check, three inserts, the audit head's lock, the events, the head update,
NOTIFY, COMMIT) takes ten of them. This path takes two: one read of the
tenants' audit heads, then one autocommit statement whose data-modifying CTEs
insert the work items, jobs, outbox messages and audit events (and the links
of a batch event to its jobs), move each audit head and notify the relay. One
statement is atomic, and with ``synchronous_commit`` on it is durable when it
returns: the caller still answers only after a real commit.

Optimistic where the locking path locks: a head moves only if it is still
where it was read; otherwise the statement also inserts that tenant's head
again, which fails on its primary key, taking the whole statement with it.
So does an item stored already (its unique key). Either way the caller gets
IntegrityError, nothing was written, and it takes the locking path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, bindparam, select

from sluicegate.core import audit
from sluicegate.core.db import RELAY_CHANNEL
from sluicegate.core.tables import (
    AuditEvent,
    AuditHead,
    AuditJobLink,
    Job,
    OutboxMessage,
    WorkItemRow,
)

Events = dict[str, list[tuple[str, str | None, dict[str, Any]]]]

# Bind parameters per statement: psycopg's protocol limit is 65,535.
MAX_PARAMETERS = 30_000

_HEADS: Table = AuditHead.__table__  # type: ignore[attr-defined]
_READ_HEADS = select(_HEADS.c.tenant, _HEADS.c.last_seq, _HEADS.c.last_hash).where(
    _HEADS.c.tenant.in_(bindparam("tenants", expanding=True))
)


def fits(*row_sets: Sequence[dict[str, Any]]) -> bool:
    """Whether these rows stay well inside one statement's parameter limit."""
    return sum(len(rows) * len(rows[0]) for rows in row_sets if rows) < MAX_PARAMETERS


def write(
    conn: Connection,
    items_rows: list[dict[str, Any]],
    jobs_rows: list[dict[str, Any]],
    outbox_rows: list[dict[str, Any]],
    events: Events,
) -> None:
    """Store the rows and events on ``conn`` (autocommit) in one statement."""
    found = conn.execute(_READ_HEADS, {"tenants": sorted(events)}).all()
    heads = {tenant: (seq, prev) for tenant, seq, prev in found}
    statement = _Statement()
    event_rows: list[dict[str, Any]] = []
    link_rows: list[dict[str, Any]] = []
    moves: list[tuple[int, str, int, int, str]] = []
    for n, (tenant, tenant_events) in enumerate(sorted(events.items())):
        seq, prev = heads.get(tenant, (0, audit.GENESIS))
        rows = audit.chain_rows(tenant, seq, prev, tenant_events)
        event_rows += rows
        link_rows += audit.link_rows(tenant, rows, tenant_events)
        moves.append((n, tenant, seq, rows[-1]["seq"], rows[-1]["hash"]))
    statement.insert(WorkItemRow.__tablename__, items_rows)
    statement.insert(Job.__tablename__, jobs_rows)
    statement.insert(OutboxMessage.__tablename__, outbox_rows)
    statement.insert(AuditEvent.__tablename__, event_rows)
    statement.insert(AuditJobLink.__tablename__, link_rows)  # a bulk batch's jobs
    # Listed last because PostgreSQL runs unreferenced data-modifying CTEs in
    # reverse order: the heads move (and lock) first. Events inserted before
    # the head's lock deadlocked with a locking appender (a worker) that held
    # the head and inserted the same (tenant, seq).
    for move in moves:
        statement.move_head(*move)
    statement.finish(f"SELECT pg_notify('{RELAY_CHANNEL}', '')")
    conn.exec_driver_sql(statement.sql(), tuple(statement.params))


class _Statement:
    """The CTEs of the write, as SQL text with ``%s`` placeholders, and their values.

    Plain text rather than SQLAlchemy constructs: a multi-row VALUES is
    compiled afresh for every call (~5 ms here), text costs microseconds, and
    psycopg prepares a text it has seen a few times on the server.
    """

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: list[Any] = []
        self.main = ""

    def move_head(self, n: int, tenant: str, seq: int, new_seq: int, new_hash: str) -> None:
        """Move ``tenant``'s head on from ``seq``; if it is not there, fail the statement.

        A head never read (a new tenant, ``seq`` 0) is inserted; a head that
        moved meanwhile makes the insert collide with it.
        """
        self.parts.append(
            f"moved_head_{n} AS (UPDATE audit_heads SET last_seq = %s, last_hash = %s"
            " WHERE tenant = %s AND last_seq = %s RETURNING tenant)"
        )
        self.params += [new_seq, new_hash, tenant, seq]
        self.parts.append(
            f"new_head_{n} AS (INSERT INTO audit_heads (tenant, last_seq, last_hash)"
            f" SELECT %s, %s, %s WHERE NOT EXISTS (SELECT 1 FROM moved_head_{n}))"
        )
        self.params += [tenant, new_seq, new_hash]

    def insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        columns = list(rows[0])
        row = "(" + ", ".join(["%s"] * len(columns)) + ")"
        names = ", ".join(f'"{c}"' for c in columns)
        self.parts.append(
            f"new_{table} AS (INSERT INTO {table} ({names}) VALUES "
            + ", ".join([row] * len(rows))
            + ")"
        )
        for values in rows:
            self.params += [values[c] for c in columns]

    def finish(self, main: str) -> None:
        self.main = main

    def sql(self) -> str:
        return "WITH " + ", ".join(self.parts) + " " + self.main
