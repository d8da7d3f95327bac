"""Finance HTTP ingress (in-process app, real SQLite/PostgreSQL; model calls scripted)."""

from __future__ import annotations

import asyncio
import copy
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from sluicegate.app import create_app
from sluicegate.core.pipeline import execute
from sluicegate.core.tables import Job, OutboxMessage, Result, WorkItemRow
from tests.conftest import CORPUS, FAKE_INFERENCE, make_settings

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "finance" / "report.json"
NDJSON = {"content-type": "application/x-ndjson"}


def sample() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLE.read_text())
    return data


def client_for(
    tmp_path: Path, options: dict[str, Any] | None = None, **sections: Any
) -> TestClient:
    adapters = {
        "finance": {
            "factory": "sluicegate.adapters.finance:FinanceAdapter",
            "options": options or {},
        }
    }
    settings = make_settings(tmp_path, inference=FAKE_INFERENCE, adapters=adapters, **sections)
    return TestClient(create_app(settings, run_relay=False))


@pytest.fixture
def client(tmp_path: Path, scripted: Any) -> Iterator[TestClient]:
    with client_for(tmp_path) as test_client:
        yield test_client


def stored(client: TestClient) -> int:
    with Session(client.app.state.runtime.engine) as s:  # type: ignore[attr-defined]
        return sum(len(s.exec(select(t)).all()) for t in (WorkItemRow, Job, OutboxMessage))


def test_report_is_accepted_and_reposting_returns_the_original_job(client: TestClient) -> None:
    first = client.post("/finance/reports", json=sample())
    assert first.status_code == 202, first.text
    body = first.json()
    assert body["status"] == "accepted" and body["failed_checks"] == []
    assert first.headers["content-location"] == f"/jobs/{body['job_id']}"
    job = client.get(first.headers["content-location"]).json()
    assert job["status"] == "queued" and job["task"] == "financial_summary"
    again = client.post("/finance/reports", json=sample())
    assert again.status_code == 200 and again.json()["job_id"] == body["job_id"]
    assert again.json()["status"] == "duplicate"
    assert stored(client) == 3


def test_same_natural_key_with_different_content_is_409(client: TestClient) -> None:
    assert client.post("/finance/reports", json=sample()).status_code == 202
    changed = sample()
    changed["statements"][1]["items"][0]["value"] = "1240000001.00"
    conflict = client.post("/finance/reports", json=changed)
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"
    problem = conflict.json()
    assert problem["type"].endswith("/idempotency-conflict") and "version" in problem["detail"]
    assert stored(client) == 3  # nothing stored for the conflicting post
    changed["version"] = "2"  # a correction is a new version
    assert client.post("/finance/reports", json=changed).status_code == 202


def test_idempotency_key_header_and_natural_key_both_hold(client: TestClient) -> None:
    headers = {"Idempotency-Key": "etl-run-42"}
    first = client.post("/finance/reports", json=sample(), headers=headers)
    assert first.status_code == 202
    job_id = first.json()["job_id"]
    other = sample()
    other["entity"] = {"name": "Another Ltd"}  # a different report under the same header
    clash = client.post("/finance/reports", json=other, headers=headers)
    assert clash.status_code == 409 and clash.json()["job_id"] == job_id
    same = client.post("/finance/reports", json=sample(), headers=headers)
    assert same.status_code == 200 and same.json()["job_id"] == job_id
    # A new header does not bypass the natural key: same content → the original job ...
    again = client.post("/finance/reports", json=sample(), headers={"Idempotency-Key": "run-43"})
    assert again.status_code == 200 and again.json()["job_id"] == job_id
    # ... and changed content for the same entity, period and version → 409.
    changed = sample()
    changed["statements"][1]["items"][0]["value"] = "1.00"
    refused = client.post("/finance/reports", json=changed, headers={"Idempotency-Key": "run-44"})
    assert refused.status_code == 409
    assert (
        client.post(
            "/finance/reports", json=other, headers={"Idempotency-Key": "run-45"}
        ).status_code
        == 202
    )
    assert stored(client) == 6
    bad = client.post("/finance/reports", json=other, headers={"Idempotency-Key": "x" * 300})
    assert bad.status_code == 400


