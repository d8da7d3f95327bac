"""The adapter's reader against hl7apy, the independent reference parser.

The accept path reads messages with its own strict ER7 reader (hl7apy's full
parse is ~17x slower than python-hl7's split, see docs/hl7v2.md). Two
properties keep that honest:

1. Whatever the reader accepts, hl7apy's tolerant parse (with message groups)
   also reads: an AA'd message never turns out unreadable to an hl7apy-based
   consumer later (the optional ``hl7apy_check``, a downstream engine).
2. Where hl7apy keeps a segment, the fields the adapter works from read the
   same in both, once escapes are resolved (trailing empty components aside:
   hl7apy drops them).

Checked on every corpus message and on random structural mutants of them
(a new seed each run, printed on failure).
"""

from __future__ import annotations

import random
import re
from typing import Any

import hl7
import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from sluicegate.adapters.hl7v2.er7 import Encoding, Segment, decode, unescape
from sluicegate.adapters.hl7v2.extract import extract
from sluicegate.adapters.hl7v2.parse import Hl7Error, Message, read_message, split_batch
from tests.conftest import CORPUS

# The fields the adapter reads for routing, identifiers and prompt inputs whose
# data types hl7apy renders back unchanged. Left out on purpose: phone fields
# (hl7apy moves an XTN's first component to its end), text fields (its
# ``to_er7`` re-escapes ``\.br\`` as ``\E\.br\E\``).
COMPARED: dict[str, tuple[int, ...]] = {
    "MSH": (3, 4, 5, 6, 7, 9, 10, 11, 12),
    "PID": (2, 3, 4, 5, 7, 8, 18, 19),
    "MRG": (1,),
    "PV1": (2, 3, 19),
    "ORC": (1, 2, 3),
    "OBR": (2, 3, 7, 18, 24, 25),
    "OBX": (1, 2, 11),
    "TXA": (2, 12),
}


def _accepted(raw: bytes) -> Message | None:
    try:
        message = read_message(raw)
        extract(message, tenant="t", channel="c")
    except Hl7Error:
        return None
    return message


def _hl7apy_segments(text: str) -> list[Any]:
    """hl7apy's tolerant parse, its segments in message order (groups walked)."""
    parsed = parse_message(text, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=True)
    segments: list[Any] = []

    def walk(element: Any) -> None:
        for child in element.children:
            if child.classname == "Segment":
                segments.append(child)
            else:
                walk(child)

    walk(parsed)
    return segments


def _canonical(value: str, enc: Encoding) -> str:
    """Escapes resolved (hl7apy writes a stray escape character as ``\\E\\``),
    trailing empty components and repetitions dropped (hl7apy drops them)."""
    reps = [r.rstrip(enc.component + enc.subcomponent) for r in value.split(enc.repetition)]
    while reps and not reps[-1]:
        reps.pop()
    return unescape(enc.repetition.join(reps), enc)


def _their_field(segment: Any, n: int, enc: Encoding) -> str:
    name = f"{segment.name}_{n}"
    return enc.repetition.join(c.to_er7() for c in segment.children if c.name == name)


def _disagreements(message: Message) -> list[str]:
    """Where hl7apy reads a compared field differently (positions only, no values)."""
    enc = message.header.encoding
    theirs = _hl7apy_segments(message.text)
    ours = iter(message.segments)
    pairs: list[tuple[Segment, Any]] = []
    for segment in theirs:  # hl7apy may drop segments its structure lacks; never adds
        match = next((s for s in ours if s.id == segment.name), None)
        assert match is not None, f"hl7apy read a segment {segment.name} the reader did not"
        pairs.append((match, segment))
    problems = []
    for mine, segment in pairs:
        for n in COMPARED.get(mine.id, ()):
            if _canonical(mine.field(n), enc) != _canonical(_their_field(segment, n, enc), enc):
                problems.append(f"{mine.id}-{n}")
    return problems


