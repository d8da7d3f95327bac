"""The finance report as posted by a bank's ETL job: pydantic, Decimal only.

Money never passes through a float: values are decimal strings (or JSON
integers; the routes parse JSON numbers with ``parse_float=Decimal``), and a
Python ``float`` handed to these models is refused outright. Field errors
carry their path (``statements.0.items.3.value``) so a sender can fix the
exact field.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from sluicegate.adapters.finance.vocabulary import StatementKind, is_known

_CURRENCY = re.compile(r"^[A-Z]{3}$")


def _no_float(value: Any) -> Any:
    """Refuse binary floats (and booleans) before pydantic coerces them to Decimal."""
    if isinstance(value, bool | float):
        raise ValueError('must be a decimal string such as "1234.56", not a binary float')
    if isinstance(value, str):
        cleaned = value.strip()
        if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", cleaned):
            raise ValueError('must be a plain decimal string such as "-1234.56"')
        return cleaned
    return value


Money = Annotated[
    Decimal,
    BeforeValidator(_no_float),
    Field(allow_inf_nan=False, description='decimal string, e.g. "1234.56"'),
]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class Entity(Model):
    """The reporting entity. ``tax_id`` is sensitive; LEI and CIK are public registry ids."""

    name: str = Field(min_length=1, max_length=300)
    lei: str | None = Field(default=None, pattern=r"^[A-Z0-9]{18}[0-9]{2}$")
    cik: str | None = Field(default=None, pattern=r"^[0-9]{1,10}$")
    tax_id: str | None = Field(default=None, max_length=64)


class Period(Model):
    start: date | None = None
    end: date
    fiscal_year: int | None = Field(default=None, ge=1900, le=2200)
    fiscal_period: str | None = Field(
        default=None, pattern=r"^(FY|Q[1-4]|H[12]|M(0?[1-9]|1[0-2]))$"
    )

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.start is not None and self.start > self.end:
            raise ValueError("period.start must not be after period.end")
        return self


class LineItem(Model):
    concept: str = Field(description="vocabulary concept (docs/finance.md) or ext:<name>")
    value: Money
    unit: str | None = Field(default=None, description="ISO 4217 code, 'shares' or 'pure'")
    label: str | None = Field(default=None, max_length=300)
    source: str | None = Field(default=None, max_length=500, description="e.g. us-gaap:Assets")

    @field_validator("concept")
    @classmethod
    def _known(cls, concept: str) -> str:
        if not is_known(concept):
            raise ValueError("unknown concept; use the vocabulary in docs/finance.md or ext:<name>")
        return concept


class Statement(Model):
    kind: StatementKind
    items: list[LineItem] = Field(min_length=1)


class Transaction(Model):
    """One booked movement: ``amount`` is signed (credit positive, debit negative)."""

    date: date
    amount: Money
    description: str | None = Field(default=None, max_length=2000)
    counterparty: str | None = Field(default=None, max_length=300)
    counterparty_account: str | None = Field(default=None, max_length=64)
    reference: str | None = Field(default=None, max_length=200)


class Balance(Model):
    date: date
    amount: Money


class AccountStatement(Model):
    """A bank account's statement. ``account``, ``iban`` and ``holder`` are sensitive."""

    account: str = Field(min_length=1, max_length=64)
    iban: str | None = Field(default=None, pattern=r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}$")
    holder: str | None = Field(default=None, max_length=300)
    currency: str
    opening: Balance | None = None
    closing: Balance | None = None
    transactions: list[Transaction] = Field(default_factory=list)

    @field_validator("currency")
    @classmethod
    def _iso(cls, value: str) -> str:
        return _currency(value)


class PriorPeriod(Model):
    period: Period
    statements: list[Statement] = Field(min_length=1)


class Report(Model):
    """One report: statements (filings, ledgers) and/or account statements (bank files)."""

    entity: Entity
    period: Period
    currency: str
    version: str = Field(default="1", min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+$")
    statements: list[Statement] = Field(default_factory=list)
    accounts: list[AccountStatement] = Field(default_factory=list)
    prior: PriorPeriod | None = None
    kind: Literal["filing", "ledger", "bank_statement"] = "filing"

    @field_validator("currency")
    @classmethod
    def _iso(cls, value: str) -> str:
        return _currency(value)

    @model_validator(mode="after")
    def _has_content(self) -> Report:
        if not self.statements and not self.accounts:
            raise ValueError("a report needs at least one statement or account")
        return self


def _currency(value: str) -> str:
    if not _CURRENCY.match(value):
        raise ValueError("must be an ISO 4217 code such as 'USD'")
    return value