def test_invalid_report_is_problem_json_naming_fields_and_stores_nothing(
    client: TestClient,
) -> None:
    bad = sample()
    bad["currency"] = "dollars"
    bad["statements"][0]["items"][2]["value"] = "1O0"
    del bad["period"]["end"]
    response = client.post("/finance/reports", json=bad)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"currency", "statements.0.items.2.value", "period.end"}
    assert "1O0" not in response.text
    malformed = client.post(
        "/finance/reports", content=b"{", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400
    assert (
        client.post(
            "/finance/reports", content=b"x", headers={"content-type": "text/plain"}
        ).status_code
        == 415
    )
    assert stored(client) == 0


def test_failed_checks_are_reported_or_reject_when_configured(
    tmp_path: Path, scripted: Any
) -> None:
    off = sample()
    off["statements"][0]["items"][3]["value"] = "1650000100.00"
    with client_for(tmp_path / "a") as c:
        accepted = c.post("/finance/reports", json=off)
        assert accepted.status_code == 202
        names = {f["name"] for f in accepted.json()["failed_checks"]}
        assert "assets_equal_liabilities_plus_equity" in names
    with client_for(tmp_path / "b", {"checks": {"reject_on_failure": True}}) as c:
        refused = c.post("/finance/reports", json=off)
        assert refused.status_code == 422 and refused.json()["type"].endswith("/checks-failed")
        assert stored(c) == 0


def test_csv_upload_uses_the_channels_mapping(tmp_path: Path, scripted: Any) -> None:
    mapping = {
        "csv": {
            "mode": "ledger",
            "concept_column": "Account",
            "debit_column": "Debit",
            "credit_column": "Credit",
            "currency": "EUR",
            "concept_map": {
                "1000 Bank": "cash",
                "Total assets": "total_assets",
                "2000 Loans": "total_liabilities",
                "3000 Equity": "total_equity",
            },
        }
    }
    csv_body = (
        'Account,Debit,Credit\n1000 Bank,"1,000.00",\nTotal assets,"1,000.00",\n'
        "2000 Loans,,600.00\n3000 Equity,,400.00\n"
    )
    with client_for(tmp_path, mapping) as c:
        response = c.post(
            "/finance/reports?entity=GL%20Co&period_end=2024-06-30",
            content=csv_body,
            headers={"content-type": "text/csv"},
        )
        assert response.status_code == 202, response.text
        missing = c.post(
            "/finance/reports?entity=GL%20Co",
            content=csv_body,
            headers={"content-type": "text/csv"},
        )
        assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "period_end"
        bad_row = csv_body.replace("600.00", "six hundred")
        refused = c.post(
            "/finance/reports?period_end=2024-06-30",
            content=bad_row,
            headers={"content-type": "text/csv"},
        )
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "row 4.Credit"
    with client_for(tmp_path / "plain") as c:
        no_mapping = c.post(
            "/finance/reports", content=csv_body, headers={"content-type": "text/csv"}
        )
        assert no_mapping.status_code == 415


def _variant(i: int) -> dict[str, Any]:
    doc = copy.deepcopy(SAMPLE_DOC)
    doc["entity"] = {"name": f"Entity {i}"}
    return doc


SAMPLE_DOC = sample()


def test_bulk_gives_per_line_results_and_keeps_good_lines(client: TestClient) -> None:
    bad = sample()
    bad["currency"] = "xx"
    conflict = sample()
    conflict["statements"][1]["items"][0]["value"] = "1.00"
    lines = [
        json.dumps(sample()),  # 1 accepted
        "",  # blank: skipped, still counted as a line number
        json.dumps(bad),  # 3 rejected (field error)
        "{not json",  # 4 rejected (malformed)
        json.dumps(sample()),  # 5 duplicate of line 1
        json.dumps(conflict),  # 6 same natural key, different content
        json.dumps(_variant(7)),  # 7 accepted
    ]
    response = client.post("/finance/reports:bulk", content="\n".join(lines) + "\n", headers=NDJSON)
    assert response.status_code == 200
    results = [json.loads(line) for line in response.text.splitlines()]
    by_line = {r["line"]: r for r in results if "line" in r}
    assert [by_line[n]["status"] for n in (1, 3, 4, 5, 6, 7)] == [
        "accepted",
        "rejected",
        "rejected",
        "duplicate",
        "rejected",
        "accepted",
    ]
    assert by_line[3]["errors"][0]["field"] == "currency"
    assert by_line[5]["job_id"] == by_line[1]["job_id"]
    assert "different content" in by_line[6]["errors"][0]["message"]
    assert results[-1] == {"summary": {"lines": 6, "accepted": 2, "duplicate": 1, "rejected": 3}}
    assert stored(client) == 6  # two reports, each item + job + outbox; nothing half-stored
    assert (
        client.post(
            "/finance/reports:bulk", content=b"{}", headers={"content-type": "application/json"}
        ).status_code
        == 415
    )


def test_bulk_refuses_an_oversized_line_without_buffering_it(tmp_path: Path, scripted: Any) -> None:
    with client_for(tmp_path, {"bulk": {"max_line_bytes": 4096}}) as c:
        huge = json.dumps(sample()) + " " * 10_000
        body = "\n".join([huge, json.dumps(sample())]) + "\n"
        results = [
            json.loads(x)
            for x in c.post("/finance/reports:bulk", content=body, headers=NDJSON).text.splitlines()
        ]
        assert (
            results[0]["status"] == "rejected"
            and "exceeds 4096 bytes" in results[0]["errors"][0]["message"]
        )
        assert results[1]["status"] == "accepted"


def _chunks(n: int, tag: str) -> Iterator[bytes]:
    doc = copy.deepcopy(SAMPLE_DOC)
    doc["entity"] = {"name": "ENTITY"}
    line = json.dumps(doc)
    for i in range(n):
        yield line.replace("ENTITY", f"Entity {tag}-{i}").encode() + b"\n"


async def _stream_through_app(app: Any, n: int, tag: str) -> dict[str, int]:
    """Drive the ASGI app directly: the body arrives in chunks, as from a socket.

    (The test client would buffer the whole request body itself.)
    """
    chunks = _chunks(n, tag)
    tail = bytearray()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/finance/reports:bulk",
        "raw_path": b"/finance/reports:bulk",
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
        "headers": [(b"content-type", b"application/x-ndjson"), (b"host", b"test")],
    }

    done = asyncio.Event()
    body_sent = False

    async def receive() -> dict[str, Any]:
        nonlocal body_sent
        if body_sent:  # like a socket: nothing more until the client goes away
            await done.wait()
            return {"type": "http.disconnect"}
        chunk = next(chunks, None)
        body_sent = chunk is None
        return {"type": "http.request", "body": chunk or b"", "more_body": chunk is not None}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            tail.extend(message.get("body", b""))
            del tail[: max(0, len(tail) - 4096)]  # keep only the end: the summary line
            if not message.get("more_body", False):
                done.set()

    await app(scope, receive, send)
    summary: dict[str, int] = json.loads(bytes(tail).splitlines()[-1])["summary"]
    return summary


