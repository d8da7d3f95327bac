"""The MLLP listener with real peers: python-hl7's MLLP client sends, hl7apy reads our ACKs.

Corpus: every supported valid message gets AA (unsupported types AR with the
right 0357 code), every invalid one AR/AE, the 60 radiology ORUs of the
scout logs all become jobs. Plus the transport faults a real feed produces.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hl7.client
import pytest
import sqlalchemy as sa
from hl7apy.parser import parse_message
from sqlmodel import Session, select

from sluicegate.adapters.hl7v2.er7 import decode
from sluicegate.adapters.hl7v2.extract import NO_REPORT_TEXT
from sluicegate.adapters.hl7v2.listener import build_server
from sluicegate.adapters.hl7v2.parse import split_batch
from sluicegate.core.ingest import open_item
from sluicegate.core.interfaces import WorkItem
from sluicegate.core.runtime import Runtime, build_runtime
from sluicegate.core.tables import Job, WorkItemRow
from tests.conftest import CORPUS, make_settings

HL7 = CORPUS / "hl7v2"
# Valid messages of types this adapter does not take: AR with 0357 code 200/201.
UNSUPPORTED = {
    "dcm4che-SIU_S12-NewAppointmentBooking.hl7",
    "hl7dotnetcore-Sample-ADT.txt",  # ADT^O01
    "msfc-OML-O21-01.hl7",
    "msfc-SIU-S12-01.hl7",
    "nhapi-OML_O21_messages.txt",
    "nhapi-adt_a03.txt",
}
ORU_SAMPLE = (HL7 / "derived-scout-20250814-msg04-ORU_R01-v2.3-MRI-brain.hl7").read_bytes()
# Corpus files that make report-drafting (or, MDM, summary) work: one job each.
# Not here: lab results with or without comments (CBC, newborn screening,
# albumin/creatinine, glucose, culture), the PDF-only imaging report.
MAKES_A_JOB = {
    "cdc-ti-002_Epic_ORU_R01.hl7",  # text-only result, no lab or imaging marker
    "dcm4che-ORU_R01-CDA.hl7",
    "dcm4che-ORU_R01-SR.hl7",
    "derived-scout-19950402-msg00-ORU_R01-v2.4-mammogram-tilde-lines.hl7",
    "derived-scout-20250814-msg04-ORU_R01-v2.3-MRI-brain.hl7",
    "derived-scout-20250814-msg22-ORU_R01-v2.7-MR-head-perfusion.hl7",
    "derived-scout-20250814-msg44-ORU_R01-v2.7-IR-angiography-100OBX.hl7",
    "msfc-MDM-T02-03.hl7",
}


def hl7_settings(home: Path, **options: Any) -> Any:
    mllp = {"port": 0, **options.pop("mllp", {})}
    sections = options.pop("sections", {})
    return make_settings(
        home,
        adapters={
            "hl7v2": {
                "factory": "sluicegate.adapters.hl7v2:Hl7v2Adapter",
                "options": {"mllp": mllp, **options},
            }
        },
        **sections,
    )


@contextmanager
def running_listener(settings: Any) -> Iterator[tuple[int, Runtime]]:
    """The real listener on its own event loop in a thread, on a real database."""
    runtime = build_runtime(settings)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    held: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        server, intake = build_server(runtime, "hl7v2")
        loop.run_until_complete(server.start())
        held.update(server=server, intake=intake)
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30)
    try:
        yield held["server"].port, runtime
    finally:
        asyncio.run_coroutine_threadsafe(held["server"].stop(), loop).result(30)
        asyncio.run_coroutine_threadsafe(held["intake"].aclose(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        runtime.close()


def client(port: int) -> hl7.client.MLLPClient:
    peer = hl7.client.MLLPClient("127.0.0.1", port)
    peer.socket.settimeout(30)
    return peer


def read_ack(raw: bytes) -> Any:
    """Our ACK as an independent parser (hl7apy) reads it."""
    text = raw.strip(b"\x0b\x1c\r").decode()
    return parse_message(text, find_groups=False)


def msa(ack: Any) -> tuple[str, str]:
    return ack.msa.msa_1.value, ack.msa.msa_2.value


def jobs(runtime: Runtime) -> list[Job]:
    with Session(runtime.engine) as s:
        return list(s.exec(select(Job)).all())


def work_items(runtime: Runtime) -> list[WorkItem]:
    """The stored work items, opened (their prompt inputs are sealed)."""
    with Session(runtime.engine) as s:
        return [open_item(runtime.sealer, row) for row in s.exec(select(WorkItemRow)).all()]


def scout_orus(name: str) -> list[bytes]:
    """Messages from an HL7-ish log: between <SB> and <EB>, <R> as segment ends."""
    text = (HL7 / "hl7ish_logs" / name).read_bytes().decode("latin-1")
    bodies = re.findall(r"<SB>\n?(.*?)<EB>", text, flags=re.S)
    return [b.replace("\n", "").replace("<R>", "\r").encode("latin-1") for b in bodies]


@pytest.fixture(params=["sqlite", "postgresql"])
def listener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[int, Runtime]]:
    """The listener on the embedded default (SQLite), then on real PostgreSQL."""
    sections = {}
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        sections = {"database": {"url": url, "auto_migrate": True}}
    with running_listener(hl7_settings(tmp_path, sections=sections)) as running:
        yield running


def test_corpus_messages_get_the_right_ack(listener) -> None:
    port, runtime = listener
    seen = 0
    with client(port) as peer:
        for path in sorted(p for p in HL7.iterdir() if p.is_file()):
            before = len(jobs(runtime))
            for message in split_batch(decode(path.read_bytes())):
                header = message.split("\r", 1)[0]
                ack = read_ack(peer.send_message(message.encode()))
                code, echoed = msa(ack)
                expected = "AR" if path.name in UNSUPPORTED else "AA"
                assert code == expected, (path.name, code)
                assert echoed == header.split("|")[9]  # MSH-10 echoed in MSA-2
                assert ack.msh.msh_12.value == header.split("|")[11].split("^")[0]
                assert ack.msh.msh_5.value == header.split("|")[2]  # sender swapped
                if expected == "AR":
                    # table 0357: unsupported type/event (or, first, a missing MSH-10)
                    assert re.search(r"\b(200|201|101)\b", ack.err.to_er7())
                seen += 1
            made = len(jobs(runtime)) - before
            assert made == (1 if path.name in MAKES_A_JOB else 0), (path.name, made)
    assert seen >= 30


def test_invalid_corpus_is_rejected(listener) -> None:
    port, _ = listener
    with client(port) as peer:
        for path in sorted((HL7 / "invalid").iterdir()):
            raw = peer.send_message(path.read_bytes())
            assert b"MSA|AR|" in raw or b"MSA|AE|" in raw, path.name
            read_ack(raw)  # still a well-formed ACK
    assert jobs(listener[1]) == []


def test_the_sixty_radiology_orus_from_the_logs(listener) -> None:
    """All 60 are acknowledged AA and each becomes one report-drafting job.

    Four of them have no OBX at all (the exam is done, the result carries only
    the order): their jobs draft from the order details and say so.
    """
    port, runtime = listener
    messages = scout_orus("scout-20250814.log")
    assert len(messages) == 60
    with client(port) as peer:
        codes = [msa(read_ack(peer.send_message(m)))[0] for m in messages]
    assert codes == ["AA"] * 60
    found = jobs(runtime)
    assert len(found) == 60 and {j.task for j in found} == {"radiology_report"}
    items = work_items(runtime)
    bases = sorted(i.prompt_inputs["basis"] for i in items)
    assert bases == ["obx"] * 56 + ["order"] * 4
    for item in items:
        if item.prompt_inputs["basis"] == "order":
            assert item.prompt_inputs["findings"] == NO_REPORT_TEXT
            assert item.prompt_inputs["procedure"] and item.prompt_inputs["modality"]


def test_negative_logs(listener) -> None:
    """Junk and empty frames are rejected; a bad first message does not stop the others."""
    port, runtime = listener
    with client(port) as peer:
        for name in ("scout-NEG-20160829-junk-hl7.log", "scout-NEG-20190106-empty-hl7.log"):
            [only] = scout_orus(name)
            assert b"MSA|AR|" in peer.send_message(only)
        first, *rest = scout_orus("scout-NEG-20230113-unparseable-first-message.log")
        assert b"MSA|AR|" in peer.send_message(first)
        assert [msa(read_ack(peer.send_message(m)))[0] for m in rest] == ["AA"] * len(rest)
    assert len(jobs(runtime)) == len(rest)


def test_duplicate_is_acked_again_without_a_second_job(listener) -> None:
    port, runtime = listener
    with client(port) as peer:
        first = read_ack(peer.send_message(ORU_SAMPLE))
        again = read_ack(peer.send_message(ORU_SAMPLE))
    assert msa(first)[0] == msa(again)[0] == "AA"
    assert first.msh.msh_10.value != again.msh.msh_10.value  # each ACK has its own id
    assert len(jobs(runtime)) == 1


def test_database_connection_dropped_between_messages(tmp_path, pg_url) -> None:
    """The listener's engine has no pre-ping: a connection the server dropped
    fails the next batch once, which the store runs again on a fresh one."""
    sections = {"database": {"url": pg_url, "auto_migrate": True}}
    with running_listener(hl7_settings(tmp_path, sections=sections)) as (port, runtime):
        fields = ORU_SAMPLE.split(b"|")
        fields[9] = b"DROPPED-1"  # a new MSH-10: new work, not a duplicate
        with client(port) as peer:
            assert msa(read_ack(peer.send_message(ORU_SAMPLE)))[0] == "AA"
            with runtime.engine.connect() as conn:
                dropped = conn.execute(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
            assert dropped >= 1
            assert msa(read_ack(peer.send_message(b"|".join(fields))))[0] == "AA"
        assert len(jobs(runtime)) == 2


def test_resend_after_the_window_is_new_work(tmp_path) -> None:
    with running_listener(hl7_settings(tmp_path, duplicate_window_s=0)) as (port, runtime):
        with client(port) as peer:
            peer.send_message(ORU_SAMPLE)
            time.sleep(0.05)
            peer.send_message(ORU_SAMPLE)
        assert len(jobs(runtime)) == 2


def _raw_exchange(port: int, data: bytes, timeout: float = 30) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        buffer = b""
        while not buffer.endswith(b"\x1c\r"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            buffer += chunk
        return buffer


def test_frames_split_across_packets_and_many_per_read(listener) -> None:
    port, runtime = listener
    other = ORU_SAMPLE.replace(b"|P|2.3", b"X|P|2.3", 1)  # another control id
    stream = b"\x0b" + ORU_SAMPLE + b"\x1c\r" + b"\x0b" + other + b"\x1c\r"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for i in range(0, len(stream), 7):  # seven bytes at a time
            sock.sendall(stream[i : i + 7])
        answers = b""
        while answers.count(b"\x1c\r") < 2:
            answers += sock.recv(65536)
    assert answers.count(b"MSA|AA|") == 2
    assert len(jobs(runtime)) == 2


def test_connection_dropped_mid_frame_stores_nothing(listener) -> None:
    port, runtime = listener
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"\x0b" + ORU_SAMPLE[: len(ORU_SAMPLE) // 2])
    time.sleep(0.2)
    assert jobs(runtime) == []
    with client(port) as peer:  # the listener is fine afterwards
        assert msa(read_ack(peer.send_message(ORU_SAMPLE)))[0] == "AA"
    assert len(jobs(runtime)) == 1


def test_garbage_bytes(listener) -> None:
    port, runtime = listener
    noise = bytes(range(256)).replace(b"\x0b", b"").replace(b"\x1c", b"")
    # Noise between frames is dropped; a frame of noise is answered AR.
    raw = _raw_exchange(port, noise + b"\x0b" + ORU_SAMPLE + b"\x1c\r")
    assert b"MSA|AA|" in raw
    raw = _raw_exchange(port, b"\x0b" + noise + b"\x1c\r")
    assert b"MSA|AR|" in raw
    assert len(jobs(runtime)) == 1


def test_oversize_frame_is_rejected(tmp_path) -> None:
    settings = hl7_settings(tmp_path, mllp={"max_frame_bytes": 4096})
    big = ORU_SAMPLE.rstrip(b"\r") + b"\rOBX|9|TX|||" + b"x" * 8000 + b"\r"
    with running_listener(settings) as (port, runtime):
        raw = _raw_exchange(port, b"\x0b" + big + b"\x1c\r")
        ack = read_ack(raw)
        assert msa(ack)[0] == "AR"
        # ORU_SAMPLE is 2.3: the code is in ERR-1 (ELD), component 4, first subcomponent
        eld = ack.err.to_er7().split("|")[1]
        assert eld.split("^")[3].split("&")[0] == "207"
        assert jobs(runtime) == []
        # a Latin-1 sender's oversize message: the AR in its own character set
        latin = LATIN1_ORU.rstrip(b"\r") + b"\rOBX|2|TX|||" + b"x" * 8000 + b"\r"
        raw = _raw_exchange(port, b"\x0b" + latin + b"\x1c\r")
        assert "Hôpital Süd".encode("latin-1") in raw and "Hôpital".encode() not in raw
        assert "\rMSA|AR|LAT-1" in raw.decode("latin-1")


def test_idle_connection_is_closed(tmp_path) -> None:
    settings = hl7_settings(tmp_path, mllp={"idle_timeout_s": 0.3})
    with (
        running_listener(settings) as (port, _),
        socket.create_connection(("127.0.0.1", port), timeout=30) as sock,
    ):
        assert sock.recv(10) == b""  # closed by the listener, not by the timeout here


def test_ten_concurrent_connections(listener) -> None:
    port, runtime = listener
    messages = scout_orus("scout-20250814.log")

    def send(part: list[bytes]) -> list[str]:
        with client(port) as peer:
            return [msa(read_ack(peer.send_message(m)))[0] for m in part]

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(send, [messages[i::10] for i in range(10)]))
    assert [c for r in results for c in r] == ["AA"] * 60
    assert len(jobs(runtime)) == 60


def test_adt_identifiers_reach_later_results(listener) -> None:
    """ADT^A01 teaches the patient's identifiers; an ORU for the same PID-3 carries them."""
    port, runtime = listener
    adt = (
        "MSH|^~\\&|ADT|HOSP|SG|SG|20250101||ADT^A01|ADT1|P|2.5\r"
        "EVN|A01|20250101\r"
        "PID|1||MRN777^^^HOSP^MR||Zebulon^Quigley||19600101|M|||1 Elm St^^Springfield\r"
        "NK1|1|Quigley^Marguerite|SPO\r"
    )
    oru = (
        "MSH|^~\\&|RIS|HOSP|SG|SG|20250102||ORU^R01|ORU1|P|2.5\r"
        "PID|1||MRN777^^^HOSP^MR\r"
        "OBR|1|P1|F1|CTH^CT HEAD^L\r"
        "OBX|1|TX|||No acute intracranial abnormality.\r"
    )
    with client(port) as peer:
        assert b"MSA|AA|ADT1" in peer.send_message(adt)
        assert b"MSA|AA|ORU1" in peer.send_message(oru)
    with Session(runtime.engine) as s:
        [row] = s.exec(select(WorkItemRow)).all()
    item = open_item(runtime.sealer, row)
    assert "Marguerite" in item.identifiers["name"]  # from the ADT's NK1
    assert "MRN777" in item.identifiers["mrn"]
    assert item.prompt_inputs["modality"] == "CT"


