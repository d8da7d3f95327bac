"""``sluicegate status``: a live terminal view of a running gateway.

It reads only what any operator's tool could read — ``/metrics`` and
``/readyz`` over HTTP — so it works against a remote server, needs no
database credentials, and shows the same numbers Prometheus sees. Rates
(requests/s, jobs/s) come from the difference between two successive scrapes.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

Samples = dict[str, list[tuple[dict[str, str], float]]]

BREAKER_NAMES = {0.0: "closed", 1.0: "half-open", 2.0: "open"}


@dataclass
class Snapshot:
    """One reading of the server: metric samples by name, readiness, and when."""

    at: float
    samples: Samples = field(default_factory=dict)
    ready: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)

    def total(self, name: str, **match: str) -> float:
        return sum(
            value
            for labels, value in self.samples.get(name, [])
            if all(labels.get(k) == v for k, v in match.items())
        )

    def by(self, name: str, label: str, **match: str) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for labels, value in self.samples.get(name, []):
            if all(labels.get(k) == v for k, v in match.items()):
                out[labels.get(label, "")] += value
        return dict(out)


def parse_metrics(text: str) -> Samples:
    samples: Samples = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append((dict(sample.labels), float(sample.value)))
    return dict(samples)


def take_snapshot(client: httpx.Client, headers: dict[str, str] | None = None) -> Snapshot:
    """Read /metrics and /readyz; a failure of either is shown, not raised."""
    snap = Snapshot(at=time.monotonic())
    try:
        response = client.get("/metrics", headers=headers)
        response.raise_for_status()
        snap.samples = parse_metrics(response.text)
    except httpx.HTTPError as exc:
        snap.errors.append(f"/metrics: {_why(exc)}")
    try:
        response = client.get("/readyz", headers=headers)
        snap.ready = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        snap.errors.append(f"/readyz: {_why(exc)}")
    return snap


def _why(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__


def _rate(now: Snapshot, before: Snapshot | None, name: str, **match: str) -> str:
    if before is None or now.at <= before.at or not before.samples:
        return "—"
    delta = now.total(name, **match) - before.total(name, **match)
    return f"{max(delta, 0.0) / (now.at - before.at):.1f}/s"


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}"


def _age(seconds: float, count: float = 1.0) -> str:
    if not count:
        return ""
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _queues(now: Snapshot) -> Table:
    table = Table(title="Queues", expand=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("oldest", justify="right")
    jobs = now.by("sluicegate_jobs", "status")
    table.add_row(
        "jobs queued",
        _fmt(jobs.get("queued", 0.0)),
        _age(now.total("sluicegate_queue_oldest_age_seconds"), jobs.get("queued", 0.0)),
    )
    table.add_row("jobs running", _fmt(jobs.get("running", 0.0)), "")
    dead = jobs.get("dead", 0.0)
    table.add_row(Text("jobs dead", style="red" if dead else ""), _fmt(dead), "")
    table.add_row(
        "outbox unpublished",
        _fmt(now.total("sluicegate_outbox_backlog")),
        _age(
            now.total("sluicegate_outbox_oldest_age_seconds"),
            now.total("sluicegate_outbox_backlog"),
        ),
    )
    for kind in sorted(now.by("sluicegate_delivery_backlog", "kind")):
        pending = now.total("sluicegate_delivery_backlog", kind=kind, status="pending")
        dead_d = now.total("sluicegate_delivery_backlog", kind=kind, status="dead")
        oldest = now.total("sluicegate_delivery_oldest_pending_age_seconds", kind=kind)
        table.add_row(f"{kind} pending", _fmt(pending), _age(oldest, pending))
        table.add_row(Text(f"{kind} dead", style="red" if dead_d else ""), _fmt(dead_d), "")
    return table


def _backends(now: Snapshot) -> Table:
    table = Table(title="Backends", expand=True)
    for column in ("backend", "ready", "breaker", "calls", "avg s", "tokens", "cost"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    checks = (now.ready or {}).get("checks", {})
    names = {key.split(":", 1)[1] for key in checks if key.startswith("backend:")}
    names |= set(now.by("sluicegate_inference_requests_total", "backend"))
    names |= set(now.by("sluicegate_breaker_state", "backend"))
    for name in sorted(names):
        check = checks.get(f"backend:{name}")
        ready = (
            Text("yes", style="green")
            if check and check.get("ok")
            else (Text("no", style="red") if check else Text("?"))
        )
        breaker_values = [
            v
            for lab, v in now.samples.get("sluicegate_breaker_state", [])
            if lab.get("backend") == name
        ]
        state = BREAKER_NAMES.get(max(breaker_values), "?") if breaker_values else "—"
        calls = now.total("sluicegate_inference_requests_total", backend=name)
        seconds = now.total("sluicegate_inference_duration_seconds_sum", backend=name)
        count = now.total("sluicegate_inference_duration_seconds_count", backend=name)
        table.add_row(
            name,
            ready,
            Text(state, style="red" if state == "open" else ""),
            _fmt(calls),
            f"{seconds / count:.2f}" if count else "—",
            _fmt(now.total("sluicegate_inference_tokens_total", backend=name)),
            f"{now.total('sluicegate_inference_cost_total', backend=name):.4f}",
        )
    return table


def _throughput(now: Snapshot, before: Snapshot | None) -> Table:
    table = Table(title="Throughput", expand=True)
    table.add_column("what")
    table.add_column("total", justify="right")
    table.add_column("rate", justify="right")
    rows = [
        ("HTTP requests", "sluicegate_http_requests_total", {}),
        ("jobs accepted", "sluicegate_jobs_accepted_total", {}),
        ("jobs succeeded", "sluicegate_jobs_finished_total", {"status": "succeeded"}),
        ("jobs failed", "sluicegate_jobs_finished_total", {"status": "failed"}),
        ("jobs dead", "sluicegate_jobs_finished_total", {"status": "dead"}),
        ("guard blocks", "sluicegate_guard_blocks_total", {}),
        ("deliveries ok", "sluicegate_deliveries_total", {"outcome": "delivered"}),
        ("delivery retries", "sluicegate_deliveries_total", {"outcome": "retry"}),
    ]
    for title, name, match in rows:
        table.add_row(title, _fmt(now.total(name, **match)), _rate(now, before, name, **match))
    hits = now.total("sluicegate_cache_lookups_total", result="hit")
    lookups = now.total("sluicegate_cache_lookups_total")
    table.add_row("cache hit ratio", f"{hits / lookups:.0%}" if lookups else "—", "")
    return table


def render(url: str, now: Snapshot, before: Snapshot | None = None) -> RenderableType:
    """The whole screen for one snapshot (``before`` gives rates)."""
    ready = now.ready or {}
    state = (
        Text("READY", style="bold green")
        if ready.get("ready")
        else Text("NOT READY", style="bold red")
    )
    header = Text.assemble("sluicegate ", (url, "bold"), "  ", state)
    parts: list[RenderableType] = [header]
    for key, check in sorted(ready.get("checks", {}).items()):
        if not key.startswith("backend:") and not check.get("ok"):
            parts.append(Text(f"{key}: {check.get('error', 'down')}", style="red"))
    parts += [Text(error, style="yellow") for error in now.errors]
    parts += [_queues(now), _backends(now), _throughput(now, before)]
    return Panel(Group(*parts), title="sluicegate status", subtitle="Ctrl-C to quit")


def run(url: str, *, once: bool, interval_s: float = 1.0, api_key: str | None = None) -> int:
    """Show the view until interrupted (or once); exit code 1 when the server is unreachable."""
    from rich.console import Console
    from rich.live import Live

    console = Console()
    headers = {"authorization": f"Bearer {api_key}"} if api_key else None
    with httpx.Client(base_url=url.rstrip("/"), timeout=5.0) as client:
        now = take_snapshot(client, headers)
        if once:
            console.print(render(url, now))
            return 1 if now.ready is None and not now.samples else 0
        before: Snapshot | None = None
        try:
            with Live(render(url, now), console=console, refresh_per_second=4) as live:
                while True:
                    time.sleep(interval_s)
                    before, now = now, take_snapshot(client, headers)
                    live.update(render(url, now, before))
        except KeyboardInterrupt:
            return 0
