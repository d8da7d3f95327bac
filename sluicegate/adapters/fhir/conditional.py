"""Conditional create: ``ifNoneExist`` on transaction/batch entries, ``If-None-Exist`` on POST.

FHIR's conditional create means "create this only if nothing matches these
search criteria". What this gateway creates for a work-bearing resource is a
job, so the criteria are matched against the resources it was sent before.
The one search HIS engines use for safe resubmission is supported:
``identifier=[system]|value`` (or a bare ``identifier=value``). The condition
itself becomes the work item's idempotency key, so a second conditional create
with the same condition finds the first job, whatever its content, and is
answered ``200 OK`` with that job's location instead of creating another.
Any other criteria are refused (400 ``not-supported``), never ignored.
"""

from __future__ import annotations

import dataclasses
import hashlib
from urllib.parse import parse_qsl

from sluicegate.core.interfaces import InvalidInput, Issue, WorkItem

SUPPORTED = "identifier=[system]|value"


def parse_condition(raw: object, location: str) -> tuple[str, str]:
    """``(system, value)`` of an identifier condition; InvalidInput for anything else."""
    if not isinstance(raw, str) or not raw.strip():
        raise _refuse("invalid", "The condition must be a non-empty search string.", location)
    pairs = parse_qsl(raw.lstrip("?"), keep_blank_values=True)
    if len(pairs) != 1 or pairs[0][0] != "identifier":
        message = f"Conditional create supports only the search {SUPPORTED}."
        raise _refuse("not-supported", message, location)
    system, bar, value = pairs[0][1].rpartition("|")
    if not value or (not bar and system):
        raise _refuse("invalid", "The identifier condition names no value.", location)
    return system, value


def keyed(item: WorkItem, rtype: str, condition: tuple[str, str]) -> WorkItem:
    """The item with the condition as its idempotency key."""
    system, value = condition
    digest = hashlib.sha256(
        "\x1f".join((item.tenant, "if-none-exist", rtype, system, value)).encode()
    ).hexdigest()
    return dataclasses.replace(item, idempotency_key=digest)


def _refuse(code: str, message: str, location: str) -> InvalidInput:
    return InvalidInput([Issue("error", code, message, location)], status=400)