def _only_item(runtime: Runtime) -> Any:
    with Session(runtime.engine) as s:
        [row] = s.exec(select(WorkItemRow)).all()
    return open_item(runtime.sealer, row)


def test_a40_merge_moves_identifiers_to_the_surviving_patient(listener) -> None:
    port, runtime = listener
    old = (
        "MSH|^~\\&|ADT|HOSP|SG|SG|20250101||ADT^A08|A08-1|P|2.5\r"
        "PID|1||OLD1^^^HOSP^MR||Oldname^Ottilie||19500505|F\r"
    )
    merge = (
        "MSH|^~\\&|ADT|HOSP|SG|SG|20250102||ADT^A40|A40-1|P|2.5\r"
        "PID|1||NEW1^^^HOSP^MR||Newname^Ottilie\r"
        "MRG|OLD1^^^HOSP^MR\r"
    )
    oru = (
        "MSH|^~\\&|RIS|HOSP|SG|SG|20250103||ORU^R01|ORU-M|P|2.5\r"
        "PID|1||NEW1^^^HOSP^MR\r"
        "OBR|1|P9|F9|US^US ABDOMEN^L\r"
        "OBX|1|TX|||Liver normal.\r"
    )
    with client(port) as peer:
        for message in (old, merge, oru):
            assert msa(read_ack(peer.send_message(message)))[0] == "AA"
    item = _only_item(runtime)
    assert "Oldname" in item.identifiers["name"]  # learnt under OLD1, merged into NEW1
    assert "1950-05-05" in item.identifiers["birth_date"]


