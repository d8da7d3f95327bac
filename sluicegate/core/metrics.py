"""Prometheus metrics: the families, the calls that feed them, and scrape-time collectors.

Every label value is a bounded name — adapter, route template, task, backend id,
outcome — never a job id, a raw path or anything taken from a message, so a
scrape can never leak PHI and the number of series stays small. As a second
line of defence, each metric accepts at most ``MAX_LABEL_VALUES`` distinct
values per label and folds the rest into ``"other"``.

Several processes (uvicorn workers, Celery prefork children, the relay) each
count on their own. With ``PROMETHEUS_MULTIPROC_DIR`` set *before* this module
is imported, prometheus-client writes every process's values to files there and
:func:`registry` adds them up at scrape time. Queue depth, backlog and
dead-letter counts are not counted at all: :class:`DatabaseCollector` reads
them from the database on each scrape, so they are right even after restarts.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.multiprocess import mark_process_dead as _mark_dead
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlmodel import col

from sluicegate.core.tables import Job, JobStatus, OutboxMessage, WebhookDelivery

log = structlog.get_logger("sluicegate.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MAX_LABEL_VALUES = 50
OTHER = "other"

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
MODEL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
JOB_STATUSES = frozenset({"succeeded", "failed", "dead"})
JOB_ERROR_CAUSES = frozenset(
    {
        "backend_unavailable",  # every allowed backend down / breaker open
        "backend_timeout",
        "backend_rejected",  # 4xx from the model server
        "rate_limited",
        "payment_required",  # DeepSeek 402: balance exhausted
        "guard_blocked",
        "invalid_output",
        "invalid_input",
        "worker_lost",  # lease expired
        "render_failed",
        "internal",
    }
)
INFERENCE_OUTCOMES = frozenset(
    {
        "ok",
        "error",
        "timeout",
        "rate_limited",
        "payment_required",
        "rejected",
        "breaker_open",
        "cached",
    }
)
BREAKER_STATES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
DELIVERY_KINDS = frozenset({"webhook", "writeback", "mllp"})
DELIVERY_OUTCOMES = frozenset({"delivered", "retry", "dead"})


class _Bounded:
    """Caps the distinct values a label may take in this process; the rest become 'other'."""

    def __init__(self, limit: int = MAX_LABEL_VALUES) -> None:
        self.limit = limit
        self._seen: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def __call__(self, key: str, value: object, allowed: frozenset[str] | None = None) -> str:
        text = str(value)[:64] if value is not None else ""
        if allowed is not None:
            return text if text in allowed else OTHER
        with self._lock:
            seen = self._seen.setdefault(key, set())
            if text in seen:
                return text
            if len(seen) >= self.limit:
                return OTHER
            seen.add(text)
            return text


bounded = _Bounded()

# ---- the families -----------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "sluicegate_http_requests",
    "HTTP requests answered, by adapter, route template, method and status code.",
    ["adapter", "route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "sluicegate_http_request_duration_seconds",
    "Time to answer an HTTP request, by adapter and route template.",
    ["adapter", "route", "method"],
    buckets=LATENCY_BUCKETS,
)
JOBS_ACCEPTED = Counter(
    "sluicegate_jobs_accepted",
    "Work items accepted (stored with their outbox message), by adapter.",
    ["adapter"],
)
JOBS_FINISHED = Counter(
    "sluicegate_jobs_finished",
    "Jobs that reached a terminal state, by task, trust zone of the route and status.",
    ["task", "route_zone", "status"],
)
JOB_LATENCY = Histogram(
    "sluicegate_job_duration_seconds",
    "End-to-end job time, accepted to terminal state, by task and trust zone.",
    ["task", "route_zone"],
    buckets=JOB_BUCKETS,
)
JOB_ERRORS = Counter(
    "sluicegate_job_errors",
    "Failed job attempts by task and bounded cause.",
    ["task", "cause"],
)
INFERENCE_CALLS = Counter(
    "sluicegate_inference_requests",
    "Model calls by backend, trust zone and outcome.",
    ["backend", "zone", "outcome"],
)
INFERENCE_LATENCY = Histogram(
    "sluicegate_inference_duration_seconds",
    "Time of one model call, by backend and trust zone.",
    ["backend", "zone"],
    buckets=MODEL_BUCKETS,
)
INFERENCE_TOKENS = Counter(
    "sluicegate_inference_tokens",
    "Tokens sent to and generated by each backend.",
    ["backend", "zone", "kind"],
)
INFERENCE_COST = Counter(
    "sluicegate_inference_cost",
    "Money spent on model calls, in inference.currency.",
    ["backend", "zone"],
)
BREAKER = Gauge(
    "sluicegate_breaker_state",
    "Circuit breaker per backend: 0 closed, 1 half-open, 2 open (worst over processes).",
    ["backend"],
    multiprocess_mode="livemax",
)
GUARD_BLOCKS = Counter(
    "sluicegate_guard_blocks",
    "Texts the privacy guard stopped, by kind of finding.",
    ["kind"],
)
CACHE_LOOKUPS = Counter(
    "sluicegate_cache_lookups",
    "Response cache lookups, by result (hit or miss).",
    ["result"],
)
DELIVERIES = Counter(
    "sluicegate_deliveries",
    "Outbound delivery attempts (webhook, write-back, MLLP) by outcome.",
    ["kind", "outcome"],
)
AUDIT_VERIFICATIONS = Counter(
    "sluicegate_audit_verifications",
    "Audit chain verifications, by result (ok or failed).",
    ["result"],
)


def observe_request(adapter: str, route: str, method: str, status: int, seconds: float) -> None:
    """One HTTP request answered; ``route`` must be the template, not the raw path."""
    adapter_v = bounded("http.adapter", adapter)
    route_v = bounded("http.route", route)
    method_v = bounded("http.method", method.upper(), HTTP_METHODS)
    HTTP_REQUESTS.labels(adapter_v, route_v, method_v, str(int(status))).inc()
    HTTP_LATENCY.labels(adapter_v, route_v, method_v).observe(max(seconds, 0.0))


def job_accepted(adapter: str, count: int = 1) -> None:
    """Work items committed at ingest (call after the transaction commits)."""
    JOBS_ACCEPTED.labels(bounded("adapter", adapter)).inc(count)


def since(moment: datetime) -> float:
    """Seconds from ``moment`` to now; naive datetimes (SQLite) are taken as UTC."""
    return _age_s(moment, datetime.now(UTC))


def job_finished(task: str, route_zone: str, status: str, seconds: float) -> None:
    """A job ended; ``seconds`` from acceptance to now. ``route_zone``: onprem, cloud or none."""
    task_v = bounded("task", task)
    zone_v = bounded("zone", route_zone or "none", frozenset({"onprem", "cloud", "none"}))
    JOBS_FINISHED.labels(task_v, zone_v, bounded("status", status, JOB_STATUSES)).inc()
    JOB_LATENCY.labels(task_v, zone_v).observe(max(seconds, 0.0))


def job_error(task: str, cause: str) -> None:
    """One failed attempt, with a cause from ``JOB_ERROR_CAUSES`` (else counted as 'other')."""
    JOB_ERRORS.labels(bounded("task", task), bounded("cause", cause, JOB_ERROR_CAUSES)).inc()


def inference_call(
    backend: str,
    zone: str,
    outcome: str,
    seconds: float,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    cost: float | None = None,
) -> None:
    """One model call; ``outcome`` from ``INFERENCE_OUTCOMES`` (402 is 'payment_required')."""
    backend_v = bounded("backend", backend)
    zone_v = bounded("zone", zone, frozenset({"onprem", "cloud"}))
    INFERENCE_CALLS.labels(backend_v, zone_v, bounded("outcome", outcome, INFERENCE_OUTCOMES)).inc()
    INFERENCE_LATENCY.labels(backend_v, zone_v).observe(max(seconds, 0.0))
    if prompt_tokens:
        INFERENCE_TOKENS.labels(backend_v, zone_v, "prompt").inc(prompt_tokens)
    if completion_tokens:
        INFERENCE_TOKENS.labels(backend_v, zone_v, "completion").inc(completion_tokens)
    if cost:
        INFERENCE_COST.labels(backend_v, zone_v).inc(cost)


def breaker_state(backend: str, state: str) -> None:
    """A backend's breaker changed: 'closed', 'half_open' or 'open'."""
    value = BREAKER_STATES.get(state.replace("-", "_").lower())
    if value is None:  # never raise into the breaker that called us
        log.warning("metrics.unknown_breaker_state", state=str(state)[:32])
        return
    BREAKER.labels(bounded("backend", backend)).set(value)


