"""Synchronize step: publish outbox messages, sweep stalled jobs, send webhooks.

Runs as a thread inside the API process (embedded default) or as its own
process (`sluicegate relay`). Several relays may run against PostgreSQL (one
per API replica, say): outbox messages and due webhooks are claimed with SKIP
LOCKED, so each goes out from one relay. Publishing is still at-least-once
(a relay that dies mid-round); the task is idempotent, so a message published
twice does no harm.
"""

from __future__ import annotations

import threading
import time

import structlog
from sqlalchemy import Table, bindparam, select, update
from sqlmodel import Session

from sluicegate.core import audit, db
from sluicegate.core.db import transaction
from sluicegate.core.pipeline import sweep
from sluicegate.core.queue import publish, publish_batch
from sluicegate.core.runtime import Runtime
from sluicegate.core.tables import OutboxMessage, utcnow
from sluicegate.core.webhooks import DELIVERY_PAGE, deliver_due

log = structlog.get_logger("sluicegate.relay")


_OUTBOX: Table = OutboxMessage.__table__  # type: ignore[attr-defined]
# Claim a page of unpublished messages by marking them published, in one
# autocommit statement: rows another relay is claiming right now are skipped,
# so several relays (one per API replica) never publish the same message.
_CLAIM = (
    update(_OUTBOX)
    .where(
        _OUTBOX.c.id.in_(
            select(_OUTBOX.c.id)
            .where(_OUTBOX.c.published_at.is_(None))
            .order_by(_OUTBOX.c.id)
            .limit(bindparam("page"))
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
    )
    .values(published_at=bindparam("now"))
    .returning(_OUTBOX.c.id, _OUTBOX.c.job_id)
)


def publish_pending(runtime: Runtime) -> int:
    """Publish up to one batch of outbox messages; returns how many went out.

    The page is claimed first (marked published, committed), then sent; the
    broker is called outside any database transaction, so a slow or dead
    broker never holds a lock that ingest needs. Stops at the first broker
    error and hands what was not sent back (unmarked, the error on the first
    one): the rest wait for the next round. A relay that dies between the
    claim and the send leaves its page marked but unsent; those jobs are still
    ``queued`` with a deadline, and the sweeper publishes them again when it
    passes (as for a message the broker lost).
    """
    values = {"page": runtime.settings.relay.batch_size, "now": utcnow()}
    if runtime.engine.dialect.name == "postgresql":
        # One statement is atomic: autocommit saves the BEGIN and COMMIT round trips.
        with runtime.engine.connect() as conn:
            auto = conn.execution_options(isolation_level="AUTOCOMMIT")
            claimed = auto.execute(_CLAIM, values).all()
    else:  # SQLite: its BEGIN IMMEDIATE (db.make_engine) needs a real transaction
        with runtime.engine.begin() as conn:
            claimed = conn.execute(_CLAIM, values).all()
    pending = sorted((int(row.id), str(row.job_id)) for row in claimed)
    if not pending:
        return 0
    sent = 0
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
            log.warning("relay.broker_unavailable", waiting=len(pending) - sent, error=error)
            break
        sent += len(chunk)
    if error is not None:
        _hand_back(runtime, [message_id for message_id, _ in pending[sent:]], error)
    return sent


def _hand_back(runtime: Runtime, message_ids: list[int], error: str) -> None:
    """Unmark messages the broker did not take; the first one records why."""
    with runtime.engine.begin() as conn:
        conn.execute(update(_OUTBOX).where(_OUTBOX.c.id.in_(message_ids)).values(published_at=None))
        conn.execute(
            update(_OUTBOX)
            .where(_OUTBOX.c.id == message_ids[0])
            .values(publish_attempts=_OUTBOX.c.publish_attempts + 1, last_error=error)
        )


CHECKPOINT_CHECK_S = 60.0
# Leases and retry backoffs are seconds long: looking for expired ones once a
# second is soon enough, and spares the database a locked scan every poll.
SWEEP_EVERY_S = 1.0
# After a round the relay gathers for a moment before the next one, even when
# woken: what arrived meanwhile goes out as one batch (pipeline.batch_size)
# instead of a round per job, and every relay (one per API replica) is woken
# by every NOTIFY, so fewer rounds also means fewer empty ones. While busy (a
# round in the last BUSY_HOLD_S did BUSY_ROUND things or more) it gathers
# BUSY_GATHER_S: under a backlog that gave batches ~1.5-2x the size of 20 ms
# and half the rounds (worker transactions and audit appends fall with them).
# Otherwise it gathers only GATHER_S, so a trickle of jobs (a publish and a
# webhook or two per round) keeps its latency. The hold keeps a replica's
# relay busy through the empty rounds it gets when another replica's relay
# took the work first. A round that found a full page goes again at once.
GATHER_S = 0.02
BUSY_GATHER_S = 0.05
BUSY_HOLD_S = 0.25
BUSY_ROUND = 4


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
        busy_until = 0.0
        while not self._stop.is_set():
            began = time.monotonic()
            done, full = 0, False
            try:
                done, full = self._round()
            except Exception:
                log.exception("relay.round_failed")
            if full:
                continue
            self._wake.wait(interval)
            self._wake.clear()
            if done >= BUSY_ROUND:
                busy_until = time.monotonic() + BUSY_HOLD_S
            gather = BUSY_GATHER_S if time.monotonic() < busy_until else GATHER_S
            self._stop.wait(max(0.0, gather - (time.monotonic() - began)))

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
