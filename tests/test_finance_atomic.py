"""Finance uploads that yield several reports are stored all or nothing; every
ingress records who sent it (in-process app, real SQLite)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from sluicegate.adapters.finance.importers import import_file
from sluicegate.core.ingest import open_item
from sluicegate.core.tables import AuditEvent, FinanceIdempotencyKey, WorkItemRow
from tests.conftest import CORPUS
from tests.test_finance_api import NDJSON, client_for, sample, stored

CSV = {"content-type": "text/csv"}
QUERY = "/finance/reports?entity=Ledger%20Co&currency=EUR"
MAPPING = {
    "csv": {
        "mode": "transactions",
        "date_column": "Date",
        "amount_column": "Amount",
        "account_column": "Account",
        "description_column": "Text",
        "currency": "EUR",
    }
}


def statement_csv(*accounts: tuple[str, str]) -> str:
    """One CSV export holding two bookings for each (account, second amount)."""
    rows = ["Date,Account,Amount,Text"]
    for account, amount in accounts:
        rows += [f"2024-03-01,{account},100.00,rent", f"2024-03-28,{account},{amount},fees"]
    return "\n".join(rows) + "\n"


@pytest.fixture
def client(tmp_path: Path, scripted: Any) -> Iterator[TestClient]:
    with client_for(tmp_path, MAPPING) as test_client:
        yield test_client


def engine_of(client: TestClient) -> Any:
    return client.app.state.runtime.engine  # type: ignore[attr-defined]


def senders(client: TestClient) -> set[str]:
    """The sender on every stored work item and on every ``received`` audit event."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with Session(runtime.engine) as s:
        items = {open_item(runtime.sealer, row).sender for row in s.exec(select(WorkItemRow))}
        events = s.exec(select(AuditEvent).where(col(AuditEvent.type) == "received")).all()
    return items | {json.loads(e.data)["sender"] for e in events}


def test_csv_upload_with_a_conflicting_report_stores_none_of_them(client: TestClient) -> None:
    first = client.post(QUERY, content=statement_csv(("B-2", "-20.00")), headers=CSV)
    assert first.status_code == 202, first.text
    assert stored(client) == 3
    # Account A is new, account B's statement changed under the same natural key.
    upload = statement_csv(("A-1", "-5.00"), ("B-2", "-21.00"))
    refused = client.post(QUERY, content=upload, headers=CSV)
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert refused.headers["content-type"] == "application/problem+json"
    assert problem["type"].endswith("/idempotency-conflict")
    assert problem["report"] == 1 and problem["job_id"] == first.json()["job_id"]
    assert "report 1 of 2" in problem["detail"] and "nothing was stored" in problem["detail"]
    assert stored(client) == 3  # account A was not stored either
    # The same upload with B unchanged: A accepted, B the original job.
    fixed = client.post(
        QUERY, content=statement_csv(("A-1", "-5.00"), ("B-2", "-20.00")), headers=CSV
    )
    assert fixed.status_code == 202, fixed.text
    reports = fixed.json()["reports"]
    assert [r["status"] for r in reports] == ["accepted", "duplicate"]
    assert reports[1]["job_id"] == first.json()["job_id"]
    assert stored(client) == 6


def test_idempotency_key_conflict_in_a_multi_report_upload_stores_nothing(
    client: TestClient,
) -> None:
    key = {**CSV, "Idempotency-Key": "gl-export-7"}
    first = client.post(
        QUERY, content=statement_csv(("A-1", "-5.00"), ("B-2", "-20.00")), headers=key
    )
    assert first.status_code == 202, first.text
    with Session(engine_of(client)) as s:
        assert len(s.exec(select(FinanceIdempotencyKey)).all()) == 2  # KEY#0, KEY#1
    # Same header, different reports: KEY#0 now names other content → 409, C not stored.
    other = statement_csv(("C-3", "-7.00"), ("D-4", "-8.00"))
    refused = client.post(QUERY, content=other, headers=key)
    assert refused.status_code == 409 and refused.json()["report"] == 0
    assert stored(client) == 6
    with Session(engine_of(client)) as s:
        assert len(s.exec(select(FinanceIdempotencyKey)).all()) == 2
    again = client.post(
        QUERY, content=statement_csv(("A-1", "-5.00"), ("B-2", "-20.00")), headers=key
    )
    assert again.status_code == 200
    assert [r["job_id"] for r in again.json()["reports"]] == [
        r["job_id"] for r in first.json()["reports"]
    ]


def test_two_reports_of_one_upload_with_the_same_key_but_different_content(
    client: TestClient,
) -> None:
    # Two accounts in one export that the natural key cannot tell apart would be
    # one report stored twice with different content; the upload is refused whole.
    doc = sample()
    changed = sample()
    changed["statements"][1]["items"][0]["value"] = "1.00"
    body = "[" + json.dumps(doc) + "," + json.dumps(changed) + "]\n"
    results = [
        json.loads(x)
        for x in client.post(
            "/finance/reports:bulk", content=body, headers=NDJSON
        ).text.splitlines()
    ]
    assert results[0]["status"] == "rejected" and results[0]["errors"][0]["field"] == "1"
    assert stored(client) == 0