def guard_blocked(kind: str) -> None:
    """The output/input guard stopped a text; ``kind`` names the finding type, not its value."""
    GUARD_BLOCKS.labels(bounded("guard.kind", kind)).inc()


def cache_lookup(hit: bool) -> None:
    CACHE_LOOKUPS.labels("hit" if hit else "miss").inc()


def webhook_delivery(kind: str, outcome: str) -> None:
    """One outbound delivery attempt: kind webhook|writeback|mllp, outcome delivered|retry|dead."""
    DELIVERIES.labels(
        bounded("delivery.kind", kind, DELIVERY_KINDS),
        bounded("delivery.outcome", outcome, DELIVERY_OUTCOMES),
    ).inc()


def audit_verified(ok: bool) -> None:
    """Result of one ``audit verify`` run; a failure pages someone."""
    AUDIT_VERIFICATIONS.labels("ok" if ok else "failed").inc()


# ---- scrape-time collectors --------------------------------------------------------


def _age_s(oldest: datetime | None, now: datetime) -> float:
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:  # SQLite hands back naive UTC
        oldest = oldest.replace(tzinfo=UTC)
    return max((now - oldest).total_seconds(), 0.0)


def delivery_kind(event: str) -> str:
    """Bounded kind of a delivery row: its ``event`` is 'writeback' or 'job.<status>'."""
    return event if event in DELIVERY_KINDS else "webhook"