def _corpus_messages() -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for path in sorted((CORPUS / "hl7v2").rglob("*.hl7")):
        for i, text in enumerate(split_batch(decode(path.read_bytes()))):
            found[f"{path.relative_to(CORPUS)}#{i}"] = text.encode()
    return found


CORPUS_MESSAGES = _corpus_messages()


def test_the_corpus_has_messages_the_reader_accepts() -> None:
    accepted = [name for name, raw in CORPUS_MESSAGES.items() if _accepted(raw)]
    assert len(accepted) >= 20  # the valid files plus the NoException fuzz cases


@pytest.mark.parametrize("name", sorted(CORPUS_MESSAGES))
def test_corpus_message_reads_the_same_in_hl7apy(name: str) -> None:
    message = _accepted(CORPUS_MESSAGES[name])
    if message is None:
        assert "invalid" in name or "SIU" in name or "OML" in name, "a valid message refused"
        return
    assert _disagreements(message) == []


def _mutant(text: str, rng: random.Random) -> str:
    """One structural change a sloppy sender might make.

    Two kinds are left out because hl7apy, not the reader, departs from the
    standard there: a changed MSH-12 (hl7apy then drops or refuses segments and
    components the declared version lacks, e.g. TQ1 in 2.3: the reader keeps
    them), and ``\\Xhh\\`` hex escapes and formatting commands such as
    ``\\.br\\`` (hl7apy keeps both as literal text).
    """
    lines = [line for line in re.split(r"\r\n|\r|\n", text) if line]
    i = rng.randrange(1, len(lines))
    kind = rng.randrange(7)
    if kind == 0:
        lines.insert(i, rng.choice(["ZXY|1|abc", "ZZ1|", "NTE|1||free text", "ABC|1|x"]))
    elif kind == 1:
        lines.insert(i, lines[i])
    elif kind == 2:
        del lines[i]
    elif kind == 3:
        j = rng.randrange(1, len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == 4:
        fields = lines[i].split("|")
        if len(fields) > 2:
            fields[rng.randrange(1, len(fields))] = rng.choice(
                ["\\T\\", "a\\b", "\\S\\", "~~", "^^^", "x" * 300, "\u00fc", "&&"]
            )
        lines[i] = "|".join(fields)
    elif kind == 5:
        lines[i] += "|" * rng.randrange(1, 5)
    else:
        lines.insert(i, rng.choice(["OBX|1|TX|||line", "OBR|2|||", "PV1|", "EVN|A01|", "DG1|1||x"]))
    return rng.choice(["\r", "\n", "\r\n"]).join(lines)


def test_mutants_the_reader_accepts_are_read_alike_by_hl7apy() -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    small = sorted(
        raw.decode("utf-8", "replace")
        for raw in CORPUS_MESSAGES.values()
        if len(raw) < 6000 and _accepted(raw) is not None
    )
    accepted = 0
    for _ in range(120):
        message = _accepted(_mutant(rng.choice(small), rng).encode())
        if message is None:
            continue
        accepted += 1
        assert _disagreements(message) == [], f"seed {seed}"
    assert accepted >= 60, f"seed {seed}: too few mutants accepted to mean anything"


@pytest.mark.parametrize("name", sorted(CORPUS_MESSAGES))
def test_report_text_reads_the_same_in_python_hl7(name: str) -> None:
    """The text fields hl7apy re-escapes (OBX-5 TX/FT/ST, NTE-3), against python-hl7."""
    message = _accepted(CORPUS_MESSAGES[name])
    if message is None:
        return
    theirs = hl7.parse(message.text)
    for seg_id, n in (("OBX", 5), ("NTE", 3)):
        ours = [s for s in message.segments if s.id == seg_id]
        other = [s for s in theirs if str(s[0]) == seg_id]
        assert len(ours) == len(other)
        for mine, segment in zip(ours, other, strict=True):
            if seg_id == "OBX" and mine.field(2) not in ("TX", "FT", "ST"):
                continue
            their_value = str(segment[n]) if len(segment) > n else ""
            assert mine.field(n) == their_value, f"{seg_id}-{n}"
