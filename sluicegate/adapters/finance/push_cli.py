"""``sluicegate finance push FILES...``: the ETL job's way in.

Detects each file's format, imports it locally, and streams the reports as
NDJSON to ``/finance/reports:bulk`` in batches. Transient failures (connection
errors, 429/5xx) are retried with backoff; an interrupted run can simply be
started again, because every report carries its natural idempotency key and
the server answers re-sent reports as ``duplicate``. Exit status is 1 when
anything was rejected (or a file could not be imported), 2 when the server
refused the request itself or stayed unreachable, else 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from sluicegate.adapters.finance.importers import ImportFailed, import_file
from sluicegate.adapters.finance.models import Report

app = typer.Typer(help="Finance reports: push files from an ETL pipeline.", no_args_is_help=True)


class Transient(Exception):
    """A failure worth retrying: the server was unreachable, overloaded or restarting."""


@dataclass
class FileResult:
    path: str
    format: str = ""
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, Transient | httpx.TransportError)


@retry(
    retry=retry_if_exception(_retryable),
    stop=stop_after_attempt(6),
    wait=wait_exponential(multiplier=0.5, max=10),
    reraise=True,
)
def send_batch(client: httpx.Client, entries: list[list[Report]]) -> list[dict[str, Any]]:
    """One NDJSON line per entry: a report, or an array of a file's reports (all or nothing)."""
    body = b"".join(_line(entry) + b"\n" for entry in entries)
    response = client.post(
        "/finance/reports:bulk", content=body, headers={"content-type": "application/x-ndjson"}
    )
    if response.status_code == 429 or response.status_code >= 500:
        raise Transient(f"server answered {response.status_code}")
    if response.status_code != 200:
        raise RuntimeError(
            f"server refused the batch: {response.status_code} {response.text[:300]}"
        )
    lines = [json.loads(line) for line in response.text.splitlines() if line.strip()]
    return [line for line in lines if "line" in line]


def _line(entry: list[Report]) -> bytes:
    parts = [r.model_dump_json(exclude_none=True) for r in entry]
    return (parts[0] if len(parts) == 1 else "[" + ",".join(parts) + "]").encode()


def _entries(reports: list[Report]) -> list[list[Report]]:
    """A file's reports: one line each, or, when the file holds several (statements of
    an MT940/camt/OFX file), one array line so that the file is stored all or nothing."""
    return [reports] if len(reports) > 1 else [[r] for r in reports]


def _batches(entries: list[list[Report]], size: int) -> Iterator[list[list[Report]]]:
    for start in range(0, len(entries), size):
        yield entries[start : start + size]


def _count(result: FileResult, line: dict[str, Any], reports: int) -> None:
    """Tally one answer line (``reports`` reports sent on it) per report."""
    status = line.get("status")
    if status == "rejected":
        result.rejected += reports
        result.errors.append({"line": line.get("line"), "errors": line.get("errors")})
    elif "reports" in line:
        for report in line["reports"]:
            if report.get("status") in ("accepted", "duplicate"):
                setattr(result, report["status"], getattr(result, report["status"]) + 1)
    elif status in ("accepted", "duplicate"):
        setattr(result, status, getattr(result, status) + 1)


def push(
    files: list[Path], url: str, api_key: str | None, batch_size: int, console: Console, quiet: bool
) -> list[FileResult]:
    headers = {"x-api-key": api_key} if api_key else {}
    results: list[FileResult] = []
    with (
        httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=120) as client,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=quiet,
            transient=False,
        ) as progress,
    ):
        for path in files:
            result = FileResult(str(path))
            results.append(result)
            try:
                result.format, reports = import_file(path)
            except (ImportFailed, OSError) as exc:
                result.rejected += 1
                result.errors.append({"line": None, "message": str(exc)})
                continue
            task = progress.add_task(path.name, total=len(reports))
            for batch in _batches(_entries(reports), batch_size):
                answers = {line.get("line"): line for line in send_batch(client, batch)}
                for number, entry in enumerate(batch, start=1):
                    missing = {"status": "rejected", "line": number, "errors": "no answer"}
                    _count(result, answers.get(number, missing), len(entry))
                progress.advance(task, sum(len(entry) for entry in batch))
    return results


@app.command("push")
def push_command(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="MT940, camt.053, OFX, XBRL, companyfacts, CSV or report JSON files",
            exists=True,
            dir_okay=False,
        ),
    ],
    url: Annotated[str, typer.Option(help="Sluicegate base URL")] = "http://127.0.0.1:8080",
    api_key: Annotated[
        str | None, typer.Option(envvar="SLUICEGATE_API_KEY", help="sent as X-API-Key")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="reports per bulk request")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Import FILES and push every report; a rerun resumes (duplicates are recognised)."""
    console = Console(stderr=as_json)
    try:
        results = push(files, url, api_key, batch_size, console, quiet=as_json)
    except (httpx.HTTPError, Transient, RuntimeError) as exc:
        console.print(f"[red]push failed: {exc}")
        raise typer.Exit(2) from None
    totals = {k: sum(getattr(r, k) for r in results) for k in ("accepted", "duplicate", "rejected")}
    if as_json:
        typer.echo(json.dumps({"files": [r.__dict__ for r in results], "totals": totals}))
    else:
        table = Table(title="finance push")
        for column in ("file", "format", "accepted", "duplicate", "rejected"):
            table.add_column(column)
        for r in results:
            table.add_row(
                Path(r.path).name,
                r.format or "-",
                str(r.accepted),
                str(r.duplicate),
                str(r.rejected),
            )
        table.add_row("total", "", *(str(totals[k]) for k in ("accepted", "duplicate", "rejected")))
        console.print(table)
        for r in results:
            for error in r.errors[:10]:
                console.print(f"[red]{Path(r.path).name}: {error}")
    raise typer.Exit(1 if totals["rejected"] else 0)
