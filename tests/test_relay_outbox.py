"""Several relays publishing one outbox: each message goes to the broker once.

Every API replica runs a relay thread, and every relay is woken by the same
NOTIFY. A relay claims a page of messages before it publishes them (marked,
``SKIP LOCKED``), so two relays at the same moment never both publish a job;
what the broker refuses is handed back and published by a later round.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from sluicegate.core import db, relay
from sluicegate.core.ingest import accept
from sluicegate.core.interfaces import WorkItem
from sluicegate.core.runtime import Runtime, build_runtime
from sluicegate.core.tables import OutboxMessage
from tests.conftest import FAKE_INFERENCE, make_settings


def _item(n: int) -> WorkItem:
    return WorkItem(
        tenant="default",
        channel="fhir",
        task="radiology_report",
        source_ref=f"Bundle/b{n}",
        idempotency_key=f"k{n}-{uuid.uuid4().hex}",
        payload={},
        prompt_inputs={"procedure": "CT", "modality": "CT", "findings": "2 cm nodule."},
    )


def _runtime(tmp_path: Path, url: str, name: str) -> Runtime:
    settings = make_settings(
        tmp_path / name,
        database={"url": url},
        inference=FAKE_INFERENCE,
        pipeline={"batch_size": 2},
        relay={"batch_size": 3},
    )
    return build_runtime(settings)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    else:
        url = str(request.getfixturevalue("pg_url"))
    db.upgrade(url)
    return url


class Broker:
    """Stands in for Celery's publish: records job ids; slow, or down, on demand."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, pause_s: float = 0.0) -> None:
        self.sent: list[str] = []
        self.down = False
        self.pause_s = pause_s
        self._lock = threading.Lock()
        monkeypatch.setattr(relay, "publish", lambda app, job_id, mid: self._take([job_id]))
        monkeypatch.setattr(relay, "publish_batch", lambda app, job_ids, mid: self._take(job_ids))

    def _take(self, job_ids: list[str]) -> None:
        time.sleep(self.pause_s)  # two relays' rounds overlap
        if self.down:
            raise ConnectionError("broker unreachable")
        with self._lock:
            self.sent.extend(job_ids)


@pytest.fixture
def runtimes(tmp_path: Path, pg_url: str) -> Iterator[list[Runtime]]:
    db.upgrade(pg_url)
    pair = [_runtime(tmp_path, pg_url, name) for name in ("replica-a", "replica-b")]
    yield pair
    for rt in pair:
        rt.close()


def _accept(runtime: Runtime, n: int) -> list[str]:
    items = [_item(k) for k in range(n)]
    done = accept(runtime.engine, runtime.sealer, "fhir", items, max_attempts=3, lease_s=120)
    return [a.job_id for a in done]


def test_two_relays_at_once_publish_each_message_once(
    runtimes: list[Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = Broker(monkeypatch, pause_s=0.05)
    jobs = _accept(runtimes[0], 12)
    published: list[int] = []

    def drain(rt: Runtime) -> None:
        while (n := relay.publish_pending(rt)) > 0:
            published.append(n)

    threads = [threading.Thread(target=drain, args=(rt,)) for rt in runtimes for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    counts = Counter(broker.sent)
    assert sorted(counts) == sorted(jobs)
    assert set(counts.values()) == {1}, "a message was published by two relays"
    assert sum(published) == len(jobs)
    with Session(runtimes[0].engine) as s:
        rows = s.exec(select(OutboxMessage)).all()
    assert all(r.published_at is not None for r in rows)


def test_what_the_broker_refused_is_handed_back_and_sent_later(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = Broker(monkeypatch)
    rt = _runtime(tmp_path, db_url, "one")
    try:
        jobs = _accept(rt, 3)
        broker.down = True
        assert relay.publish_pending(rt) == 0
        with Session(rt.engine) as s:
            rows = sorted(s.exec(select(OutboxMessage)).all(), key=lambda r: r.id or 0)
        assert [r.published_at for r in rows] == [None, None, None]
        assert rows[0].publish_attempts == 1 and "ConnectionError" in (rows[0].last_error or "")
        assert [r.publish_attempts for r in rows[1:]] == [0, 0]
        broker.down = False
        assert relay.publish_pending(rt) == 3
        assert relay.publish_pending(rt) == 0
        assert sorted(broker.sent) == sorted(jobs)
    finally:
        rt.close()
