"""Multi-row INSERTs handed straight to the driver's ``executemany`` on SQLite.

SQLAlchemy's ``conn.execute(insert(table), rows)`` builds a parameter dict per
row and runs every value through its type's bind processor; for the ingest
path's few hundred rows per transaction that bookkeeping cost more than
SQLite's own work. Here the statement text is compiled once per table and
column set, and a column's bind processor runs once per distinct value when
the values repeat (a batch shares one timestamp) — the stored values are the
ones SQLAlchemy would store. Other databases keep the SQLAlchemy path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Dialect, Table, insert

Processor = Callable[[Any], Any] | None


def insert_many(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT ``rows`` (each with the same keys) into ``table`` in the caller's transaction."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(insert(table), list(rows))
        return
    sql, columns, processors = _compiled(conn.dialect, table, frozenset(rows[0]))
    values: list[list[Any]] = [[row[c] for c in columns] for row in rows]
    for index, process in enumerate(processors):
        if process is None:
            continue
        memo: dict[datetime, Any] = {}
        for params in values:
            value = params[index]
            if value is None:
                continue
            if isinstance(value, datetime):
                done = memo.get(value)
                if done is None:
                    done = memo[value] = process(value)
                params[index] = done
            else:
                params[index] = process(value)
    conn.exec_driver_sql(sql, [tuple(v) for v in values])


_Compiled = tuple[str, tuple[str, ...], tuple[Processor, ...]]
_CACHE: dict[tuple[type[Dialect], Table, frozenset[str]], _Compiled] = {}


def _compiled(dialect: Dialect, table: Table, keys: frozenset[str]) -> _Compiled:
    """The positional INSERT text for the columns ``keys``, their order in it, and
    each one's bind processor (cached per dialect class: engines come and go)."""
    key = (type(dialect), table, keys)
    found = _CACHE.get(key)
    if found is None:
        found = _CACHE[key] = _compile(dialect, table, keys)
    return found


def _compile(dialect: Dialect, table: Table, keys: frozenset[str]) -> _Compiled:
    compiled = insert(table).compile(dialect=dialect, column_keys=sorted(keys))
    order = tuple(compiled.positiontup or ())
    if set(order) != keys or len(order) != len(keys):
        raise RuntimeError(f"unexpected parameters for {table.name}: {order}")
    processors = tuple(table.c[c].type._cached_bind_processor(dialect) for c in order)
    return str(compiled), order, processors
