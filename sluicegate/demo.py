"""`sluicegate demo`: real jobs through the embedded stack, start to finish.

Starts a local cloud stand-in (see :mod:`sluicegate.demo_cloud`) and
`sluicegate serve` (API + relay + worker + local Triton on CPU) on free ports.
Posts the sample radiology bundle exactly as a HIS would: it is de-identified,
drafted by the cloud stand-in and re-identified on-prem, and the demo prints
side by side what the hospital sent, what the cloud received and what came
back. Then a FHIR transaction round trip (transaction-response, job, search
and read), an HL7 ORU over MLLP and a financial report -- both on channels
marked ``cloud: never``, so drafted on-prem by Triton -- then where each job
was drafted, read back from the audit trail, and finally the audit chain's
verification. Everything is shut down at the end.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console
from rich.markdown import Markdown
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.syntax import Syntax
from rich.table import Table

from sluicegate.adapters.fhir import FhirAdapter
from sluicegate.core.config import Settings
from sluicegate.core.security.keys import BOOTSTRAP_ENV
from sluicegate.demo_cloud import CloudStandIn, cloud_stand_in, with_cloud
from sluicegate.inference.prompts import build_messages
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
    hl7v2 = data["adapters"].get("hl7v2")
    if hl7v2 is not None and hl7v2.get("enabled", True):  # the HL7 step's MLLP listener
        hl7v2.setdefault("options", {})["mllp"] = {"enabled": True, "port": free_port()}
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
    for var in ("DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL"):
        os.environ.pop(var, None)  # the demo's cloud is the local stand-in, never the real API
    settings = demo_settings(Settings())
    home = settings.home_path
    home.mkdir(parents=True, exist_ok=True)
    log_file = home / "logs" / "demo-serve.log"
    # The server takes this as its admin key (SLUICEGATE_BOOTSTRAP_ADMIN_KEY); so do we.
    api_key = os.environ.setdefault(BOOTSTRAP_ENV, secrets.token_urlsafe(32))
    auth = {"Authorization": f"Bearer {api_key}"}
    try:
        with contextlib.ExitStack() as stack:
            with _progress(console) as progress:
                step = _step(progress, "Starting the cloud stand-in (OpenAI-compatible, local)...")
                cloud = stack.enter_context(cloud_stand_in(home / "logs"))
                _done(progress, step, f"Cloud stand-in ready at {cloud.base_url}")
            settings = Settings.model_validate(with_cloud(settings.model_dump(mode="json"), cloud))
            config_file = home / "demo-config.yaml"
            config_file.write_text(
                yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False)
            )
            server = spawn(["serve", "--config", str(config_file)], log_file)
            stack.callback(stop, server)
            base_url = f"http://{settings.api.host}:{settings.api.port}"
            client = stack.enter_context(httpx.Client(base_url=base_url, timeout=10, headers=auth))
            return _run_steps(console, client, server, settings, cloud, deadline)
    except (RuntimeError, TimeoutError, httpx.HTTPError) as exc:
        console.print(f"[red]demo failed: {exc}\nserver log: {log_file}")
        return 1


def _run_steps(
    console: Console,
    client: httpx.Client,
    server: subprocess.Popen[bytes],
    settings: Settings,
    cloud: CloudStandIn,
    deadline: float,
) -> int:
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
        step = _step(progress, "De-identifying, drafting on the cloud stand-in, re-identifying...")
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
    console.print(f"[bold green]Preliminary DiagnosticReport drafted ({report['meta']['source']}).")
    _print_privacy(console, cloud, report)
    with _progress(console) as progress:
        trip = _transaction_round_trip(client, progress, deadline)
    _print_round_trip(console, trip)
    if "hl7v2" in settings.adapters:
        _hl7_step(console, client, settings, deadline)
    if "finance" in settings.adapters:
        _finance_step(console, client, deadline)
    _print_routes(console, client)
    return _print_audit_verification(console, client)


def _print_routes(console: Console, client: httpx.Client) -> None:
    """Where each job was drafted, as the audit trail records it (``routed`` events;
    a job whose draft was regenerated after a failed check appears once per draft)."""
    lines = _ok_text(client.get("/audit/events"), "the audit events").splitlines()
    events = [json.loads(line) for line in lines if line.strip()]
    channels = {
        e["job_id"]: e["data"].get("channel", "") for e in events if e["type"] == "received"
    }
    table = Table(title="Where each job was drafted (from the audit trail)")
    for column in ("channel", "job", "zone", "backend", "text sent"):
        table.add_column(column)
    for e in (e for e in events if e["type"] == "routed"):
        data = e["data"]
        sent = "de-identified, guard passed" if data.get("cleared") else "original (on-prem only)"
        table.add_row(
            channels.get(e["job_id"], "?"), e["job_id"][:8], data["zone"], data["backend"], sent
        )
    console.print(table)


def _ok_text(response: httpx.Response, what: str) -> str:
    if response.status_code != 200:
        raise RuntimeError(f"{what}: {response.status_code} {response.text[:300]}")
    return response.text


def _print_privacy(console: Console, cloud: CloudStandIn, report: dict[str, Any]) -> None:
    """Side by side: the hospital's text, what the cloud received, what came back."""
    [item] = FhirAdapter().parse(
        sample_path().read_bytes(), FHIR_JSON["Content-Type"], tenant="demo", channel="fhir"
    )
    sent = next(
        m.content for m in build_messages(item.task, item.prompt_inputs) if m.role == "user"
    )
    received = cloud.user_texts()
    if not received:
        raise RuntimeError("the cloud stand-in received nothing: the draft did not go to the cloud")
    forms = report.get("presentedForm") or [{}]
    returned = base64.b64decode(forms[0].get("data", "")).decode(errors="replace")
    table = Table(title="Privacy: the same job, three views", show_lines=True, expand=True)
    table.add_column("The hospital sent (stays on-prem)", ratio=1)
    table.add_column("The cloud received (on the wire)", ratio=1)
    table.add_column("The hospital got back (re-identified on-prem)", ratio=1)
    table.add_row(sent, received[0], returned)
    console.print(table)
    leaked = [v for vals in item.identifiers.values() for v in vals if v and v in received[0]]
    if leaked:
        raise RuntimeError(f"{len(leaked)} identifier(s) reached the cloud stand-in")
    console.print(
        "[bold green]No identifier left the building: names, MRN, dates and contact details "
        "went out as surrogates and were put back on-prem."
    )


