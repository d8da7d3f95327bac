"""Cost accounting over real result rows in SQLite and PostgreSQL, and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session
from typer.testing import CliRunner

from sluicegate.cli import app
from sluicegate.core.config import InferenceConfig, ModelPrice, OffPeakPrice
from sluicegate.core.tables import Job, Result, WorkItemRow
from sluicegate.inference.cost import Usage, cloud_cost, in_window, load_usage, summarise

DAY1 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # peak
DAY2 = datetime(2026, 11, 3, 18, 0, tzinfo=UTC)  # off-peak

PRICES = {
    "deepseek-flash": ModelPrice(
        input_cache_hit=0.1,
        input_cache_miss=1.0,
        output=2.0,
        off_peak=OffPeakPrice(
            start_utc="16:30", end_utc="00:30", input_cache_hit=0.05, input_cache_miss=0.5,
            output=1.0,
        ),
    )
}  # fmt: skip
CONFIG = InferenceConfig(prices=PRICES, onprem_cost_per_gpu_hour=3.6)


def add_result(
    session: Session,
    *,
    channel: str,
    backend: str,
    zone: str,
    at: datetime,
    prompt: int,
    completion: int,
    latency_ms: int,
    hit: int | None = None,
    miss: int | None = None,
    from_cache: bool = False,
) -> None:
    item = WorkItemRow(
        tenant="t", channel=channel, adapter="fhir", task="radiology_report", source_ref="r",
        idempotency_key=f"k-{at.isoformat()}-{backend}-{prompt}", sealed=b"x",
    )  # fmt: skip
    session.add(item)
    session.flush()  # no ORM relationships: insert parents first explicitly
    job = Job(work_item_id=item.id, tenant="t", channel=channel, task="radiology_report")
    session.add(job)
    session.flush()
    session.add(
        Result(
            job_id=job.id, media_type="application/json", sealed_body=b"x", backend_id=backend,
            model="deepseek-flash" if zone == "cloud" else "smollm2", zone=zone,
            prompt_tokens=prompt, completion_tokens=completion, latency_ms=latency_ms,
            prompt_cache_hit_tokens=hit, prompt_cache_miss_tokens=miss, from_cache=from_cache,
            created_at=at,
        )
    )  # fmt: skip


def seed(engine: sa.Engine) -> None:
    with Session(engine) as session:
        # cloud, peak: 1M hit at 0.1, 1M miss at 1.0, 1M out at 2.0 -> 3.1
        add_result(
            session,
            channel="fhir",
            backend="deepseek",
            zone="cloud",
            at=DAY1,
            prompt=2_000_000,
            completion=1_000_000,
            latency_ms=900,
            hit=1_000_000,
            miss=1_000_000,
        )
        # cloud, off-peak, no split reported: 1M all miss at 0.5 + 1M out at 1.0 -> 1.5
        add_result(
            session,
            channel="hl7",
            backend="deepseek",
            zone="cloud",
            at=DAY2,
            prompt=1_000_000,
            completion=1_000_000,
            latency_ms=800,
        )
        # on-prem: 1000 s of GPU at 3.6/h -> 1.0 ; 500k output tokens -> 0.002 s/token
        add_result(
            session,
            channel="fhir",
            backend="local-triton",
            zone="onprem",
            at=DAY1,
            prompt=100,
            completion=500_000,
            latency_ms=1_000_000,
        )
        # served from cache: costs nothing anywhere
        add_result(
            session,
            channel="hl7",
            backend="deepseek",
            zone="cloud",
            at=DAY2,
            prompt=5_000_000,
            completion=5_000_000,
            latency_ms=1,
            from_cache=True,
        )
        session.commit()


def test_report_from_real_rows(migrated_engine: sa.Engine) -> None:
    seed(migrated_engine)
    usage = load_usage(migrated_engine)
    assert [u.at for u in usage] == [DAY1, DAY1, DAY2, DAY2]
    by_backend = summarise(usage, CONFIG, "backend")
    assert set(by_backend.groups) == {"deepseek", "local-triton"}
    ds = by_backend.groups["deepseek"]
    assert ds.calls == 3 and ds.cached == 1
    assert (ds.prompt_tokens, ds.completion_tokens) == (3_000_000, 2_000_000)  # cached: none
    assert ds.cloud_cost == pytest.approx(3.1 + 1.5)
    assert by_backend.groups["local-triton"].onprem_cost == pytest.approx(1.0)
    comp = by_backend.comparison
    assert comp is not None
    assert comp.hybrid == pytest.approx(5.6)
    # cloud only: the on-prem call priced at deepseek rates (peak): 100 miss + 500k out
    assert comp.cloud == pytest.approx(3.1 + 1.5 + (100 * 1.0 + 500_000 * 2.0) / 1e6)
    # private only: 1000 s measured + 2M cloud output tokens * 0.002 s = 5000 s -> 5.0
    assert comp.onprem_s_per_token == pytest.approx(0.002)
    assert comp.private == pytest.approx(5.0)

    by_channel = summarise(usage, CONFIG, "channel")
    assert by_channel.groups["fhir"].total == pytest.approx(3.1 + 1.0)
    assert by_channel.groups["hl7"].total == pytest.approx(1.5)
    by_day = summarise(usage, CONFIG, "day")
    assert list(by_day.groups) == ["2026-11-02", "2026-11-03"]
    later = load_usage(migrated_engine, since=DAY2 - timedelta(hours=1))
    assert len(later) == 2 and {u.channel for u in later} == {"hl7"}


def test_off_peak_window_wraps_midnight() -> None:
    assert in_window(datetime(2026, 1, 1, 23, 0, tzinfo=UTC), "16:30", "00:30")
    assert in_window(datetime(2026, 1, 1, 0, 29, tzinfo=UTC), "16:30", "00:30")
    assert not in_window(datetime(2026, 1, 1, 0, 30, tzinfo=UTC), "16:30", "00:30")
    assert not in_window(datetime(2026, 1, 1, 12, 0, tzinfo=UTC), "16:30", "00:30")
    call = Usage("c", "b", "m", "cloud", datetime(2026, 1, 1, 23, 0, tzinfo=UTC), 10, 0,
                 4, 6, 1, False)  # fmt: skip
    assert cloud_cost(PRICES["deepseek-flash"], call) == pytest.approx((4 * 0.05 + 6 * 0.5) / 1e6)


def test_unpriced_cloud_model_is_flagged_not_guessed() -> None:
    call = Usage("c", "b", "mystery", "cloud", DAY1, 10, 10, None, None, 5, False)
    report = summarise([call], InferenceConfig(), "backend")
    assert report.groups["b"].unpriced == 1 and report.groups["b"].cloud_cost == 0
    assert report.comparison is not None and report.comparison.cloud is None


def test_cli_prints_tables(tmp_path: Path) -> None:
    from sluicegate.core import db

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    seed(engine)
    engine.dispose()
    config = tmp_path / "c.yaml"
    config.write_text(
        f"home: {tmp_path}\ndatabase: {{url: '{url}'}}\ninference:\n"
        "  onprem_cost_per_gpu_hour: 3.6\n"
        "  prices:\n"
        "    deepseek-flash: {input_cache_hit: 0.1, input_cache_miss: 1.0, output: 2.0}\n"
    )
    out = CliRunner().invoke(
        app, ["cost", "report", "--config", str(config), "--by", "channel"], terminal_width=200
    )
    assert out.exit_code == 0, out.output
    assert "Inference cost by channel" in out.output
    assert "fhir" in out.output and "hl7" in out.output and "TOTAL" in out.output
    for scenario in ("hybrid (actual)", "cloud only", "private only"):
        assert scenario in out.output
    bad = CliRunner().invoke(app, ["cost", "report", "--config", str(config), "--since", "x"])
    assert bad.exit_code == 2


def test_call_cost_for_live_metrics() -> None:
    from sluicegate.core.interfaces import Generation, Zone
    from sluicegate.inference.cost import call_cost

    cloud = Generation(
        text="", backend_id="deepseek", model="deepseek-flash", zone=Zone.CLOUD, latency_s=2.0,
        prompt_tokens=1_000_000, completion_tokens=1_000_000, prompt_cache_hit_tokens=400_000,
        prompt_cache_miss_tokens=600_000,
    )  # fmt: skip
    assert call_cost(CONFIG, cloud, DAY1) == pytest.approx(0.4 * 0.1 + 0.6 * 1.0 + 2.0)
    assert call_cost(CONFIG, cloud, DAY2) == pytest.approx(0.4 * 0.05 + 0.6 * 0.5 + 1.0)
    onprem = Generation(text="", backend_id="t", model="s", zone=Zone.ONPREM, latency_s=3600.0)
    assert call_cost(CONFIG, onprem, DAY1) == pytest.approx(3.6)
    assert call_cost(InferenceConfig(), cloud, DAY1) is None
    assert call_cost(CONFIG, Generation(**{**cloud.__dict__, "from_cache": True}), DAY1) == 0.0
