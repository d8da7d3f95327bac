"""HL7 v2 domain adapter: MLLP and HTTP in, ACKs, draft ORU^R01 out.

Message handling lives in :mod:`.intake` (check, extract, store, ACK); the
listener in :mod:`.mllp` / :mod:`.listener`; write-back in :mod:`.outbound`.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter

from sluicegate.adapters.hl7v2.intake import Intake
from sluicegate.adapters.hl7v2.options import Hl7v2Options
from sluicegate.adapters.hl7v2.outbound import send_oru
from sluicegate.adapters.hl7v2.render import MEDIA_TYPE, control_id, render_oru
from sluicegate.core.interfaces import Generation, Rendered, WorkItem, WriteBackPolicy
from sluicegate.core.runtime import Runtime

__all__ = ["Hl7v2Adapter"]


class Hl7v2Adapter:
    """Satisfies :class:`sluicegate.core.interfaces.Adapter` for HL7 v2.x ER7."""

    name = "hl7v2"

    def __init__(self, options: Mapping[str, object] | None = None) -> None:
        self.options = Hl7v2Options.model_validate(dict(options or {}))
        self._intakes: dict[int, Intake] = {}

    @property
    def ours(self) -> tuple[str, str]:
        return (self.options.application, self.options.facility)

    def intake(self, runtime: Runtime, channel: str, tenant: str) -> Intake:
        """The accept path for this runtime (one per API process)."""
        key = id(runtime)
        if key not in self._intakes:
            self._intakes[key] = Intake(runtime, channel, tenant, self.options)
        return self._intakes[key]

    def render(self, item: WorkItem, generation: Generation, job_id: str) -> Rendered:
        """The draft as a preliminary ORU^R01 addressed to the original sender."""
        return render_oru(item, generation, job_id, self.ours)

    def render_as(self, fmt: str, body: bytes, media_type: str) -> Rendered | None:
        """``GET /jobs/{id}/result?format=hl7``: the stored result already is ER7."""
        if fmt.lower() in ("hl7", "hl7v2", "er7", MEDIA_TYPE) and media_type == MEDIA_TYPE:
            return Rendered(body, MEDIA_TYPE)
        return None

    def write_back_policy(self) -> WriteBackPolicy | None:
        wb = self.options.write_back
        return wb.policy() if wb else None

    def write_back(self, body: bytes, media_type: str, item: WorkItem, job_id: str) -> str | None:
        """Send the ORU^R01 over MLLP until ACKed AA (raises DeliveryFailed)."""
        if self.options.write_back is None:
            raise LookupError("write-back is not configured for this channel")
        return send_oru(self.options.write_back, body, control_id(job_id))

    def api_router(self, name: str, tenant: str) -> APIRouter:
        from sluicegate.adapters.hl7v2.routes import build_router

        return build_router(self, name, tenant)
