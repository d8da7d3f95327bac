"""Draft reports out as ORU^R01 over MLLP to an independent receiver (python-hl7's).

Through core's write-back deliveries: AA delivered (location on the job),
AE/AR recorded as a failure and not retried, a receiver that is down for a
while retried with backoff until it answers. The ORU itself is read back
with hl7apy and python-hl7.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import hl7
import hl7.mllp
import pytest
from hl7apy.parser import parse_message
from sqlmodel import Session, select

from sluicegate.adapters.hl7v2 import Hl7v2Adapter
from sluicegate.core import pipeline, webhooks
from sluicegate.core.interfaces import DeliveryFailed, Generation, Zone
from sluicegate.core.runtime import Runtime, build_runtime
from sluicegate.core.tables import Job, WebhookDelivery, utcnow
from tests.conftest import FAKE_INFERENCE, free_port, make_settings

ORU = (
    "MSH|^~\\&|RIS|HOSP|SG|SG|20250102||ORU^R01|ORU-WB-1|P|2.5.1\r"
    "PID|1||MRN9^^^HOSP^MR||Quigley^Zebulon||19600101|M\r"
    "PV1|1|O\r"
    "ORC|RE|PL123^RIS|FI456^PACS\r"
    "OBR|1|PL123^RIS|FI456^PACS|CTH^CT HEAD WO^L|||20250102" + "|" * 11 + "ACC789\r"
    "OBX|1|TX|||Findings: no acute intracranial hemorrhage.~Ventricles normal.\r"
)


class Receiver:
    """python-hl7's asyncio MLLP server on its own loop; answers with ``self.code``."""

    def __init__(self, port: int) -> None:
        self.port, self.code = port, "AA"
        self.received: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._server: Any = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    async def _handle(self, reader: Any, writer: Any) -> None:
        try:
            while not writer.is_closing():
                message = await reader.readmessage()
                self.received.append(str(message))
                writer.writemessage(message.create_ack(ack_code=self.code))
                await writer.drain()
        except asyncio.IncompleteReadError:
            writer.close()

    def start(self) -> None:
        async def go() -> None:
            self._server = await hl7.mllp.start_hl7_server(self._handle, "127.0.0.1", self.port)

        asyncio.run_coroutine_threadsafe(go(), self._loop).result(10)

    def stop(self) -> None:
        async def halt() -> None:
            self._server.close()
            await self._server.wait_closed()

        if self._server is not None:
            asyncio.run_coroutine_threadsafe(halt(), self._loop).result(10)
            self._server = None

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@contextmanager
def stack(tmp_path: Path, port: int, **write_back: Any) -> Iterator[Runtime]:
    options = {
        "mllp": {"enabled": False},
        "write_back": {
            "host": "127.0.0.1",
            "port": port,
            "timeout_s": 5,
            "backoff_s": 0.01,
            "backoff_max_s": 0.02,
            "max_attempts": 5,
            **write_back,
        },
    }
    settings = make_settings(
        tmp_path,
        adapters={
            "hl7v2": {"factory": "sluicegate.adapters.hl7v2:Hl7v2Adapter", "options": options}
        },
        inference=FAKE_INFERENCE,
    )
    runtime = build_runtime(settings)
    try:
        yield runtime
    finally:
        runtime.close()


def _accept_and_run(runtime: Runtime, message: str = ORU) -> str:
    adapter = runtime.adapters["hl7v2"]
    assert isinstance(adapter, Hl7v2Adapter)

    async def go() -> list[str]:
        intake = adapter.intake(runtime, "hl7v2", "default")
        reply = await intake.handle(message.encode())
        await intake.aclose()
        assert reply.code == "AA"
        return reply.job_ids

    [job_id] = asyncio.run(go())
    assert pipeline.execute(runtime, job_id) == "succeeded"
    return job_id


def _delivery(runtime: Runtime) -> WebhookDelivery:
    with Session(runtime.engine) as s:
        return s.exec(select(WebhookDelivery)).one()


def _due_now(runtime: Runtime) -> None:
    with Session(runtime.engine) as s:
        for d in s.exec(select(WebhookDelivery)).all():
            d.next_attempt_at = utcnow() - timedelta(seconds=1)
            s.add(d)
        s.commit()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    peer = Receiver(free_port())
    yield peer
    peer.close()


def test_oru_is_acked_by_an_independent_receiver(tmp_path, scripted, receiver) -> None:
    receiver.start()
    with stack(tmp_path, receiver.port) as runtime:
        job_id = _accept_and_run(runtime)
        assert webhooks.deliver_due(runtime) == 1
        delivery = _delivery(runtime)
        assert delivery.status == "delivered", delivery.last_error
        with Session(runtime.engine) as s:
            job = s.get(Job, job_id)
            assert job is not None and job.external_location is not None
            assert job.external_location.startswith("mllp://127.0.0.1:")
    [sent] = receiver.received
    oru = hl7.parse(sent)
    assert str(oru.segment("MSH")[9]) == "ORU^R01^ORU_R01"
    assert str(oru.segment("MSH")[5]) == "RIS"  # addressed back to the sender
    assert str(oru.segment("OBR")[25]) == "P"
    assert str(oru.segment("OBR")[2]) == "PL123^RIS" and str(oru.segment("OBR")[3]) == "FI456^PACS"
    assert str(oru.segment("OBR")[18]) == "ACC789"
    obx = oru.segments("OBX")
    assert all(str(o[2]) == "TX" and str(o[11]) == "P" for o in obx)
    assert "IMPRESSION: No acute findings." in "\n".join(str(o[5]) for o in obx)
    parsed = parse_message(sent.replace("\n", "\r"), find_groups=False)  # hl7apy reads it too
    assert parsed.msh.msh_9.to_er7() == "ORU^R01^ORU_R01"


