"""One message in, one ACK out: the accept path shared by MLLP and HTTP.

Reading, checking and extracting run on the event loop (they are plain string
work, a fraction of a millisecond for a typical ORU). Storing runs in one
background thread that takes every message waiting at that moment into a
single commit (group commit), so many connections share the cost of one
transaction, and each sender's ACK is built only after its commit returned.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field, replace

import structlog

from sluicegate.adapters.hl7v2.ack import ack_bytes, build_ack, error_ack, with_receiver
from sluicegate.adapters.hl7v2.extract import Extraction, extract
from sluicegate.adapters.hl7v2.options import Hl7v2Options
from sluicegate.adapters.hl7v2.parse import INTERNAL_ERROR, Hl7Error, read_message
from sluicegate.adapters.hl7v2.store import Store, Stored
from sluicegate.adapters.hl7v2.structure import StructureCheck
from sluicegate.core.runtime import Runtime

log = structlog.get_logger("sluicegate.hl7v2")

_MAX_BATCH = 256
_INLINE_BYTES = 256 * 1024


@dataclass(frozen=True)
class Reply:
    """The ACK to send and what it acknowledged."""

    ack: bytes
    code: str
    job_ids: list[str] = field(default_factory=list)
    duplicate: bool = False
    retry_later: bool = False  # not stored (database trouble): the sender must resend
    charset: str = "utf-8"  # what ``ack`` is encoded in (the message's MSH-18)


@dataclass
class _Waiting:
    extraction: Extraction
    future: asyncio.Future[Stored]


class Intake:
    """Accept path for one channel; create inside the event loop that will use it."""

    def __init__(self, runtime: Runtime, channel: str, tenant: str, options: Hl7v2Options) -> None:
        self.channel, self.tenant = channel, tenant
        self.ours = (options.application, options.facility)
        self.store = Store(runtime, channel, tenant, options.duplicate_window_s)
        check = options.hl7apy_check
        self.structure = StructureCheck(check == "strict") if check != "off" else None
        self._queue: asyncio.Queue[_Waiting] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def handle(self, raw: bytes, sender: str = "") -> Reply:
        """Check, store and acknowledge one message; never raises.

        ``sender`` (the MLLP peer, or the API key) goes on the ``received`` audit event.
        """
        try:
            message = (
                await asyncio.to_thread(read_message, raw)  # a big document: keep the loop free
                if len(raw) > _INLINE_BYTES
                else read_message(raw)
            )
            if self.structure is not None:
                await self.structure.check(message)
            extraction = extract(message, tenant=self.tenant, channel=self.channel)
            if sender:
                extraction.items[:] = [replace(i, sender=sender) for i in extraction.items]
        except Hl7Error as exc:
            log.info("hl7.rejected", ack=exc.ack_code, code=exc.code, where=str(exc.location or ""))
            charset = exc.header.codec if exc.header else "utf-8"
            ack = ack_bytes(error_ack(exc, self.ours), exc.header)
            return Reply(ack, exc.ack_code, charset=charset)
        except Exception as exc:  # a bug of ours: answer, and log the kind only (no values)
            log.error("hl7.read_failed", error=type(exc).__name__)
            bug = Hl7Error("AE", INTERNAL_ERROR, "message could not be processed")
            return Reply(error_ack(bug, self.ours).encode(), "AE")
        header = with_receiver(extraction.header, self.ours)
        try:
            stored = await self._store(extraction)
        except Exception as exc:  # database down: the sender must resend later
            log.error("hl7.store_failed", error=type(exc).__name__, control_id=header.control_id)
            error = Hl7Error("AR", INTERNAL_ERROR, "message could not be stored; resend later")
            ack = ack_bytes(build_ack(header, "AR", error), header)
            return Reply(ack, "AR", retry_later=True, charset=header.codec)
        log.info(
            "hl7.accepted",
            type=header.message_type,
            control_id=header.control_id,
            jobs=len(stored.job_ids),
            duplicate=stored.duplicate,
        )
        ack = ack_bytes(build_ack(header, "AA"), header)
        return Reply(ack, "AA", stored.job_ids, stored.duplicate, charset=header.codec)

    async def _store(self, extraction: Extraction) -> Stored:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._task is None or self._task.done():
            # first use, or a new event loop (an app restarted in the same process)
            self._loop, self._queue = loop, asyncio.Queue()
            self._task = loop.create_task(self._committer(self._queue))
        future: asyncio.Future[Stored] = loop.create_future()
        await self._queue.put(_Waiting(extraction, future))
        return await future

    async def _committer(self, queue: asyncio.Queue[_Waiting]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < _MAX_BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                results = await asyncio.to_thread(self.store.commit, [w.extraction for w in batch])
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0].future, exc=exc)
                    continue
                # one bad member must not fail the others: each on its own
                for waiting in batch:
                    try:
                        [alone] = await asyncio.to_thread(self.store.commit, [waiting.extraction])
                        _settle(waiting.future, result=alone)
                    except Exception as single:
                        _settle(waiting.future, exc=single)
                continue
            for waiting, stored in zip(batch, results, strict=True):
                _settle(waiting.future, result=stored)

    async def aclose(self) -> None:
        if self.structure is not None:
            self.structure.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.store.close()


def _settle(
    future: asyncio.Future[Stored],
    *,
    result: Stored | None = None,
    exc: BaseException | None = None,
) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    elif result is not None:
        future.set_result(result)
