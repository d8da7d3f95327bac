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
from sluicegate.core.interfaces import Generation, Publication, Rendered, WorkItem

__all__ = ["FhirAdapter"]


class FhirAdapter:
    """Satisfies :class:`sluicegate.core.interfaces.Adapter` for FHIR R4 JSON."""

    name = "fhir"

    def __init__(self, options: Mapping[str, object] | None = None) -> None:
        # Per-channel settings from config; parsing and rendering need none today.
        self.options: dict[str, object] = dict(options or {})

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

    def api_router(self, name: str, tenant: str) -> APIRouter:
        """The FHIR REST interactions, mounted by the app factory."""
        from sluicegate.adapters.fhir.read import build_read_router
        from sluicegate.adapters.fhir.routes import build_router

        router = APIRouter()
        router.include_router(build_router(self, name, tenant))
        router.include_router(build_read_router(tenant))  # after: its GET /{type} is greedy
        return router