@pytest.mark.parametrize("code", ["AE", "AR"])
def test_error_ack_is_recorded_not_retried(tmp_path, scripted, receiver, code) -> None:
    receiver.code = code
    receiver.start()
    with stack(tmp_path, receiver.port) as runtime:
        _accept_and_run(runtime)
        webhooks.deliver_due(runtime)
        delivery = _delivery(runtime)
        assert delivery.status == "dead" and delivery.attempts == 1
        assert f"receiver answered {code}" in (delivery.last_error or "")
        _due_now(runtime)
        assert webhooks.deliver_due(runtime) == 0
    assert len(receiver.received) == 1


@pytest.mark.parametrize(
    ("write_back", "failures"),
    [({}, 2), ({"max_attempts": None}, 20)],
    ids=["down-for-a-while", "default-until-answered"],
)
def test_receiver_down_for_a_while_is_retried(
    tmp_path, scripted, receiver, write_back: dict[str, Any], failures: int
) -> None:
    """Retried with backoff while nobody listens; by default (no max_attempts)
    far past the old limit of 8; delivered once the receiver is back."""
    with stack(tmp_path, receiver.port, **write_back) as runtime:
        _accept_and_run(runtime)
        for attempt in range(1, failures + 1):
            _due_now(runtime)
            webhooks.deliver_due(runtime)
            delivery = _delivery(runtime)
            assert delivery.status == "pending" and delivery.attempts == attempt
            assert "unreachable" in (delivery.last_error or "")
        receiver.start()
        _due_now(runtime)
        webhooks.deliver_due(runtime)
        delivery = _delivery(runtime)
        assert delivery.status == "delivered" and delivery.attempts == failures + 1
    assert len(receiver.received) == 1


def test_a_set_max_attempts_dead_letters(tmp_path, scripted, receiver) -> None:
    with stack(tmp_path, receiver.port, max_attempts=3) as runtime:
        _accept_and_run(runtime)
        for _ in range(3):
            _due_now(runtime)
            webhooks.deliver_due(runtime)
        delivery = _delivery(runtime)
        assert delivery.status == "dead" and delivery.attempts == 3
    assert receiver.received == []


def test_unreachable_is_retryable_and_error_ack_is_not(receiver) -> None:
    adapter = Hl7v2Adapter({"write_back": {"host": "127.0.0.1", "port": receiver.port}})
    generation = Generation("Draft.", "b", "m", Zone.ONPREM, 0.1)
    from sluicegate.adapters.hl7v2.extract import extract
    from sluicegate.adapters.hl7v2.parse import read_message

    [item] = extract(read_message(ORU), tenant="t", channel="hl7v2").items
    body = adapter.render(item, generation, "job-1").body
    with pytest.raises(DeliveryFailed) as down:
        adapter.write_back(body, "x-application/hl7-v2+er7", item, "job-1")
    assert down.value.retryable
    receiver.code = "AR"
    receiver.start()
    with pytest.raises(DeliveryFailed) as rejected:
        adapter.write_back(body, "x-application/hl7-v2+er7", item, "job-1")
    assert not rejected.value.retryable
    receiver.code = "AA"
    assert adapter.write_back(body, "x-application/hl7-v2+er7", item, "job-1")


ORDER = (
    "MSH|^~\\&|HIS|HOSP|SG|SG|20250101||ORM^O01|ORM-WB-1|P|2.5.1\r"
    "PID|1||MRN9^^^HOSP^MR\r"
    "ORC|NW|PL123^RIS|FI456^PACS\r"
    "OBR|1|PL123^RIS|FI456^PACS|CTH^CT HEAD WO^L" + "|" * 14 + "ACC789\r"
)
# The result names only the accession number (OBR-18): no placer, filler or ORC.
RESULT_BY_ACCESSION = (
    "MSH|^~\\&|RIS|HOSP|SG|SG|20250102||ORU^R01|ORU-WB-2|P|2.5.1\r"
    "PID|1||MRN9^^^HOSP^MR\r"
    "OBR|1|||CTH^CT HEAD WO^L" + "|" * 14 + "ACC789\r"
    "OBX|1|TX|||No acute intracranial hemorrhage.\r"
)


def test_outbound_oru_takes_placer_and_filler_from_the_pending_order(
    tmp_path, scripted, receiver
) -> None:
    receiver.start()
    with stack(tmp_path, receiver.port) as runtime:
        adapter = runtime.adapters["hl7v2"]
        assert isinstance(adapter, Hl7v2Adapter)

        async def go() -> list[str]:
            intake = adapter.intake(runtime, "hl7v2", "default")
            placed = await intake.handle(ORDER.encode())
            assert placed.code == "AA" and placed.job_ids == []
            result = await intake.handle(RESULT_BY_ACCESSION.encode())
            await intake.aclose()
            return result.job_ids

        [job_id] = asyncio.run(go())
        assert pipeline.execute(runtime, job_id) == "succeeded"
        assert webhooks.deliver_due(runtime) == 1
    [sent] = receiver.received
    oru = hl7.parse(sent)
    obr, orc = oru.segment("OBR"), oru.segment("ORC")
    assert str(obr[2]) == "PL123^RIS" and str(obr[3]) == "FI456^PACS"
    assert str(obr[18]) == "ACC789"
    assert str(orc[2]) == "PL123^RIS" and str(orc[3]) == "FI456^PACS"
