"""Tagged filing facts (XBRL instance or SEC companyfacts) → one report with its prior period.

The current period ends on the latest date the filing reports; duration facts
use the longest period ending then (a 10-Q's year-to-date figures, which tie
across statements), instants use that date. The prior period is the same span
a year earlier. Facts with dimensions are left out: statements report totals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sluicegate.adapters.finance.importers.common import to_report
from sluicegate.adapters.finance.models import Report
from sluicegate.adapters.finance.vocabulary import CONCEPTS, concept_for_tag, tag_priority


@dataclass(frozen=True)
class TaggedFact:
    prefix: str
    name: str
    start: date | None
    end: date
    unit: str
    value: Decimal


def _near(a: date, b: date, days: int = 10) -> bool:
    return abs((a - b).days) <= days


def _same_span(start: date, end: date, span_days: int | None) -> bool:
    return span_days is not None and abs((end - start).days - span_days) <= 10


def _pick(facts: list[TaggedFact], end: date, span_days: int | None) -> dict[str, TaggedFact]:
    """Per concept, the best-tagged fact for the period ending ``end``."""
    chosen: dict[str, tuple[int, TaggedFact]] = {}
    for fact in facts:
        concept = concept_for_tag(fact.prefix, fact.name)
        if concept is None or not _near(fact.end, end, 3):
            continue
        if fact.start is not None and not _same_span(fact.start, fact.end, span_days):
            continue
        rank = tag_priority(fact.prefix, fact.name)
        if concept not in chosen or rank < chosen[concept][0]:
            chosen[concept] = (rank, fact)
    return {concept: fact for concept, (_, fact) in chosen.items()}


def _statements(chosen: dict[str, TaggedFact], currency: str) -> list[dict[str, Any]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for concept in CONCEPTS:  # vocabulary order keeps the output stable
        fact = chosen.get(concept)
        if fact is None:
            continue
        item: dict[str, Any] = {
            "concept": concept,
            "value": str(fact.value),
            "source": f"{fact.prefix}:{fact.name}",
        }
        if fact.unit != currency:
            item["unit"] = fact.unit
        grouped.setdefault(CONCEPTS[concept].statement, []).append(item)
    return [{"kind": kind, "items": items} for kind, items in grouped.items()]


def build_filing_report(
    facts: Iterable[TaggedFact],
    entity: dict[str, Any],
    *,
    period_end: date | None = None,
    fiscal_year: int | None = None,
    fiscal_period: str | None = None,
    what: str = "filing",
) -> Report | None:
    """None when the filing has no financial facts in the vocabulary (e.g. an 8-K cover page)."""
    usable = [f for f in facts if concept_for_tag(f.prefix, f.name) is not None]
    if not usable:
        return None
    end = period_end or max(f.end for f in usable)
    spans = [(f.end - f.start).days for f in usable if f.start is not None and _near(f.end, end, 3)]
    span = max(spans) if spans else None
    current = _pick(usable, end, span)
    if not current:
        return None
    currencies = [f.unit for f in current.values() if len(f.unit) == 3 and f.unit.isupper()]
    currency = max(set(currencies), key=currencies.count) if currencies else "USD"
    doc: dict[str, Any] = {
        "entity": entity,
        "period": {"end": end.isoformat()},
        "currency": currency,
        "kind": "filing",
        "statements": _statements(current, currency),
    }
    if span is not None:
        doc["period"]["start"] = (end - timedelta(days=span)).isoformat()
    if fiscal_year is not None:
        doc["period"]["fiscal_year"] = fiscal_year
    if fiscal_period is not None:
        doc["period"]["fiscal_period"] = fiscal_period
    prior_end = _prior_end(usable, end)
    if prior_end is not None:
        prior = _pick(usable, prior_end, span)
        if prior:
            doc["prior"] = {
                "period": {"end": prior_end.isoformat()},
                "statements": _statements(prior, currency),
            }
    return to_report(doc, what)


def _prior_end(facts: list[TaggedFact], end: date) -> date | None:
    year_before = end - timedelta(days=365)
    ends = sorted({f.end for f in facts if _near(f.end, year_before, 7)})
    return ends[-1] if ends else None
