"""Grounding inside the real pipeline: verify → one regeneration → flagged result."""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from sluicegate.app import create_app
from sluicegate.core.config import Settings
from sluicegate.core.interfaces import Generation, GenerationRequest, Zone
from sluicegate.core.pipeline import execute
from sluicegate.core.tables import AuditEvent
from tests.conftest import make_settings

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "finance" / "report.json"
GOLDEN_PROMPT = Path(__file__).resolve().parent / "golden" / "finance_prompt_inputs.json"
TEXTS: deque[str] = deque()
REQUESTS: list[GenerationRequest] = []


class TextRouter:
    """Answers each request with the next scripted narrative (the model's prose)."""

    async def generate(self, request: GenerationRequest) -> Generation:
        REQUESTS.append(request)
        return Generation(
            text=TEXTS.popleft(), backend_id="scripted", model="m", zone=Zone.ONPREM, latency_s=0.0
        )

    def cloud_eligible(self, task: str, channel: str) -> bool:
        return False

    async def health(self) -> dict[str, bool]:
        return {"scripted": True}

    async def aclose(self) -> None:
        return None


def build_text_router(settings: Settings) -> TextRouter:
    return TextRouter()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    TEXTS.clear()
    REQUESTS.clear()
    settings = make_settings(
        tmp_path, inference={"router": "tests.test_finance_pipeline:build_text_router"}
    )
    with TestClient(create_app(settings, run_relay=False)) as test_client:
        yield test_client


def run(client: TestClient) -> tuple[dict[str, Any], list[str]]:
    job_id = client.post(
        "/finance/reports",
        content=SAMPLE.read_bytes(),
        headers={"content-type": "application/json"},
    ).json()["job_id"]
    assert execute(client.app.state.runtime, job_id) == "succeeded"  # type: ignore[attr-defined]
    with Session(client.app.state.runtime.engine) as s:  # type: ignore[attr-defined]
        events = s.exec(select(AuditEvent).where(AuditEvent.job_id == job_id)).all()
        kinds = [e.type for e in sorted(events, key=lambda e: e.seq)]
    return client.get(f"/jobs/{job_id}/result").json(), kinds


def test_prompt_holds_computed_facts_only(client: TestClient) -> None:
    TEXTS.append("Revenue grew 12.5% to $1.24 billion.")
    summary, kinds = run(client)
    facts = REQUESTS[0].inputs["facts"]
    assert "[R8] Revenue change vs prior period = 12.5%" in facts
    assert "GB123456789" not in json.dumps(REQUESTS[0].inputs)  # the tax id never reaches a prompt
    assert REQUESTS[0].task == "financial_summary"
    assert summary["grounding"]["flagged"] is False and "verification_failed" not in kinds


def test_an_ungrounded_number_triggers_one_regeneration(client: TestClient) -> None:
    TEXTS.extend(["Revenue grew 14.2% in 2024.", "Revenue grew 12.5% in 2024."])
    summary, kinds = run(client)
    assert len(REQUESTS) == 2 and kinds.count("verification_failed") == 1
    assert summary["narrative"] == "Revenue grew 12.5% in 2024."
    assert summary["grounding"] == {
        "grounded": True,
        "flagged": False,
        "ungrounded": [],
        "problems": [],
        "numbers": [
            {"text": "12.5%", "sentence": 1, "grounded": True, "facts": ["R8"]},
            {"text": "2024", "sentence": 1, "grounded": True, "facts": []},
        ],
    }


def test_still_ungrounded_after_regeneration_is_flagged_never_silent(client: TestClient) -> None:
    TEXTS.extend(["Revenue grew 14.2%.", "Net income reached $130 million, margin 9.0%."])
    summary, kinds = run(client)
    assert len(REQUESTS) == 2 and kinds.count("verification_failed") == 2
    grounding = summary["grounding"]
    assert grounding["flagged"] is True and grounding["ungrounded"] == ["$130 million"]
    assert grounding["problems"] == ["ungrounded number $130 million in sentence 1"]
    assert (
        "**FLAGGED:**" in summary["markdown"] and "$130 million [UNGROUNDED]" in summary["markdown"]
    )
    assert "9.0% [R6]" in summary["markdown"]


@pytest.mark.parametrize("processes", [0, 1])
def test_a_bulk_line_runs_as_a_single_report_does(tmp_path: Path, processes: int) -> None:
    """Bulk items are serialised in a helper and only sealed by the server: the worker
    must still open them, show the model the same prompt, and the job's audit trail
    must still hold its acceptance."""
    TEXTS.clear()
    REQUESTS.clear()
    TEXTS.extend(["Revenue grew 12.5% to $1.24 billion."] * 2)
    settings = make_settings(
        tmp_path,
        inference={"router": "tests.test_finance_pipeline:build_text_router"},
        adapters={
            "finance": {
                "factory": "sluicegate.adapters.finance:FinanceAdapter",
                "options": {"bulk": {"processes": processes}},
            }
        },
    )
    with TestClient(create_app(settings, run_relay=False)) as client:
        adapter = client.app.state.runtime.adapter("finance")  # type: ignore[attr-defined]
        if processes:
            deadline = time.monotonic() + 90
            while adapter.helpers.ready() is None:
                assert time.monotonic() < deadline, "helper process did not start"
                time.sleep(0.2)
        single, _ = run(client)
        doc = json.loads(SAMPLE.read_text())
        doc["version"] = "2"  # another natural key, the same facts
        answer = client.post(
            "/finance/reports:bulk",
            content=json.dumps(doc) + "\n",
            headers={"content-type": "application/x-ndjson"},
        )
        line = json.loads(answer.text.splitlines()[0])
        assert line["status"] == "accepted"
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        assert execute(runtime, line["job_id"]) == "succeeded"
        trail = client.get(f"/jobs/{line['job_id']}/audit").json()["events"]
        bulk = client.get(f"/jobs/{line['job_id']}/result").json()
    assert REQUESTS[1].inputs == REQUESTS[0].inputs and REQUESTS[1].task == REQUESTS[0].task
    assert REQUESTS[0].inputs == json.loads(GOLDEN_PROMPT.read_text())  # as before the move
    # A bulk line's acceptance is its batch's one event, found through the job's link.
    assert [e["type"] for e in trail][:2] == ["received", "started"]
    batch = trail[0]
    assert batch["job_id"] is None and batch["data"]["validated"] == 1
    assert [j["job_id"] for j in batch["data"]["jobs"]] == [line["job_id"]]
    assert bulk["facts"] == single["facts"] and bulk["version"] == "2"


def test_a_failing_complete_item_ends_the_job_visibly(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker-side hook failing fails the job at once, naming only the error's type."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    entity = json.loads(SAMPLE.read_text())["entity"]["name"]

    def broken(item: Any) -> Any:
        raise ValueError(f"cannot read the report of {item.prompt_inputs['entity']}")

    monkeypatch.setattr(runtime.adapter("finance"), "complete_item", broken)
    job_id = client.post(
        "/finance/reports",
        content=SAMPLE.read_bytes(),
        headers={"content-type": "application/json"},
    ).json()["job_id"]
    assert execute(runtime, job_id) == "failed"
    job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "failed" and "ValueError" in job["last_error"]
    assert entity not in json.dumps(job) and REQUESTS == []
