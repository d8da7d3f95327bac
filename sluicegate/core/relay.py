"""Synchronize step: publish outbox messages, sweep stalled jobs, send webhooks.

Runs as a thread inside the API process (embedded default) or as its own
process (`sluicegate relay`). Several relays may run against PostgreSQL: rows
are claimed with SKIP LOCKED. Publishing is at-least-once; the task is
idempotent, so a message published twice does no harm.
"""

from __future__ import annotations

import threading
import time

import structlog
from sqlalchemy import update
from sqlmodel import Session, col, select

from sluicegate.core import audit, db
from sluicegate.core.db import transaction
from sluicegate.core.pipeline import sweep
from sluicegate.core.queue import publish, publish_batch
from sluicegate.core.runtime import Runtime
from sluicegate.core.tables import OutboxMessage, utcnow
from sluicegate.core.webhooks import DELIVERY_PAGE, deliver_due

log = structlog.get_logger("sluicegate.relay")


def publish_pending(runtime: Runtime) -> int:
    """Publish up to one batch of outbox messages; returns how many went out.

    The broker is called outside any database transaction, so a slow or dead
    broker never holds a lock that ingest needs. Stops at the first broker
    error: the rest wait for the next round.
    """
    with transaction(runtime.engine) as session:
        pending = session.execute(
            select(col(OutboxMessage.id), OutboxMessage.job_id)
            .where(col(OutboxMessage.published_at).is_(None))
            .order_by(col(OutboxMessage.id))
            .limit(runtime.settings.relay.batch_size)
        ).all()
    sent: list[int] = []
    error: str | None = None
    size = runtime.settings.pipeline.batch_size
    for start in range(0, len(pending), size):
        chunk = pending[start : start + size]
        try:
            if len(chunk) == 1:
                publish(runtime.celery(), chunk[0][1], chunk[0][0])
            else:  # one message for several jobs: the worker runs them together
                publish_batch(runtime.celery(), [job_id for _, job_id in chunk], chunk[0][0])
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            log.warning("relay.broker_unavailable", waiting=len(pending) - len(sent), error=error)
            break
        sent.extend(message_id for message_id, _ in chunk)
    if sent or error:
        # One statement for the batch (not a read and a write per row).
        with transaction(runtime.engine) as session:
            if sent:
                session.execute(
                    update(OutboxMessage)
                    .where(col(OutboxMessage.id).in_(sent))
                    .values(published_at=utcnow())
                )
            if error is not None:
                session.execute(
                    update(OutboxMessage)
                    .where(col(OutboxMessage.id) == pending[len(sent)][0])
                    .values(
                        publish_attempts=col(OutboxMessage.publish_attempts) + 1,
                        last_error=error,
                    )
                )
    return len(sent)


CHECKPOINT_CHECK_S = 60.0
# Leases and retry backoffs are seconds long: looking for expired ones once a
# second is soon enough, and spares the database a locked scan every poll.
SWEEP_EVERY_S = 1.0
# After a round the relay gathers for this long before the next one, even when
# woken: what arrived meanwhile goes out as one batch (pipeline.batch_size)
# instead of a round per job. The latency it adds is bounded by this figure;
# a round that found a full page of work goes again at once.
GATHER_S = 0.02


def checkpoint_chains(runtime: Runtime) -> int:
    """Sign each tenant's audit chain head once ``security.audit_checkpoint_every``
    events have come since its last checkpoint: the periodic signed checkpoints
    that let ``audit verify`` catch a rewritten tail. Returns how many were signed."""
    every = runtime.settings.security.audit_checkpoint_every
    signed = 0
    with Session(runtime.engine) as session:
        tenants = audit.tenants(session)
    for tenant in tenants:
        with transaction(runtime.engine) as session:
            if audit.checkpoint(session, runtime.sealer, tenant, every) is not None:
                signed += 1
    if signed:
        log.info("audit.checkpointed", chains=signed)
    return signed


class Relay:
    """The relay loop; ``nudge()`` wakes it early after an ingest."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_checkpoint = 0.0
        self._next_sweep = 0.0

    def nudge(self) -> None:
        self._wake.set()

    def run_once(self) -> int:
        """One round: publish, sweep stalled jobs (at most every ``SWEEP_EVERY_S``),
        send due webhooks, sign audit heads. Returns how many things it did."""
        return self._round()[0]

    def _round(self) -> tuple[int, bool]:
        """(things done, whether a stage stopped at its page size and more may wait)."""
        runtime = self.runtime
        published = publish_pending(runtime)
        done = published
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + SWEEP_EVERY_S
            done += sweep(runtime)
        delivered = deliver_due(runtime)
        done += delivered
        if time.monotonic() >= self._next_checkpoint:
            self._next_checkpoint = time.monotonic() + CHECKPOINT_CHECK_S
            checkpoint_chains(runtime)
        full = published >= runtime.settings.relay.batch_size or delivered >= DELIVERY_PAGE
        return done, full

    def run_forever(self) -> None:
        interval = self.runtime.settings.relay.poll_interval_s
        if self.runtime.engine.dialect.name == "postgresql":
            # Workers and other API replicas NOTIFY when they commit work for
            # the relay, so a long poll interval costs no latency.
            threading.Thread(target=self._listen, name="relay-listen", daemon=True).start()
        while not self._stop.is_set():
            began = time.monotonic()
            full = False
            try:
                full = self._round()[1]
            except Exception:
                log.exception("relay.round_failed")
            if full:
                continue
            self._wake.wait(interval)
            self._wake.clear()
            self._stop.wait(max(0.0, GATHER_S - (time.monotonic() - began)))

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                db.listen(self.runtime.engine, self.nudge, self._stop)
            except Exception as exc:  # database restarting: poll meanwhile, listen again
                log.warning("relay.listen_failed", error=type(exc).__name__)
                self._stop.wait(5.0)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="outbox-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
