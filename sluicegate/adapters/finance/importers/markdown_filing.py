"""A filing rendered as Markdown (e.g. an SEC 10-Q converted from HTML) → its balance sheet.

Only the condensed balance sheet table is read: its rows are labelled line
items with the current and prior period in the first two numeric cells, and
its heading says the scale ("In millions"). Labels map through the same
statement vocabulary the CSV presets use; a label seen twice (current and
non-current "Marketable securities") keeps its first mapping and the repeat
becomes an ``ext:`` concept. The income statement is left out: its columns
(three and nine months, each year) do not share the balance sheet's periods.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sluicegate.adapters.finance.amounts import parse_amount
from sluicegate.adapters.finance.importers.common import ImportFailed, to_report
from sluicegate.adapters.finance.importers.csv_presets import PRESETS
from sluicegate.adapters.finance.models import Report
from sluicegate.adapters.finance.vocabulary import extension

_PERIOD = re.compile(r"(?:quarterly period|fiscal year) ended\s+([A-Z][a-z]+ \d{1,2}, \d{4})")
_DATE = re.compile(r"([A-Z][a-z]+ \d{1,2}),\s*(\d{4})")
_NUMBER = re.compile(r"^\(?-?[\d,]+(\.\d+)?\)?$")
_LABELS = {
    k.replace("(current)", "").strip().casefold(): v
    for k, v in PRESETS["edgartools-statement"][1].concept_map.items()
}
_LABELS["marketable securities"] = "marketable_securities"


def _plain(text: str) -> str:
    return text.replace("\u2019", "'").strip()


def _date(text: str) -> date | None:
    match = _DATE.search(re.sub(r"\s+", " ", text))
    if match is None:
        return None
    return datetime.strptime(f"{match.group(1)}, {match.group(2)}", "%B %d, %Y").date()


def _rows(lines: list[str]) -> list[list[str]]:
    return [[_plain(c) for c in line.strip().strip("|").split("|")] for line in lines]


def import_markdown_filing(data: bytes) -> list[Report]:
    text = data.decode("utf-8", errors="replace")
    heading = re.search(r"BALANCE SHEETS?[^\n]*\n", text)
    period = _PERIOD.search(text)
    if heading is None or period is None:
        raise ImportFailed("Markdown filing: no balance sheet or period end found")
    after = text[heading.end() :]
    scale = Decimal(1_000_000) if "in millions" in after[:400].lower() else Decimal(1)
    start = after.find("\n|")
    table: list[str] = []
    for line in after[start + 1 :].splitlines():
        if not line.startswith("|"):
            break
        table.append(line)
    rows = _rows(table)
    dates = [d for d in (_date(" ".join(r)) for r in rows[:4]) if d is not None]
    header = next((r for r in rows[:4] if _date(" ".join(r))), [])
    ends = [d for d in (_date(c) for c in header) if d is not None] or dates
    current: list[dict[str, Any]] = []
    prior: list[dict[str, Any]] = []
    used: set[str] = set()
    for row in rows:
        label = row[0].rstrip(":")
        numbers = [c for c in row[1:] if _NUMBER.match(c.replace(" ", ""))]
        if not label or not numbers:
            continue
        concept = _LABELS.get(label.casefold()) or extension(label)
        repeat = 1
        while concept in used:
            repeat += 1
            concept = extension(f"{label} {repeat}")
        used.add(concept)
        for bucket, cell in zip((current, prior), numbers[:2], strict=False):
            value = parse_amount(cell)
            if value is not None:
                bucket.append(
                    {
                        "concept": concept,
                        "value": str(value * scale),
                        "source": f"balance sheet: {label}"[:300],
                    }
                )
    if not current:
        raise ImportFailed("Markdown filing: the balance sheet table has no amounts")
    cover = re.search(r"<div align='center'>([^<\n|]+)\n+\(Exact name of Registrant", text)
    end = datetime.strptime(period.group(1), "%B %d, %Y").date()
    doc: dict[str, Any] = {
        "entity": {"name": cover.group(1).strip() if cover else "unnamed registrant"},
        "period": {"end": end.isoformat()},
        "currency": "USD",
        "kind": "filing",
        "statements": [{"kind": "balance_sheet", "items": current}],
    }
    if prior and len(ends) > 1:
        doc["prior"] = {
            "period": {"end": ends[1].isoformat()},
            "statements": [{"kind": "balance_sheet", "items": prior}],
        }
    return [to_report(doc, "Markdown filing")]
