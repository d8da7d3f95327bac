"""Finance bulk speed work kept honest: same answers from the fast parse, from the
helper processes and after a helper dies; the idempotency lookup uses an index."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text

from sluicegate.adapters.finance import FinanceAdapter
from sluicegate.adapters.finance.bulk import result_line
from sluicegate.adapters.finance.errors import ReportRejected, load_report, validate_report
from sluicegate.adapters.finance.importers import import_file
from sluicegate.adapters.finance.models import Report
from tests.conftest import CORPUS
from tests.test_finance_api import NDJSON, client_for, sample, stored


def exact(data: str | bytes) -> Report:
    """The reference path: json.loads with parse_float=Decimal, then model validation."""
    from decimal import Decimal

    return validate_report(json.loads(data, parse_float=Decimal))


@pytest.mark.parametrize(
    "path",
    [
        "camt053.v2.multi.statement.xml",
        "mt940-jejik-abnamro.sta",
        "sec-xbrl-nflx-20100930-10Q.xml",
        "csv2ofx-schwab-checking.csv",
    ],
)
def test_fast_parse_gives_the_exact_paths_model(path: str) -> None:
    _, reports = import_file(CORPUS / "finance" / path)
    for report in [*reports, load_report(json.dumps(sample()))]:
        line = report.model_dump_json(exclude_none=True)
        assert load_report(line) == exact(line) == report


def test_json_number_money_still_parses_exactly() -> None:
    doc = sample()
    text_line = json.dumps(doc)
    # Money as JSON numbers (fractions and integers): the fast path refuses the
    # floats, the exact path reads them as Decimal.
    as_numbers = text_line.replace('"1650000000.00"', "1650000000.10").replace(
        '"1240000000.00"', "1240000000"
    )
    assert as_numbers != text_line
    report = load_report(as_numbers)
    assert report == exact(as_numbers)
    values = [i.value for s in report.statements for i in s.items]
    assert any(str(v) == "1650000000.10" for v in values)


@pytest.mark.parametrize(
    "line",
    [
        b"{not json",
        b'{"currency": "USD"}',
        json.dumps({**sample(), "currency": "usd"}).encode(),
        json.dumps(sample()).encode("utf-16"),
        json.dumps(sample()).replace('"1650000000.00"', "NaN").encode(),
    ],
)
def test_refusals_are_the_exact_paths(line: bytes) -> None:
    try:
        expected: Any = exact(line)
    except ReportRejected as exc:
        expected = (exc.status, exc.errors)
    except ValueError:
        expected = "malformed"
    try:
        got: Any = load_report(line)
    except ReportRejected as exc:
        got = (exc.status, exc.errors)
        if expected == "malformed":
            assert exc.status == 400
            return
    assert got == expected


def _lines(n: int) -> str:
    out = []
    for i in range(n):
        doc = sample()
        doc["entity"] = {"name": f"Helper Co {i}"}
        if i % 7 == 3:
            doc["currency"] = "x"  # rejected
        out.append(json.dumps(doc))
    out.insert(5, out[0])  # a duplicate of line 1
    return "\n".join(out) + "\n"


def _companies(n: int) -> str:
    """``n`` valid reports, the i-th the same in every body."""
    docs = [{**sample(), "entity": {"name": f"Index Co {i}"}} for i in range(n)]
    return "\n".join(json.dumps(doc) for doc in docs) + "\n"


def _answers(client: TestClient, body: str) -> list[dict[str, Any]]:
    response = client.post("/finance/reports:bulk", content=body, headers=NDJSON)
    assert response.status_code == 200
    return [json.loads(x) for x in response.text.splitlines()]


def _without_ids(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "job_id"} for r in results]


def _helpers_up(client: TestClient) -> FinanceAdapter:
    adapter = client.app.state.runtime.adapter("finance")  # type: ignore[attr-defined]
    assert isinstance(adapter, FinanceAdapter)
    deadline = time.monotonic() + 90
    while adapter.helpers.ready() is None:
        assert adapter.helpers.processes == 1, "helper processes could not start"
        assert time.monotonic() < deadline, "helper process did not start"
        time.sleep(0.2)
    return adapter


def test_helper_processes_answer_as_the_server_process_does(tmp_path: Path, scripted: Any) -> None:
    body = _lines(40)
    with client_for(tmp_path / "inproc", {"bulk": {"batch_size": 6, "processes": 0}}) as c:
        alone = _answers(c, body)
        assert c.app.state.runtime.adapter("finance").helpers.ready() is None  # type: ignore[attr-defined]
        rows_alone = stored(c)
    with client_for(tmp_path / "helpers", {"bulk": {"batch_size": 6, "processes": 1}}) as c:
        adapter = _helpers_up(c)
        helped = _answers(c, body)
        assert _without_ids(helped) == _without_ids(alone)
        assert [r["line"] for r in helped[:-1]] == list(range(1, 42))  # in line order
        assert helped[-1]["summary"] == {"lines": 41, "accepted": 34, "duplicate": 1, "rejected": 6}
        assert stored(c) == rows_alone == 34 * 3
        # A helper that dies mid-load: its batches are prepared here instead, nothing lost.
        executor = adapter.helpers.ready()
        assert executor is not None
        for pid in list(executor._processes):  # the test kills the helper
            os.kill(pid, signal.SIGKILL)
        again = _answers(c, body.replace("Helper Co", "After Co"))
        assert _without_ids(again) == _without_ids(alone)
        assert stored(c) == 2 * 34 * 3
        assert adapter.helpers.ready() is not executor  # the broken pool was dropped


def test_idempotency_lookup_uses_the_tenant_key_index(client_engine: Any) -> None:
    client, engine = client_engine
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "FROM work_items JOIN jobs" in statement:
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        first = _answers(client, _companies(3))[:-1]
        # A batch of new lines is inserted without looking first.
        assert not seen and [a["status"] for a in first] == ["accepted"] * 3
        # Re-posted with one new line: the insert fails on the unique key, and
        # the batch is stored after one look-up of its keys.
        again = _answers(client, _companies(4))[:-1]
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert [a["status"] for a in again] == ["duplicate"] * 3 + ["accepted"]
    assert [a["job_id"] for a in again[:3]] == [a["job_id"] for a in first]
    assert len(seen) == 1
    statement, params = seen[0]
    with engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
    details = " | ".join(str(row[-1]) for row in plan)
    # Before: "SCAN jobs" — every batch read the whole jobs table.
    assert "SCAN" not in details, details
    assert "work_items" in details and "INDEX" in details, details


@pytest.fixture
def client_engine(tmp_path: Path, scripted: Any) -> Any:
    with client_for(tmp_path) as c:
        engine = c.app.state.runtime.engine  # type: ignore[attr-defined]
        assert engine.dialect.name == "sqlite"
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        yield c, engine


def test_result_lines_are_what_json_writes() -> None:
    job = "0192f3a4-5b6c-7d8e-9f01-23456789abcd"
    results: list[dict[str, Any]] = [
        {"line": 7, "status": "accepted", "job_id": job},
        {"line": 8, "status": "duplicate", "job_id": job},
        {"line": 9, "status": "accepted", "job_id": 'x"\n\u00e9'},  # not an id: encoded
        {"line": True, "status": "accepted", "job_id": job},
        {"line": 10, "status": 'acc"epted', "job_id": job},
        {"line": 11, "status": "accepted", "job_id": job, "failed_checks": [{"name": "é"}]},
        {"status": "accepted", "line": 12, "job_id": job},
        {"line": 13, "status": "rejected", "errors": [{"field": "", "message": "bad"}]},
    ]
    for result in results:
        assert result_line(result) == json.dumps(result, ensure_ascii=False) + "\n"
