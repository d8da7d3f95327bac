"""Everything computed from a report, in one deterministic pass.

The same function runs in the worker to build the prompt (see
``workitem.complete``) and at render to recompute the grounding report, so
what the model saw and what the output is checked against can never drift
apart. At accept time only the checks are needed (to decide rejection):
:func:`accept_checks` skips the ratios.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sluicegate.adapters.finance.checks import Check, run_checks
from sluicegate.adapters.finance.facts import Fact, collect_facts, format_amount, index
from sluicegate.adapters.finance.grounding import Candidate, candidates
from sluicegate.adapters.finance.models import Report
from sluicegate.adapters.finance.options import ChecksOptions
from sluicegate.adapters.finance.ratios import Ratio, compute_ratios


@dataclass(frozen=True)
class Analysis:
    facts: list[Fact]
    ratios: list[Ratio]
    checks: list[Check]

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]


def analyse(report: Report, options: ChecksOptions) -> Analysis:
    facts = collect_facts(report)
    known = index(facts)
    return Analysis(facts, compute_ratios(facts, known), run_checks(report, facts, options, known))


def accept_checks(report: Report, options: ChecksOptions) -> list[Check]:
    """The accounting checks alone: what accepting a report needs (no ratios, no text)."""
    facts = collect_facts(report)
    return run_checks(report, facts, options, index(facts))


def report_years(report: Report) -> set[int]:
    years = {report.period.end.year}
    if report.period.start is not None:
        years.add(report.period.start.year)
    if report.period.fiscal_year is not None:
        years.add(report.period.fiscal_year)
    if report.prior is not None:
        years.add(report.prior.period.end.year)
        if report.prior.period.fiscal_year is not None:
            years.add(report.prior.period.fiscal_year)
    for account in report.accounts:
        for balance in (account.opening, account.closing):
            if balance is not None:
                years.add(balance.date.year)
    return years


def grounding_pool(report: Report, analysis: Analysis) -> list[Candidate]:
    return candidates(analysis.facts, analysis.ratios, report_years(report))


def _value(value: Decimal, unit: str) -> str:
    return f"{format_amount(value)} {unit}"


def facts_text(report: Report, analysis: Analysis) -> str:
    """The computed facts as the model sees them: no account numbers, no holder names."""
    period = report.period
    span = f"{period.start} to {period.end}" if period.start else f"as of {period.end}"
    lines = [
        f"Reporting period: {span}"
        + (
            f" ({period.fiscal_period} {period.fiscal_year})"
            if period.fiscal_period and period.fiscal_year
            else ""
        ),
        f"Currency: {report.currency}",
    ]
    if report.prior is not None:
        lines.append(f"Prior period ends: {report.prior.period.end}")
    lines.append("Facts:")
    for f in analysis.facts:
        when = "" if f.period == "current" else " (prior period)"
        lines.append(f"- [{f.id}] {f.statement}: {f.label}{when} = {_value(f.value, f.unit)}")
    if analysis.ratios:
        lines.append("Ratios and changes:")
        lines.extend(f"- [{r.id}] {r.label} = {r.display}" for r in analysis.ratios)
    ran = [c for c in analysis.checks if c.status != "skipped"]
    if ran:
        lines.append("Accounting checks:")
        lines.extend(
            f"- {c.description}: {'passed' if c.status == 'pass' else 'FAILED'}" for c in ran
        )
    return "\n".join(lines)
