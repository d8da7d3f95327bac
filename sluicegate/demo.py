"""`sluicegate demo`: one real job through the embedded stack, start to finish.

Starts `sluicegate serve` (API + relay + worker + local Triton on CPU) on free
ports, posts the sample radiology bundle exactly as a HIS would, follows the
job, prints the preliminary DiagnosticReport and shuts everything down.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.syntax import Syntax

from sluicegate.core.config import Settings
from sluicegate.stack import spawn, stop

SAMPLE = Path("fhir") / "radiology-bundle.json"


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
        with (
            httpx.Client(base_url=base_url, timeout=10) as client,
            Progress(
                SpinnerColumn(finished_text="[green]✓"),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            ) as progress,
        ):
            step = progress.add_task("Starting API, worker and local Triton (CPU)...", total=1)
            _wait_ready(client, server, deadline)
            progress.update(step, description="Embedded stack ready", completed=1)
            progress.stop_task(step)
            step = progress.add_task(f"Posting {SAMPLE} to /fhir/r4/Bundle...", total=1)
            posted = client.post(
                "/fhir/r4/Bundle",
                content=sample_path().read_bytes(),
                headers={"Content-Type": "application/fhir+json"},
            )
            if posted.status_code != 202:
                raise RuntimeError(f"ingest answered {posted.status_code}: {posted.text[:500]}")
            location = posted.headers["Content-Location"]
            progress.update(step, description=f"Accepted: 202, job at {location}", completed=1)
            progress.stop_task(step)
            step = progress.add_task("Drafting the report through Triton...", total=1)
            job = _follow(client, location, deadline)
            progress.update(
                step,
                description=f"Job {job['status']} after {job['attempts']} attempt(s)",
                completed=1 if job["status"] == "succeeded" else 0,
            )
            progress.stop_task(step)
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
        return 0
    except (RuntimeError, TimeoutError, httpx.HTTPError) as exc:
        console.print(f"[red]demo failed: {exc}\nserver log: {log_file}")
        return 1
    finally:
        stop(server)


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
