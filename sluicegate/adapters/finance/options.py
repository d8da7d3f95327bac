"""The finance channel's options (``adapters.<name>.options`` in the YAML file).

Core keeps adapter options free-form; this model validates them when the
adapter is built, so a typo fails start-up with the field's path
(``adapters.finance.options.checks.tolerance``) instead of being ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sluicegate.adapters.finance.models import Money
from sluicegate.adapters.finance.vocabulary import StatementKind


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChecksOptions(_Options):
    tolerance: Money = Field(
        default=Decimal("0.01"), ge=0, description="absolute difference a check may show"
    )
    relative_tolerance: Money = Field(
        default=Decimal("0"),
        ge=0,
        description="extra allowance as a fraction of the expected value",
    )
    reject_on_failure: bool = Field(
        default=False, description="answer 422 (nothing stored) when a check fails"
    )


class BulkOptions(_Options):
    max_line_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_body_bytes: int = Field(default=4 * 1024**3, ge=1024)
    batch_size: int = Field(default=500, ge=1, le=10_000)
    # Two: a helper's share of a line (parse, validate, analyse) costs about
    # 1.7x the server's (store, answer), so with one helper the server waited
    # on it; two keep a two-core machine busy (measured, benchmarks/finance_bulk.py).
    processes: int = Field(
        default=2,
        ge=0,
        le=16,
        description="helper processes preparing lines while the server stores (0: in-process)",
    )


class CsvMapping(_Options):
    """How one channel's CSV export (trial balance, GL or statement lines) becomes a report."""

    mode: Literal["ledger", "transactions"] = "ledger"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = "utf-8-sig"
    decimal_separator: Literal[".", ","] = "."
    thousands_separators: str = ",' "
    scale: Money = Field(
        default=Decimal(1), description="multiplier for every value (1000000 for 'USD millions')"
    )
    currency: str | None = None
    entity_name: str | None = None
    # ledger mode
    concept_column: str | None = Field(
        default=None, description="column naming the account or concept"
    )
    value_column: str | None = None
    prior_value_column: str | None = None
    debit_column: str | None = None
    credit_column: str | None = None
    statement_column: str | None = None
    default_statement: StatementKind = "balance_sheet"
    concept_map: dict[str, str] = Field(default_factory=dict, description="account -> concept")
    unmapped: Literal["extension", "error"] = "extension"
    row_units: dict[str, str] = Field(
        default_factory=dict,
        description="account -> unit for rows that are not money (never scaled)",
    )
    # transactions mode
    date_column: str | None = None
    date_format: str = "%Y-%m-%d"
    amount_column: str | None = None
    description_column: str | None = None
    reference_column: str | None = None
    counterparty_column: str | None = None
    account_column: str | None = None
    balance_column: str | None = None
    currency_column: str | None = None
    account: str | None = Field(default=None, description="account id when no column has it")


class FinanceOptions(_Options):
    checks: ChecksOptions = Field(default_factory=ChecksOptions)
    bulk: BulkOptions = Field(default_factory=BulkOptions)
    csv: CsvMapping | None = None


class OptionsError(ValueError):
    """Invalid adapter options; the message names each field path."""


def parse_options(raw: Mapping[str, object] | None, channel: str = "finance") -> FinanceOptions:
    try:
        return FinanceOptions.model_validate(dict(raw or {}))
    except ValidationError as exc:
        lines = [
            f"adapters.{channel}.options."
            + ".".join(str(p) for p in err["loc"])
            + f": {err['msg']}"
            for err in exc.errors()
        ]
        raise OptionsError("; ".join(lines)) from None
