"""Scale-out, end to end: jobs/s from ingest to a delivered webhook, for 1, 2, 4 workers.

Real processes on this machine: ``sluicegate serve`` (API + embedded relay, no
local Triton, no embedded worker), one ``sluicegate worker --concurrency N``
(N Celery prefork processes), PostgreSQL (a throw-away database
``sg_bench_<random>``) and Redis (database 13, so no other test's worker takes
the messages) or RabbitMQ (a throw-away vhost ``sg_bench_<random>``, made with
``rabbitmqctl``). The model is the instant scripted router of the test suite
(``tests.fakes``, without its request log: ``benchmarks/instant_router.py``),
so the figures measure Sluicegate, not a model. Each job's
webhook goes to a local receiver that records the job id and the time it arrived.

Per worker count it posts ``--jobs`` unique FHIR bundles with ``--senders``
concurrent senders and reports: end-to-end jobs/s (first post to last webhook),
p50/p99 latency (202 answer to webhook arrival: with a backlog this is mostly
queueing), per-worker efficiency (jobs/s per process ÷ the one-process
figure), jobs lost (accepted, no webhook) and duplicated (more than one
webhook, or more than one result, for a job) — both must be 0 — and whether
the audit chain still verifies. It also counts the CPU seconds that the API,
the workers and the run's PostgreSQL backends burnt, so that on a box shared
with other work the cost per job (and the jobs/s two free cores would carry)
is known even when the wall-clock rate is held down by someone else's load.

``--soak-s S --rate R`` posts at a fixed R jobs/s for S seconds instead and
adds RSS of the API and the workers every 10 s.

    .venv/bin/python benchmarks/scale_out.py [--workers 1,2,4] [--jobs 400] \
        [--broker redis|amqp] [--batch-size 32] [--soak-s 600 --rate 50]
"""

from __future__ import annotations

import argparse
import base64
import copy
import http.client
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
import yaml
from _common import free_port, load_now, machine, median, pg_database, table

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "fhir" / "radiology-bundle.json"
BROKERS = {
    "redis": "redis://127.0.0.1:6379/13",
    "amqp": "amqp://guest:guest@127.0.0.1:5672/{vhost}",
}
CLK_TCK = os.sysconf("SC_CLK_TCK")
SECRET = "whsec_" + base64.b64encode(b"scale-out-benchmark-secret-32byt").decode()
FHIR = {"content-type": "application/fhir+json"}
DATA_KEY = base64.b64encode(os.urandom(32)).decode()


class Receiver:
    """Local webhook receiver: job id → arrival times (monotonic)."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver would

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                job_id = json.loads(body)["data"]["job_id"]
                with receiver._lock:
                    receiver.arrivals.setdefault(job_id, []).append(time.monotonic())
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # the default 5 drops connects under load: 1 s SYN retries

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self, job_ids: set[str]) -> int:
        with self._lock:
            return sum(1 for j in job_ids if j in self.arrivals)


def bundles(n: int) -> Iterator[bytes]:
    doc = json.loads(SAMPLE.read_bytes())
    run = uuid.uuid4().hex[:8]
    for i in range(n):
        one = copy.deepcopy(doc)
        one["id"] = f"bench-{run}-{i:06d}"
        for entry in one["entry"]:
            res = entry["resource"]
            if res["resourceType"] == "DiagnosticReport":
                form = res["presentedForm"][0]
                text = base64.b64decode(form["data"]).decode() + f"Addendum: bundle {i}.\n"
                form["data"] = base64.b64encode(text.encode()).decode()
        yield json.dumps(one).encode()


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


@contextmanager
def broker_url(kind: str) -> Iterator[str]:
    """The broker for one run; RabbitMQ gets a vhost of its own, dropped afterwards."""
    if kind != "amqp":
        yield BROKERS[kind]
        return
    vhost = f"sg_bench_{uuid.uuid4().hex[:10]}"
    ctl = ["timeout", "60", "rabbitmqctl"]
    subprocess.run([*ctl, "add_vhost", vhost], check=True, capture_output=True)
    try:
        subprocess.run(
            [*ctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
            check=True,
            capture_output=True,
        )
        yield BROKERS[kind].format(vhost=vhost)
    finally:
        subprocess.run([*ctl, "delete_vhost", vhost], capture_output=True)


def _stat(pid: str) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a live process, from /proc/PID/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_seconds(roots: dict[str, int], db_name: str) -> dict[str, tuple[str, float]]:
    """CPU seconds so far of each process under ``roots`` (name → pid) and of the
    run's PostgreSQL backends, as pid → (group, seconds)."""
    seen: dict[str, tuple[str, float]] = {}
    parents: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(entry.name)
        if stat is None:
            continue
        parents[entry.name] = stat[0]
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if cmd.startswith(b"postgres:") and f" {db_name} ".encode() in cmd:
            seen[entry.name] = ("postgres", stat[1])
    group = {str(pid): name for name, pid in roots.items()}
    changed = True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if pid not in group and str(parent) in group:
                group[pid] = group[str(parent)]
                changed = True
    for pid, name in group.items():
        stat = _stat(pid)
        if stat is not None:
            seen[pid] = (name, stat[1])
    return seen


