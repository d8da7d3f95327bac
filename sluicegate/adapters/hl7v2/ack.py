"""Original-mode acknowledgements (ACK) in the inbound message's own idiom.

The ACK swaps sending and receiving application/facility, echoes MSH-10 in
MSA-2, answers in the inbound version and encoding characters and has its own
control id. An error ACK carries an ERR segment: location, table 0357 code and
a short text that names positions and problems, never values.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

from sluicegate.adapters.hl7v2.er7 import DEFAULT_ENCODING, escape
from sluicegate.adapters.hl7v2.parse import Header, Hl7Error, Location, code_text

_V25_ERR = ("2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2")


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S+0000")


def new_control_id() -> str:
    return uuid.uuid4().hex[:20].upper()


def _err(header: Header, error: Hl7Error) -> str:
    enc = header.encoding
    f, c, s = enc.field, enc.component, enc.subcomponent
    loc: Location | None = error.location
    text = escape(error.text, enc)
    if header.version in _V25_ERR:
        erl = ""
        if loc is not None:
            parts = [
                loc.segment,
                str(loc.sequence),
                str(loc.field or ""),
                "",
                str(loc.component or ""),
            ]
            erl = c.join(parts).rstrip(c)
        severity = "E"
        code = c.join([error.code, code_text(error.code), "HL70357"])
        return f.join(["ERR", "", erl, code, severity, "", "", "", text])
    # 2.3/2.4: ERR-1 is an ELD: segment^sequence^field^code (code as CE in subcomponents)
    eld = c.join(
        [
            loc.segment if loc else "",
            str(loc.sequence) if loc else "",
            str(loc.field or "") if loc else "",
            s.join([error.code, escape(error.text, enc), "HL70357"]),
        ]
    )
    return f.join(["ERR", eld])


def build_ack(header: Header, ack_code: str, error: Hl7Error | None = None) -> str:
    """The ACK for ``header`` (``ack_code`` AA, AE or AR), segments joined by CR."""
    enc = header.encoding
    f = enc.field
    ack_type = enc.component.join(["ACK", header.trigger, "ACK"]) if header.trigger else "ACK"
    msh = f.join(
        [
            "MSH",
            enc.msh2,
            header.receiving_application,
            header.receiving_facility,
            header.sending_application,
            header.sending_facility,
            timestamp(),
            "",
            ack_type,
            new_control_id(),
            header.processing_id or "P",
            header.version or "2.5",
            *(["", "", "", "", "", header.charset] if header.charset else []),
        ]
    )
    msa_text = escape(error.text, enc)[:80] if error else ""
    msa = f.join(["MSA", ack_code, header.control_id, msa_text]).rstrip(f)
    segments = [msh, msa]
    if error is not None:
        segments.append(_err(header, error))
    return "\r".join(segments) + "\r"


def ack_bytes(text: str, header: Header | None) -> bytes:
    """The ACK in the character set the message declared in MSH-18 (echoed in
    the ACK's MSH-18), so a Latin-1 sender reads its own facility name back."""
    return text.encode(header.codec if header else "utf-8", errors="replace")


def fallback_header(ours: tuple[str, str]) -> Header:
    """For input whose MSH could not be read: default separators, version 2.5."""
    app, facility = ours
    return Header(encoding=DEFAULT_ENCODING, receiving_application=app, receiving_facility=facility)


def error_ack(error: Hl7Error, ours: tuple[str, str]) -> str:
    header = with_receiver(error.header, ours) if error.header else fallback_header(ours)
    return build_ack(header, error.ack_code, error)


def with_receiver(header: Header, ours: tuple[str, str]) -> Header:
    """Fill MSH-5/6 with our names when the sender left them empty (the ACK's MSH-3/4)."""
    if header.receiving_application or header.receiving_facility:
        return header
    return replace(header, receiving_application=ours[0], receiving_facility=ours[1])
