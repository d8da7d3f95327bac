"""OFX (1.x SGML and 2.x XML) bank statements → one report per account, via ``ofxparse``.

Investment statements (positions, trades) carry no bank balance; they are
imported as their cash movements with the investment cash balance as closing.
Malformed values (a ``$`` in an amount, an impossible date) refuse the file.
"""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

from ofxparse import OfxParser
from ofxparse.ofxparse import OfxParserException

from sluicegate.adapters.finance.importers.common import ImportFailed, to_report
from sluicegate.adapters.finance.models import Report


def import_ofx(data: bytes, entity: str = "account holder") -> list[Report]:
    try:
        ofx = OfxParser.parse(io.BytesIO(data), fail_fast=True)
    except (OfxParserException, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise ImportFailed(f"OFX: the file could not be parsed ({type(exc).__name__})") from None
    reports = []
    for index, account in enumerate(getattr(ofx, "accounts", []) or []):
        statement = account.statement
        currency = (getattr(statement, "currency", None) or "USD").upper()
        txs = []
        for tx in statement.transactions:
            raw = getattr(tx, "amount", None)
            if raw is None:
                raw = getattr(tx, "total", None)
            amount = Decimal(str(raw)) if raw is not None else None
            if amount is None:
                continue  # investment trades without a cash amount
            when = getattr(tx, "date", None) or getattr(tx, "tradeDate", None)
            if when is None:
                continue
            item: dict[str, Any] = {"date": when.date().isoformat(), "amount": str(amount)}
            text = getattr(tx, "memo", None) or getattr(tx, "payee", None)
            if text:
                item["description"] = str(text)[:2000]
            if getattr(tx, "payee", None):
                item["counterparty"] = str(tx.payee)[:300]
            if getattr(tx, "id", None):
                item["reference"] = str(tx.id)[:200]
            txs.append(item)
        end_dt = getattr(statement, "end_date", None) or getattr(statement, "balance_date", None)
        start_dt = getattr(statement, "start_date", None)
        dates = [t["date"] for t in txs]
        end = end_dt.date().isoformat() if end_dt else max(dates)
        start = start_dt.date().isoformat() if start_dt else (min(dates) if dates else end)
        acct: dict[str, Any] = {
            "account": str(account.account_id or f"account-{index + 1}")[:64],
            "currency": currency,
            "transactions": txs,
        }
        balance = getattr(statement, "balance", None)
        if balance is None and getattr(statement, "available_cash", None) is not None:
            balance = statement.available_cash
        if balance is not None:
            acct["closing"] = {"date": end, "amount": str(Decimal(str(balance)))}
        doc = {
            "entity": {"name": entity},
            "period": {"start": min(start, end), "end": end},
            "currency": currency,
            "kind": "bank_statement",
            "accounts": [acct],
        }
        reports.append(to_report(doc, f"OFX account {index + 1}"))
    if not reports:
        raise ImportFailed("OFX: no statement in the file")
    return reports