def cpu_used(
    before: dict[str, tuple[str, float]], after: dict[str, tuple[str, float]]
) -> dict[str, float]:
    """CPU seconds per group between two readings."""
    used: dict[str, float] = {}
    for pid, (name, secs) in after.items():
        used[name] = used.get(name, 0.0) + secs - before.get(pid, (name, 0.0))[1]
    return used


def config(
    home: Path,
    db_url: str,
    broker: str,
    port: int,
    hook: str,
    batch: int,
    own_relay: bool,
    name: str = "sluicegate.yaml",
) -> Path:
    data = {
        "home": str(home),
        "database": {"url": db_url, "auto_migrate": False},
        "broker": {"url": broker},
        "api": {"host": "127.0.0.1", "port": port},
        "worker": {"embedded": False},
        # The production poll interval: ingest nudges the relay, workers NOTIFY it.
        "relay": {"embedded": not own_relay, "poll_interval_s": 0.5, "batch_size": 500},
        "pipeline": {"max_attempts": 3, "lease_s": 120, "batch_size": batch},
        "adapters": {
            "fhir": {
                "factory": "sluicegate.adapters.fhir:FhirAdapter",
                "webhook": {"url": hook, "secret": SECRET, "allow_private": True},
            }
        },
        "inference": {
            "router": "benchmarks.instant_router:build_instant_router",
            "local_triton": {"enabled": False},
        },
        "security": {"auth": "disabled"},
        # One data key for every replica, from config as a deployment's secret gives
        # it: replicas that each made a key file in a shared home raced (one read
        # the other's file before it was written and died at start).
        "encryption": {"keys": {"k1": DATA_KEY}, "active_key_id": "k1"},
        "logging": {"level": "WARNING", "format": "json"},
    }
    path = home / name
    path.write_text(yaml.safe_dump(data))
    return path


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "sluicegate.cli", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,  # benchmarks.instant_router (and tests.fakes) importable from here
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def rss_mb(*pids: int) -> float:
    """Resident memory of processes and their direct children, from /proc."""
    total_kb = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
            )
        except OSError:
            continue
        names = {str(p) for p in pids}
        if status.parent.name in names or fields.get("PPid", "").strip() in names:
            total_kb += int(fields.get("VmRSS", "0 kB").split()[0])
    return total_kb / 1024


