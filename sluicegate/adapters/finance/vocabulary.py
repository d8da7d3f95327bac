"""The standard concept vocabulary every finance report is written in.

Filings tag facts with US-GAAP or IFRS elements; banks' ledgers use their own
account names. Reports posted to Sluicegate name one of the concepts below, so
checks and ratios are written once. Each concept lists the taxonomy tags that
map to it (first match wins when an importer reads a filing). A concept not in
this table may still be sent as an extension, ``ext:<name>``: it is kept and
shown, but no check or ratio uses it. docs/finance.md prints this table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

StatementKind = Literal["balance_sheet", "income_statement", "cash_flow"]
EXTENSION_PREFIX = "ext:"
_EXTENSION = re.compile(r"^ext:[a-z0-9_]{1,80}$")


@dataclass(frozen=True)
class Concept:
    name: str
    label: str
    statement: StatementKind
    us_gaap: tuple[str, ...] = ()
    ifrs: tuple[str, ...] = ()


def _c(
    name: str,
    label: str,
    statement: StatementKind,
    us_gaap: tuple[str, ...] = (),
    ifrs: tuple[str, ...] = (),
) -> Concept:
    return Concept(name, label, statement, us_gaap, ifrs)


CONCEPTS: dict[str, Concept] = {
    c.name: c
    for c in (
        # balance sheet
        _c(
            "cash",
            "Cash and cash equivalents",
            "balance_sheet",
            ("CashAndCashEquivalentsAtCarryingValue", "Cash"),
            ("CashAndCashEquivalents", "Cash"),
        ),
        _c(
            "marketable_securities",
            "Marketable securities",
            "balance_sheet",
            ("MarketableSecuritiesCurrent", "ShortTermInvestments"),
        ),
        _c(
            "receivables",
            "Receivables",
            "balance_sheet",
            ("AccountsReceivableNetCurrent",),
            ("TradeAndOtherCurrentReceivables",),
        ),
        _c("inventory", "Inventories", "balance_sheet", ("InventoryNet",), ("Inventories",)),
        _c(
            "current_assets",
            "Total current assets",
            "balance_sheet",
            ("AssetsCurrent",),
            ("CurrentAssets",),
        ),
        _c(
            "noncurrent_assets",
            "Total non-current assets",
            "balance_sheet",
            ("AssetsNoncurrent",),
            ("NoncurrentAssets",),
        ),
        _c(
            "property_plant_equipment",
            "Property, plant and equipment",
            "balance_sheet",
            ("PropertyPlantAndEquipmentNet",),
            ("PropertyPlantAndEquipment",),
        ),
        _c("total_assets", "Total assets", "balance_sheet", ("Assets",), ("Assets",)),
        _c(
            "current_liabilities",
            "Total current liabilities",
            "balance_sheet",
            ("LiabilitiesCurrent",),
            ("CurrentLiabilities",),
        ),
        _c(
            "noncurrent_liabilities",
            "Total non-current liabilities",
            "balance_sheet",
            ("LiabilitiesNoncurrent",),
            ("NoncurrentLiabilities",),
        ),
        _c(
            "short_term_debt",
            "Short-term debt",
            "balance_sheet",
            ("ShortTermBorrowings", "LongTermDebtCurrent", "CommercialPaper"),
            ("CurrentPortionOfLongtermBorrowings", "ShorttermBorrowings"),
        ),
        _c(
            "long_term_debt",
            "Long-term debt",
            "balance_sheet",
            ("LongTermDebtNoncurrent", "LongTermDebt"),
            ("LongtermBorrowings", "Borrowings"),
        ),
        _c(
            "total_liabilities",
            "Total liabilities",
            "balance_sheet",
            ("Liabilities",),
            ("Liabilities",),
        ),
        _c(
            "total_equity",
            "Total equity",
            "balance_sheet",
            (
                "StockholdersEquity",
                "StockholdersEquityIncludingPortionAttributableToNoncontrollingInterest",
            ),
            ("Equity",),
        ),
        _c(
            "liabilities_and_equity",
            "Total liabilities and equity",
            "balance_sheet",
            ("LiabilitiesAndStockholdersEquity",),
            ("EquityAndLiabilities",),
        ),
        # income statement
        _c(
            "revenue",
            "Revenue",
            "income_statement",
            ("Revenues", "RevenueFromContractWithCustomerExcludingAssessedTax", "SalesRevenueNet"),
            ("Revenue", "RevenueFromContractsWithCustomers"),
        ),
        _c(
            "cost_of_revenue",
            "Cost of revenue",
            "income_statement",
            ("CostOfRevenue", "CostOfGoodsAndServicesSold"),
            ("CostOfSales",),
        ),
        _c("gross_profit", "Gross profit", "income_statement", ("GrossProfit",), ("GrossProfit",)),
        _c(
            "operating_expenses",
            "Operating expenses",
            "income_statement",
            ("OperatingExpenses",),
            ("OperatingExpense",),
        ),
        _c(
            "operating_income",
            "Operating income",
            "income_statement",
            ("OperatingIncomeLoss",),
            ("ProfitLossFromOperatingActivities",),
        ),
        _c(
            "interest_expense",
            "Interest expense",
            "income_statement",
            ("InterestExpense",),
            ("InterestExpense", "FinanceCosts"),
        ),
        _c(
            "pretax_income",
            "Income before tax",
            "income_statement",
            (
                "IncomeLossFromContinuingOperationsBeforeIncomeTaxesExtraordinaryItemsNoncontrollingInterest",
                "IncomeLossFromContinuingOperationsBeforeIncomeTaxesMinorityInterestAndIncomeLossFromEquityMethodInvestments",
            ),
            ("ProfitLossBeforeTax",),
        ),
        _c(
            "income_tax",
            "Income tax expense",
            "income_statement",
            ("IncomeTaxExpenseBenefit",),
            ("IncomeTaxExpenseContinuingOperations",),
        ),
        _c(
            "net_income",
            "Net income",
            "income_statement",
            ("NetIncomeLoss", "ProfitLoss"),
            ("ProfitLoss",),
        ),
        _c(
            "eps_basic",
            "Earnings per share, basic",
            "income_statement",
            ("EarningsPerShareBasic",),
            ("BasicEarningsLossPerShare",),
        ),
        _c(
            "eps_diluted",
            "Earnings per share, diluted",
            "income_statement",
            ("EarningsPerShareDiluted",),
            ("DilutedEarningsLossPerShare",),
        ),
        # cash flow
        _c("cf_net_income", "Net income (cash flow statement)", "cash_flow"),
        _c(
            "operating_cash_flow",
            "Net cash from operating activities",
            "cash_flow",
            ("NetCashProvidedByUsedInOperatingActivities",),
            ("CashFlowsFromUsedInOperatingActivities", "CashFlowsFromUsedInOperations"),
        ),
        _c(
            "investing_cash_flow",
            "Net cash from investing activities",
            "cash_flow",
            ("NetCashProvidedByUsedInInvestingActivities",),
            ("CashFlowsFromUsedInInvestingActivities",),
        ),
        _c(
            "financing_cash_flow",
            "Net cash from financing activities",
            "cash_flow",
            ("NetCashProvidedByUsedInFinancingActivities",),
            ("CashFlowsFromUsedInFinancingActivities",),
        ),
        _c(
            "capital_expenditure",
            "Capital expenditure",
            "cash_flow",
            ("PaymentsToAcquirePropertyPlantAndEquipment",),
            ("PurchaseOfPropertyPlantAndEquipmentClassifiedAsInvestingActivities",),
        ),
        _c(
            "net_change_in_cash",
            "Net change in cash",
            "cash_flow",
            (
                "CashAndCashEquivalentsPeriodIncreaseDecrease",
                "CashCashEquivalentsRestrictedCashAndRestrictedCashEquivalentsPeriodIncreaseDecreaseIncludingExchangeRateEffect",
            ),
            ("IncreaseDecreaseInCashAndCashEquivalents",),
        ),
    )
}

_BY_TAG: dict[str, str] = {}
for _concept in CONCEPTS.values():
    for _tag in _concept.us_gaap:
        _BY_TAG.setdefault(f"us-gaap:{_tag}", _concept.name)
    for _tag in _concept.ifrs:
        _BY_TAG.setdefault(f"ifrs-full:{_tag}", _concept.name)


def concept_for_tag(prefix: str, local_name: str) -> str | None:
    """The vocabulary concept a taxonomy tag (``us-gaap``/``ifrs-full``) maps to."""
    return _BY_TAG.get(f"{prefix}:{local_name}")


def tag_priority(prefix: str, local_name: str) -> int:
    """Position of a tag in its concept's list: lower is preferred when several are tagged."""
    name = concept_for_tag(prefix, local_name)
    if name is None:
        return 1_000
    concept = CONCEPTS[name]
    tags = concept.us_gaap if prefix == "us-gaap" else concept.ifrs
    return tags.index(local_name)


def is_known(concept: str) -> bool:
    """A vocabulary concept or a well-formed ``ext:`` extension."""
    return concept in CONCEPTS or bool(_EXTENSION.match(concept))


def label_of(concept: str) -> str:
    known = CONCEPTS.get(concept)
    if known is not None:
        return known.label
    return concept.removeprefix(EXTENSION_PREFIX).replace("_", " ").capitalize()


def extension(text: str) -> str:
    """An ``ext:`` concept name derived from a free-text label."""
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:80] or "item"
    return EXTENSION_PREFIX + slug