def test_order_waits_and_enriches_its_result(listener) -> None:
    """ORM^O01 creates no job; the ORU for the same accession gets its history."""
    port, runtime = listener
    orm = (
        "MSH|^~\\&|HIS|HOSP|SG|SG|20250101||ORM^O01|ORM-1|P|2.3\r"
        "PID|1||MRN5^^^HOSP^MR\r"
        "ORC|NW|PL5|FI5\r"
        "OBR|1|PL5|FI5|MRB^MRI BRAIN WO^L" + "|" * 27 + "^Headache for three weeks\r"
    )
    oru = (
        "MSH|^~\\&|RIS|HOSP|SG|SG|20250102||ORU^R01|ORU-5|P|2.3\r"
        "PID|1||MRN5^^^HOSP^MR\r"
        "OBR|1|PL5|FI5\r"
        "OBX|1|TX|||No mass.\r"
    )
    with client(port) as peer:
        assert msa(read_ack(peer.send_message(orm)))[0] == "AA"
        assert jobs(runtime) == []
        assert msa(read_ack(peer.send_message(oru)))[0] == "AA"
    item = _only_item(runtime)
    assert item.prompt_inputs["procedure"] == "MRI BRAIN WO"
    assert item.prompt_inputs["modality"] == "MR"
    assert item.prompt_inputs["clinical_history"] == "Headache for three weeks"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_listener(tmp_path) -> None:
    import ssl

    cert, key = _self_signed(tmp_path)
    settings = hl7_settings(tmp_path, mllp={"tls_cert": str(cert), "tls_key": str(key)})
    context = ssl.create_default_context(cafile=str(cert))
    with running_listener(settings) as (port, runtime):
        raw = socket.create_connection(("127.0.0.1", port), timeout=30)
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(b"\x0b" + ORU_SAMPLE + b"\x1c\r")
            answer = b""
            while not answer.endswith(b"\x1c\r"):
                answer += sock.recv(65536)
        assert b"MSA|AA|" in answer
        assert len(jobs(runtime)) == 1