class Poster:
    """POSTs FHIR bundles over keep-alive HTTP/1.1, one connection per thread and API.

    Plain ``http.client``: httpx cost the driver ~0.5 ms of CPU per post on the
    same two cores the measured processes use; this posts the same bytes.
    """

    def __init__(self, urls: list[str]) -> None:
        self.hosts = [urlsplit(url).netloc for url in urls]
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def post(self, n: int, body: bytes) -> str:
        """Post bundle ``n`` (to API ``n`` mod the number of APIs); returns its job id."""
        conns: dict[str, http.client.HTTPConnection] = self._local.__dict__.setdefault("c", {})
        host = self.hosts[n % len(self.hosts)]
        for attempt in (1, 2):  # a kept-alive connection the server closed: reconnect once
            conn = conns.get(host) or self._connect(host)
            conns[host] = conn
            try:
                conn.request("POST", "/fhir/r4/Bundle", body, FHIR)
                response = conn.getresponse()
                response.read()
            except (http.client.HTTPException, ConnectionError):
                conn.close()
                conns.pop(host)
                if attempt == 2:
                    raise
                continue
            if response.status != 202:
                raise RuntimeError(f"POST /fhir/r4/Bundle answered {response.status}")
            return str(response.getheader("content-location")).rsplit("/", 1)[1]
        raise AssertionError("unreachable")

    def _connect(self, host: str) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(host, timeout=60)
        with self._lock:
            self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()


def post_all(urls: list[str], bodies: list[bytes], senders: int) -> list[tuple[str, float]]:
    """Post every body, spread over the API processes; returns (job id, time of the 202)."""
    poster = Poster(urls)

    def one(numbered: tuple[int, bytes]) -> tuple[str, float]:
        return poster.post(*numbered), time.monotonic()

    try:
        with ThreadPoolExecutor(senders) as pool:
            return list(pool.map(one, enumerate(bodies)))
    finally:
        poster.close()