class DatabaseCollector(Collector):
    """Queue depth, oldest queued job, outbox and delivery backlog, read at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> Iterable[Metric]:
        return []  # names are fixed; skip the query at registration

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "sluicegate_database_up", "1 when the scrape could read the database."
        )
        try:
            families = list(self._read())
        except Exception as exc:
            log.warning("metrics.database_unreadable", error=type(exc).__name__)
            up.add_metric([], 0.0)
            return [up]
        up.add_metric([], 1.0)
        return [up, *families]

    def _read(self) -> Iterator[Metric]:
        now = datetime.now(UTC)
        status_col, event_col = col(Job.status), col(WebhookDelivery.event)
        delivery_status = col(WebhookDelivery.status)
        with self.engine.connect() as conn:
            by_status: dict[str, int] = {
                status: count
                for status, count in conn.execute(
                    select(status_col, func.count()).group_by(status_col)
                )
            }
            oldest_queued = conn.execute(
                select(func.min(col(Job.created_at))).where(status_col == JobStatus.QUEUED.value)
            ).scalar()
            outbox_count, outbox_oldest = conn.execute(
                select(func.count(), func.min(col(OutboxMessage.created_at))).where(
                    col(OutboxMessage.published_at).is_(None)
                )
            ).one()
            deliveries = conn.execute(
                select(
                    event_col,
                    delivery_status,
                    func.count(),
                    func.min(col(WebhookDelivery.created_at)),
                )
                .where(delivery_status.in_(("pending", "dead")))
                .group_by(event_col, delivery_status)
            ).all()
        jobs = GaugeMetricFamily(
            "sluicegate_jobs", "Jobs in the database by status.", labels=["status"]
        )
        for status in JobStatus:
            jobs.add_metric([status.value], float(by_status.get(status.value, 0)))
        yield jobs
        yield GaugeMetricFamily(
            "sluicegate_queue_depth",
            "Jobs waiting for or held by a worker (queued + running).",
            value=float(by_status.get("queued", 0) + by_status.get("running", 0)),
        )
        yield GaugeMetricFamily(
            "sluicegate_queue_oldest_age_seconds",
            "Age of the oldest queued job (0 when none).",
            value=_age_s(oldest_queued, now),
        )
        yield GaugeMetricFamily(
            "sluicegate_outbox_backlog",
            "Outbox messages not yet published to the broker.",
            value=float(outbox_count),
        )
        yield GaugeMetricFamily(
            "sluicegate_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox message (0 when none).",
            value=_age_s(outbox_oldest, now),
        )
        backlog: dict[tuple[str, str], float] = {}
        oldest: dict[str, datetime] = {}
        for event, state, count, first in deliveries:
            key = (delivery_kind(event), state)
            backlog[key] = backlog.get(key, 0.0) + float(count)
            if state == "pending" and first is not None:
                kind = key[0]
                oldest[kind] = min(oldest.get(kind, first), first)
        family = GaugeMetricFamily(
            "sluicegate_delivery_backlog",
            "Outbound deliveries pending or dead-lettered, by kind.",
            labels=["kind", "status"],
        )
        for kind in sorted(DELIVERY_KINDS - {"mllp"}):
            for state in ("pending", "dead"):
                family.add_metric([kind, state], backlog.get((kind, state), 0.0))
        yield family
        age = GaugeMetricFamily(
            "sluicegate_delivery_oldest_pending_age_seconds",
            "Age of the oldest pending delivery, by kind.",
            labels=["kind"],
        )
        for kind in sorted(DELIVERY_KINDS - {"mllp"}):
            age.add_metric([kind], _age_s(oldest.get(kind), now))
        yield age


class _ThisProcess(Collector):
    """The default registry (this process's counters plus process/GC/platform metrics)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def multiprocess_dir() -> Path | None:
    raw = os.environ.get(MULTIPROC_ENV)
    return Path(raw) if raw else None


def registry(engine: Engine | None = None, multiproc_dir: Path | None = None) -> CollectorRegistry:
    """What one scrape shows: every process's counters, plus the database gauges if given."""
    directory = multiproc_dir or multiprocess_dir()
    reg = CollectorRegistry(auto_describe=False)
    if directory is not None:
        MultiProcessCollector(reg, path=str(directory))
        ProcessCollector(registry=reg)  # CPU and memory of the serving process
    else:
        reg.register(_ThisProcess())
    if engine is not None:
        reg.register(DatabaseCollector(engine))
    return reg


def mark_process_dead(pid: int) -> None:
    """Drop a finished process's live gauges (breaker state) from the shared directory."""
    directory = multiprocess_dir()
    if directory is not None:
        _mark_dead(pid, str(directory))


def prepare_multiprocess_dir(directory: Path) -> None:
    """Create or empty the directory before the first process starts writing to it.

    Stale files from an earlier run would be added to the new one's counters.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def serve_exporter(port: int, host: str = "0.0.0.0") -> Any:
    """Serve /metrics for a worker or relay process (no database gauges: the API has them)."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=host, registry=registry())
    log.info("metrics.exporter_listening", port=port, multiprocess=multiprocess_dir() is not None)
    return server


def _child_exited(pid: int | None = None, **_: Any) -> None:
    mark_process_dead(pid or os.getpid())


def drop_dead_children() -> None:
    """Have each Celery prefork child remove its live gauges when it exits."""
    from celery.signals import worker_process_shutdown

    worker_process_shutdown.connect(_child_exited, weak=False)
