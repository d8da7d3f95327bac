"""`sluicegate demo`: one real job through the embedded stack, start to finish.

Starts `sluicegate serve` (API + relay + worker + local Triton on CPU) on free
ports, posts the sample radiology bundle exactly as a HIS would, follows the
job and prints the preliminary DiagnosticReport. Then a FHIR transaction round
trip: the same work as a ``transaction`` Bundle to ``POST /fhir/r4``, its
``transaction-response``, the job it created, and the produced report read
back through FHIR search (by the patient's MRN) and read. Everything is shut
down at the end.
"""

from __future__ import annotations

import copy
import json
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.syntax import Syntax
from rich.table import Table

from sluicegate.core.config import Settings
from sluicegate.stack import spawn, stop

SAMPLE = Path("fhir") / "radiology-bundle.json"
FHIR_JSON = {"Content-Type": "application/fhir+json"}


def sample_path(relative: Path = SAMPLE) -> Path:
    """The samples folder: inside an installed wheel, or beside the package in a checkout."""
    package = Path(__file__).resolve().parent
    for base in (package / "samples", package.parent / "samples"):
        if (base / relative).is_file():
            return base / relative
    raise FileNotFoundError(f"sample {relative} not found next to the sluicegate package")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def demo_settings(base: Settings) -> Settings:
    """The embedded defaults on free ports, so the demo never fights another server."""
    data = base.model_dump(mode="json")
    data["home"] = str(base.home_path)
    data["api"]["port"] = free_port()
    triton = data["inference"]["local_triton"]
    triton.update(http_port=free_port(), grpc_port=free_port(), metrics_port=free_port())
    for backend in data["inference"]["backends"].values():
        backend["url"] = f"http://127.0.0.1:{triton['http_port']}"
    return Settings.model_validate(data)


def _wait_ready(client: httpx.Client, server: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the stack exited early (code {server.returncode})")
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise TimeoutError("the stack did not become ready in time")


def _follow(client: httpx.Client, location: str, deadline: float) -> dict[str, object]:
    while time.monotonic() < deadline:
        job: dict[str, object] = client.get(location).json()
        if job["status"] in ("succeeded", "failed", "dead"):
            return job
        time.sleep(0.5)
    raise TimeoutError("the job did not finish in time")


def run_demo(console: Console, timeout_s: float = 110.0) -> int:
    """Returns the process exit code: 0 when a valid preliminary report was printed."""
    deadline = time.monotonic() + timeout_s
    settings = demo_settings(Settings())
    home = settings.home_path
    home.mkdir(parents=True, exist_ok=True)
    config_file = home / "demo-config.yaml"
    config_file.write_text(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False))
    log_file = home / "logs" / "demo-serve.log"
    server = spawn(["serve", "--config", str(config_file)], log_file)
    base_url = f"http://{settings.api.host}:{settings.api.port}"
    try:
        with httpx.Client(base_url=base_url, timeout=10) as client:
            with _progress(console) as progress:
                step = _step(progress, "Starting API, worker and local Triton (CPU)...")
                _wait_ready(client, server, deadline)
                _done(progress, step, "Embedded stack ready")
                step = _step(progress, f"Posting {SAMPLE} to /fhir/r4/Bundle...")
                posted = client.post(
                    "/fhir/r4/Bundle", content=sample_path().read_bytes(), headers=FHIR_JSON
                )
                if posted.status_code != 202:
                    raise RuntimeError(f"ingest answered {posted.status_code}: {posted.text[:500]}")
                location = posted.headers["Content-Location"]
                _done(progress, step, f"Accepted: 202, job at {location}")
                step = _step(progress, "Drafting the report through Triton...")
                job = _follow(client, location, deadline)
                _done(
                    progress,
                    step,
                    f"Job {job['status']} after {job['attempts']} attempt(s)",
                    ok=job["status"] == "succeeded",
                )
                if job["status"] != "succeeded":
                    console.print(f"[red]job {job['status']}: {job['last_error']}")
                    return 1
                bundle = client.get(f"{location}/result").json()
            report = _validated_report(bundle)
            console.print(Syntax(json.dumps(report, indent=2), "json", word_wrap=True))
            console.print(
                f"[bold green]Preliminary DiagnosticReport drafted on-prem "
                f"({report['meta']['source']})."
            )
            with _progress(console) as progress:
                trip = _transaction_round_trip(client, progress, deadline)
        _print_round_trip(console, trip)
        return 0
    except (RuntimeError, TimeoutError, httpx.HTTPError) as exc:
        console.print(f"[red]demo failed: {exc}\nserver log: {log_file}")
        return 1
    finally:
        stop(server)


# --- the FHIR transaction round trip ------------------------------------------------


@dataclass(frozen=True)
class RoundTrip:
    """What the transaction, its job and the FHIR search and read answered."""

    responses: list[tuple[str, str, str]]  # request, response status, location
    job: dict[str, object]
    identifier: str  # the subject:identifier searched for, system|value
    report_id: str
    search_total: int
    search_ids: list[str]
    read: dict[str, Any]


def transaction_bundle(sample: dict[str, Any]) -> dict[str, Any]:
    """The sample as a transaction: every entry a POST of its type, under another Bundle
    id so that it is new work (the same content again would find the first job)."""
    doc = copy.deepcopy(sample)
    doc["id"] = f"{doc.get('id') or 'sample'}-transaction"
    doc["type"] = "transaction"
    for entry in doc.get("entry") or []:
        entry["request"] = {"method": "POST", "url": entry["resource"]["resourceType"]}
    return doc