def run(
    workers: int,
    jobs: int,
    senders: int,
    broker_kind: str,
    soak_s: float,
    rate: float,
    batch: int,
    own_relay: bool,
    apis: int = 1,
) -> dict[str, Any]:
    receiver = Receiver()
    ports = [free_port() for _ in range(apis)]
    home = Path(tempfile.mkdtemp(prefix="sg-scale-out-"))  # kept when the run fails
    with pg_database() as db_url, broker_url(broker_kind) as broker:
        db_name = db_url.rsplit("/", 1)[1]
        cfgs = [
            config(home, db_url, broker, port, receiver.url, batch, own_relay, f"api-{n}.yaml")
            for n, port in enumerate(ports)
        ]
        cfg = cfgs[0]
        # Migrate once, as a deployment does, before API and worker start.
        subprocess.run(
            [sys.executable, "-m", "sluicegate.cli", "db", "upgrade", "-c", str(cfg)],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        # Several API processes share the database (each with its relay thread), as
        # replicas behind a load balancer do; the senders spread their posts over them.
        procs = {
            ("api" if n == 0 else f"api{n + 1}"): start(
                ["serve", "-c", str(c)], home / f"api-{n}.log"
            )
            for n, c in enumerate(cfgs)
        }
        procs["workers"] = start(
            ["worker", "-c", str(cfg), "--concurrency", str(workers)], home / "worker.log"
        )
        if own_relay:
            procs["relay"] = start(["relay", "-c", str(cfg)], home / "relay.log")
        roots = {name: proc.pid for name, proc in procs.items()}
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        url = urls[0]
        try:
            deadline = time.monotonic() + 300
            for one_url in urls:
                while True:
                    with suppress(httpx.HTTPError):
                        if httpx.get(f"{one_url}/readyz", timeout=5).status_code == 200:
                            break
                    if time.monotonic() > deadline:
                        raise SystemExit(f"API not ready; see {home}/api-*.log")
                    time.sleep(0.5)
            progress(f"{workers} worker(s): API ready; warming up")
            post_all(urls, list(bundles(max(4, workers * 2))), senders)  # warm the workers
            time.sleep(2)
            receiver.arrivals.clear()
            bodies = list(bundles(jobs)) if soak_s <= 0 else []
            cpu_before = cpu_seconds(roots, db_name)
            driver_before = time.process_time()
            started = time.monotonic()
            rss: list[tuple[float, float]] = []
            if soak_s > 0:
                accepted = soak(url, soak_s, rate, senders, list(roots.values()), rss)
            else:
                accepted = post_all(urls, bodies, senders)
            ids = {job_id for job_id, _ in accepted}
            posted_s = time.monotonic() - started
            progress(f"{len(ids)} jobs accepted in {posted_s:.1f} s; waiting for their webhooks")
            wait_until = time.monotonic() + 300
            while receiver.delivered(ids) < len(ids) and time.monotonic() < wait_until:
                time.sleep(0.2)
            cpu = cpu_used(cpu_before, cpu_seconds(roots, db_name))
            driver_cpu = time.process_time() - driver_before
            time.sleep(1.0)  # let any duplicate arrive
            checks = db_checks(db_url, ids)
            arrivals = receiver.arrivals
            last = max((arrivals[j][0] for j in ids if j in arrivals), default=started)
            latencies = sorted(arrivals[j][0] - t for j, t in accepted if j in arrivals)
            dups = sum(1 for j in ids if len(arrivals.get(j, [])) > 1)
            result = {
                "apis": apis,
                "workers": workers,
                "jobs": len(ids),
                "rate": len(ids) / (last - started) if last > started else 0.0,
                "ingest_rate": len(ids) / posted_s if posted_s > 0 else 0.0,
                "p50": median(latencies),
                "p99": latencies[max(0, int(len(latencies) * 0.99) - 1)]
                if latencies
                else float("nan"),
                "lost": len(ids) - receiver.delivered(ids),
                "duplicated": dups + checks["extra_results"],
                "not_succeeded": checks["not_succeeded"],
                "chain_ok": checks["chain_ok"],
                "cpu_ms": sum(cpu.values()) * 1000 / max(1, len(ids)),
                "cpu_split": {k: v * 1000 / max(1, len(ids)) for k, v in sorted(cpu.items())},
                "driver_ms": driver_cpu * 1000 / max(1, len(ids)),
                "rss": rss,
            }
        finally:
            for proc in procs.values():
                stop(proc)
            receiver.server.shutdown()
    shutil.rmtree(home, ignore_errors=True)  # only reached when the run succeeded
    return result


def db_checks(db_url: str, ids: set[str]) -> dict[str, Any]:
    """From the database itself: jobs that did not succeed, extra results, chain intact."""
    from sqlmodel import Session

    from sluicegate.core import audit

    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT j.id, j.status, count(r.id) FROM jobs j "
                    "LEFT JOIN results r ON r.job_id = j.id GROUP BY j.id, j.status"
                )
            ).all()
        ours = [r for r in rows if r[0] in ids]
        with Session(engine) as session:
            chain_ok = all(audit.verify(session, t).ok for t in audit.tenants(session))
        return {
            "not_succeeded": sum(1 for r in ours if r[1] != "succeeded"),
            "extra_results": sum(max(0, r[2] - 1) for r in ours),
            "chain_ok": chain_ok,
        }
    finally:
        engine.dispose()


