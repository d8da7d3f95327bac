"""Optional second opinion before the ACK: hl7apy's full parse of the message.

Off by default (``options.hl7apy_check``): hl7apy builds the whole message
tree for its version and is slow (10 to 150 messages/s per core here,
depending on size). ``tolerant`` parses the normalised message with message
groups (it read every corpus message this adapter accepts); ``strict`` adds
hl7apy's strict validation (lengths, cardinalities, data types), which
refuses nearly every real-world message in the corpus, so only a site whose
senders are known to be conformant should use it. It runs in a process pool,
so the listener stays responsive; a failure is answered AE before anything
is stored.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ProcessPoolExecutor

from sluicegate.adapters.hl7v2.parse import SEGMENT_SEQUENCE, Hl7Error, Message


def hl7apy_problem(text: str, strict: bool = False) -> str | None:
    """None when hl7apy parses ``text``; else the kind of failure (no values)."""
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.parser import parse_message

    level = VALIDATION_LEVEL.STRICT if strict else VALIDATION_LEVEL.TOLERANT
    try:
        parse_message(text, validation_level=level, find_groups=True)
    except Exception as exc:  # hl7apy raises many types; only the kind is reported
        return type(exc).__name__
    return None


class StructureCheck:
    """A lazily started process pool running :func:`hl7apy_problem`."""

    def __init__(self, strict: bool, workers: int | None = None) -> None:
        self.strict = strict
        self._workers = workers or max(1, (os.cpu_count() or 2) - 1)
        self._pool: ProcessPoolExecutor | None = None

    async def check(self, message: Message) -> None:
        """Raise AE when hl7apy cannot read ``message``."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self._workers)
        loop = asyncio.get_running_loop()
        problem = await loop.run_in_executor(self._pool, hl7apy_problem, message.text, self.strict)
        if problem is not None:
            raise Hl7Error(
                "AE",
                SEGMENT_SEQUENCE,
                f"message structure rejected by hl7apy ({problem})",
                None,
                message.header,
            )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