def test_multi_statement_file_in_bulk_is_all_or_nothing(client: TestClient) -> None:
    _, reports = import_file(CORPUS / "finance" / "camt053.v2.multi.statement.xml")
    assert len(reports) == 2
    texts = [r.model_dump_json(exclude_none=True) for r in reports]
    only_second = texts[1] + "\n"
    first = client.post("/finance/reports:bulk", content=only_second, headers=NDJSON)
    assert json.loads(first.text.splitlines()[0])["status"] == "accepted"
    assert stored(client) == 3
    changed = json.loads(texts[1])
    changed["accounts"][0]["transactions"][0]["amount"] = "0.01"
    group = "[" + texts[0] + "," + json.dumps(changed) + "]"
    body = "\n".join([group, json.dumps({**sample(), "currency": "x"}), "[" + texts[0] + "]"])
    response = client.post("/finance/reports:bulk", content=body + "\n", headers=NDJSON)
    results = [json.loads(x) for x in response.text.splitlines()]
    conflict, invalid, alone = results[:3]
    assert conflict["status"] == "rejected" and conflict["errors"][0]["field"] == "1"
    assert "different content" in conflict["errors"][0]["message"]
    assert invalid["status"] == "rejected"
    assert alone["status"] == "accepted" and len(alone["reports"]) == 1
    assert results[-1]["summary"] == {"lines": 3, "accepted": 1, "duplicate": 0, "rejected": 2}
    # The conflicting array stored nothing; the first statement came in on line 3 only.
    assert stored(client) == 6
    whole = "[" + texts[0] + "," + texts[1] + "]\n"
    again = json.loads(
        client.post("/finance/reports:bulk", content=whole, headers=NDJSON).text.splitlines()[0]
    )
    assert again["status"] == "duplicate"
    assert [r["status"] for r in again["reports"]] == ["duplicate", "duplicate"]


def test_array_line_field_errors_name_the_report(client: TestClient) -> None:
    bad = {**sample(), "currency": "xx"}
    body = "[" + json.dumps(sample()) + "," + json.dumps(bad) + "]\n[]\n"
    results = [
        json.loads(x)
        for x in client.post(
            "/finance/reports:bulk", content=body, headers=NDJSON
        ).text.splitlines()
    ]
    assert results[0]["status"] == "rejected"
    assert results[0]["errors"] == [
        {
            "field": "1.currency",
            "pointer": "/1/currency",
            "message": results[0]["errors"][0]["message"],
        }
    ]
    assert (
        results[1]["status"] == "rejected"
        and "non-empty array" in results[1]["errors"][0]["message"]
    )
    assert stored(client) == 0


def test_every_finance_ingress_records_the_sender(client: TestClient) -> None:
    assert client.post("/finance/reports", json=sample()).status_code == 202
    other = {**sample(), "entity": {"name": "Bulk Co"}}
    bulk = client.post("/finance/reports:bulk", content=json.dumps(other) + "\n", headers=NDJSON)
    assert json.loads(bulk.text.splitlines()[0])["status"] == "accepted"
    csv = client.post(QUERY, content=statement_csv(("A-1", "-5.00")), headers=CSV)
    assert csv.status_code == 202
    assert stored(client) == 9
    # Auth is off in this app, so the sender is the client address (TestClient's).
    assert senders(client) == {"ip:testclient"}


def test_push_sends_a_multi_statement_file_as_one_all_or_nothing_line(
    client: TestClient,
) -> None:
    from sluicegate.adapters.finance.push_cli import FileResult, _count, _entries, send_batch

    http = cast(httpx.Client, client)  # the test client speaks httpx.Client's API
    _, reports = import_file(CORPUS / "finance" / "camt053.v2.multi.statement.xml")
    entries = _entries(reports)
    assert [len(e) for e in entries] == [2]
    # The server already holds different content under the first statement's key:
    # pushing the file must store neither statement (the second one is new).
    altered = json.loads(reports[0].model_dump_json(exclude_none=True))
    altered["accounts"][0]["transactions"][0]["amount"] = "0.01"
    posted = client.post("/finance/reports", json=altered)
    assert posted.status_code == 202, posted.text
    before = stored(client)
    result = FileResult("camt")
    for line, entry in zip(send_batch(http, entries), entries, strict=True):
        _count(result, line, len(entry))
    assert (result.accepted, result.duplicate, result.rejected) == (0, 0, 2)
    assert stored(client) == before  # nothing of the file was stored
    alone = FileResult("the second statement alone")
    for line in send_batch(http, [[reports[1]]]):
        _count(alone, line, 1)
    assert (alone.accepted, alone.rejected) == (1, 0)  # it was new: the file stored nothing
