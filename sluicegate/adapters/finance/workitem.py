"""Report → WorkItem: keys, declared identifiers, and (in the worker) the prompt's facts.

The facts text (facts, ratios, checks as the model reads them) is not built at
accept time: only the worker needs it, and building it cost a third of a bulk
line's preparation and doubled the sealed item. :func:`complete` derives it from
the stored report when a job is claimed; items stored with the text (before
it moved) keep theirs.

The work item's idempotency key is the report's natural key (entity, period,
statement version); a sender's ``Idempotency-Key`` header is kept beside it
(see :mod:`sluicegate.adapters.finance.accept`). The content digest travels in
the payload so a re-post under the same key can be told apart: same digest →
the original job; different digest → 409.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace

from sluicegate.adapters.finance.analysis import analyse, facts_text
from sluicegate.adapters.finance.models import Report
from sluicegate.adapters.finance.options import ChecksOptions
from sluicegate.core.interfaces import WorkItem

TASK = "financial_summary"
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){13,19}(?!\d)")


def canonical_json(report: Report) -> bytes:
    """The validated report as JSON (model field order, exact decimal strings, no nulls)."""
    return report.model_dump_json(exclude_none=True).encode()


def content_digest(report: Report) -> str:
    """SHA-256 of the validated report's canonical JSON."""
    return hashlib.sha256(canonical_json(report)).hexdigest()


def natural_key(report: Report) -> str:
    entity = report.entity
    who = (
        f"lei:{entity.lei}"
        if entity.lei
        else f"cik:{int(entity.cik)}"
        if entity.cik
        else f"tax:{entity.tax_id}"
        if entity.tax_id
        else f"name:{entity.name.casefold()}"
    )
    accounts = ",".join(sorted(a.account for a in report.accounts))
    parts = [who, report.kind, str(report.period.start), str(report.period.end), report.version]
    if accounts:
        parts.append(accounts)
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:48]


def identifiers(report: Report) -> dict[str, list[str]]:
    """Sensitive values the privacy engine must hunt in any text that leaves on-prem."""
    found: dict[str, set[str]] = {"name": {report.entity.name}}

    def add(kind: str, value: str | None) -> None:
        if value:
            found.setdefault(kind, set()).add(value)

    add("tax_id", report.entity.tax_id)
    for account in report.accounts:
        add("account", account.account)
        add("iban", account.iban)
        add("name", account.holder)
        for tx in account.transactions:
            add("name", tx.counterparty)
            add("account", tx.counterparty_account)
            for text in (tx.description, tx.reference):
                for card in _CARD.findall(text or ""):
                    add("card", card.strip())
    return {kind: sorted(values) for kind, values in found.items()}


def build_item(report: Report, *, tenant: str, channel: str, sender: str = "") -> WorkItem:
    """The item as stored: everything but the facts text (see :func:`complete`)."""
    # One serialisation (in pydantic-core) serves both the digest and the stored
    # payload, kept as text: a dict tree per report cost more to build, to hold
    # through a bulk batch (garbage-collector passes) and to seal than the report
    # costs to validate. report_of parses it back.
    canonical = canonical_json(report)
    digest = hashlib.sha256(canonical).hexdigest()
    key = natural_key(report)
    period = report.period
    return WorkItem(
        tenant=tenant,
        channel=channel,
        task=TASK,
        source_ref=f"finance-report:{key[:32]}",
        idempotency_key="fin:nk:" + key,
        payload={"report_json": canonical.decode(), "content_digest": digest},
        prompt_inputs={
            "entity": report.entity.name,
            "period": f"{period.start or ''}..{period.end}",
            "currency": report.currency,
        },
        identifiers=identifiers(report),
        sender=sender,
    )


def report_of(item: WorkItem) -> Report:
    """The stored report: canonical JSON text (see :func:`build_item`), or a dict in
    items stored before that."""
    text = item.payload.get("report_json")
    if isinstance(text, str):
        return Report.model_validate_json(text)
    return Report.model_validate(item.payload["report"])


def complete(item: WorkItem, checks: ChecksOptions) -> WorkItem:
    """The item with its prompt's facts text, derived from the stored report.

    Appended last, so the prompt inputs keep the order (and the text) they had
    when it was built at accept time; an item that already has it is returned
    as it is.
    """
    if "facts" in item.prompt_inputs:
        return item
    report = report_of(item)
    text = facts_text(report, analyse(report, checks))
    return replace(item, prompt_inputs={**item.prompt_inputs, "facts": text})