def patient_identifier(bundle: dict[str, Any]) -> str:
    """``system|value`` of the first Patient identifier (the MRN in the sample)."""
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") != "Patient":
            continue
        for ident in resource.get("identifier") or []:
            if ident.get("value"):
                return f"{ident.get('system', '')}|{ident['value']}"
    raise RuntimeError("the sample has no Patient identifier to search by")


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(finished_text="[green]✓"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _step(progress: Progress, description: str) -> TaskID:
    return progress.add_task(description, total=1)


def _done(progress: Progress, step: TaskID, description: str, ok: bool = True) -> None:
    progress.update(step, description=description, completed=1 if ok else 0)
    progress.stop_task(step)


def _transaction_round_trip(client: httpx.Client, progress: Progress, deadline: float) -> RoundTrip:
    sample: dict[str, Any] = json.loads(sample_path().read_text(encoding="utf-8"))
    doc = transaction_bundle(sample)
    step = _step(progress, "Posting the same work as a FHIR transaction to /fhir/r4...")
    answer = client.post("/fhir/r4", content=json.dumps(doc).encode(), headers=FHIR_JSON)
    response = answer.json() if answer.status_code == 200 else {}
    if response.get("type") != "transaction-response":
        raise RuntimeError(f"transaction answered {answer.status_code}: {answer.text[:500]}")
    if len(response.get("entry") or []) != len(doc["entry"]):
        raise RuntimeError("the transaction-response has not one entry per request entry")
    responses = [
        (
            f"{request['request']['method']} {request['request']['url']}",
            str(entry["response"]["status"]),
            str(entry["response"].get("location", "")),
        )
        for request, entry in zip(doc["entry"], response.get("entry") or [], strict=True)
    ]
    jobs = [loc for _, _, loc in responses if loc.startswith("/jobs/")]
    if not jobs:
        raise RuntimeError("the transaction-response names no job")
    _done(progress, step, f"transaction-response: 200, {len(jobs)} job(s) created")

    step = _step(progress, "Drafting the second report through Triton...")
    job = _follow(client, jobs[0], deadline)
    _done(
        progress,
        step,
        f"Job {job['status']} after {job['attempts']} attempt(s)",
        job["status"] == "succeeded",
    )
    if job["status"] != "succeeded":
        raise RuntimeError(f"transaction job {job['status']}: {job['last_error']}")

    step = _step(progress, "Reading the report back through FHIR search and read...")
    result = _ok(client.get(f"{jobs[0]}/result"), "the job result")
    report_id = str(_validated_report(result)["id"])
    identifier = patient_identifier(sample)
    searchset = _ok(
        client.get("/fhir/r4/DiagnosticReport", params={"subject:identifier": identifier}),
        "the search",
    )
    found = [
        str(e["resource"]["id"])
        for e in searchset.get("entry") or []
        if (e.get("search") or {}).get("mode") == "match"
    ]
    if searchset.get("type") != "searchset" or report_id not in found:
        raise RuntimeError("the search by the patient's MRN did not find the new report")
    read = _ok(client.get(f"/fhir/r4/DiagnosticReport/{report_id}"), "the read")
    if read.get("id") != report_id or read.get("status") != "preliminary":
        raise RuntimeError("the read answered another or a non-preliminary report")
    _done(progress, step, "Report found by MRN search and read back")
    return RoundTrip(
        responses=responses,
        job=job,
        identifier=identifier,
        report_id=report_id,
        search_total=int(searchset.get("total", len(found))),
        search_ids=found,
        read=read,
    )


def _ok(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code != 200:
        raise RuntimeError(f"{what} answered {response.status_code}: {response.text[:500]}")
    body: dict[str, Any] = response.json()
    return body


def _print_round_trip(console: Console, trip: RoundTrip) -> None:
    table = Table(
        title="POST /fhir/r4 (transaction, each entry POST <type>) → transaction-response",
        title_justify="left",
    )
    table.add_column("entry")
    table.add_column("status", no_wrap=True)
    table.add_column("location", overflow="fold")
    for request, status, location in trip.responses:
        style = "green" if status.startswith("202") else None
        table.add_row(request.removeprefix("POST "), status, location or "-", style=style)
    console.print(table)
    read = trip.read
    meta = read.get("meta") or {}
    conclusion = " ".join(str(read.get("conclusion", "")).split())
    if len(conclusion) > 160:
        conclusion = conclusion[:159] + "…"
    summary = Table.grid(padding=(0, 1))
    summary.add_column(style="bold", no_wrap=True)
    summary.add_column(overflow="fold")
    summary.add_row("Search", f"GET /fhir/r4/DiagnosticReport?subject:identifier={trip.identifier}")
    summary.add_row(
        "",
        f"→ searchset, {trip.search_total} match(es), the new DiagnosticReport among them",
    )
    summary.add_row("Read", f"GET /fhir/r4/DiagnosticReport/{trip.report_id}")
    summary.add_row(
        "",
        f"→ status {read.get('status')}, versionId {meta.get('versionId')}, "
        f"lastUpdated {meta.get('lastUpdated')}",
    )
    summary.add_row("", f"conclusion: {conclusion or '(none)'}")
    console.print(summary, highlight=False)
    console.print("[bold green]FHIR transaction round trip complete.")


def _validated_report(bundle: dict[str, Any]) -> dict[str, Any]:
    """Check the result against the R4B models and return its DiagnosticReport."""
    from fhir.resources.R4B.bundle import Bundle

    parsed = Bundle.model_validate(bundle)
    for entry in parsed.entry or []:
        if entry.resource is not None and entry.resource.get_resource_type() == "DiagnosticReport":
            report: dict[str, Any] = json.loads(entry.resource.model_dump_json())
            if report.get("status") != "preliminary":
                raise RuntimeError("the DiagnosticReport is not preliminary")
            return report
    raise RuntimeError("the result bundle holds no DiagnosticReport")
