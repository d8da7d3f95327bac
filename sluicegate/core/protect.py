"""Protect step: decide what text may leave the building, and bring identities back.

Between classification and inference the pipeline asks one question: may this
job's text go to a cloud backend at all (the router's policy for its task and
channel)? Only then is it de-identified, scanned again by the independent
guard, and issued a :class:`~sluicegate.core.interfaces.Clearance` for exactly
the text that passed. Anything else -- no cloud route, a guard finding, or an
error anywhere in the privacy engine -- keeps the original text and sends the
work on-prem: the step fails closed.

The pseudonym vault is sealed and stored before the de-identified text is
handed to the router, so the draft can be re-identified on-prem even if a
later attempt or another worker finishes the job.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from sqlmodel import Session

from sluicegate.core import audit, metrics
from sluicegate.core.db import transaction
from sluicegate.core.interfaces import (
    Clearance,
    Generation,
    GenerationRequest,
    Sensitivity,
    WorkItem,
)
from sluicegate.core.runtime import Runtime
from sluicegate.core.tables import VaultRow

if TYPE_CHECKING:
    from sluicegate.core.privacy.vault import Vault

log = structlog.get_logger("sluicegate.protect")


@dataclass(frozen=True)
class Prepared:
    """The request to route, and the vault when its inputs were de-identified."""

    request: GenerationRequest
    vault: Vault | None = None


def vault_aad(job_id: str) -> bytes:
    return f"vaults:{job_id}".encode()


def prepare(
    runtime: Runtime, job_id: str, tenant: str, item: WorkItem, sensitivity: Sensitivity
) -> Prepared:
    """The generation request for this job: cleared de-identified text, or the original."""
    original = GenerationRequest(
        job_id=job_id,
        task=item.task,
        sensitivity=sensitivity,
        inputs=dict(item.prompt_inputs),
        channel=item.channel,
    )
    if not runtime.router().cloud_eligible(item.task, item.channel):
        return Prepared(original)
    try:
        engine = runtime.privacy()
        deidentified = engine.deidentify(item)
        findings = engine.guard(item, deidentified.inputs)
    except Exception as exc:  # fail closed: an engine error keeps the work on-prem
        log.warning("privacy.error", job_id=job_id, error=type(exc).__name__)
        _record(runtime, tenant, "privacy_error", job_id, error=type(exc).__name__)
        return Prepared(original)
    counts = {kind: n for kind, n in sorted(deidentified.counts.items()) if n}
    if findings:
        kinds = sorted(set(findings))
        log.warning("privacy.guard_blocked", job_id=job_id, kinds=kinds)
        for kind in kinds:
            metrics.guard_blocked(kind)
        _record(runtime, tenant, "deidentified", job_id, replaced=counts)
        _record(runtime, tenant, "guard_blocked", job_id, kinds=kinds, action="onprem")
        return Prepared(original)
    with transaction(runtime.engine) as session:
        audit.record(session, tenant, "deidentified", job_id, replaced=counts)
        _store_vault(session, runtime, job_id, tenant, deidentified.vault)
    cleared = GenerationRequest(
        job_id=job_id,
        task=item.task,
        sensitivity=Sensitivity.DEIDENTIFIED,
        inputs=dict(deidentified.inputs),
        channel=item.channel,
        clearance=Clearance.for_inputs(deidentified.inputs),
    )
    return Prepared(cleared, deidentified.vault)


def restore(
    runtime: Runtime, job_id: str, tenant: str, generation: Generation, vault: Vault | None
) -> Generation:
    """Put the real identities back into a draft made from de-identified text."""
    if vault is None:
        return generation
    back = runtime.privacy().reidentify(generation.text, vault)
    _record(
        runtime, tenant, "reidentified", job_id, restored=back.restored, unresolved=back.unresolved
    )
    return dataclasses.replace(generation, text=back.text)


def _store_vault(
    session: Session, runtime: Runtime, job_id: str, tenant: str, vault: Vault
) -> None:
    sealed = runtime.sealer.seal(vault.to_bytes(), vault_aad(job_id))
    row = session.get(VaultRow, job_id)
    if row is None:
        session.add(VaultRow(job_id=job_id, tenant=tenant, sealed=sealed))
    else:  # a retry de-identified again: keep the mapping the new text uses
        row.sealed = sealed


def _record(runtime: Runtime, tenant: str, kind: str, job_id: str, **data: object) -> None:
    with transaction(runtime.engine) as session:
        audit.record(session, tenant, kind, job_id, **data)
