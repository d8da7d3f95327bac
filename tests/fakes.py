"""In-test router for pipeline state-machine tests.

The real Triton path is exercised in test_local_triton / test_brokers /
test_e2e; this fake exists for faults and sequencing that must be exact.
It is plugged in through config (``inference.router``), the same way a
real router is.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from sluicegate.core.config import Settings
from sluicegate.core.interfaces import (
    BackendUnavailable,
    Generation,
    GenerationFailed,
    GenerationRequest,
    Zone,
)

# Scripted outcomes, consumed in order: "ok", "unavailable", "failed".
SCRIPT: deque[str] = deque()
RECEIVED: list[GenerationRequest] = []


class ScriptedRouter:
    async def generate(self, request: GenerationRequest) -> Generation:
        RECEIVED.append(request)
        step = SCRIPT.popleft() if SCRIPT else "ok"
        if step == "unavailable":
            raise BackendUnavailable("backend 'fake' at fake://x unreachable")
        if step == "failed":
            raise GenerationFailed("backend 'fake' rejected the request (400)")
        return Generation(
            text="IMPRESSION: No acute findings.",
            backend_id="fake",
            model="fake-1",
            zone=Zone.ONPREM,
            latency_s=0.01,
            finish_reason="stop",
            prompt_tokens=10,
            completion_tokens=5,
        )

    def cloud_eligible(self, task: str, channel: str) -> bool:
        return False

    async def health(self) -> dict[str, bool]:
        return {"fake": True}

    async def aclose(self) -> None:
        return None


def build_scripted_router(settings: Settings) -> ScriptedRouter:
    return ScriptedRouter()


class RecordingBackend:
    """A backend that records every request it is sent, by backend id.

    Built from config like any backend (``factory: tests.fakes:RecordingBackend``),
    so the real router and policy decide what reaches it. Its answer echoes
    the findings it received: surrogates sent to it come back in the draft,
    exactly what re-identification must undo.
    """

    sent: dict[str, list[GenerationRequest]] = {}

    def __init__(self, backend_id: str, cfg: Any) -> None:
        self.id = backend_id
        self.zone = Zone(cfg.zone)
        self.model = cfg.model
        RecordingBackend.sent[backend_id] = []

    async def generate(self, request: GenerationRequest) -> Generation:
        RecordingBackend.sent[self.id].append(request)
        findings = request.inputs.get("findings", "")
        return Generation(
            text=f"FINDINGS: {findings}\nIMPRESSION: 1. As described.",
            backend_id=self.id,
            model=self.model,
            zone=self.zone,
            latency_s=0.001,
            finish_reason="stop",
        )

    async def health(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None
