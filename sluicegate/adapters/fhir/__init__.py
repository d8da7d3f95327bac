"""FHIR R4 domain adapter: radiology Bundles in, draft DiagnosticReports out.

The HTTP side lives in :mod:`sluicegate.adapters.fhir.routes`; this class is the
protocol-free part the registry builds from config.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter

from sluicegate.adapters.fhir.parse import parse_bundle
from sluicegate.adapters.fhir.publish import publications
from sluicegate.adapters.fhir.render import render_report
from sluicegate.adapters.fhir.writeback import WriteBackOptions, write_back
from sluicegate.core.interfaces import (
    Generation,
    Publication,
    Rendered,
    WorkItem,
    WriteBackPolicy,
)

__all__ = ["FhirAdapter"]


class FhirAdapter:
    """Satisfies :class:`sluicegate.core.interfaces.Adapter` for FHIR R4 JSON."""

    name = "fhir"

    def __init__(self, options: Mapping[str, object] | None = None) -> None:
        # Per-channel settings from config; only write-back has any today.
        self.options: dict[str, object] = dict(options or {})
        raw = self.options.get("write_back")
        self.write_back_options = WriteBackOptions.model_validate(raw) if raw else None

    def parse(
        self, body: bytes, content_type: str | None, *, tenant: str, channel: str
    ) -> list[WorkItem]:
        """Validate a Bundle and extract its radiology work (raises InvalidInput)."""
        return parse_bundle(body, content_type, tenant=tenant, channel=channel)

    def render(self, item: WorkItem, generation: Generation, job_id: str) -> Rendered:
        """Render a finished generation as an R4 collection Bundle."""
        return render_report(item, generation, job_id)

    def publications(self, item: WorkItem, rendered: Rendered, job_id: str) -> list[Publication]:
        """The report and Provenance, readable and searchable once the job succeeded."""
        return publications(item, rendered)

    def write_back_policy(self) -> WriteBackPolicy | None:
        """Whether (and how persistently) results go back to the hospital's server."""
        return self.write_back_options.policy() if self.write_back_options else None

    def write_back(self, body: bytes, media_type: str, item: WorkItem, job_id: str) -> str | None:
        """POST the result Bundle's report to the hospital's FHIR server (raises DeliveryFailed)."""
        if self.write_back_options is None:
            raise LookupError("write-back is not configured for this channel")
        return write_back(self.write_back_options, body)

    def api_router(self, name: str, tenant: str) -> APIRouter:
        """The FHIR REST interactions, mounted by the app factory."""
        from sluicegate.adapters.fhir.read import build_read_router
        from sluicegate.adapters.fhir.routes import build_router

        router = APIRouter()
        router.include_router(build_router(self, name, tenant))
        router.include_router(build_read_router(tenant))  # after: its GET /{type} is greedy
        return router
