"""Write-back: the draft ORU^R01 to the hospital's MLLP receiver, and its ACK.

AA/CA: delivered. AE/AR (and CE/CR): the receiver looked at it and said no;
recorded as a delivery failure and not retried blindly. No connection, a
timeout, a dropped connection or an unreadable ACK: retried with backoff.
"""

from __future__ import annotations

import socket
import ssl

from sluicegate.adapters.hl7v2.er7 import decode, split_lines
from sluicegate.adapters.hl7v2.mllp import END, START, frame
from sluicegate.adapters.hl7v2.options import WriteBackMllp
from sluicegate.core.interfaces import DeliveryFailed


def _connect(options: WriteBackMllp) -> socket.socket:
    sock = socket.create_connection((options.host, options.port), timeout=options.timeout_s)
    if not options.tls:
        return sock
    context = ssl.create_default_context(cafile=options.tls_ca)
    return context.wrap_socket(sock, server_hostname=options.host)


def exchange(options: WriteBackMllp, message: bytes) -> str:
    """Send one framed message and return the ACK text (raises OSError on transport trouble)."""
    with _connect(options) as sock:
        sock.settimeout(options.timeout_s)
        sock.sendall(frame(message))
        buffer = bytearray()
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("receiver closed the connection before acknowledging")
            buffer += chunk
            end = buffer.find(END)
            if end != -1:
                start = buffer.find(START)
                return decode(bytes(buffer[start + 1 if start != -1 else 0 : end]))


def _field(line: str, sep: str, n: int) -> str:
    parts = line.split(sep)
    return parts[n] if n < len(parts) else ""


def send_oru(options: WriteBackMllp, message: bytes, control_id: str) -> str:
    """Deliver; returns where it went (``mllp://host:port#MSH-10``) or raises DeliveryFailed."""
    try:
        ack = exchange(options, message)
    except (OSError, TimeoutError) as exc:
        raise DeliveryFailed(
            f"MLLP receiver unreachable: {type(exc).__name__}", retryable=True
        ) from None
    lines = split_lines(ack)
    if not lines or not lines[0].startswith("MSH") or len(lines[0]) < 4:
        raise DeliveryFailed("receiver's answer is not an HL7 ACK", retryable=True)
    sep = lines[0][3]
    msa = next((line for line in lines if line.startswith("MSA")), None)
    if msa is None:
        raise DeliveryFailed("receiver's ACK has no MSA segment", retryable=True)
    code, echoed = _field(msa, sep, 1), _field(msa, sep, 2)
    if echoed != control_id:
        raise DeliveryFailed("receiver's ACK answers another message", retryable=True)
    if code in ("AA", "CA"):
        return f"mllp://{options.host}:{options.port}#{control_id}"
    err = next((line for line in lines if line.startswith("ERR")), "")
    condition = _field(err, sep, 3).split(lines[0][4:5] or "^")[0] if err else ""
    detail = f" (HL7 0357 code {condition})" if condition.isdigit() else ""
    raise DeliveryFailed(f"receiver answered {code}{detail}", retryable=False)
