"""`sluicegate mllp serve`: the MLLP listener as its own process.

It builds the same runtime as the API (database, sealer, adapters) and
commits through core's ``accept``; the relay of `sluicegate serve` (or
`sluicegate relay`) publishes the new jobs from the outbox.
"""

from __future__ import annotations

import asyncio
import signal

import structlog

from sluicegate.adapters.hl7v2.ack import ack_bytes, error_ack
from sluicegate.adapters.hl7v2.er7 import decode
from sluicegate.adapters.hl7v2.intake import Intake
from sluicegate.adapters.hl7v2.mllp import MllpServer
from sluicegate.adapters.hl7v2.options import Hl7v2Options
from sluicegate.adapters.hl7v2.parse import INTERNAL_ERROR, Hl7Error, read_header
from sluicegate.core.config import Settings
from sluicegate.core.runtime import Runtime, build_runtime

log = structlog.get_logger("sluicegate.mllp")


def hl7_channels(settings: Settings) -> list[str]:
    """Enabled channels served by this adapter whose MLLP listener is on."""
    names = []
    for name, cfg in settings.adapters.items():
        ours = cfg.enabled and cfg.factory.startswith("sluicegate.adapters.hl7v2")
        if ours and Hl7v2Options.model_validate(cfg.options).mllp.enabled:
            names.append(name)
    return names


def too_large_ack(ours: tuple[str, str]) -> callable:  # type: ignore[valid-type]
    def answer(head: bytes) -> bytes:
        first_line = decode(head).replace("\n", "\r").split("\r", 1)[0]
        error = Hl7Error("AR", INTERNAL_ERROR, "message exceeds the size limit")
        try:
            error.header = read_header(first_line)
        except Hl7Error as bad:
            error.header = bad.header
        return ack_bytes(error_ack(error, ours), error.header)

    return answer


def build_server(runtime: Runtime, channel: str) -> tuple[MllpServer, Intake]:
    cfg = runtime.settings.adapters[channel]
    options = Hl7v2Options.model_validate(cfg.options)
    intake = Intake(runtime, channel, cfg.tenant, options)

    async def handle(message: bytes, sender: str = "") -> bytes:
        return (await intake.handle(message, sender)).ack

    server = MllpServer(options.mllp, handle, too_large_ack(intake.ours))
    return server, intake


async def serve(settings: Settings, channel: str, port: int | None = None) -> None:
    runtime = build_runtime(settings)
    server, intake = build_server(runtime, channel)
    if port is not None:
        server.options = server.options.model_copy(update={"port": port})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    print(f"mllp listening on {server.options.host}:{server.port} channel={channel}", flush=True)
    try:
        await stop.wait()
    finally:
        log.info("mllp.stopping")
        await server.stop()
        await intake.aclose()
        await runtime.aclose()


def run(settings: Settings, channel: str | None = None, port: int | None = None) -> None:
    channels = [channel] if channel else hl7_channels(settings)
    if not channels:
        raise SystemExit("no enabled HL7 v2 channel with an MLLP listener in config")
    cfg = settings.adapters.get(channels[0])
    if cfg is None or not cfg.enabled or not cfg.factory.startswith("sluicegate.adapters.hl7v2"):
        raise SystemExit(f"{channels[0]!r} is not an enabled HL7 v2 channel in config")
    asyncio.run(serve(settings, channels[0], port))
