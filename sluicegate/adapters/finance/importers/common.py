"""Shared by importers: the error they raise and how they build reports."""

from __future__ import annotations

from typing import Any

from sluicegate.adapters.finance.errors import ReportRejected, validate_report
from sluicegate.adapters.finance.models import Report


class ImportFailed(Exception):
    """A file that cannot be imported; the message names the format and the place, not values."""


def to_report(doc: dict[str, Any], what: str) -> Report:
    try:
        return validate_report(doc)
    except ReportRejected as exc:
        fields = ", ".join(f"{e['field']}: {e['message']}" for e in exc.errors[:5])
        raise ImportFailed(f"{what}: the imported report is invalid ({fields})") from None
