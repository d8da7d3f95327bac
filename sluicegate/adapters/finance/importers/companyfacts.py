"""SEC EDGAR ``companyfacts`` JSON → a report for the latest annual filing's year.

Numbers are read with ``parse_float=Decimal``: EDGAR's JSON carries
per-share values as JSON floats, and none of them may pass through a float.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

from sluicegate.adapters.finance.importers.common import ImportFailed
from sluicegate.adapters.finance.importers.filing import TaggedFact, build_filing_report
from sluicegate.adapters.finance.models import Report

ANNUAL_FORMS = {"10-K", "10-K/A", "20-F", "20-F/A", "40-F", "40-F/A"}


def import_companyfacts(data: bytes) -> list[Report]:
    try:
        doc: Any = json.loads(data, parse_float=Decimal)
        facts_by_prefix = doc["facts"]
        name = str(doc["entityName"])
    except (ValueError, KeyError, TypeError):
        raise ImportFailed("companyfacts: not an EDGAR companyfacts document") from None
    facts: list[TaggedFact] = []
    annual: list[tuple[int, date]] = []
    for prefix in ("us-gaap", "ifrs-full"):
        for tag, body in (facts_by_prefix.get(prefix) or {}).items():
            for unit, rows in (body.get("units") or {}).items():
                for row in rows:
                    end = date.fromisoformat(row["end"])
                    start = date.fromisoformat(row["start"]) if row.get("start") else None
                    facts.append(TaggedFact(prefix, tag, start, end, unit, Decimal(row["val"])))
                    if row.get("form") in ANNUAL_FORMS and row.get("fp") == "FY" and row.get("fy"):
                        annual.append((int(row["fy"]), end))
    if not annual:
        raise ImportFailed("companyfacts: no annual (FY) filing facts")
    fiscal_year = max(fy for fy, _ in annual)
    period_end = max(end for fy, end in annual if fy == fiscal_year)
    cik = str(doc.get("cik", "")).lstrip("0") or None
    entity: dict[str, Any] = {"name": name}
    if cik:
        entity["cik"] = cik
    # EDGAR's "fy" is the filing's fiscal year; the latest period it reports is that year's end.
    report = build_filing_report(
        facts,
        entity,
        period_end=period_end,
        fiscal_year=period_end.year,
        fiscal_period="FY",
        what="companyfacts",
    )
    if report is None:
        raise ImportFailed("companyfacts: no facts map to the vocabulary")
    return [report]
