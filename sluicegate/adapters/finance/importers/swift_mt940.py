"""SWIFT MT940 statements → one bank-statement report per ``:20:`` statement.

Parsing is the maintained ``mt-940`` library's; the file is split at each
``:20:`` first because the library merges all statements of a file into one
balance set. ASN Bank's IBAN-in-reference variant is retried with its tag.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from typing import Any

import mt940

from sluicegate.adapters.finance.importers.common import ImportFailed, to_report
from sluicegate.adapters.finance.models import Report

# The library logs the raw :61: line (counterparty names, IBANs) when a pattern misses.
logging.getLogger("mt940").setLevel(logging.CRITICAL)
_STATEMENT_START = re.compile(r"^:20:", re.MULTILINE)


def split_statements(text: str) -> list[str]:
    starts = [m.start() for m in _STATEMENT_START.finditer(text)]
    if not starts:
        raise ImportFailed("MT940: no :20: statement found")
    return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]


def _parse(chunk: str) -> mt940.models.Transactions:
    try:
        parsed = mt940.models.Transactions()
        parsed.parse(chunk)
        return parsed
    except RuntimeError:
        tags: dict[int | str, mt940.tags.Tag] = {
            mt940.tags.StatementASNB.id: mt940.tags.StatementASNB()
        }
        parsed = mt940.models.Transactions(tags=tags)
        try:
            parsed.parse(chunk)
        except RuntimeError:
            raise ImportFailed("MT940: a :61: statement line could not be parsed") from None
        return parsed


def parse_mt940(data: bytes | str) -> list[mt940.models.Transactions]:
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    text = text.replace("\r\n", "\n")
    return [_parse(chunk) for chunk in split_statements(text)]


def _balance(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    return {"date": value.date.isoformat(), "amount": str(value.amount.amount)}


def import_mt940(data: bytes | str, entity: str = "account holder") -> list[Report]:
    reports = []
    for index, statement in enumerate(parse_mt940(data)):
        info = statement.data
        # :60F:/:62F: or, on a continuation page, the intermediate :60M:/:62M:.
        opening = info.get("final_opening_balance") or info.get("intermediate_opening_balance")
        closing = info.get("final_closing_balance") or info.get("intermediate_closing_balance")
        either = opening or closing
        currency = either.amount.currency if either is not None else None
        txs = []
        for tx in statement:
            d = tx.data
            amount: Decimal = d["amount"].amount
            currency = currency or d["amount"].currency
            item: dict[str, Any] = {"date": d["date"].isoformat(), "amount": str(amount)}
            details = d.get("transaction_details") or d.get("purpose")
            if details:
                item["description"] = str(details)[:2000]
            if d.get("applicant_name"):
                item["counterparty"] = str(d["applicant_name"])[:300]
            if d.get("applicant_iban"):
                item["counterparty_account"] = str(d["applicant_iban"])[:64]
            reference = d.get("customer_reference") or d.get("bank_reference")
            if reference:
                item["reference"] = str(reference)[:200]
            txs.append(item)
        dates = [t["date"] for t in txs] + [
            b["date"] for b in (_balance(opening), _balance(closing)) if b
        ]
        if not dates or currency is None:
            raise ImportFailed(f"MT940 statement {index + 1}: no balances or transactions")
        account: dict[str, Any] = {
            "account": str(info.get("account_identification") or "unknown")[:64],
            "currency": currency,
            "transactions": txs,
        }
        iban = account["account"].replace(" ", "")
        if re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}", iban):
            account["iban"] = iban
        if opening is not None:
            account["opening"] = _balance(opening)
        if closing is not None:
            account["closing"] = _balance(closing)
        number = info.get("statement_number")
        doc = {
            "entity": {"name": entity},
            "period": {"start": min(dates), "end": max(dates)},
            "currency": currency,
            "version": f"stmt-{number}" if number else f"stmt-{index + 1}",
            "kind": "bank_statement",
            "accounts": [account],
        }
        reports.append(to_report(doc, f"MT940 statement {index + 1}"))
    return reports
