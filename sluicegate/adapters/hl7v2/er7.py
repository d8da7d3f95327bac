"""ER7 (pipe-and-hat) text: decoding, segment endings, field access, escapes.

Real feeds end segments with ``\\r``, ``\\n`` or ``\\r\\n``, start with a UTF-8
BOM, carry trailing blanks and embed base64 documents with stray carriage
returns. :func:`normalise` turns all of that into one canonical form (``\\r``
between segments) before anything else looks at the message, and fields are
then split with the message's *own* encoding characters from MSH-1/MSH-2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_LINE_BREAK = re.compile(r"\r\n|\n|\r")
_BOM = "\ufeff"
UTF8_BOM = b"\xef\xbb\xbf"


def decode(raw: bytes) -> str:
    """Bytes to text: UTF-8 (BOM dropped), else ISO-8859-1, which every byte decodes."""
    raw = raw.removeprefix(UTF8_BOM)  # also in front of Latin-1 bytes
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.removeprefix(_BOM)


@dataclass(frozen=True)
class Encoding:
    """The separators a message declared in MSH-1 and MSH-2."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = ""

    @property
    def msh2(self) -> str:
        return self.component + self.repetition + self.escape + self.subcomponent + self.truncation


DEFAULT_ENCODING = Encoding()


def split_lines(text: str) -> list[str]:
    """Segments as lines, whatever the line ending; blank lines and trailing blanks dropped."""
    lines = (line.rstrip() for line in _LINE_BREAK.split(text.strip()))
    return [line for line in lines if line]


def looks_like_segment(line: str, field_sep: str) -> bool:
    head = line[:3]
    return bool(SEGMENT_ID.fullmatch(head)) and (len(line) == 3 or line[3] == field_sep)


def join_continuations(lines: list[str], field_sep: str) -> tuple[list[str], int | None]:
    """Glue lines that are not segments back onto the OBX they broke out of.

    A stray CR inside an embedded (base64) document or report text splits
    OBX-5; the piece after it cannot start with a segment id and a field
    separator. It is joined with one space: the CR separated words
    (``No acute<CR>findings``), and base64 decoding ignores whitespace. Such
    a line anywhere but after an OBX is an error: returns the 1-based line
    number.
    """
    out: list[str] = []
    for number, line in enumerate(lines, start=1):
        if looks_like_segment(line, field_sep):
            out.append(line)
        elif out and out[-1].startswith("OBX"):
            out[-1] += " " + line.lstrip()
        else:
            return out, number
    return out, None


@dataclass(frozen=True)
class Segment:
    """One segment, split on field separators only (components split on demand)."""

    id: str
    fields: list[str]  # fields[n] is field n (for MSH too: fields[1] is MSH-1)
    raw: str

    @classmethod
    def parse(cls, line: str, enc: Encoding) -> Segment:
        parts = line.split(enc.field)
        if parts[0] == "MSH":
            parts = ["MSH", enc.field, *parts[1:]]
        return cls(parts[0], parts, line)

    def field(self, n: int) -> str:
        return self.fields[n] if n < len(self.fields) else ""


def repetitions(value: str, enc: Encoding) -> list[str]:
    return value.split(enc.repetition) if value else []


def component(value: str, n: int, enc: Encoding, rep: int = 0) -> str:
    """Component ``n`` (1-based) of repetition ``rep``; subcomponents kept as they are."""
    reps = value.split(enc.repetition)
    if rep >= len(reps):
        return ""
    comps = reps[rep].split(enc.component)
    return comps[n - 1] if n - 1 < len(comps) else ""


def first_subcomponent(value: str, enc: Encoding) -> str:
    return value.split(enc.subcomponent, 1)[0]


_FORMATTING = {".br": "\n", ".sp": "\n", ".fi": "", ".nf": "", "H": "", "N": ""}


def unescape(value: str, enc: Encoding) -> str:
    """Resolve escape sequences: separators, ``\\.br\\`` line breaks, ``\\Xhh\\`` hex."""
    esc = enc.escape
    if not esc or esc not in value:
        return value
    named = {
        "F": enc.field,
        "S": enc.component,
        "T": enc.subcomponent,
        "R": enc.repetition,
        "E": esc,
        "P": enc.truncation,
    }
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        end = value.find(esc, i + 1) if ch == esc else -1
        if end == -1:
            out.append(ch)
            i += 1
            continue
        code = value[i + 1 : end]
        if code in named:
            out.append(named[code])
        elif code in _FORMATTING:
            out.append(_FORMATTING[code])
        elif code.startswith((".sp", ".in", ".ti", ".sk", ".ce")):
            out.append("\n" if code.startswith((".sp", ".ce")) else "")
        elif code.startswith("X") and len(code) > 1:
            try:
                out.append(bytes.fromhex(code[1:]).decode("latin-1"))
            except ValueError:
                out.append(value[i : end + 1])
        else:
            out.append(value[i : end + 1])  # unknown: keep as sent
        i = end + 1
    return "".join(out)


def escape(value: str, enc: Encoding = DEFAULT_ENCODING) -> str:
    """Escape text for a field: separators become ``\\F\\`` etc., newlines ``\\.br\\``."""
    esc = enc.escape
    out = value.replace(esc, f"{esc}E{esc}")
    for char, code in (
        (enc.field, "F"),
        (enc.component, "S"),
        (enc.subcomponent, "T"),
        (enc.repetition, "R"),
    ):
        out = out.replace(char, f"{esc}{code}{esc}")
    if enc.truncation:
        out = out.replace(enc.truncation, f"{esc}P{esc}")
    out = out.replace("\r\n", "\n").replace("\r", "\n")
    return out.replace("\n", f"{esc}.br{esc}")