def test_graceful_shutdown_finishes_the_message_in_flight() -> None:
    """stop() while a message is being handled: its ACK is still sent; then no more."""
    from sluicegate.adapters.hl7v2.mllp import MllpServer, frame
    from sluicegate.adapters.hl7v2.options import MllpOptions

    async def scenario() -> tuple[bytes, bool]:
        started = asyncio.Event()

        async def slow(message: bytes, sender: str) -> bytes:
            started.set()
            await asyncio.sleep(0.5)
            return b"ACK for " + message

        server = MllpServer(MllpOptions(port=0), slow, lambda head: b"")
        await server.start()
        port = server.port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(frame(b"MSG-1"))
        await writer.drain()
        await started.wait()
        stopping = asyncio.create_task(server.stop())
        answer = await asyncio.wait_for(reader.readuntil(b"\x1c\r"), 10)
        await stopping
        refused = False
        try:
            await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            refused = True
        writer.close()
        return answer, refused

    answer, refused = asyncio.run(scenario())
    assert answer == frame(b"ACK for MSG-1")
    assert refused


@pytest.mark.parametrize(("check", "code"), [("tolerant", "AA"), ("strict", "AE")])
def test_optional_hl7apy_check(tmp_path, check: str, code: str) -> None:
    """hl7apy's parse before the ACK (in a process pool): tolerant reads the
    message; strict validation refuses it (a phone number that is not a TN)
    with AE, and nothing is stored."""
    with running_listener(hl7_settings(tmp_path, hl7apy_check=check)) as (port, runtime):
        with client(port) as peer:
            ack = read_ack(peer.send_message(ORU_SAMPLE))
        assert msa(ack)[0] == code
        if code == "AE":
            assert "hl7apy (ValueError)" in ack.err.to_er7()
        assert len(jobs(runtime)) == (1 if code == "AA" else 0)


