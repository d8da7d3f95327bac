"""Large bundles: a ~50 MB radiology Bundle under ``api.max_body_bytes`` is
accepted promptly and drafted without the worker's memory growing with it; the
same body above the limit is 413 with an OperationOutcome and stores nothing.

Real processes throughout: ``sluicegate serve`` (uvicorn + relay), a separate
``sluicegate worker`` (Celery prefork, one pool child) and the session's real
local Triton. The bundle carries what a HIS really sends with a report: the
dictated text plus the report's PDF rendering with embedded key images, inline
as base64 in ``DiagnosticReport.presentedForm``.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from sqlmodel import Session, create_engine, func, select

from sluicegate.core.config import Settings
from sluicegate.core.tables import Job, OutboxMessage, WorkItemRow
from tests.conftest import free_port, make_settings
from tests.processes import start_cli, stop_group, triton_inference, wait_for, write_config

pytestmark = pytest.mark.e2e
FHIR = {"Content-Type": "application/fhir+json"}
TARGET_BYTES = 50_000_000  # under the default api.max_body_bytes (50 MiB)
ACCEPT_WITHIN_S = 20.0
MAX_GROWTH_FACTOR = 3.0
MiB = 1024 * 1024


# --- the bundle ------------------------------------------------------------------


def synthetic_pdf(size: int) -> bytes:
    """A structurally plausible PDF of about ``size`` bytes: one page showing one
    JPEG-like image XObject (incompressible bytes, as real key images are)."""
    image = b"\xff\xd8\xff\xe0" + os.urandom(max(size - 700, 0)) + b"\xff\xd9"
    content = b"q 612 0 0 792 0 0 cm /Im1 Do Q"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /XObject << /Im1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /XObject /Subtype /Image /Width 2048 /Height 2048 /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 /Filter /DCTDecode /Length %d >>\nstream\n"
        % len(image)
        + image
        + b"\nendstream",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def large_bundle(sample: dict[str, Any], target: int = TARGET_BYTES) -> bytes:
    """The sample with the report's PDF rendering attached: ``target`` bytes, within 1%."""
    doc = copy.deepcopy(sample)
    doc["id"] = "sample-radiology-0001-with-pdf"
    report = next(
        e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == "DiagnosticReport"
    )
    attachment: dict[str, Any] = {
        "contentType": "application/pdf",
        "language": "en",
        "data": "",
        "title": "CT chest report with key images (PDF)",
        "creation": "2024-03-05T10:01:00+01:00",
    }
    report["presentedForm"].append(attachment)
    overhead = len(json.dumps(doc).encode())
    pdf = synthetic_pdf((target - overhead) * 3 // 4)
    attachment["size"] = len(pdf)
    attachment["data"] = base64.b64encode(pdf).decode("ascii")
    body = json.dumps(doc).encode()
    assert abs(len(body) - target) < target // 100
    return body


# --- processes and memory ----------------------------------------------------------


def proc_status_kib(pid: int, field: str) -> int:
    """A ``VmRSS``/``VmHWM``-style line of /proc/<pid>/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"/proc/{pid}/status has no {field}")


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def pool_children(worker_pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(worker_pid)], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


@contextmanager
def running(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = start_cli(args, log)
    try:
        yield proc
    finally:
        stop_group(proc)


def wait_ready(client: httpx.Client, log: Path) -> None:
    def ready() -> bool:
        try:
            return client.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    wait_for(ready, 60, "the API to be ready", log)


def finished(client: httpx.Client, location: str) -> dict[str, Any] | None:
    job: dict[str, Any] = client.get(location).json()
    return job if job["status"] in ("succeeded", "failed", "dead") else None


def stored_rows(settings: Settings) -> dict[str, int]:
    engine = create_engine(settings.database_url)
    try:
        with Session(engine) as s:
            return {
                t.__name__: s.exec(select(func.count()).select_from(t)).one()
                for t in (WorkItemRow, Job, OutboxMessage)
            }
    finally:
        engine.dispose()


# --- the test ----------------------------------------------------------------------


def test_large_bundle_is_drafted_in_bounded_worker_memory_and_refused_above_limit(
    tmp_path, local_triton, sample_bundle, sample_json
) -> None:
    body = large_bundle(sample_json)
    port = free_port()
    settings = make_settings(
        tmp_path,
        api={"port": port},
        worker={"embedded": False},
        relay={"poll_interval_s": 0.2},
        inference=triton_inference(local_triton),
    )
    assert len(body) < settings.api.max_body_bytes
    config = write_config(settings, tmp_path / "config.yaml")
    serve_log, worker_log = tmp_path / "serve.log", tmp_path / "worker.log"
    worker_args = ["worker", "--config", str(config), "--concurrency", "1"]
    with (
        running(["serve", "--config", str(config)], serve_log) as serve,
        running(worker_args, worker_log) as worker,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client,
    ):
        wait_ready(client, serve_log)
        # Warm up the pool child on the small sample: first-job imports (models,
        # HTTP client) are not growth caused by the bundle's size.
        warm = client.post("/fhir/r4/Bundle", content=sample_bundle, headers=FHIR)
        assert warm.status_code == 202, warm.text
        job = wait_for(
            lambda: finished(client, warm.headers["content-location"]), 90, "warm-up", worker_log
        )
        assert job["status"] == "succeeded", job["last_error"]
        pool = pool_children(worker.pid)
        assert pool, "the worker should run a prefork pool child"
        before = {pid: proc_status_kib(pid, "VmRSS") for pid in pool}
        peaks_reset = all(reset_peak(pid) for pid in pool)
        serve_before_kib = proc_status_kib(serve.pid, "VmRSS")
        reset_peak(serve.pid)

        started = time.monotonic()
        accepted = client.post("/fhir/r4/Bundle", content=body, headers=FHIR)
        accept_s = time.monotonic() - started
        assert accepted.status_code == 202, accepted.text[:2000]
        assert accept_s < ACCEPT_WITHIN_S, f"202 took {accept_s:.1f}s"
        location = accepted.headers["content-location"]
        assert location != warm.headers["content-location"], "must be a new job"
        job = wait_for(lambda: finished(client, location), 90, "the large job", worker_log)
        assert job["status"] == "succeeded", job["last_error"]
        done_s = time.monotonic() - started

        assert pool_children(worker.pid) == pool, "the pool child was replaced mid-test"
        growth_kib = max(proc_status_kib(pid, "VmHWM") - before[pid] for pid in pool)
        result = client.get(f"{location}/result")
        Bundle.model_validate(result.json())
        assert result.json()["entry"][0]["resource"]["status"] == "preliminary"
        serve_peak_kib = proc_status_kib(serve.pid, "VmHWM")

    limit = len(body) - 1
    growth = growth_kib * 1024
    print(
        f"\nbundle {len(body) / MiB:.1f} MiB: 202 after {accept_s:.2f}s, succeeded after "
        f"{done_s:.1f}s; worker pool child RSS {max(before.values()) / 1024:.0f} MiB before, "
        f"peak growth {growth / MiB:.1f} MiB (peak reset: {peaks_reset}); "
        f"API process RSS {serve_before_kib / 1024:.0f} MiB before, "
        f"peak {serve_peak_kib / 1024:.0f} MiB"
    )
    assert growth < MAX_GROWTH_FACTOR * len(body), (
        f"worker grew by {growth / MiB:.0f} MiB for a {len(body) / MiB:.0f} MiB bundle"
    )

    # The same body above a configured limit: 413 + OperationOutcome, nothing stored.
    small_port = free_port()
    small = settings.model_copy(
        update={
            "api": settings.api.model_copy(update={"port": small_port, "max_body_bytes": limit})
        }
    )
    small_config = write_config(small, tmp_path / "config-small.yaml")
    rows = stored_rows(settings)
    with (
        running(["serve", "--config", str(small_config)], tmp_path / "serve-small.log"),
        httpx.Client(base_url=f"http://127.0.0.1:{small_port}", timeout=60) as client,
    ):
        wait_ready(client, tmp_path / "serve-small.log")
        refused = client.post("/fhir/r4/Bundle", content=body, headers=FHIR)
        assert refused.status_code == 413, refused.text[:2000]
        assert refused.headers["content-type"].startswith("application/fhir+json")
        outcome = OperationOutcome.model_validate(refused.json())
        assert [i.code for i in outcome.issue] == ["too-costly"]
        as_transaction = client.post("/fhir/r4", content=body, headers=FHIR)
        assert as_transaction.status_code == 413  # the transaction endpoint shares the limit
    assert stored_rows(settings) == rows
