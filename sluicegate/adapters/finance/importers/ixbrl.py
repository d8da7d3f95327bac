"""Inline XBRL (iXBRL, facts tagged inside an HTML filing) → a report.

Read with lxml's HTML parser, because filings (and excerpts of them) are often
not namespace-well-formed XML; tags keep their prefixes (``ix:nonfraction``).
``scale``, ``sign`` and the number formats SEC filers use are applied in
Decimal. Filings whose facts are outside the vocabulary (a proxy statement's
pay-versus-performance tables) import to no report.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import html

from sluicegate.adapters.finance.importers.common import ImportFailed
from sluicegate.adapters.finance.importers.filing import TaggedFact, build_filing_report
from sluicegate.adapters.finance.models import Report


def _text(node: Any) -> str:
    return "".join(node.itertext()).strip()


def _contexts(root: Any) -> dict[str, tuple[date | None, date] | None]:
    out: dict[str, tuple[date | None, date] | None] = {}
    for ctx in root.iter("xbrli:context"):
        if any(str(n.tag).endswith(("segment", "scenario")) for n in ctx.iter()):
            out[ctx.get("id", "")] = None
            continue
        values = {str(n.tag).split(":")[-1]: _text(n) for n in ctx.iter()}
        try:
            if values.get("instant"):
                out[ctx.get("id", "")] = (None, date.fromisoformat(values["instant"][:10]))
            else:
                out[ctx.get("id", "")] = (
                    date.fromisoformat(values["startdate"][:10]),
                    date.fromisoformat(values["enddate"][:10]),
                )
        except (KeyError, ValueError):
            out[ctx.get("id", "")] = None
    return out


def _units(root: Any) -> dict[str, str]:
    out = {}
    for unit in root.iter("xbrli:unit"):
        measures = [_text(m).split(":")[-1] for m in unit.iter("xbrli:measure")]
        out[unit.get("id", "")] = "/".join(measures) if measures else "pure"
    return out


def _number(node: Any) -> Decimal | None:
    raw = _text(node)
    fmt = (node.get("format") or "").lower()
    if "zero" in fmt or raw in ("-", "—", ""):
        return Decimal(0)
    if "numcommadecimal" in fmt.replace("-", ""):  # 1.234,5
        raw = raw.replace(".", "").replace(" ", "").replace(",", ".")
    else:
        raw = raw.replace(",", "").replace(" ", "")
    if not re.fullmatch(r"\d+(\.\d+)?", raw):
        return None
    try:
        value = Decimal(raw) * (Decimal(10) ** int(node.get("scale") or 0))
    except (InvalidOperation, ValueError):
        return None
    return -value if node.get("sign") == "-" else value


def import_ixbrl(data: bytes) -> list[Report]:
    try:
        root = html.fromstring(data)
    except (ValueError, TypeError):
        raise ImportFailed("iXBRL: the document could not be parsed as HTML") from None
    contexts, units = _contexts(root), _units(root)
    if not contexts:
        raise ImportFailed("iXBRL: no xbrli:context in the document")
    dei = {
        (n.get("name") or "").split(":")[-1]: _text(n)
        for n in root.iter("ix:nonnumeric")
        if (n.get("name") or "").startswith("dei:")
    }
    facts: list[TaggedFact] = []
    for node in root.iter("ix:nonfraction"):
        prefix, _, name = (node.get("name") or "").partition(":")
        period = contexts.get(node.get("contextref", ""))
        value = _number(node)
        if prefix not in ("us-gaap", "ifrs-full") or period is None or value is None:
            continue
        unit = units.get(node.get("unitref", ""), "pure")
        facts.append(TaggedFact(prefix, name, period[0], period[1], unit, value))
    entity: dict[str, Any] = {"name": dei.get("EntityRegistrantName") or "unnamed registrant"}
    cik = dei.get("EntityCentralIndexKey", "").lstrip("0")
    if cik.isdigit():
        entity["cik"] = cik
    end = dei.get("DocumentPeriodEndDate")
    try:
        period_end = date.fromisoformat(end) if end else None
    except ValueError:
        period_end = None
    report = build_filing_report(facts, entity, period_end=period_end, what="iXBRL")
    return [report] if report is not None else []
