"""Real processes: the listener killed mid-stream loses no ACKed message, and the
full path `sluicegate serve` (API, relay, worker, MLLP listener) turns an ORU
sent over MLLP into a draft ORU delivered to the hospital's receiver."""

from __future__ import annotations

import io
import re
import signal
import socket
import sqlite3
import threading
import time
from pathlib import Path

import hl7.client
import httpx
import pytest
from hl7apy.parser import parse_message
from rich.console import Console
from sqlmodel import Session, col, select

from sluicegate.core import db
from sluicegate.core.tables import Job, WorkItemRow
from sluicegate.demo import _hl7_step
from tests.conftest import FAKE_INFERENCE, free_port, make_settings
from tests.processes import start_cli, stop_group, wait_for, write_config
from tests.test_hl7_mllp import scout_orus
from tests.test_hl7_writeback import ORU, Receiver

pytestmark = pytest.mark.e2e
FACTORY = "sluicegate.adapters.hl7v2:Hl7v2Adapter"


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _stored_control_ids(url: str) -> set[str]:
    engine = db.make_engine(url)
    try:
        with Session(engine) as s:
            refs = s.exec(
                select(WorkItemRow.source_ref).join(
                    Job, col(Job.work_item_id) == col(WorkItemRow.id)
                )
            ).all()
    finally:
        engine.dispose()
    return {m.group(1) for r in refs if (m := re.search(r"MSH-10 (\S+)", r))}


def test_listener_killed_mid_stream_loses_no_acked_message(tmp_path: Path) -> None:
    port = free_port()
    options = {"mllp": {"enabled": True, "port": port}}
    settings = make_settings(tmp_path, adapters={"hl7v2": {"factory": FACTORY, "options": options}})
    config = write_config(settings, tmp_path / "config.yaml")
    db.upgrade(settings.database_url)
    messages = [m for m in scout_orus("scout-20250814.log") if b"\rOBX|" in m]
    acked: list[str] = []
    log = tmp_path / "mllp.log"
    listener = start_cli(["mllp", "serve", "--config", str(config)], log)
    wait_for(lambda: _listening(port), 60, "the listener", log)
    stop_sending = threading.Event()
    # After 15 ACKs the sender says so just before sending the next message, and
    # the listener is killed while that one is in flight (a fast listener would
    # otherwise ACK all 56 before a poll noticed the 15th).
    in_flight = threading.Event()

    def send() -> None:
        try:
            with hl7.client.MLLPClient("127.0.0.1", port) as peer:
                peer.socket.settimeout(30)
                for m in messages:
                    if stop_sending.is_set():
                        return
                    if len(acked) >= 15:
                        in_flight.set()
                    ack = peer.send_message(m)
                    if b"MSA|AA|" in ack:
                        acked.append(ack.split(b"MSA|AA|")[1].split(b"\r")[0].decode())
        except OSError:
            pass  # the listener died under us: exactly the case under test

    sender = threading.Thread(target=send)
    sender.start()
    try:
        assert in_flight.wait(60), "no 15 ACKs within 60 s"
    finally:
        stop_group(listener, signal.SIGKILL)  # no graceful anything
        stop_sending.set()
        sender.join(30)
    assert 15 <= len(acked) < len(messages)
    stored = _stored_control_ids(settings.database_url)
    assert set(acked) <= stored  # every AA'd control id has its job
    # The sender re-sends everything to a new listener: duplicates get AA, no second job.
    listener = start_cli(["mllp", "serve", "--config", str(config)], log)
    try:
        wait_for(lambda: _listening(port), 60, "the listener again", log)
        with hl7.client.MLLPClient("127.0.0.1", port) as peer:
            peer.socket.settimeout(30)
            assert all(b"MSA|AA|" in peer.send_message(m) for m in messages)
    finally:
        stop_group(listener)
    engine = db.make_engine(settings.database_url)
    with Session(engine) as s:
        assert len(s.exec(select(Job)).all()) == len(messages)
    engine.dispose()


