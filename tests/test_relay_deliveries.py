"""Several relays on one PostgreSQL database never send the same webhook twice.

Each round claims its due deliveries (``FOR UPDATE SKIP LOCKED`` and a claim
time), so a second relay running at the same moment skips them, and a relay
that dies mid-round leaves them to be sent again once the claim runs out —
at least once, never twice at the same time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from sluicegate.core import db, webhooks
from sluicegate.core.runtime import Runtime, build_runtime
from sluicegate.core.tables import WebhookDelivery, utcnow
from tests.conftest import FAKE_INFERENCE, make_settings
from tests.test_webhooks import SECRET, Receiver, run_job


class SlowReceiver(Receiver):
    """Answers each webhook after a pause, so two rounds overlap."""

    def __init__(self) -> None:
        super().__init__()
        handler = self.server.RequestHandlerClass
        answer = handler.do_POST  # type: ignore[attr-defined]

        def slow(request: Any) -> None:
            time.sleep(0.5)
            answer(request)

        handler.do_POST = slow  # type: ignore[attr-defined]


@pytest.fixture
def slow_receiver() -> Iterator[SlowReceiver]:
    r = SlowReceiver()
    yield r
    r.server.shutdown()


@pytest.fixture
def runtime(
    tmp_path: Any, pg_url: str, scripted: Any, slow_receiver: SlowReceiver
) -> Iterator[Runtime]:
    hook = {"url": slow_receiver.url, "secret": SECRET}
    settings = make_settings(
        tmp_path,
        database={"url": pg_url},
        inference=FAKE_INFERENCE,
        adapters={"fhir": {"factory": "sluicegate.adapters.fhir:FhirAdapter", "webhook": hook}},
    )
    db.upgrade(pg_url)
    rt = build_runtime(settings)
    yield rt
    rt.close()


def test_two_relays_at_once_send_each_webhook_once(
    runtime: Runtime, slow_receiver: SlowReceiver
) -> None:
    jobs = {run_job(runtime, f"k{n}") for n in range(3)}
    counts: list[int] = []
    rounds = [
        threading.Thread(target=lambda: counts.append(webhooks.deliver_due(runtime)))
        for _ in range(2)
    ]
    for t in rounds:
        t.start()
    for t in rounds:
        t.join(timeout=30)
    assert sorted(counts) == [0, 3]  # the second round found them claimed
    sent = [body for _, body in slow_receiver.received]
    assert len(sent) == 3 and all(any(j.encode() in b for b in sent) for j in jobs)
    with Session(runtime.engine) as s:
        rows = s.exec(select(WebhookDelivery)).all()
    assert {r.status for r in rows} == {"delivered"} and {r.attempts for r in rows} == {1}


def test_a_round_that_died_is_sent_again_after_its_claim(
    runtime: Runtime, slow_receiver: SlowReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_job(runtime)

    def crash(*_: Any) -> Any:
        raise RuntimeError("relay died mid-round")

    with monkeypatch.context() as patched:
        patched.setattr(webhooks, "_prepare", crash)
        with pytest.raises(RuntimeError):
            webhooks.deliver_due(runtime)
    assert webhooks.deliver_due(runtime) == 0  # still claimed by the dead round
    with runtime.engine.begin() as conn:  # the claim runs out
        conn.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.status) == "pending")
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
    assert webhooks.deliver_due(runtime) == 1
    assert len(slow_receiver.received) == 1
