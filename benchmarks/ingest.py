"""Ingest path cost: raw JSON vs FHIR parse vs durable accept (SQLite, PostgreSQL).

Baseline, measured in the same run: ``json.loads`` of the sample radiology
bundle. Measured: (a) ``FhirAdapter().parse`` (validate with the R4B models,
extract the work item), (b) parse + ``core.ingest.accept`` into a fresh SQLite
database in a temp dir (sealed work item + job + outbox + audit event, one
transaction per bundle), (c) the same on PostgreSQL in a throw-away database
``sg_bench_<random>`` (skipped with a note when the server is unreachable).

Every bundle is unique (Bundle.id and one findings line vary) so idempotency
never short-circuits the insert. Prints bundles/s (median over repeats),
per-bundle latency (median, p90) and the ratios.

    .venv/bin/python benchmarks/ingest.py [--bundles 200] [--repeats 7] [--pg-url URL]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import json
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _common import load_now, machine, median, p90, table

from sluicegate.adapters.fhir import FhirAdapter
from sluicegate.core.config import Settings
from sluicegate.core.ingest import accept
from sluicegate.core.runtime import Runtime, build_runtime

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "fhir" / "radiology-bundle.json"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MEDIA_TYPE = "application/fhir+json"
TENANT = "default"
CHANNEL = "fhir"


@dataclass
class Stage:
    """Timings of one measured stage: per-repeat rates and pooled per-bundle latencies."""

    name: str
    rates: list[float] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return median(self.rates)


class Bundles:
    """Makes unique copies of the sample bundle (new Bundle.id and findings line)."""

    def __init__(self, sample: bytes) -> None:
        self._doc: dict[str, Any] = json.loads(sample)
        self._run = uuid.uuid4().hex[:8]
        self._count = 0

    def batch(self, n: int) -> list[bytes]:
        return [self._one() for _ in range(n)]

    def _one(self) -> bytes:
        self._count += 1
        tag = f"{self._run}-{self._count:06d}"
        doc = copy.deepcopy(self._doc)
        doc["id"] = f"bench-{tag}"
        for entry in doc["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] == "DiagnosticReport":
                form = resource["presentedForm"][0]
                text = base64.b64decode(form["data"]).decode()
                text += f"Addendum: benchmark bundle {tag}.\n"
                form["data"] = base64.b64encode(text.encode()).decode()
        return json.dumps(doc, indent=2).encode()


def measure(stage: Stage, bodies: list[bytes], step: Callable[[bytes], object]) -> None:
    """Run ``step`` over every body once; record the rate and each bundle's latency."""
    clock = time.perf_counter
    latencies = []
    for body in bodies:
        started = clock()
        step(body)
        latencies.append(clock() - started)
    stage.rates.append(len(bodies) / sum(latencies))
    stage.latencies_s.extend(latencies)


def durable_step(runtime: Runtime, adapter: FhirAdapter) -> Callable[[bytes], object]:
    """Parse + accept, exactly as the FHIR route does (one transaction per bundle)."""
    pipeline = runtime.settings.pipeline

    def step(body: bytes) -> object:
        items = adapter.parse(body, MEDIA_TYPE, tenant=TENANT, channel=CHANNEL)
        accepted = accept(
            runtime.engine,
            runtime.sealer,
            CHANNEL,
            items,
            max_attempts=pipeline.max_attempts,
            lease_s=pipeline.lease_s,
        )
        if not all(a.created for a in accepted):
            raise RuntimeError("idempotency short-circuited: a bundle was not unique")
        return accepted

    return step


@contextlib.contextmanager
def runtime_in(home: Path, database_url: str | None) -> Iterator[Runtime]:
    """A runtime rooted in ``home`` (keys, SQLite file), migrated to head."""
    database: dict[str, Any] = {"auto_migrate": True}
    if database_url:
        database["url"] = database_url
    settings = Settings.model_validate(
        {"home": str(home), "database": database, "logging": {"level": "WARNING"}}
    )
    runtime = build_runtime(settings)
    try:
        yield runtime
    finally:
        runtime.engine.dispose()