def test_sigterm_finishes_the_message_in_flight(tmp_path: Path) -> None:
    """SIGTERM while a message waits for its commit: the listener stops
    accepting, stores and ACKs that message, then exits cleanly.

    The commit is held back for real: the test holds SQLite's write lock
    (BEGIN IMMEDIATE on its own connection) until after the signal.
    """
    port = free_port()
    options = {"mllp": {"enabled": True, "port": port}}
    settings = make_settings(tmp_path, adapters={"hl7v2": {"factory": FACTORY, "options": options}})
    config = write_config(settings, tmp_path / "config.yaml")
    db.upgrade(settings.database_url)
    log = tmp_path / "mllp.log"
    listener = start_cli(["mllp", "serve", "--config", str(config)], log)
    wait_for(lambda: _listening(port), 60, "the listener", log)
    locker = sqlite3.connect(settings.database_url.split("///", 1)[1], isolation_level=None)
    acks: list[bytes] = []
    try:
        with hl7.client.MLLPClient("127.0.0.1", port) as peer:
            peer.socket.settimeout(30)
            locker.execute("BEGIN IMMEDIATE")  # the listener's commit now waits
            sender = threading.Thread(target=lambda: acks.append(peer.send_message(ORU)))
            sender.start()
            time.sleep(1.0)  # read, checked, waiting on the lock
            assert acks == []
            listener.send_signal(signal.SIGTERM)
            wait_for(lambda: not _listening(port), 10, "the listener to stop accepting", log)
            locker.execute("ROLLBACK")
            sender.join(30)
        assert len(acks) == 1 and b"MSA|AA|ORU-WB-1" in acks[0]
        assert listener.wait(20) == 0
    finally:
        locker.close()
        stop_group(listener)
    assert _stored_control_ids(settings.database_url) == {"ORU-WB-1"}


def test_full_path_through_serve_and_a_real_worker(tmp_path: Path) -> None:
    api, mllp = free_port(), free_port()
    receiver = Receiver(free_port())
    receiver.start()
    options = {
        "mllp": {"enabled": True, "port": mllp},
        "write_back": {"host": "127.0.0.1", "port": receiver.port, "backoff_s": 0.2},
    }
    settings = make_settings(
        tmp_path,
        api={"port": api},
        adapters={"hl7v2": {"factory": FACTORY, "options": options}},
        inference={**FAKE_INFERENCE, "local_triton": {"enabled": False}},
    )
    config = write_config(settings, tmp_path / "config.yaml")
    log = tmp_path / "serve.log"
    server = start_cli(["serve", "--config", str(config)], log)
    try:
        wait_for(lambda: _listening(mllp), 90, "the MLLP listener (child of serve)", log)
        with hl7.client.MLLPClient("127.0.0.1", mllp) as peer:
            peer.socket.settimeout(30)
            assert b"MSA|AA|ORU-WB-1" in peer.send_message(ORU)
        engine = db.make_engine(settings.database_url)
        with Session(engine) as s:
            [job_id] = s.exec(select(Job.id)).all()
        engine.dispose()
        with httpx.Client(base_url=f"http://127.0.0.1:{api}", timeout=10) as client:
            job = wait_for(
                lambda: (
                    (j := client.get(f"/jobs/{job_id}").json())["status"]
                    in ("succeeded", "failed", "dead")
                    and j
                ),
                120,
                "the job to finish",
                log,
            )
            assert job["status"] == "succeeded", job["last_error"]
            result = client.get(f"/jobs/{job_id}/result", params={"format": "hl7"})
            oru = parse_message(result.text, find_groups=False)
            assert oru.obr.obr_25.value == "P"
            wait_for(lambda: receiver.received, 60, "the write-back ORU", log)
            located = wait_for(
                lambda: client.get(f"/jobs/{job_id}").json().get("external_location"),
                30,
                "the write-back to be recorded",
                log,
            )
            assert located.startswith("mllp://")
            # The demo's HL7 step, against this stack: MLLP ACK, duplicate over HTTP, ORU.
            out = io.StringIO()
            _hl7_step(Console(file=out, width=200), client, settings, time.monotonic() + 120)
            assert "MSA|AA|DEMO" in out.getvalue() and "|ORU^R01^ORU_R01|" in out.getvalue()
        assert "ORU^R01" in receiver.received[0]
    finally:
        stop_group(server)
        receiver.close()
    # Privacy: the patient's name is in no log and nowhere in plaintext in the database.
    logs = b"".join(p.read_bytes() for p in tmp_path.rglob("*.log"))
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("sluicegate.db*"))
    assert logs and stored
    for value in (b"Quigley", b"Zebulon", b"Testperson"):
        assert value not in logs, f"{value!r} leaked into a log"
        assert value not in stored, f"{value!r} stored in plaintext"
