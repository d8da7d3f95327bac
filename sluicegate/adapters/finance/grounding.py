"""Number grounding: every figure in the model's narrative must come from the facts.

The model may format and round ("$1.2 billion", "12.5%", "(1,234)" for a
negative), so a narrative number matches a fact when the fact, scaled the
same way, rounds to it at the precision shown. Anything else is ungrounded:
the pipeline regenerates once, then the result is flagged with the offending
numbers — never a silently wrong figure. Problem messages carry the number
and sentence only, and redact anything that looks like an identifier.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from sluicegate.adapters.finance.facts import Fact
from sluicegate.adapters.finance.ratios import Ratio

_SCALES = {
    "trillion": Decimal(10) ** 12,
    "tn": Decimal(10) ** 12,
    "billion": Decimal(10) ** 9,
    "bn": Decimal(10) ** 9,
    "b": Decimal(10) ** 9,
    "million": Decimal(10) ** 6,
    "mn": Decimal(10) ** 6,
    "m": Decimal(10) ** 6,
    "thousand": Decimal(10) ** 3,
    "k": Decimal(10) ** 3,
}
_MONTHS = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_DATE = re.compile(
    rf"\b(?:\d{{4}}-\d{{2}}-\d{{2}}|{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+(?P<y1>\d{{4}})"
    rf"|\d{{1,2}}\s+{_MONTHS}\s+(?P<y2>\d{{4}})|\d{{1,2}}[./]\d{{1,2}}[./](?P<y3>\d{{4}}))\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(
    r"(?<![\w.,])(?P<open>\()?(?P<sign>[-\u2212])?"
    r"(?P<cur>[$\u20ac\u00a3\u00a5]|(?:USD|EUR|GBP|CHF|JPY)\s?)?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?P<close1>\))?"
    r"(?:\s?(?P<scale>%|percent\b|per\s?cent\b|trillion\b|tn\b|billion\b|bn\b|b\b|million\b"
    r"|mn\b|m\b|thousand\b|k\b|x\b|times\b))?(?P<close>\))?",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n\s*\n|\n(?=\s*[-*#\d])")


@dataclass(frozen=True)
class NumberCheck:
    text: str
    sentence: int
    grounded: bool
    facts: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroundingReport:
    numbers: list[NumberCheck] = field(default_factory=list)

    @property
    def ungrounded(self) -> list[NumberCheck]:
        return [n for n in self.numbers if not n.grounded]

    @property
    def grounded(self) -> bool:
        return not self.ungrounded


@dataclass(frozen=True)
class Candidate:
    value: Decimal
    kind: str  # "amount" | "percent" | "times" | "year"
    ids: tuple[str, ...]


def candidates(facts: list[Fact], ratios: list[Ratio], years: Iterable[int]) -> list[Candidate]:
    out = [Candidate(abs(f.value), "amount", (f.id,)) for f in facts]
    by_concept: dict[tuple[str, str], Fact] = {(f.concept, f.period): f for f in facts}
    for (concept, period), fact in by_concept.items():
        prior = by_concept.get((concept, "prior")) if period == "current" else None
        if prior is not None:  # "revenue rose by $5 million": the change itself
            out.append(Candidate(abs(fact.value - prior.value), "amount", (fact.id, prior.id)))
    for r in ratios:
        out.append(Candidate(abs(r.value), r.unit if r.unit == "percent" else "times", (r.id,)))
    out.extend(Candidate(Decimal(y), "year", ()) for y in set(years))
    return out


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text) if s.strip()]


def check_narrative(text: str, pool: list[Candidate]) -> GroundingReport:
    numbers: list[NumberCheck] = []
    years = {c.value for c in pool if c.kind == "year"}
    for index, sentence in enumerate(sentences(text), start=1):
        for match in _DATE.finditer(sentence):
            year = match.group("y1") or match.group("y2") or match.group("y3") or match.group(0)[:4]
            numbers.append(NumberCheck(match.group(0), index, Decimal(year) in years))
        stripped = _DATE.sub(" ", sentence)
        for match in _NUMBER.finditer(stripped):
            numbers.append(_check(match, index, pool))
    return GroundingReport(numbers)


def _check(match: re.Match[str], sentence: int, pool: list[Candidate]) -> NumberCheck:
    raw = match.group(0).strip()
    digits = match.group("num")
    try:
        shown = Decimal(digits.replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the pattern only matches digits
        return NumberCheck(raw, sentence, False)
    places = len(digits.split(".")[1]) if "." in digits else 0
    half = Decimal(5) * Decimal(10) ** (-places - 1)
    scale_word = (match.group("scale") or "").lower().replace(" ", "")
    if scale_word in ("%", "percent"):
        kinds, factor = {"percent"}, Decimal(1)
    elif scale_word in ("x", "times"):
        kinds, factor = {"times"}, Decimal(1)
    elif scale_word:
        kinds, factor = {"amount"}, _SCALES[scale_word]
    else:
        kinds, factor = {"amount", "times", "percent"}, Decimal(1)
        if places == 0 and not match.group("cur") and 1900 <= shown <= 2100:
            kinds.add("year")
    target, allowed = shown * factor, half * factor
    for cand in pool:
        if cand.kind in kinds and abs(cand.value - target) <= allowed:
            return NumberCheck(raw, sentence, True, cand.ids)
    return NumberCheck(raw, sentence, False)


def problems(report: GroundingReport, identifiers: dict[str, list[str]]) -> list[str]:
    """One line per ungrounded number; identifier-like tokens are redacted."""
    secrets = {re.sub(r"\D", "", v) for values in identifiers.values() for v in values}
    secrets.discard("")
    out = []
    for number in report.ungrounded:
        bare = re.sub(r"\D", "", number.text)
        looks_like_id = len(bare) >= 6 and "," not in number.text and "." not in number.text
        hidden = looks_like_id or any(len(bare) >= 4 and bare in s for s in secrets)
        shown = "[redacted identifier-like number]" if hidden else number.text
        out.append(f"ungrounded number {shown} in sentence {number.sentence}")
    return out
