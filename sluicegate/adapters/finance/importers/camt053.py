"""ISO 20022 camt.053 (BankToCustomerStatement, any version) → one report per ``Stmt``.

Read with lxml by local name, so .001.02 and .001.08 namespaces both work; a
Document without a ``Stmt`` (the schema requires one) is refused.
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

from sluicegate.adapters.finance.importers.common import ImportFailed, to_report
from sluicegate.adapters.finance.models import Report

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def _children(node: Any, name: str) -> list[Any]:
    return [c for c in node if isinstance(c.tag, str) and etree.QName(c).localname == name]


def _first(node: Any, *path: str) -> Any | None:
    current = node
    for name in path:
        found = _children(current, name) if current is not None else []
        current = found[0] if found else None
    return current


def _text(node: Any, *path: str) -> str | None:
    found = _first(node, *path)
    return found.text.strip() if found is not None and found.text else None


def _date(node: Any) -> str | None:
    value = _text(node, "Dt") or _text(node, "DtTm")
    return value[:10] if value else None


def _signed(node: Any) -> tuple[str, str]:
    amount = _first(node, "Amt")
    if amount is None or not amount.text:
        raise ImportFailed("camt.053: an entry or balance has no Amt")
    sign = "-" if _text(node, "CdtDbtInd") == "DBIT" else ""
    return sign + amount.text.strip(), amount.get("Ccy", "")


def statements(data: bytes) -> list[Any]:
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError:
        raise ImportFailed("camt.053: not well-formed XML") from None
    if not etree.QName(root).namespace or "camt.053" not in etree.QName(root).namespace:
        raise ImportFailed("camt.053: the document is not a camt.053 message")
    message = _first(root, "BkToCstmrStmt")
    found = _children(message, "Stmt") if message is not None else []
    if not found:
        raise ImportFailed("camt.053: the message has no Stmt (the schema requires at least one)")
    return found


def import_camt053(data: bytes, entity: str | None = None) -> list[Report]:
    reports = []
    for index, stmt in enumerate(statements(data)):
        acct = _first(stmt, "Acct")
        iban = _text(acct, "Id", "IBAN")
        account_id = iban or _text(acct, "Id", "Othr", "Id") or f"statement-{index + 1}"
        holder = _text(acct, "Ownr", "Nm")
        balances: dict[str, dict[str, str]] = {}
        currency = _text(acct, "Ccy")
        for bal in _children(stmt, "Bal"):
            code = _text(bal, "Tp", "CdOrPrtry", "Cd")
            amount, ccy = _signed(bal)
            currency = currency or ccy
            when = _date(_first(bal, "Dt"))
            if code in ("OPBD", "PRCD") and when and "opening" not in balances:
                balances["opening"] = {"date": when, "amount": amount}
            elif code == "CLBD" and when:
                balances["closing"] = {"date": when, "amount": amount}
        txs = []
        for entry in _children(stmt, "Ntry"):
            amount, ccy = _signed(entry)
            currency = currency or ccy
            booked = _date(_first(entry, "BookgDt")) or _date(_first(entry, "ValDt"))
            if booked is None:
                raise ImportFailed(f"camt.053 statement {index + 1}: an entry has no booking date")
            tx: dict[str, Any] = {"date": booked, "amount": amount}
            details = _first(entry, "NtryDtls", "TxDtls")
            info = _text(entry, "AddtlNtryInf")
            remittance = _text(details, "RmtInf", "Ustrd") if details is not None else None
            if remittance or info:
                tx["description"] = (remittance or info or "")[:2000]
            if details is not None:
                party = "Dbtr" if not amount.startswith("-") else "Cdtr"
                name = _text(details, "RltdPties", party, "Nm")
                if name:
                    tx["counterparty"] = name[:300]
                other = _text(details, "RltdPties", party + "Acct", "Id", "IBAN")
                if other:
                    tx["counterparty_account"] = other[:64]
                ref = _text(details, "Refs", "EndToEndId")
                if ref:
                    tx["reference"] = ref[:200]
            reference = _text(entry, "AcctSvcrRef")
            if reference and "reference" not in tx:
                tx["reference"] = reference[:200]
            txs.append(tx)
        dates = [t["date"] for t in txs] + [b["date"] for b in balances.values()]
        from_to = _first(stmt, "FrToDt")
        start = _text(from_to, "FrDtTm") if from_to is not None else None
        end = _text(from_to, "ToDtTm") if from_to is not None else None
        if not currency or not (dates or end):
            raise ImportFailed(f"camt.053 statement {index + 1}: no currency or dates")
        account: dict[str, Any] = {
            "account": account_id[:64],
            "currency": currency,
            "transactions": txs,
            **balances,
        }
        if iban:
            account["iban"] = iban
        if holder:
            account["holder"] = holder
        version = re.sub(r"[^A-Za-z0-9._-]", "-", _text(stmt, "Id") or f"stmt-{index + 1}")[:32]
        doc = {
            "entity": {"name": entity or holder or "account holder"},
            "period": {
                "start": min([*dates, *(d[:10] for d in (start,) if d)]),
                "end": max([*dates, *(d[:10] for d in (end,) if d)]),
            },
            "currency": currency,
            "version": version,
            "kind": "bank_statement",
            "accounts": [account],
        }
        reports.append(to_report(doc, f"camt.053 statement {index + 1}"))
    return reports
