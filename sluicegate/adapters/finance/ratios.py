"""Ratios and period-over-period changes, computed deterministically in Decimal.

The model never computes a number: it is handed these, already rounded the
way they will be printed (percentages to 0.1, multiples to 0.01).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Literal, NamedTuple

from sluicegate.adapters.finance.facts import Fact, index

Unit = Literal["percent", "times"]
_PERCENT = Decimal("0.1")
_TIMES = Decimal("0.01")


class Ratio(NamedTuple):
    """One ratio or change (a named tuple: cheap to build on the ingest path)."""

    id: str
    name: str
    label: str
    value: Decimal  # in ``unit``: 12.5 means 12.5 % or 12.5x
    unit: Unit
    facts: tuple[str, ...]

    @property
    def display(self) -> str:
        return f"{self.value}%" if self.unit == "percent" else f"{self.value}x"


_DEFINITIONS: tuple[tuple[str, str, str, str, Unit], ...] = (
    ("current_ratio", "Current ratio", "current_assets", "current_liabilities", "times"),
    ("debt_to_equity", "Liabilities to equity", "total_liabilities", "total_equity", "times"),
    ("debt_to_assets", "Liabilities to assets", "total_liabilities", "total_assets", "percent"),
    ("gross_margin", "Gross margin", "gross_profit", "revenue", "percent"),
    ("operating_margin", "Operating margin", "operating_income", "revenue", "percent"),
    ("net_margin", "Net margin", "net_income", "revenue", "percent"),
    ("return_on_equity", "Return on equity", "net_income", "total_equity", "percent"),
)
_GROWTH = (
    "revenue",
    "net_income",
    "operating_income",
    "total_assets",
    "total_equity",
    "total_liabilities",
    "cash",
    "operating_cash_flow",
)


def _scaled(numerator: Decimal, denominator: Decimal, unit: Unit) -> Decimal | None:
    try:
        if denominator == 0:
            return None
        raw = numerator / denominator
    except InvalidOperation:
        return None
    if unit == "percent":
        return (raw * 100).quantize(_PERCENT, rounding=ROUND_HALF_EVEN)
    return raw.quantize(_TIMES, rounding=ROUND_HALF_EVEN)


def compute_ratios(
    facts: list[Fact], known: dict[tuple[str, str], Fact] | None = None
) -> list[Ratio]:
    """Every ratio whose inputs are present; ``known`` is ``index(facts)`` when the
    caller has it already."""
    ratios: list[Ratio] = []
    known = index(facts) if known is None else known

    def lookup(_: list[Fact], concept: str, period: str = "current") -> Fact | None:
        return known.get((concept, period))

    def add(name: str, label: str, value: Decimal | None, unit: Unit, used: list[Fact]) -> None:
        if value is not None:
            ratios.append(
                Ratio(f"R{len(ratios) + 1}", name, label, value, unit, tuple(f.id for f in used))
            )

    for name, label, top, bottom, unit in _DEFINITIONS:
        num, den = lookup(facts, top), lookup(facts, bottom)
        if name == "gross_margin" and num is None:
            continue  # derived below from cost of revenue when gross profit is absent
        if num is not None and den is not None:
            add(name, label, _scaled(num.value, den.value, unit), unit, [num, den])
    if lookup(facts, "gross_profit") is None:
        revenue, cost = lookup(facts, "revenue"), lookup(facts, "cost_of_revenue")
        if revenue is not None and cost is not None:
            value = _scaled(revenue.value - abs(cost.value), revenue.value, "percent")
            add("gross_margin", "Gross margin", value, "percent", [revenue, cost])
    for concept in _GROWTH:
        current, prior = lookup(facts, concept), lookup(facts, concept, "prior")
        if current is not None and prior is not None:
            value = _scaled(current.value - prior.value, abs(prior.value), "percent")
            add(
                f"{concept}_growth",
                f"{current.label} change vs prior period",
                value,
                "percent",
                [current, prior],
            )
    return ratios