def soak(
    url: str,
    seconds: float,
    rate: float,
    senders: int,
    pids: list[int],
    rss: list[tuple[float, float]],
) -> list[tuple[str, float]]:
    """Post at a fixed rate for ``seconds``, sampling API + worker RSS every 10 s."""
    accepted: list[tuple[str, float]] = []
    source = bundles(int(seconds * rate) + 1)
    begin = time.monotonic()
    next_sample = begin
    with ThreadPoolExecutor(senders) as pool, httpx.Client(base_url=url, timeout=60) as http:

        def one(body: bytes) -> tuple[str, float]:
            response = http.post("/fhir/r4/Bundle", content=body, headers=FHIR)
            response.raise_for_status()
            return response.headers["content-location"].rsplit("/", 1)[1], time.monotonic()

        futures = []
        for i, body in enumerate(source):
            due = begin + i / rate
            if due > begin + seconds:
                break
            time.sleep(max(0.0, due - time.monotonic()))
            futures.append(pool.submit(one, body))
            if time.monotonic() >= next_sample:
                rss.append((time.monotonic() - begin, rss_mb(*pids)))
                next_sample += 10
        accepted = [f.result() for f in futures]
    return accepted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--broker", choices=sorted(BROKERS), default="redis")
    parser.add_argument("--soak-s", type=float, default=0.0)
    parser.add_argument("--rate", type=float, default=50.0, help="jobs/s during the soak")
    parser.add_argument(
        "--batch-size", type=int, default=32, help="pipeline.batch_size (1: a task per job)"
    )
    parser.add_argument(
        "--relay",
        choices=["own", "embedded"],
        default="embedded",
        help="embedded: a thread of the API; own: a `sluicegate relay` process",
    )
    parser.add_argument(
        "--apis", type=int, default=1, help="API processes (replicas) the senders spread over"
    )
    args = parser.parse_args()
    # A timeout's SIGTERM still stops the API and workers (they run in their own sessions).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load = load_now()
    results = [
        run(
            int(w),
            args.jobs,
            args.senders,
            args.broker,
            args.soak_s,
            args.rate,
            args.batch_size,
            args.relay == "own",
            args.apis,
        )
        for w in args.workers.split(",")
    ]
    base = results[0]["rate"] / results[0]["workers"] if results[0]["rate"] else float("nan")
    rows = [
        [
            str(r["workers"]),
            str(r["jobs"]),
            f"{r['rate']:.1f}",
            f"{r['p50'] * 1000:.0f}",
            f"{r['p99'] * 1000:.0f}",
            f"{(r['rate'] / r['workers']) / base:.2f}" if base == base else "—",
            f"{r['cpu_ms']:.1f}",
            f"{2000 / r['cpu_ms']:.0f}" if r["cpu_ms"] else "—",
            str(r["lost"]),
            str(r["duplicated"]),
            "ok" if r["chain_ok"] else "BROKEN",
        ]
        for r in results
    ]
    mode = f"soak {args.soak_s:.0f} s at {args.rate:g} jobs/s" if args.soak_s else "backlog"
    print(
        f"scale-out, end to end (ingest → result → webhook), broker {args.broker}, {mode},"
        f" pipeline.batch_size {args.batch_size}, relay {args.relay}, API processes {args.apis}"
    )
    headers = ["workers", "jobs", "jobs/s", "p50 ms", "p99 ms", "efficiency"]
    headers += ["CPU ms/job", "2-core cap", "lost", "dup", "audit"]
    print(table(headers, rows))
    print(
        "CPU ms/job: API + relay + workers + the run's PostgreSQL backends (not Redis/RabbitMQ,"
        " not the load driver: "
        + ", ".join(f"{r['driver_ms']:.1f}" for r in results)
        + " ms/job); 2-core cap = 2000 / CPU ms/job"
    )
    for r in results:
        split = ", ".join(f"{k} {v:.1f}" for k, v in r["cpu_split"].items())
        print(
            f"CPU ms/job with {r['workers']} worker(s): {split};"
            f" accepted at {r['ingest_rate']:.0f} jobs/s"
        )
    for r in results:
        if r["rss"]:
            trace = ", ".join(f"{t:.0f}s {mb:.0f}MB" for t, mb in r["rss"])
            print(f"API + worker RSS ({r['workers']} worker processes): {trace}")
    print(machine(load))
    driver_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this driver: {driver_mb:.0f} MB")
    if any(r["lost"] or r["duplicated"] or not r["chain_ok"] for r in results):
        raise SystemExit("jobs were lost or duplicated, or the audit chain broke")


if __name__ == "__main__":
    main()
