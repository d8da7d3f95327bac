"""Reading a message before it is acknowledged: strict enough never to AA junk.

Everything here runs before the ACK: decoding, segment endings, MSH (encoding
characters, type, version, processing id, control id), every segment id, the
segments each supported type requires. Extraction (:mod:`.extract`) then reads
every field the work needs, also before the ACK; nothing is parsed after it,
so a message acknowledged AA can never turn out unreadable later.

Errors are :class:`Hl7Error` with an HL7 table 0357 code and a location (no
field values: those may be PHI).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sluicegate.adapters.hl7v2.er7 import (
    UTF8_BOM,
    Encoding,
    Segment,
    component,
    decode,
    join_continuations,
    split_lines,
)

SUPPORTED_VERSIONS = frozenset(
    {"2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2"}
)
SUPPORTED_EVENTS: dict[str, frozenset[str]] = {
    "ORU": frozenset({"R01"}),
    "ORM": frozenset({"O01"}),
    "OMI": frozenset({"O23"}),
    "ADT": frozenset({"A01", "A04", "A08", "A40"}),
    "MDM": frozenset({"T02"}),
}
PROCESSING_IDS = frozenset({"P", "T", "D"})
# MSH-18 (HL7 table 0211, and the spellings feeds use) to Python codecs.
_CODECS = {
    **{f"8859/{n}": f"iso8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 15)},
    "ISO IR100": "latin-1",
    "ISO-8859-1": "latin-1",
    "ISO_IR 100": "latin-1",
    "ASCII": "ascii",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
}

# HL7 table 0357 (message error condition codes) that this adapter uses.
SEGMENT_SEQUENCE = "100"
REQUIRED_MISSING = "101"
DATA_TYPE = "102"
UNSUPPORTED_TYPE = "200"
UNSUPPORTED_EVENT = "201"
UNSUPPORTED_PROCESSING_ID = "202"
UNSUPPORTED_VERSION = "203"
INTERNAL_ERROR = "207"

_TEXT_0357 = {
    SEGMENT_SEQUENCE: "Segment sequence error",
    REQUIRED_MISSING: "Required field missing",
    DATA_TYPE: "Data type error",
    UNSUPPORTED_TYPE: "Unsupported message type",
    UNSUPPORTED_EVENT: "Unsupported event code",
    UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    UNSUPPORTED_VERSION: "Unsupported version id",
    INTERNAL_ERROR: "Application internal error",
}

_REQUIRED_SEGMENTS: dict[str, tuple[str, ...]] = {
    "ORU": ("PID", "OBR"),
    "ORM": ("PID", "ORC", "OBR"),
    "OMI": ("PID", "ORC", "OBR"),
    "ADT^A40": ("PID", "MRG"),
    "ADT": ("PID",),
    "MDM": ("TXA", "OBX"),
}


def code_text(code: str) -> str:
    return _TEXT_0357.get(code, "Error")


@dataclass(frozen=True)
class Location:
    """An ERL: segment id, sequence (1-based), field, component."""

    segment: str
    sequence: int = 1
    field: int | None = None
    component: int | None = None

    def __str__(self) -> str:
        text = f"{self.segment}[{self.sequence}]"
        if self.field is not None:
            text += f"-{self.field}"
        if self.component is not None:
            text += f".{self.component}"
        return text


class Hl7Error(Exception):
    """A message we will not accept: AR (rejected) or AE (content error).

    ``header`` is what could be read of MSH, so the ACK can still swap
    applications and echo the control id. The text never holds field values.
    """

    def __init__(
        self,
        ack_code: str,
        code: str,
        text: str,
        location: Location | None = None,
        header: Header | None = None,
    ) -> None:
        super().__init__(f"{ack_code} {code} {location or ''}: {text}")
        self.ack_code = ack_code
        self.code = code
        self.text = text
        self.location = location
        self.header = header


@dataclass(frozen=True)
class Header:
    """What MSH says about routing and how to answer."""

    encoding: Encoding
    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    message_code: str = ""
    trigger: str = ""
    control_id: str = ""
    processing_id: str = "P"
    version: str = "2.5"
    charset: str = ""

    @property
    def message_type(self) -> str:
        return f"{self.message_code}^{self.trigger}"

    @property
    def codec(self) -> str:
        """The Python codec of MSH-18 (its first repetition); UTF-8 when absent or unknown."""
        first = component(self.charset, 1, self.encoding).strip().upper()
        return _CODECS.get(first, "utf-8")


@dataclass(frozen=True)
class Message:
    """A checked message: header plus segments in order."""

    header: Header
    segments: list[Segment]
    text: str
    _index: dict[str, list[Segment]] = field(default_factory=dict, repr=False)

    def all(self, segment_id: str) -> list[Segment]:
        if not self._index:
            for seg in self.segments:
                self._index.setdefault(seg.id, []).append(seg)
        return self._index.get(segment_id, [])

    def first(self, segment_id: str) -> Segment | None:
        found = self.all(segment_id)
        return found[0] if found else None


def _encoding(line: str) -> Encoding:
    if len(line) < 8 or not line.startswith("MSH"):
        raise Hl7Error("AR", SEGMENT_SEQUENCE, "message does not start with MSH", Location("MSH"))
    sep = line[3]
    chars = line[4:].split(sep, 1)[0]
    special = [sep, *chars]
    if (
        sep.isalnum()
        or sep.isspace()
        or len(chars) not in (4, 5)
        or len(set(special)) != len(special)
        or any(c.isalnum() or c.isspace() for c in chars)
    ):
        raise Hl7Error("AR", DATA_TYPE, "invalid encoding characters", Location("MSH", field=2))
    return Encoding(sep, chars[0], chars[1], chars[2], chars[3], chars[4:5])


def read_header(line: str) -> Header:
    """Parse MSH; raises AR for what the receiver cannot or will not process."""
    enc = _encoding(line)
    msh = Segment.parse(line, enc)
    msg_type = msh.field(9)
    header = Header(
        encoding=enc,
        sending_application=msh.field(3),
        sending_facility=msh.field(4),
        receiving_application=msh.field(5),
        receiving_facility=msh.field(6),
        message_code=component(msg_type, 1, enc),
        trigger=component(msg_type, 2, enc),
        control_id=msh.field(10),
        processing_id=component(msh.field(11), 1, enc),
        version=component(msh.field(12), 1, enc),
        charset=msh.field(18),
    )
    checks = (
        (not header.control_id, REQUIRED_MISSING, "message control id missing", 10),
        (not header.message_code, REQUIRED_MISSING, "message type missing", 9),
        (not header.version, REQUIRED_MISSING, "version id missing", 12),
        (
            header.version not in SUPPORTED_VERSIONS,
            UNSUPPORTED_VERSION,
            "version not supported (2.3 to 2.8)",
            12,
        ),
        (
            header.processing_id not in PROCESSING_IDS,
            UNSUPPORTED_PROCESSING_ID,
            "processing id must be P, T or D",
            11,
        ),
        (
            header.message_code not in SUPPORTED_EVENTS,
            UNSUPPORTED_TYPE,
            "message type not supported",
            9,
        ),
        (
            header.trigger not in SUPPORTED_EVENTS.get(header.message_code, ()),
            UNSUPPORTED_EVENT,
            "event not supported for this message type",
            9,
        ),
    )
    for failed, code, text, fieldno in checks:
        if failed:
            raise Hl7Error("AR", code, text, Location("MSH", field=fieldno), header)
    return header


def read_message(raw: bytes | str) -> Message:
    """Decode, normalise and check one message (raises :class:`Hl7Error`)."""
    text = decode(raw) if isinstance(raw, bytes) else raw.removeprefix("\ufeff")
    lines = split_lines(text)
    if not lines:
        raise Hl7Error("AR", SEGMENT_SEQUENCE, "empty message", Location("MSH"))
    header = read_header(lines[0])
    declared = header.codec
    if isinstance(raw, bytes) and declared not in ("utf-8", "ascii") and not raw.isascii():
        # MSH-18 says so, even if the bytes looked like UTF-8
        body = raw.removeprefix(UTF8_BOM)  # a UTF-8 BOM is no Latin-1 text
        lines = split_lines(body.decode(declared, errors="replace"))
    enc = header.encoding
    lines, bad_line = join_continuations(lines, enc.field)
    if bad_line is not None:
        raise Hl7Error("AE", SEGMENT_SEQUENCE, f"line {bad_line} is not a segment", None, header)
    segments = [Segment.parse(line, enc) for line in lines]
    if sum(1 for s in segments if s.id == "MSH") != 1:
        raise Hl7Error(
            "AE", SEGMENT_SEQUENCE, "more than one MSH in a message", Location("MSH", 2), header
        )
    required = _REQUIRED_SEGMENTS.get(header.message_type) or _REQUIRED_SEGMENTS.get(
        header.message_code, ()
    )
    present = {s.id for s in segments}
    for seg_id in required:
        if seg_id not in present:
            raise Hl7Error(
                "AE",
                SEGMENT_SEQUENCE,
                f"required segment {seg_id} missing",
                Location(seg_id),
                header,
            )
    return Message(header, segments, "\r".join(lines))


def split_batch(text: str) -> list[str]:
    """Several messages in one text (files, logs): split where each MSH starts."""
    messages: list[list[str]] = []
    for line in split_lines(text):
        if line.startswith("MSH") or not messages:
            messages.append([line])
        else:
            messages[-1].append(line)
    return ["\r".join(m) for m in messages]
