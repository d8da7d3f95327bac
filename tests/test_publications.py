"""Published resources: sealed bodies, hashed search values, read and search."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from sluicegate.core import publications
from sluicegate.core.crypto import Sealer
from sluicegate.core.ingest import accept
from sluicegate.core.interfaces import Publication
from sluicegate.core.tables import PublishedResource, SearchToken, utcnow
from tests.test_pipeline import radiology_item

SEALER = Sealer({"k1": bytes(32)}, "k1")
MRN = "urn:oid:1.2.36.146.595.217.0.1|MRN-0048213"


@pytest.fixture
def engine_and_job(migrated_engine):
    [job] = accept(migrated_engine, SEALER, "fhir", [radiology_item()], max_attempts=1, lease_s=60)
    return migrated_engine, job.job_id


def publish(engine, job_id: str, rid: str, mrn: str = MRN) -> None:
    pub = Publication(
        "DiagnosticReport",
        rid,
        f'{{"id": "{rid}"}}'.encode(),
        {"subject:identifier": [mrn, mrn.split("|")[1]], "based-on": ["ServiceRequest/sr1"]},
    )
    with Session(engine) as session:
        publications.store(session, SEALER, "default", job_id, [pub])
        session.commit()


def test_read_returns_the_sealed_body(engine_and_job) -> None:
    engine, job_id = engine_and_job
    publish(engine, job_id, "dr1")
    found = publications.read(engine, SEALER, "default", "DiagnosticReport", "dr1")
    assert found is not None and found.body == b'{"id": "dr1"}' and found.job_id == job_id
    assert publications.read(engine, SEALER, "other-tenant", "DiagnosticReport", "dr1") is None
    assert publications.read(engine, SEALER, "default", "Provenance", "dr1") is None


def test_search_values_are_stored_only_as_keyed_hashes(engine_and_job) -> None:
    engine, job_id = engine_and_job
    publish(engine, job_id, "dr1")
    with Session(engine) as session:
        tokens = [t.token for t in session.exec(select(SearchToken)).all()]
        bodies = [r.sealed_body for r in session.exec(select(PublishedResource)).all()]
    assert tokens and all("MRN" not in t and len(t) == 64 for t in tokens)
    assert all(b"dr1" not in b for b in bodies)


def test_search_by_identifier_reference_and_last_updated(engine_and_job) -> None:
    engine, job_id = engine_and_job
    publish(engine, job_id, "dr1")
    publish(engine, job_id, "dr2", mrn="urn:oid:1.2.3|OTHER-1")

    def ids(**kw) -> set[str]:
        return {
            f.resource_id
            for f in publications.search(engine, SEALER, "default", "DiagnosticReport", **kw)
        }

    assert ids(equals={"subject:identifier": [MRN]}) == {"dr1"}
    assert ids(equals={"subject:identifier": ["MRN-0048213"]}) == {"dr1"}
    assert ids(equals={"subject:identifier": ["nobody"]}) == set()
    assert ids(equals={"based-on": ["ServiceRequest/sr1"]}) == {"dr1", "dr2"}
    assert ids(
        equals={"based-on": ["ServiceRequest/sr1"], "subject:identifier": ["urn:oid:1.2.3|OTHER-1"]}
    ) == {"dr2"}
    assert ids(updated_after=utcnow() - timedelta(minutes=1)) == {"dr1", "dr2"}
    assert ids(updated_after=utcnow() + timedelta(minutes=1)) == set()
    assert ids(updated_before=utcnow() - timedelta(minutes=1)) == set()


def test_tokens_survive_key_rotation(engine_and_job) -> None:
    engine, job_id = engine_and_job
    publish(engine, job_id, "dr1")
    rotated = Sealer({"k1": bytes(32), "k2": bytes(range(32))}, "k2")
    found = publications.search(
        engine, rotated, "default", "DiagnosticReport", equals={"subject:identifier": [MRN]}
    )
    assert [f.resource_id for f in found] == ["dr1"]
