"""HL7 v2 over MLLP: durable messages/s vs python-hl7's raw parse rate, same run.

Baseline, in this process, on the same messages: ``hl7.parse(text)`` (python-hl7),
messages/s. Measured: a real ``sluicegate mllp serve`` process; python-hl7's
``MLLPClient`` sends the corpus ORUs over 1 and over 8 concurrent connections
(each waits for its ACK before the next message, as original mode requires).
Every message is read, checked, extracted, stored (sealed work item + job +
outbox + audit event, committed) and only then ACKed AA; the listener gathers
messages from several connections into one commit (group commit). Each sent
message gets a fresh MSH-10 so duplicate protection never short-circuits; the
script checks every ACK is AA and that the database holds one job per message.

Messages: the 56 radiology ORUs with report text (OBX) from
``corpus/hl7v2/hl7ish_logs/scout-20250814.log`` (framed from the text markers);
the log's 4 ORUs without OBX are jobs too (drafted from the order) but are
left out so that the figures stay comparable with earlier runs.
Databases: the embedded default (SQLite, WAL) and PostgreSQL (a temporary
database on ``$SLUICEGATE_TEST_PG``'s server). Target: ratio >= 0.5.

    .venv/bin/python benchmarks/hl7_mllp.py [--rounds 5] [--messages 224] [--db sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import hl7
import hl7.client
import sqlalchemy as sa
import yaml
from _common import free_port, load_now, machine, median, pg_database, table

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus" / "hl7v2"


def corpus_orus() -> list[str]:
    text = (CORPUS / "hl7ish_logs" / "scout-20250814.log").read_bytes().decode("latin-1")
    bodies = re.findall(r"<SB>\n?(.*?)<EB>", text, flags=re.S)
    messages = [b.replace("\n", "").replace("<R>", "\r") for b in bodies]
    return [m for m in messages if "\rOBX|" in m]


def unique(message: str) -> str:
    """Same message, new MSH-10 (the 10th field of the first segment)."""
    msh, rest = message.split("\r", 1)
    fields = msh.split("|")
    fields[9] = uuid.uuid4().hex[:20]
    return "|".join(fields) + "\r" + rest


def raw_parse_rate(messages: list[str]) -> float:
    started = time.perf_counter()
    for m in messages:
        hl7.parse(m)
    return len(messages) / (time.perf_counter() - started)


@contextmanager
def database(kind: str, home: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{home / 'sluicegate.db'}"
        return
    with pg_database() as url:
        yield url


@contextmanager
def listener(url: str, home: Path) -> Iterator[int]:
    port = free_port()
    config = {
        "home": str(home),
        "database": {"url": url, "auto_migrate": True},
        "logging": {"level": "WARNING"},
        "adapters": {
            "hl7v2": {
                "factory": "sluicegate.adapters.hl7v2:Hl7v2Adapter",
                "options": {"mllp": {"port": port}},
            }
        },
    }
    path = home / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    subprocess.run(
        [sys.executable, "-m", "sluicegate.cli", "db", "upgrade", "--config", str(path)],
        check=True,
        capture_output=True,
    )
    log = (home / "mllp.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sluicegate.cli", "mllp", "serve", "--config", str(path)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("listener did not start; see mllp.log") from None
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def send_all(port: int, messages: list[str], connections: int) -> float:
    parts = [messages[i::connections] for i in range(connections)]
    barrier = threading.Barrier(connections + 1)
    failures: list[str] = []

    def run(part: list[str]) -> None:
        with hl7.client.MLLPClient("127.0.0.1", port) as peer:
            peer.socket.settimeout(60)
            barrier.wait()
            for m in part:
                ack = peer.send_message(m)
                if b"MSA|AA|" not in ack:
                    failures.append(ack.decode(errors="replace")[:200])

    with ThreadPoolExecutor(connections) as pool:
        futures = [pool.submit(run, p) for p in parts]
        barrier.wait()
        started = time.perf_counter()
        for f in futures:
            f.result()
        elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} messages not ACKed AA, e.g. {failures[0]!r}")
    return len(messages) / elapsed


def count_jobs(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar_one())
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=224, help="messages per round")
    parser.add_argument("--db", default="sqlite,postgresql")
    args = parser.parse_args()
    load = load_now()
    corpus = corpus_orus()
    batch = [corpus[i % len(corpus)] for i in range(args.messages)]
    rows = []
    for kind in args.db.split(","):
        with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp)) as url:
            with listener(url, Path(tmp)) as port:
                send_all(port, [unique(m) for m in batch[:16]], 1)  # warm up
                for connections in (1, 8):
                    raw, durable = [], []
                    for _ in range(args.rounds):
                        raw.append(raw_parse_rate(batch))
                        durable.append(send_all(port, [unique(m) for m in batch], connections))
                    rows.append((kind, connections, median(raw), median(durable)))
            sent = 16 + 2 * args.rounds * len(batch)
            assert count_jobs(url) == sent, "every ACKed message must have its job"
    print(f"hl7_mllp: {len(batch)} corpus ORUs per round, {args.rounds} rounds; {machine(load)}")
    print(
        table(
            ["database", "connections", "raw parse msg/s", "durable msg/s", "ratio"],
            [[k, str(c), f"{r:.0f}", f"{d:.0f}", f"{d / r:.3f}"] for k, c, r, d in rows],
        )
    )
    for k, c, r, d in rows:
        verdict = "meets" if d / r >= 0.5 else "misses"
        print(f"ratio {k} x{c}: {d / r:.3f} ({verdict} the 0.5 target)")


if __name__ == "__main__":
    main()