def test_same_control_id_from_another_facility_is_new_work(listener) -> None:
    """The duplicate key is sending facility + MSH-10: another facility's message
    with the same control id is a new job; the same facility's again is not."""
    port, runtime = listener
    fields = ORU_SAMPLE.split(b"|")
    fields[3] = fields[3] + b"-NORTH"  # MSH-4, sending facility
    with client(port) as peer:
        assert msa(read_ack(peer.send_message(ORU_SAMPLE)))[0] == "AA"
        assert msa(read_ack(peer.send_message(b"|".join(fields))))[0] == "AA"
        assert len(jobs(runtime)) == 2
        assert msa(read_ack(peer.send_message(b"|".join(fields))))[0] == "AA"
    assert len(jobs(runtime)) == 2


def test_cancelled_order_no_longer_enriches_its_result(listener) -> None:
    """ORC-1 CA deletes the pending order: a later result for it is not enriched,
    while the result of an order still pending is."""
    port, runtime = listener
    omi = (
        "MSH|^~\\&|HIS|HOSP|SG|SG|2025||OMI^O23|{cid}|P|2.5.1\r"
        "PID|1||MRN1^^^HOSP^MR\r"
        "ORC|{status}|{placer}|F{placer}\r"
        "OBR|1|{placer}|F{placer}|MRB^MRI BRAIN^L|||||||||Headache\r"
    )
    oru = (
        "MSH|^~\\&|RIS|HOSP|SG|SG|2025||ORU^R01|{cid}|P|2.5.1\r"
        "PID|1||MRN1^^^HOSP^MR\r"
        "OBR|1|{placer}|F{placer}\r"
        "OBX|1|TX|||No mass.\r"
    )
    sent = [
        omi.format(cid="OMI-1", status="NW", placer="PL8"),
        omi.format(cid="OMI-2", status="NW", placer="PL9"),
        omi.format(cid="OMI-3", status="CA", placer="PL9"),
        oru.format(cid="ORU-8", placer="PL8"),
        oru.format(cid="ORU-9", placer="PL9"),
    ]
    with client(port) as peer:
        assert [msa(read_ack(peer.send_message(m)))[0] for m in sent] == ["AA"] * 5
    by_ref = {i.source_ref.split()[3]: i.prompt_inputs for i in work_items(runtime)}
    assert by_ref["ORU-8"]["procedure"] == "MRI BRAIN"
    assert by_ref["ORU-9"]["procedure"] == "" and by_ref["ORU-9"]["clinical_history"] == ""


