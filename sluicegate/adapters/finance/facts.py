"""Flatten a report into numbered facts, each pointing back at its line item.

Facts are what the model is shown and what every number in its narrative is
checked against; their ids (``F3``) and JSON pointers (``/statements/0/items/2``)
make each figure in the output traceable. Account facts are labelled by
position ("account 1"), never by account number or holder name.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from sluicegate.adapters.finance.models import Report, Statement
from sluicegate.adapters.finance.vocabulary import label_of


class Fact(NamedTuple):
    """One figure. A named tuple: built per line item at ingest (a frozen
    dataclass cost several times as much to construct)."""

    id: str
    period: str  # "current" | "prior"
    statement: str  # statement kind, or "account 1" ...
    concept: str
    label: str
    value: Decimal
    unit: str
    pointer: str  # JSON pointer into the posted report
    source: str | None = None  # the sender's own reference (XBRL tag, GL account)


def collect_facts(report: Report) -> list[Fact]:
    facts: list[Fact] = []

    def add(
        period: str,
        statement: str,
        concept: str,
        label: str,
        value: Decimal,
        unit: str,
        pointer: str,
        source: str | None = None,
    ) -> None:
        facts.append(
            Fact(
                f"F{len(facts) + 1}",
                period,
                statement,
                concept,
                label,
                value,
                unit,
                pointer,
                source,
            )
        )

    def statements(period: str, items: list[Statement], base: str) -> None:
        for s_index, statement in enumerate(items):
            for i_index, item in enumerate(statement.items):
                add(
                    period,
                    statement.kind,
                    item.concept,
                    item.label or label_of(item.concept),
                    item.value,
                    item.unit or report.currency,
                    f"{base}/statements/{s_index}/items/{i_index}",
                    item.source,
                )

    statements("current", report.statements, "")
    if report.prior is not None:
        statements("prior", report.prior.statements, "/prior")
    for a_index, account in enumerate(report.accounts):
        name, base = f"account {a_index + 1}", f"/accounts/{a_index}"
        cur = account.currency
        if account.opening is not None:
            add(
                "current",
                name,
                "opening_balance",
                "Opening balance",
                account.opening.amount,
                cur,
                f"{base}/opening/amount",
            )
        if account.closing is not None:
            add(
                "current",
                name,
                "closing_balance",
                "Closing balance",
                account.closing.amount,
                cur,
                f"{base}/closing/amount",
            )
        credits = sum((t.amount for t in account.transactions if t.amount > 0), Decimal(0))
        debits = sum((t.amount for t in account.transactions if t.amount < 0), Decimal(0))
        txs = f"{base}/transactions"
        add("current", name, "total_credits", "Total credits", credits, cur, txs)
        add("current", name, "total_debits", "Total debits", debits, cur, txs)
        add("current", name, "net_movement", "Net movement", credits + debits, cur, txs)
        add(
            "current",
            name,
            "transaction_count",
            "Number of transactions",
            Decimal(len(account.transactions)),
            "count",
            txs,
        )
    return facts


def index(facts: list[Fact]) -> dict[tuple[str, str], Fact]:
    """(concept, period) → the first statement fact of it (account facts excluded)."""
    found: dict[tuple[str, str], Fact] = {}
    for fact in facts:
        if not fact.statement.startswith("account"):
            found.setdefault((fact.concept, fact.period), fact)
    return found


def lookup(facts: list[Fact], concept: str, period: str = "current") -> Fact | None:
    """The first fact of ``concept`` in ``period`` from a statement (not an account)."""
    return index(facts).get((concept, period))


def format_amount(value: Decimal) -> str:
    """Exact, grouped, no exponent: ``-1,234,567.80``."""
    text = f"{value:,f}"
    return text