@contextlib.contextmanager
def temp_pg_database(admin_url: str) -> Iterator[str]:
    """Create ``sg_bench_<random>`` on the server, yield its URL, drop it afterwards."""
    name = f"sg_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin_url.rsplit("/", 1)[0] + f"/{name}"
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def pg_reachable(admin_url: str) -> str | None:
    """None when the server answers, else a one-line reason."""
    engine = sa.create_engine(admin_url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    finally:
        engine.dispose()


def run(args: argparse.Namespace) -> None:
    sample = SAMPLE.read_bytes()
    bundles = Bundles(sample)
    adapter = FhirAdapter()
    raw = Stage("raw json.loads (baseline)")
    parse = Stage("(a) FHIR parse+validate+extract")
    stages = [raw, parse]

    def parse_step(body: bytes) -> object:
        return adapter.parse(body, MEDIA_TYPE, tenant=TENANT, channel=CHANNEL)

    warm = bundles.batch(5)
    for body in warm:  # imports the R4B models, fills caches
        json.loads(body)
        parse_step(body)

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sg-bench-")))
        durable: list[tuple[Stage, Callable[[bytes], object]]] = []
        sqlite_rt = stack.enter_context(runtime_in(tmp / "sqlite", None))
        durable.append((Stage("(b) parse + accept, SQLite"), durable_step(sqlite_rt, adapter)))
        pg_note = pg_reachable(args.pg_url) if not args.no_pg else "disabled (--no-pg)"
        if pg_note is None:
            pg_url = stack.enter_context(temp_pg_database(args.pg_url))
            pg_rt = stack.enter_context(runtime_in(tmp / "pg", pg_url))
            durable.append((Stage("(c) parse + accept, PostgreSQL"), durable_step(pg_rt, adapter)))
        for _, step in durable:  # first transactions: audit head row, connection pool
            for body in bundles.batch(3):
                step(body)
        stages += [stage for stage, _ in durable]

        started = time.monotonic()
        for _ in range(args.repeats):
            # Same bodies for the stateless stages; fresh ones for every durable stage.
            bodies = bundles.batch(args.bundles)
            measure(raw, bodies, json.loads)
            measure(parse, bodies, parse_step)
            for stage, step in durable:
                measure(stage, bundles.batch(args.bundles), step)
        elapsed = time.monotonic() - started

    base = raw.rate
    rows = [
        [
            s.name,
            f"{s.rate:,.0f}",
            f"{median(s.latencies_s) * 1e3:.3f}",
            f"{p90(s.latencies_s) * 1e3:.3f}",
            f"{s.rate / base:.4f}",
            f"{base / s.rate:,.1f}x",
        ]
        for s in stages
    ]
    print(
        f"ingest benchmark: {len(sample):,}-byte sample bundle, {args.bundles} bundles x "
        f"{args.repeats} repeats per stage, {elapsed:.1f}s measured; {machine(args.load_at_start)}"
    )
    print(
        table(
            ["stage", "bundles/s (median)", "ms/bundle p50", "p90", "rate vs raw", "cost vs raw"],
            rows,
        )
    )
    if pg_note is not None:
        print(f"(c) PostgreSQL skipped: {pg_note}")
    for stage, _ in durable:
        overhead_ms = (median(stage.latencies_s) - median(parse.latencies_s)) * 1e3
        print(
            f"ratio {stage.name[:3]}/(a) = {stage.rate / parse.rate:.3f} "
            f"(persistence overhead: durable accept runs at {stage.rate / parse.rate:.0%} of the "
            f"parse rate; +{overhead_ms:.2f} ms per bundle at the median)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=int, default=200, help="bundles per stage per repeat")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--pg-url", default=PG_ADMIN_URL, help="admin URL of the PostgreSQL server")
    parser.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL stage")
    args = parser.parse_args()
    args.load_at_start = load_now()
    run(args)


if __name__ == "__main__":
    main()
