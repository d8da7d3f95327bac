"""CSV → report through a declared column mapping (per channel, in the YAML file).

Two shapes: ``ledger`` (trial balance / GL export / statement lines: one row per
account, summed into vocabulary concepts; value = debit - credit when split)
and ``transactions`` (bank export: one row per booking, grouped into accounts;
amount = credit - debit when split). Row errors name the row and column.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sluicegate.adapters.finance.amounts import parse_amount
from sluicegate.adapters.finance.errors import ReportRejected, validate_report
from sluicegate.adapters.finance.models import Report
from sluicegate.adapters.finance.options import CsvMapping
from sluicegate.adapters.finance.vocabulary import CONCEPTS, extension, is_known


@dataclass(frozen=True)
class ReportMeta:
    """What the CSV itself does not say: who, when, which version."""

    entity: str | None = None
    period_end: date | None = None
    period_start: date | None = None
    prior_period_end: date | None = None
    currency: str | None = None
    version: str = "1"
    fiscal_year: int | None = None
    fiscal_period: str | None = None


class _Rows:
    def __init__(self, text: str, mapping: CsvMapping) -> None:
        reader = csv.reader(text.splitlines(), delimiter=mapping.delimiter)
        rows = [r for r in reader if any(cell.strip() for cell in r)]
        if not rows:
            raise _error("", "the CSV has no header row")
        self.header = [h.strip() for h in rows[0]]
        self.rows = rows[1:]
        self.mapping = mapping

    def column(self, name: str | None, what: str) -> int | None:
        if name is None:
            return None
        try:
            return self.header.index(name)
        except ValueError:
            raise _error(what, f"column {name!r} is not in the CSV header") from None


def _error(field: str, message: str) -> ReportRejected:
    return ReportRejected(
        422, "Invalid CSV", [{"field": field, "pointer": "", "message": message}], "invalid-csv"
    )


def _cell(row: list[str], index: int | None) -> str:
    if index is None or index >= len(row):
        return ""
    return row[index].strip()


def _amount(row: list[str], index: int | None, mapping: CsvMapping, where: str) -> Decimal | None:
    try:
        return parse_amount(
            _cell(row, index),
            decimal_separator=mapping.decimal_separator,
            thousands=mapping.thousands_separators,
        )
    except ValueError:
        raise _error(where, "not an amount") from None


def decode(data: bytes | str, mapping: CsvMapping) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode(mapping.encoding)
    except (UnicodeDecodeError, LookupError):
        raise _error("", f"the CSV is not valid {mapping.encoding}") from None


def read_csv(data: bytes | str, mapping: CsvMapping, meta: ReportMeta) -> list[Report]:
    rows = _Rows(decode(data, mapping), mapping)
    if mapping.mode == "ledger":
        return [_ledger(rows, meta)]
    return _transactions(rows, meta)


def _ledger(rows: _Rows, meta: ReportMeta) -> Report:
    m = rows.mapping
    if m.concept_column is None or (m.value_column is None and m.debit_column is None):
        raise _error("csv", "ledger mode needs concept_column and value_column (or debit/credit)")
    c_concept = rows.column(m.concept_column, "csv.concept_column")
    c_value = rows.column(m.value_column, "csv.value_column")
    c_prior = rows.column(m.prior_value_column, "csv.prior_value_column")
    c_debit = rows.column(m.debit_column, "csv.debit_column")
    c_credit = rows.column(m.credit_column, "csv.credit_column")
    c_statement = rows.column(m.statement_column, "csv.statement_column")
    by_label = {k.casefold(): v for k, v in m.concept_map.items()}
    units = {k.casefold(): v for k, v in m.row_units.items()}
    sums: dict[str, dict[tuple[str, str, str], Decimal]] = {"current": {}, "prior": {}}
    sources: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for number, row in enumerate(rows.rows, start=2):
        label = _cell(row, c_concept)
        where = f"row {number}"
        concept = by_label.get(label.casefold()) or (label if label in CONCEPTS else None)
        if concept is None:
            if m.unmapped == "error":
                raise _error(f"{where}.{m.concept_column}", "account not in csv.concept_map")
            concept = extension(label)
        if not is_known(concept):
            raise _error("csv.concept_map", "maps to an unknown concept")
        statement = _cell(row, c_statement) or (
            CONCEPTS[concept].statement if concept in CONCEPTS else m.default_statement
        )
        unit = units.get(label.casefold())
        scale = Decimal(1) if unit else m.scale
        if c_value is not None:
            current = _amount(row, c_value, m, f"{where}.{m.value_column}")
        else:
            debit = _amount(row, c_debit, m, f"{where}.{m.debit_column}") or Decimal(0)
            credit = _amount(row, c_credit, m, f"{where}.{m.credit_column}") or Decimal(0)
            current = debit - credit
        key = (statement, concept, unit or "")
        sources[key].append(label)
        for period, value in (
            ("current", current),
            ("prior", _amount(row, c_prior, m, f"{where}.{m.prior_value_column}")),
        ):
            if value is not None:
                bucket = sums[period]
                bucket[key] = bucket.get(key, Decimal(0)) + value * scale
    if meta.period_end is None:
        raise _error("period_end", "the period end date is required for a ledger CSV")

    def statements(period: str) -> list[dict[str, Any]]:
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for (kind, concept, unit), value in sums[period].items():
            item: dict[str, Any] = {
                "concept": concept,
                "value": str(value),
                "source": "csv: " + "; ".join(sources[(kind, concept, unit)])[:480],
            }
            if unit:
                item["unit"] = unit
            grouped[kind].append(item)
        return [{"kind": kind, "items": items} for kind, items in grouped.items()]

    doc: dict[str, Any] = {
        "entity": {"name": meta.entity or m.entity_name or "unnamed entity"},
        "period": _period(meta.period_start, meta.period_end, meta),
        "currency": meta.currency or m.currency,
        "version": meta.version,
        "kind": "ledger",
        "statements": statements("current"),
    }
    if sums["prior"]:
        if meta.prior_period_end is None:
            raise _error("prior_period_end", "a prior value column needs the prior period end")
        doc["prior"] = {
            "period": {"end": meta.prior_period_end.isoformat()},
            "statements": statements("prior"),
        }
    return validate_report(doc)


def _period(start: date | None, end: date, meta: ReportMeta) -> dict[str, Any]:
    period: dict[str, Any] = {"end": end.isoformat()}
    if start is not None:
        period["start"] = start.isoformat()
    if meta.fiscal_year is not None:
        period["fiscal_year"] = meta.fiscal_year
    if meta.fiscal_period is not None:
        period["fiscal_period"] = meta.fiscal_period
    return period


def _transactions(rows: _Rows, meta: ReportMeta) -> list[Report]:
    m = rows.mapping
    if m.date_column is None or (m.amount_column is None and m.debit_column is None):
        raise _error(
            "csv", "transactions mode needs date_column and amount_column (or debit/credit)"
        )
    c_date = rows.column(m.date_column, "csv.date_column")
    c_amount = rows.column(m.amount_column, "csv.amount_column")
    c_debit = rows.column(m.debit_column, "csv.debit_column")
    c_credit = rows.column(m.credit_column, "csv.credit_column")
    c_desc = rows.column(m.description_column, "csv.description_column")
    c_ref = rows.column(m.reference_column, "csv.reference_column")
    c_party = rows.column(m.counterparty_column, "csv.counterparty_column")
    c_account = rows.column(m.account_column, "csv.account_column")
    c_balance = rows.column(m.balance_column, "csv.balance_column")
    c_currency = rows.column(m.currency_column, "csv.currency_column")
    accounts: dict[str, dict[str, Any]] = {}
    for number, row in enumerate(rows.rows, start=2):
        where = f"row {number}"
        try:
            booked = datetime.strptime(_cell(row, c_date), m.date_format).date()
        except ValueError:
            raise _error(
                f"{where}.{m.date_column}", f"not a date in format {m.date_format}"
            ) from None
        if c_amount is not None:
            amount = _amount(row, c_amount, m, f"{where}.{m.amount_column}")
        else:
            debit = _amount(row, c_debit, m, f"{where}.{m.debit_column}") or Decimal(0)
            credit = _amount(row, c_credit, m, f"{where}.{m.credit_column}") or Decimal(0)
            amount = credit - debit
        if amount is None:
            raise _error(f"{where}.{m.amount_column}", "amount is empty")
        account_id = _cell(row, c_account) or m.account or "1"
        acct = accounts.setdefault(account_id, {"rows": [], "currency": _cell(row, c_currency)})
        tx: dict[str, Any] = {"date": booked.isoformat(), "amount": str(amount * m.scale)}
        for key, index in (
            ("description", c_desc),
            ("reference", c_ref),
            ("counterparty", c_party),
        ):
            if _cell(row, index):
                tx[key] = _cell(row, index)
        balance = (
            _amount(row, c_balance, m, f"{where}.{m.balance_column}")
            if c_balance is not None
            else None
        )
        acct["rows"].append((tx, amount * m.scale, balance))
    reports = []
    for account_id, acct in accounts.items():
        txs = [r[0] for r in acct["rows"]]
        dates = sorted(date.fromisoformat(t["date"]) for t in txs)
        start, end = meta.period_start or dates[0], meta.period_end or dates[-1]
        account: dict[str, Any] = {
            "account": account_id[:64],
            "currency": acct["currency"] or meta.currency or m.currency,
            "transactions": sorted(txs, key=lambda t: t["date"]),
        }
        balances = _balances(acct["rows"])
        if balances is not None:
            account["opening"] = {"date": start.isoformat(), "amount": str(balances[0])}
            account["closing"] = {"date": end.isoformat(), "amount": str(balances[1])}
        doc = {
            "entity": {"name": meta.entity or m.entity_name or "account holder"},
            "period": _period(start, end, meta),
            "currency": account["currency"],
            "version": meta.version,
            "kind": "bank_statement",
            "accounts": [account],
        }
        reports.append(validate_report(doc))
    return reports


def _balances(
    rows: list[tuple[dict[str, Any], Decimal, Decimal | None]],
) -> tuple[Decimal, Decimal] | None:
    """Opening and closing from running balances, whichever file order they follow."""
    if not rows or any(r[2] is None for r in rows):
        return None
    for ordered in (rows, rows[::-1]):
        amounts = [r[1] for r in ordered]
        balances = [r[2] for r in ordered]
        if all(balances[i] == balances[i - 1] + amounts[i] for i in range(1, len(ordered))):  # type: ignore[operator]
            opening = balances[0] - amounts[0]  # type: ignore[operator]
            return opening, balances[-1]  # type: ignore[return-value]
    return None
