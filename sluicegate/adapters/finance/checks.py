"""Accounting identities checked in Decimal arithmetic with a configured tolerance.

A failed check is reported on the job (and, if the channel says so, rejects
the report); a check whose inputs are missing is ``skipped``, never guessed.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Literal, NamedTuple

from sluicegate.adapters.finance.facts import Fact, index
from sluicegate.adapters.finance.models import Report
from sluicegate.adapters.finance.options import ChecksOptions

Status = Literal["pass", "fail", "skipped"]


class Check(NamedTuple):
    """One check's outcome (a named tuple: cheap to build on the ingest path)."""

    name: str
    description: str
    status: Status
    expected: Decimal | None = None
    actual: Decimal | None = None
    difference: Decimal | None = None
    tolerance: Decimal | None = None
    facts: tuple[str, ...] = ()


def _compare(
    name: str,
    description: str,
    expected: Decimal,
    actual: Decimal,
    facts: list[Fact],
    options: ChecksOptions,
) -> Check:
    allowed = options.tolerance + abs(expected) * options.relative_tolerance
    difference = actual - expected
    status: Status = "pass" if abs(difference) <= allowed else "fail"
    return Check(
        name, description, status, expected, actual, difference, allowed, tuple(f.id for f in facts)
    )


def _skipped(name: str, description: str) -> Check:
    return Check(name, description, "skipped")


def run_checks(
    report: Report,
    facts: list[Fact],
    options: ChecksOptions,
    known: dict[tuple[str, str], Fact] | None = None,
) -> list[Check]:
    """All checks; ``known`` is ``index(facts)`` when the caller has it already."""
    checks: list[Check] = []
    if report.statements:
        checks.extend(_statement_checks(report, index(facts) if known is None else known, options))
    for position in range(1, len(report.accounts) + 1):
        name = f"account {position}"
        desc = f"{name}: opening balance + sum of transactions = closing balance"
        mine = [f for f in facts if f.statement == name]
        opening = next((f for f in mine if f.concept == "opening_balance"), None)
        closing = next((f for f in mine if f.concept == "closing_balance"), None)
        movement = next(f for f in mine if f.concept == "net_movement")
        if opening is None or closing is None:
            checks.append(_skipped(f"{name}.balance_continuity", desc))
        else:
            checks.append(
                _compare(
                    f"{name}.balance_continuity",
                    desc,
                    closing.value,
                    opening.value + movement.value,
                    [opening, movement, closing],
                    options,
                )
            )
    return checks


def _statement_checks(
    report: Report, known: dict[tuple[str, str], Fact], options: ChecksOptions
) -> list[Check]:
    def get(concept: str, period: str = "current") -> Fact | None:
        return known.get((concept, period))

    out: list[Check] = []
    assets, liabilities, equity = get("total_assets"), get("total_liabilities"), get("total_equity")
    both = get("liabilities_and_equity")
    desc = "balance sheet: total assets = total liabilities + total equity"
    if assets and liabilities and equity:
        out.append(
            _compare(
                "assets_equal_liabilities_plus_equity",
                desc,
                assets.value,
                liabilities.value + equity.value,
                [assets, liabilities, equity],
                options,
            )
        )
    elif assets and both:
        out.append(
            _compare(
                "assets_equal_liabilities_plus_equity",
                desc,
                assets.value,
                both.value,
                [assets, both],
                options,
            )
        )
    else:
        out.append(_skipped("assets_equal_liabilities_plus_equity", desc))
    for total, parts, name in (
        ("total_assets", ("current_assets", "noncurrent_assets"), "assets_subtotals"),
        (
            "total_liabilities",
            ("current_liabilities", "noncurrent_liabilities"),
            "liabilities_subtotals",
        ),
    ):
        whole, a, b = get(total), get(parts[0]), get(parts[1])
        if whole and a and b:
            out.append(
                _compare(
                    name,
                    f"{total} = {parts[0]} + {parts[1]}",
                    whole.value,
                    a.value + b.value,
                    [whole, a, b],
                    options,
                )
            )
    income, cash_flow = get("net_income"), get("cf_net_income")
    desc = "net income ties from the income statement to the cash flow statement"
    if income and cash_flow:
        out.append(
            _compare(
                "net_income_ties_to_cash_flow",
                desc,
                income.value,
                cash_flow.value,
                [income, cash_flow],
                options,
            )
        )
    else:
        out.append(_skipped("net_income_ties_to_cash_flow", desc))
    # Cash rolls forward only when the prior period ends the day before this one starts.
    start, prior = report.period.start, report.prior
    adjacent = (
        start is not None and prior is not None and prior.period.end == start - timedelta(days=1)
    )
    opening, change, closing = get("cash", "prior"), get("net_change_in_cash"), get("cash")
    if adjacent and opening and change and closing:
        out.append(
            _compare(
                "cash_roll_forward",
                "prior cash + net change in cash = cash",
                closing.value,
                opening.value + change.value,
                [opening, change, closing],
                options,
            )
        )
    return out
