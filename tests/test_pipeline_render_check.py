"""The worker's per-job check of a rendered FHIR Bundle, after the first full validation.

A process validates its first rendered Bundle against the R4B models and then
only checks each one for what can still vary per job. Both must refuse an
element FHIR forbids (here an empty string), and
neither may refuse a good Bundle.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle

from sluicegate.adapters.fhir import FhirAdapter, render
from sluicegate.core.interfaces import Generation, WorkItem, Zone

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "fhir" / "radiology-bundle.json"
GOOD = Generation(
    text="IMPRESSION: 7 mm nodule.",
    backend_id="triton-a",
    model="rad-llm",
    zone=Zone.ONPREM,
    latency_s=0.1,
)


@pytest.fixture
def item() -> WorkItem:
    [parsed] = FhirAdapter().parse(
        SAMPLE.read_bytes(), "application/fhir+json", tenant="t1", channel="fhir"
    )
    return parsed


def broken(item: WorkItem) -> WorkItem:
    """The same item whose report code has an empty text (FHIR forbids "")."""
    return dataclasses.replace(item, payload={**item.payload, "code": {"text": ""}})


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "_models_checked", [])


def test_first_render_is_validated_in_full_and_refuses_an_empty_string(
    item: WorkItem, fresh_process: None
) -> None:
    with pytest.raises(RuntimeError, match="not valid FHIR"):
        render.render_report(broken(item), GOOD, "job-1")
    assert render._models_checked == []  # a failed first check does not count


def test_later_renders_are_checked_cheaply_and_refuse_the_same(
    item: WorkItem, fresh_process: None
) -> None:
    first = render.render_report(item, GOOD, "job-1")
    assert render._models_checked == [True]
    Bundle.model_validate(json.loads(first.body))
    with pytest.raises(RuntimeError, match=r"Bundle\.entry\[0\]\.resource\.code\.text is empty"):
        render.render_report(broken(item), GOOD, "job-2")
    later = render.render_report(item, GOOD, "job-3")  # a good one still passes
    Bundle.model_validate(json.loads(later.body))


def test_cheap_check_names_empty_objects_lists_and_nulls() -> None:
    assert render._empty_element({"a": [{"b": "x"}]}, "R") is None
    assert render._empty_element({"a": []}, "R") == "R.a"
    assert render._empty_element({"a": [{}]}, "R") == "R.a[0]"
    assert render._empty_element({"a": [{"b": None}]}, "R") == "R.a[0].b"
    assert render._empty_element({"a": 0, "b": False}, "R") is None  # numbers, booleans