def _print_audit_verification(console: Console, client: httpx.Client) -> int:
    """The demo ends by checking every hash chain it just wrote to (0 when intact)."""
    verdict = _ok(client.get("/audit/verify"), "the audit verification")
    for chain in verdict["tenants"]:
        if chain["ok"]:
            console.print(f"[green]Audit chain {chain['tenant']}: {chain['events']} events, intact")
        else:
            console.print(
                f"[red]Audit chain {chain['tenant']}: first bad event {chain['first_bad_seq']}: "
                f"{chain['reason']}"
            )
    return 0 if verdict["ok"] else 1


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


# --- HL7 v2 over MLLP ----------------------------------------------------------------

HL7_SAMPLE = Path("hl7v2") / "oru-r01-ct-head.hl7"


def _mllp_exchange(port: int, message: bytes, deadline: float) -> bytes:
    """Send one MLLP frame to the demo's listener and return the ACK it answers."""
    from sluicegate.adapters.hl7v2.mllp import END, frame

    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError("the MLLP listener did not start in time") from None
            time.sleep(0.3)
    with sock:
        sock.sendall(frame(message))
        answer = b""
        while END not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer.strip(b"\x0b\x1c\r")


def _hl7_step(console: Console, client: httpx.Client, settings: Settings, deadline: float) -> None:
    """An ORU^R01 through MLLP: the ACK, then the job it made (found by re-posting the
    same message over HTTP: a duplicate, acknowledged AA again, naming the same job)."""
    import uuid

    port = int(settings.adapters["hl7v2"].options["mllp"]["port"])  # type: ignore[index]
    control_id = f"DEMO{uuid.uuid4().hex[:16].upper()}"
    message = sample_path(HL7_SAMPLE).read_bytes().replace(b"SAMPLE-ORU-0001", control_id.encode())
    with _progress(console) as progress:
        step = _step(progress, f"Sending {HL7_SAMPLE} over MLLP (port {port})...")
        ack = _mllp_exchange(port, message, deadline)
        ok = b"MSA|AA|" in ack
        _done(progress, step, "ACK received" if ok else "ACK is not AA", ok=ok)
    console.print(ack.decode(errors="replace").replace("\r", "\n").strip(), highlight=False)
    if not ok:
        raise RuntimeError("the MLLP listener did not acknowledge AA")
    again = client.post(
        "/hl7/v2", content=message, headers={"Content-Type": "x-application/hl7-v2+er7"}
    )
    location = again.headers.get("Content-Location")
    if again.status_code != 200 or not location:
        raise RuntimeError(f"POST /hl7/v2 answered {again.status_code}: {again.text[:300]}")
    with _progress(console) as progress:
        step = _step(progress, f"Same message over HTTP: duplicate, job {location}; drafting...")
        job = _follow(client, location, deadline)
        ok = job["status"] == "succeeded"
        _done(progress, step, f"Job {job['status']} after {job['attempts']} attempt(s)", ok=ok)
    if not ok:
        raise RuntimeError(f"HL7 job {job['status']}: {job['last_error']}")
    oru = client.get(f"{location}/result", params={"format": "hl7"}).text
    console.print(oru.replace("\r", "\n").strip(), highlight=False)
    console.print("[bold green]HL7 v2: ACKed over MLLP, draft ORU^R01 (OBR-25 P) ready.")


# --- finance: one report in, a grounded summary out -----------------------------------

FINANCE_SAMPLE = Path("finance") / "report.json"


def _finance_step(console: Console, client: httpx.Client, deadline: float) -> None:
    """Post the sample report and print its summary: figures tagged by fact, grounding shown."""
    with _progress(console) as progress:
        step = _step(progress, f"Posting {FINANCE_SAMPLE} to /finance/reports...")
        posted = client.post(
            "/finance/reports",
            content=sample_path(FINANCE_SAMPLE).read_bytes(),
            headers={"Content-Type": "application/json"},
        )
        if posted.status_code not in (200, 202):
            raise RuntimeError(f"finance answered {posted.status_code}: {posted.text[:500]}")
        location = posted.headers["Content-Location"]
        _done(progress, step, f"Accepted: {posted.status_code}, job at {location}")
        step = _step(progress, "Writing the financial summary from computed facts...")
        job = _follow(client, location, deadline)
        _done(progress, step, f"Job {job['status']}", ok=job["status"] == "succeeded")
    if job["status"] != "succeeded":
        raise RuntimeError(f"finance job {job['status']}: {job['last_error']}")
    summary = client.get(f"{location}/result").json()
    console.print(Markdown(summary["markdown"]))
    grounding = summary["grounding"]
    if grounding["flagged"]:
        console.print(
            f"[yellow]Narrative flagged: numbers not in the facts: {grounding['ungrounded']} "
            "(a 135M CPU model; every figure above is still checked)."
        )
    else:
        console.print("[bold green]Financial summary: every number in the narrative is grounded.")
