"""`POST /hl7/v2` (ACK as the body, Content-Location of the job) and `?format=hl7`."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from hl7apy.parser import parse_message

from sluicegate.app import create_app
from sluicegate.core import pipeline
from tests.conftest import FAKE_INFERENCE, make_settings
from tests.test_hl7_writeback import ORU

ER7 = {"Content-Type": "x-application/hl7-v2+er7"}


@pytest.fixture
def client(tmp_path, scripted):
    # The embedded default config: the hl7v2 channel is on (HTTP only).
    settings = make_settings(tmp_path, inference=FAKE_INFERENCE)
    app = create_app(settings, run_relay=False)
    with TestClient(app) as http:
        yield http


def test_post_returns_the_ack_and_the_job(client) -> None:
    response = client.post("/hl7/v2", content=ORU.encode(), headers=ER7)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("x-application/hl7-v2+er7")
    ack = parse_message(response.text, find_groups=False)
    assert ack.msa.msa_1.value == "AA" and ack.msa.msa_2.value == "ORU-WB-1"
    location = response.headers["content-location"]
    job = client.get(location).json()
    assert job["status"] == "queued" and job["task"] == "radiology_report"
    again = client.post("/hl7/v2", content=ORU.encode(), headers={"Content-Type": "text/plain"})
    assert again.headers["content-location"] == location  # duplicate: same job


def test_result_as_hl7(client) -> None:
    location = client.post("/hl7/v2", content=ORU.encode(), headers=ER7).headers["content-location"]
    job_id = location.rsplit("/", 1)[1]
    runtime = client.app.state.runtime
    assert pipeline.execute(runtime, job_id) == "succeeded"
    result = client.get(f"/jobs/{job_id}/result?format=hl7")
    assert result.status_code == 200
    oru = parse_message(result.text, find_groups=False)
    assert oru.msh.msh_9.to_er7() == "ORU^R01^ORU_R01"
    assert oru.obr.obr_25.value == "P"
    assert client.get(f"/jobs/{job_id}/result?format=pdf").status_code == 406


def test_errors_are_acks_without_a_job(client) -> None:
    bad = ORU.replace("ORU^R01", "SIU^S12")
    response = client.post("/hl7/v2", content=bad.encode(), headers=ER7)
    assert response.status_code == 200 and "content-location" not in response.headers
    assert "MSA|AR|ORU-WB-1" in response.text and "|200^" in response.text
    wrong = client.post("/hl7/v2", content=b"{}", headers={"Content-Type": "application/json"})
    assert wrong.status_code == 415
