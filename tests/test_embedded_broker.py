"""The embedded broker (kombu's SQLAlchemy transport on SQLite) and its queue row.

kombu creates its tables and queue row on first use behind a per-process lock, so two
processes starting together (``sluicegate serve``'s relay and its worker) could
both create them and one would die. ``declare_queue`` creates
it before they start and tolerates losing that race itself.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

from sluicegate.core.queue import QUEUE, declare_queue
from tests.conftest import make_settings


def _queues(home: Path) -> list[str]:
    with sqlite3.connect(home / "broker.db") as conn:
        return [name for (name,) in conn.execute("SELECT name FROM kombu_queue")]


def _declare_at(home: str, start: multiprocessing.synchronize.Event) -> None:
    settings = make_settings(Path(home))
    start.wait(30)
    declare_queue(settings)


def test_declare_creates_the_queue_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    declare_queue(settings)
    declare_queue(settings)
    assert _queues(tmp_path) == [QUEUE]


def test_processes_declaring_together_all_succeed(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    for attempt in range(5):
        home = tmp_path / f"round{attempt}"
        home.mkdir()
        start = ctx.Event()
        procs = [ctx.Process(target=_declare_at, args=(str(home), start)) for _ in range(6)]
        for p in procs:
            p.start()
        start.set()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0] * 6
        assert _queues(home) == [QUEUE]


def test_other_brokers_are_left_alone(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, broker={"url": "redis://127.0.0.1:6379/15"})
    declare_queue(settings)  # no connection made: Redis declares queues itself
    assert not (tmp_path / "broker.db").exists()
