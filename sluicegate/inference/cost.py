"""Cost accounting from real usage: what each call cost, and what it would have.

Cloud calls are priced from ``inference.prices`` (per 1M tokens: cache-hit
input, cache-miss input, output; an optional off-peak window in UTC). On-prem
calls are priced as GPU time: the call's latency at
``inference.onprem_cost_per_gpu_hour`` (an upper bound, since Triton's dynamic
batching shares a GPU between calls). Calls answered from the response cache
cost nothing.

The comparison prices the same calls three ways: *hybrid* is what actually
happened; *cloud* prices every call at the most-used cloud model's prices;
*private* costs every call as GPU time, estimating cloud calls at the on-prem
seconds per output token measured from the on-prem calls.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Literal, cast

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import SQLModel

from sluicegate.core.config import InferenceConfig, ModelPrice
from sluicegate.core.interfaces import Generation, Zone
from sluicegate.core.tables import Job, Result

GroupBy = Literal["channel", "backend", "day"]
_PER = 1_000_000


@dataclass(frozen=True)
class Usage:
    """One model call as recorded on a result row (no content)."""

    channel: str
    backend_id: str
    model: str
    zone: str
    at: datetime
    prompt_tokens: int
    completion_tokens: int
    cache_hit_tokens: int | None
    cache_miss_tokens: int | None
    latency_ms: int
    from_cache: bool


def load_usage(engine: Engine, since: datetime | None = None) -> list[Usage]:
    """Usage of every result row (joined to its job for the channel), oldest first."""
    results = cast(sa.Table, SQLModel.metadata.tables[Result.__tablename__])
    jobs = cast(sa.Table, SQLModel.metadata.tables[Job.__tablename__])
    res, job = results.c, jobs.c
    query = (
        sa.select(
            job.channel,
            res.backend_id,
            res.model,
            res.zone,
            res.created_at,
            res.prompt_tokens,
            res.completion_tokens,
            res.prompt_cache_hit_tokens,
            res.prompt_cache_miss_tokens,
            res.latency_ms,
            res.from_cache,
        )
        .join_from(results, jobs, job.id == res.job_id)
        .order_by(res.created_at)
    )
    if since is not None:
        query = query.where(res.created_at >= since)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        Usage(
            channel=r[0],
            backend_id=r[1],
            model=r[2],
            zone=r[3],
            at=r[4] if r[4].tzinfo else r[4].replace(tzinfo=UTC),
            prompt_tokens=r[5] or 0,
            completion_tokens=r[6] or 0,
            cache_hit_tokens=r[7],
            cache_miss_tokens=r[8],
            latency_ms=r[9] or 0,
            from_cache=bool(r[10]),
        )
        for r in rows
    ]


def _hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def in_window(at: datetime, start: str, end: str) -> bool:
    """Whether ``at`` (UTC) falls in [start, end); the window may wrap past midnight."""
    now = at.astimezone(UTC).time()
    lo, hi = _hhmm(start), _hhmm(end)
    return lo <= now < hi if lo <= hi else (now >= lo or now < hi)


def cloud_cost(price: ModelPrice, call: Usage) -> float:
    """Price of one call; without a hit/miss split all input counts as cache miss."""
    hit_rate, miss_rate, out_rate = price.input_cache_hit, price.input_cache_miss, price.output
    off = price.off_peak
    if off is not None and in_window(call.at, off.start_utc, off.end_utc):
        hit_rate, miss_rate, out_rate = off.input_cache_hit, off.input_cache_miss, off.output
    hit = call.cache_hit_tokens or 0
    miss = call.cache_miss_tokens
    if miss is None:
        miss = max(call.prompt_tokens - hit, 0)
    return (hit * hit_rate + miss * miss_rate + call.completion_tokens * out_rate) / _PER


def gpu_cost(seconds: float, per_gpu_hour: float) -> float:
    return seconds / 3600.0 * per_gpu_hour


def call_cost(config: InferenceConfig, generation: Generation, at: datetime) -> float | None:
    """What one fresh call cost (for live metrics); None for an unpriced cloud model."""
    if generation.from_cache:
        return 0.0
    if generation.zone != Zone.CLOUD:
        return gpu_cost(generation.latency_s, config.onprem_cost_per_gpu_hour)
    price = config.prices.get(generation.model)
    if price is None:
        return None
    usage = Usage(
        channel="",
        backend_id=generation.backend_id,
        model=generation.model,
        zone=generation.zone.value,
        at=at,
        prompt_tokens=generation.prompt_tokens or 0,
        completion_tokens=generation.completion_tokens or 0,
        cache_hit_tokens=generation.prompt_cache_hit_tokens,
        cache_miss_tokens=generation.prompt_cache_miss_tokens,
        latency_ms=int(generation.latency_s * 1000),
        from_cache=False,
    )
    return cloud_cost(price, usage)


@dataclass
class Group:
    """Totals for one row of the report."""

    calls: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cloud_cost: float = 0.0
    onprem_cost: float = 0.0
    unpriced: int = 0  # cloud calls whose model has no price

    @property
    def total(self) -> float:
        return self.cloud_cost + self.onprem_cost


@dataclass
class Comparison:
    """The same calls priced as hybrid (actual), all-cloud and all-private."""

    hybrid: float
    cloud: float | None
    private: float | None
    cloud_model: str | None
    onprem_s_per_token: float | None


@dataclass
class Report:
    by: GroupBy
    groups: dict[str, Group] = field(default_factory=dict)
    comparison: Comparison | None = None
    currency: str = "USD"

    @property
    def total(self) -> Group:
        out = Group()
        for g in self.groups.values():
            out.calls += g.calls
            out.cached += g.cached
            out.prompt_tokens += g.prompt_tokens
            out.completion_tokens += g.completion_tokens
            out.cloud_cost += g.cloud_cost
            out.onprem_cost += g.onprem_cost
            out.unpriced += g.unpriced
        return out


def _group_key(call: Usage, by: GroupBy) -> str:
    if by == "channel":
        return call.channel
    if by == "backend":
        return call.backend_id
    return call.at.astimezone(UTC).date().isoformat()


def summarise(usage: Iterable[Usage], config: InferenceConfig, by: GroupBy) -> Report:
    """Group calls and price them; see the module docstring for the comparison."""
    calls = list(usage)
    report = Report(by=by, currency=config.currency)
    for call in calls:
        group = report.groups.setdefault(_group_key(call, by), Group())
        group.calls += 1
        if call.from_cache:  # answered from our cache: no tokens went anywhere
            group.cached += 1
            continue
        group.prompt_tokens += call.prompt_tokens
        group.completion_tokens += call.completion_tokens
        if call.zone == "cloud":
            price = config.prices.get(call.model)
            if price is None:
                group.unpriced += 1
            else:
                group.cloud_cost += cloud_cost(price, call)
        else:
            group.onprem_cost += gpu_cost(call.latency_ms / 1000, config.onprem_cost_per_gpu_hour)
    report.comparison = compare(calls, config, report.total.total)
    return report


def compare(calls: Sequence[Usage], config: InferenceConfig, hybrid: float) -> Comparison:
    billable = [c for c in calls if not c.from_cache]
    cloud_models = Counter(
        c.model for c in billable if c.zone == "cloud" and c.model in config.prices
    )
    cloud_model = (
        cloud_models.most_common(1)[0][0] if cloud_models else next(iter(config.prices), None)
    )
    all_cloud = None
    if cloud_model is not None:
        price = config.prices[cloud_model]
        all_cloud = sum(cloud_cost(price, c) for c in billable)
    onprem = [c for c in billable if c.zone != "cloud"]
    out_tokens = sum(c.completion_tokens for c in onprem)
    s_per_token = sum(c.latency_ms for c in onprem) / 1000 / out_tokens if out_tokens else None
    all_private = None
    if s_per_token is not None:
        seconds = sum(
            c.latency_ms / 1000 if c.zone != "cloud" else c.completion_tokens * s_per_token
            for c in billable
        )
        all_private = gpu_cost(seconds, config.onprem_cost_per_gpu_hour)
    return Comparison(hybrid, all_cloud, all_private, cloud_model, s_per_token)
