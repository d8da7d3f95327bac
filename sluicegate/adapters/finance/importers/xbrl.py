"""XBRL 2.1 instance documents → a report (contexts, units and facts read with lxml).

A filing with no financial facts in the vocabulary (an 8-K cover page) imports
to no report; only its dei cover facts would be there.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree

from sluicegate.adapters.finance.importers.common import ImportFailed
from sluicegate.adapters.finance.importers.filing import TaggedFact, build_filing_report
from sluicegate.adapters.finance.models import Report

XBRLI = "http://www.xbrl.org/2003/instance"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
_PREFIXES = {"us-gaap", "ifrs-full"}


def _local(node: Any) -> str:
    return str(etree.QName(node).localname)


def _contexts(root: Any) -> dict[str, tuple[date | None, date] | None]:
    out: dict[str, tuple[date | None, date] | None] = {}
    for ctx in root.iter(f"{{{XBRLI}}}context"):
        if any(_local(n) in ("segment", "scenario") for n in ctx.iter()):
            out[ctx.get("id")] = None  # dimensional: not a statement total
            continue
        values = {_local(n): (n.text or "").strip() for n in ctx.iter() if isinstance(n.tag, str)}
        try:
            if values.get("instant"):
                out[ctx.get("id")] = (None, date.fromisoformat(values["instant"][:10]))
            else:
                out[ctx.get("id")] = (
                    date.fromisoformat(values["startDate"][:10]),
                    date.fromisoformat(values["endDate"][:10]),
                )
        except (KeyError, ValueError):
            out[ctx.get("id")] = None
    return out


def _units(root: Any) -> dict[str, str]:
    out = {}
    for unit in root.iter(f"{{{XBRLI}}}unit"):
        measures = [(m.text or "").split(":")[-1] for m in unit.iter(f"{{{XBRLI}}}measure")]
        out[unit.get("id")] = "/".join(measures) if measures else "pure"
    return out


def import_xbrl(data: bytes) -> list[Report]:
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError:
        raise ImportFailed("XBRL: not well-formed XML") from None
    if etree.QName(root).namespace != XBRLI:
        raise ImportFailed("XBRL: the root element is not an XBRL instance")
    contexts, units = _contexts(root), _units(root)
    namespaces = {ns: prefix for prefix, ns in (root.nsmap or {}).items() if prefix}
    dei: dict[str, str] = {}
    facts: list[TaggedFact] = []
    for node in root:
        if not isinstance(node.tag, str):
            continue
        qname = etree.QName(node)
        prefix = namespaces.get(qname.namespace or "", "")
        if prefix == "dei":
            dei[qname.localname] = (node.text or "").strip()
            continue
        if not any(prefix.startswith(p) for p in _PREFIXES) or node.get("unitRef") is None:
            continue
        period = contexts.get(node.get("contextRef", ""))
        if period is None or node.get("{http://www.w3.org/2001/XMLSchema-instance}nil") == "true":
            continue
        try:
            value = Decimal((node.text or "").strip())
        except InvalidOperation:
            continue
        family = "ifrs-full" if prefix.startswith("ifrs") else "us-gaap"
        facts.append(
            TaggedFact(
                family,
                qname.localname,
                period[0],
                period[1],
                units.get(node.get("unitRef", ""), "pure"),
                value,
            )
        )
    entity: dict[str, Any] = {"name": dei.get("EntityRegistrantName") or "unnamed registrant"}
    cik = dei.get("EntityCentralIndexKey", "").lstrip("0")
    if cik.isdigit():
        entity["cik"] = cik
    end = dei.get("DocumentPeriodEndDate")
    fiscal_year = dei.get("DocumentFiscalYearFocus")
    fiscal_period = dei.get("DocumentFiscalPeriodFocus")
    report = build_filing_report(
        facts,
        entity,
        period_end=date.fromisoformat(end) if end else None,
        fiscal_year=int(fiscal_year) if fiscal_year and fiscal_year.isdigit() else None,
        fiscal_period=fiscal_period if fiscal_period in ("FY", "Q1", "Q2", "Q3", "Q4") else None,
        what="XBRL",
    )
    return [report] if report is not None else []
