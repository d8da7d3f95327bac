"""Log masking: identifiers never reach the log stream, ids and counts do."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from sluicegate.core.config import LoggingConfig
from sluicegate.core.logging import configure_logging
from sluicegate.core.security.masking import mask_text

JOB = "4aafa416-6f69-415c-8a7d-79fc24f1eec2"


@pytest.mark.parametrize(
    "text",
    [
        "mail jane.doe@example.org now",
        "call (555) 123-4567",
        "call 555-123-4567",
        "call +44 20 7946 0958",
        "ssn 123-45-6789",
        "MRN 00123456789",
        "account 12345678",
    ],
)
def test_identifiers_are_masked(text: str) -> None:
    masked = mask_text(text)
    assert "***" in masked
    assert not any(ch.isdigit() for ch in masked.split("***", 1)[1][:4])
    assert "@example.org" not in masked


def test_ids_dates_and_counts_survive() -> None:
    text = f"job {JOB} at 2026-11-28T14:26:35Z took 1234 ms, 3 entries"
    assert mask_text(text) == text


@pytest.fixture
def captured():
    stream = io.StringIO()
    configure_logging(LoggingConfig(format="json", sensitive_keys=["password", "mrn"]))
    root = logging.getLogger()
    root.handlers[0].stream = stream  # type: ignore[attr-defined]
    yield stream
    configure_logging(LoggingConfig())


def test_log_events_are_masked_end_to_end(captured) -> None:
    log = structlog.get_logger("test")
    log.warning("oops", job_id=JOB, detail="patient ssn 123-45-6789", password="hunter2", mrn="X9")
    logging.getLogger("some.library").error("sent to jane@example.org")
    try:
        raise ValueError("bad value 5551234567")
    except ValueError:
        log.exception("crashed")
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    text = captured.getvalue()
    for secret in ("123-45-6789", "hunter2", "X9", "jane@example.org", "5551234567"):
        assert secret not in text
    assert lines[0]["job_id"] == JOB and lines[0]["password"] == "***"
    assert "***" in lines[2]["exception"]