LATIN1_ORU = (
    "MSH|^~\\&|RIS|Hôpital Süd|SG|SG|20250102||ORU^R01|LAT-1|P|2.5.1||||||8859/1\r"
    "PID|1||MRN1^^^HOSP^MR||Müller^Jürgen\r"
    "OBR|1|P1|F1|CTH^CT HEAD^L\r"
    "OBX|1|TX|||Keine Blutung.\r"
).encode("latin-1")


def _assert_latin1_ack(raw: bytes) -> None:
    text = raw.strip(b"\x0b\x1c\r").decode("latin-1")
    msh = text.split("\r")[0].split("|")
    assert msh[5] == "Hôpital Süd"  # MSH-6 of the ACK: the sender's facility
    assert msh[17] == "8859/1"  # MSH-18 echoed
    assert "Hôpital Süd".encode("latin-1") in raw and "Hôpital".encode() not in raw
    assert "\rMSA|AA|LAT-1" in text


def test_ack_to_a_latin1_message_over_mllp_and_http(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from sluicegate.app import create_app

    with running_listener(hl7_settings(tmp_path / "mllp")) as (port, _), client(port) as peer:
        _assert_latin1_ack(peer.send_message(LATIN1_ORU))
    app = create_app(make_settings(tmp_path / "http"), run_relay=False)
    with TestClient(app) as http:
        response = http.post(
            "/hl7/v2", content=LATIN1_ORU, headers={"Content-Type": "x-application/hl7-v2+er7"}
        )
    assert response.status_code == 200
    assert response.headers["content-type"].endswith("; charset=ISO-8859-1")
    _assert_latin1_ack(response.content)


def test_listener_binds_the_configured_address(tmp_path) -> None:
    """`mllp.host` decides where it listens: on 127.0.0.2 it is not on 127.0.0.1."""
    with running_listener(hl7_settings(tmp_path, mllp={"host": "127.0.0.2"})) as (port, _):
        with socket.create_connection(("127.0.0.2", port), timeout=5):
            pass
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5)
