"""The scale-out benchmark's instant model: the test suite's scripted router, minus
its request log.

``tests.fakes`` keeps every request it is sent, so tests can read them back.
Over a 10-minute soak that log alone grew each worker process by ~2 KB per
job (tracemalloc: the retained requests and the work-item strings they hold),
which is most of the RSS growth the soak used to report. Here the log is
emptied after each call; everything else is the same fake.
"""

from __future__ import annotations

from sluicegate.core.config import Settings
from sluicegate.core.interfaces import Generation, GenerationRequest
from tests import fakes


class InstantRouter(fakes.ScriptedRouter):
    async def generate(self, request: GenerationRequest) -> Generation:
        try:
            return await super().generate(request)
        finally:
            fakes.RECEIVED.clear()


def build_instant_router(settings: Settings) -> InstantRouter:
    return InstantRouter()
