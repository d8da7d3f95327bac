"""Column mappings for CSV exports whose header identifies them.

A channel's own mapping (``adapters.<name>.options.csv``) always wins on the
server; the CLI uses these when a file's header matches one, so common bank
exports push with no configuration.
"""

from __future__ import annotations

import csv
import re
from datetime import date, datetime
from decimal import Decimal

from sluicegate.adapters.finance.importers.common import ImportFailed
from sluicegate.adapters.finance.importers.csv_mapping import ReportMeta, read_csv
from sluicegate.adapters.finance.models import Report
from sluicegate.adapters.finance.options import CsvMapping

PRESETS: dict[str, tuple[tuple[str, ...], CsvMapping]] = {
    "schwab-checking": (
        ("Date", "Status", "Type", "CheckNumber", "Description", "Withdrawal", "Deposit"),
        CsvMapping(
            mode="transactions",
            date_column="Date",
            date_format="%m/%d/%Y",
            debit_column="Withdrawal",
            credit_column="Deposit",
            description_column="Description",
            reference_column="CheckNumber",
            balance_column="RunningBalance",
            currency="USD",
            account="checking",
        ),
    ),
    "ubs-ch-fr": (
        ("Produit", "Monn.", "Date de valeur", "Débit", "Crédit", "Solde"),
        CsvMapping(
            mode="transactions",
            delimiter=";",
            date_column="Date de valeur",
            date_format="%d.%m.%Y",
            debit_column="Débit",
            credit_column="Crédit",
            description_column="Description 1",
            counterparty_column="Description 2",
            reference_column="N° de transaction",
            account_column="Produit",
            currency_column="Monn.",
            balance_column="Solde",
        ),
    ),
    "xero-journal": (
        ("JournalNumber", "JournalDate", "AccountName", "NetAmount"),
        CsvMapping(
            mode="transactions",
            date_column="JournalDate",
            date_format="%d-%b-%y",
            amount_column="NetAmount",
            account_column="AccountName",
            reference_column="Reference",
            description_column="Description",
            currency="USD",
        ),
    ),
    "edgartools-statement": (
        ("Category",),
        CsvMapping(
            mode="ledger",
            concept_column="Category",
            scale=Decimal(1_000_000),
            currency="USD",
            concept_map={
                "Cash and cash equivalents": "cash",
                "Marketable securities (current)": "marketable_securities",
                "Accounts receivable, net": "receivables",
                "Inventories": "inventory",
                "Total current assets": "current_assets",
                "Total non-current assets": "noncurrent_assets",
                "Property, plant and equipment, net": "property_plant_equipment",
                "Total assets": "total_assets",
                "Commercial paper": "short_term_debt",
                "Term debt (current)": "short_term_debt",
                "Total current liabilities": "current_liabilities",
                "Term debt (non-current)": "long_term_debt",
                "Total non-current liabilities": "noncurrent_liabilities",
                "Total liabilities": "total_liabilities",
                "Total shareholders' equity": "total_equity",
                "Total liabilities and shareholders' equity": "liabilities_and_equity",
            },
            row_units={"Common stock, shares issued": "shares"},
        ),
    ),
}


def _header(text: str, delimiter: str) -> list[str]:
    first = text.splitlines()[0] if text else ""
    return [h.strip() for h in next(csv.reader([first], delimiter=delimiter), [])]


def match_preset(text: str) -> tuple[str, CsvMapping] | None:
    for name, (required, mapping) in PRESETS.items():
        header = _header(text, mapping.delimiter)
        if all(col in header for col in required):
            return name, mapping
    return None


def _column_date(name: str) -> date | None:
    cleaned = re.sub(r"\.", "", name).strip()
    for fmt in ("%b %d, %Y", "%B %d, %Y", "%Y-%m-%d", "%d %b %Y"):
        try:
            return datetime.strptime(cleaned, fmt).date()
        except ValueError:
            continue
    return None


def import_csv(data: bytes, entity: str | None = None) -> list[Report]:
    text = data.decode("utf-8-sig", errors="replace")
    found = match_preset(text)
    if found is None:
        raise ImportFailed(
            "CSV: header matches no known export; post it to a channel with a csv mapping"
        )
    name, mapping = found
    if name == "edgartools-statement":
        header = _header(text, ",")
        ends = [_column_date(h) for h in header[1:3]]
        if not ends or ends[0] is None:
            raise ImportFailed("CSV: the statement columns are not dates")
        mapping = mapping.model_copy(
            update={
                "value_column": header[1],
                "prior_value_column": header[2] if len(header) > 2 else None,
            }
        )
        meta = ReportMeta(
            entity=entity or "unnamed entity",
            period_end=ends[0],
            prior_period_end=ends[1] if len(ends) > 1 else None,
        )
    else:
        meta = ReportMeta(entity=entity)
    return read_csv(text, mapping, meta)
