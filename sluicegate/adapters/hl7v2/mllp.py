"""MLLP framing and the asyncio listener.

A frame is ``<VT> message <FS><CR>``. Bytes outside a frame (line noise,
a client's garbage) are dropped; a frame may arrive split over many reads,
and one read may hold many frames. A frame larger than ``max_frame_bytes``
is answered with AR and the connection closed (it cannot be resynchronised
safely). Idle connections are closed after ``idle_timeout_s``; on shutdown
the listener stops accepting, lets each connection finish the message it is
handling (up to ``shutdown_grace_s``) and then closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
from collections.abc import Awaitable, Callable

import structlog

from sluicegate.adapters.hl7v2.options import MllpOptions

log = structlog.get_logger("sluicegate.mllp")

START, END = b"\x0b", b"\x1c\x0d"

Handler = Callable[[bytes, str], Awaitable[bytes]]


def frame(message: bytes) -> bytes:
    return START + message + END


class FrameTooLarge(Exception):
    def __init__(self, head: bytes) -> None:
        super().__init__("MLLP frame exceeds the configured limit")
        self.head = head


class Deframer:
    """Incremental MLLP decoder: feed bytes, get complete messages."""

    def __init__(self, max_frame_bytes: int) -> None:
        self.max = max_frame_bytes
        self.buffer = bytearray()
        self.dropped = 0

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        out: list[bytes] = []
        while True:
            start = self.buffer.find(START)
            if start == -1:
                self.dropped += len(self.buffer)
                self.buffer.clear()
                return out
            if start:
                self.dropped += start
                del self.buffer[:start]
            end = self.buffer.find(END, 1)
            if end == -1:
                if len(self.buffer) > self.max:
                    head = bytes(self.buffer[1:4096])
                    self.buffer.clear()
                    raise FrameTooLarge(head)
                return out
            message = bytes(self.buffer[1:end])
            del self.buffer[: end + len(END)]
            if len(message) > self.max:
                raise FrameTooLarge(message[:4096])
            # A VT inside a frame means the previous frame was cut off: keep the last start.
            inner = message.rfind(START)
            if inner != -1:
                self.dropped += inner + 1
                message = message[inner + 1 :]
            out.append(message)


def server_ssl(options: MllpOptions) -> ssl.SSLContext | None:
    if not options.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if options.tls_min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    )
    context.load_cert_chain(options.tls_cert, options.tls_key)
    if options.tls_client_ca:
        context.load_verify_locations(options.tls_client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def sender_refused(options: MllpOptions, writer: asyncio.StreamWriter) -> str | None:
    """Why this connection's sender is not allowed (source network, certificate), or None."""
    if options.allow_from:
        peer = writer.get_extra_info("peername")
        try:
            address = ipaddress.ip_address(peer[0]) if peer else None
        except ValueError:
            address = None
        if address is None or not any(address in net for net in options.allow_from):
            return "source address not in mllp.allow_from"
    if options.client_cert_subjects:
        cert = writer.get_extra_info("peercert") or {}
        names = {v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"}
        if not names & set(options.client_cert_subjects):
            return "client certificate subject not in mllp.client_cert_subjects"
    return None


def sender_name(writer: asyncio.StreamWriter) -> str:
    """``mllp:<peer address>`` plus ``cn=<subject>`` of a client certificate, for the audit."""
    peer = writer.get_extra_info("peername")
    name = f"mllp:{peer[0]}" if peer else "mllp:unknown"
    cert = writer.get_extra_info("peercert") or {}
    names = [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
    return f"{name};cn={names[0]}" if names else name


class MllpServer:
    """The listener: one task per connection, messages handled in arrival order."""

    def __init__(
        self,
        options: MllpOptions,
        handle: Handler,
        too_large: Callable[[bytes], bytes],
    ) -> None:
        self.options = options
        self._handle = handle
        self._too_large = too_large
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], bool] = {}  # task -> busy
        self._closing = False
        self._slots = asyncio.Semaphore(options.max_connections)

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._client,
            self.options.host,
            self.options.port,
            ssl=server_ssl(self.options),
            limit=1 << 20,
        )
        log.info("mllp.listening", host=self.options.host, port=self.port)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._closing or self._slots.locked():
            writer.close()
            return
        refused = sender_refused(self.options, writer)
        if refused is not None:
            log.warning("mllp.sender_refused", reason=refused)  # no PHI: the peer said nothing
            writer.close()
            return
        async with self._slots:
            self._connections[task] = False
            try:
                await self._serve(reader, writer, task)
            except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
                pass  # the peer went away; nothing was acknowledged that is not stored
            except asyncio.CancelledError:
                pass
            finally:
                self._connections.pop(task, None)
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, task: asyncio.Task[None]
    ) -> None:
        deframer = Deframer(self.options.max_frame_bytes)
        sender = sender_name(writer)
        while not self._closing:
            try:
                data = await asyncio.wait_for(reader.read(65536), self.options.idle_timeout_s)
            except TimeoutError:
                log.info("mllp.idle_timeout")
                return
            if not data:
                return
            try:
                messages = deframer.feed(data)
            except FrameTooLarge as exc:
                writer.write(frame(self._too_large(exc.head)))
                await writer.drain()
                return
            for message in messages:
                self._connections[task] = True
                try:
                    reply = await self._handle(message, sender)
                    writer.write(frame(reply))
                    await writer.drain()
                finally:
                    self._connections[task] = False

    async def stop(self) -> None:
        """Stop accepting; finish in-flight messages (up to the grace period); close."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for task, busy in list(self._connections.items()):
            if not busy:
                task.cancel()
        pending = list(self._connections)
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.options.shutdown_grace_s)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