def _peak(client: TestClient, n: int, tag: str) -> tuple[int, int]:
    tracemalloc.start()
    summary = client.portal.call(_stream_through_app, client.app, n, tag)  # type: ignore[union-attr]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, summary["accepted"]


def test_bulk_memory_does_not_grow_with_the_number_of_lines(tmp_path: Path, scripted: Any) -> None:
    with client_for(tmp_path, {"bulk": {"batch_size": 50, "processes": 0}}) as c:
        _peak(c, 60, "warm")  # warm caches (SQLAlchemy compiled statements, pydantic)
        small, accepted_small = _peak(c, 160, "small")
        large, accepted_large = _peak(c, 800, "large")
    assert (accepted_small, accepted_large) == (160, 800)
    # 5x the lines (2.6 MB of body): the peak stays at the per-batch working set.
    assert large < small * 1.3 + 500_000, (small, large)


def test_a_job_runs_through_the_pipeline_to_a_grounded_summary(client: TestClient) -> None:
    job_id = client.post("/finance/reports", json=sample()).json()["job_id"]
    assert execute(client.app.state.runtime, job_id) == "succeeded"  # type: ignore[attr-defined]
    result = client.get(f"/jobs/{job_id}/result")
    assert result.status_code == 200 and result.headers["content-type"].startswith(
        "application/json"
    )
    summary = result.json()
    assert summary["grounding"]["grounded"] is True  # the scripted text has no numbers
    assert summary["facts"][0]["line_item"] == "/statements/0/items/0"
    assert summary["markdown"].startswith("# Financial summary: Northwind Components plc")


def test_corpus_bank_file_imported_and_posted(client: TestClient) -> None:
    from sluicegate.adapters.finance.importers import import_file

    _, reports = import_file(CORPUS / "finance" / "camt053.v2.multi.statement.xml")
    body = "".join(r.model_dump_json(exclude_none=True) + "\n" for r in reports)
    results = [
        json.loads(x)
        for x in client.post(
            "/finance/reports:bulk", content=body, headers=NDJSON
        ).text.splitlines()
    ]
    assert [r["status"] for r in results[:-1]] == ["accepted", "accepted"]
    with Session(client.app.state.runtime.engine) as s:  # type: ignore[attr-defined]
        rows = s.exec(select(WorkItemRow)).all()
        assert rows and all(b"NL26VAYB8060476890" not in r.sealed for r in rows)  # sealed at rest
        assert not s.exec(select(Result)).all()
