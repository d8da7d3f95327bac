"""One report → a WorkItem ready to store, or a :class:`ReportRejected` naming the fields."""

from __future__ import annotations

from sluicegate.adapters.finance.analysis import accept_checks
from sluicegate.adapters.finance.errors import ReportRejected
from sluicegate.adapters.finance.models import Report
from sluicegate.adapters.finance.options import FinanceOptions
from sluicegate.adapters.finance.workitem import build_item
from sluicegate.core.interfaces import WorkItem


def prepare(
    report: Report, options: FinanceOptions, *, tenant: str, channel: str, sender: str = ""
) -> tuple[WorkItem, list[dict[str, str]]]:
    """Check and build the item; with ``reject_on_failure`` a failed check refuses it.

    The prompt's facts text is left to the worker (``FinanceAdapter.complete_item``).

    ``sender`` (API key id or client address) goes on the item, hence on the
    ``received`` audit event, as on every other ingress.
    """
    checks = accept_checks(report, options.checks)
    failed = [
        {
            "name": c.name,
            "status": c.status,
            "expected": str(c.expected),
            "actual": str(c.actual),
            "difference": str(c.difference),
        }
        for c in checks
        if c.status == "fail"
    ]
    if failed and options.checks.reject_on_failure:
        raise ReportRejected(
            422,
            "Accounting checks failed",
            [
                {
                    "field": c["name"] or "",
                    "pointer": "",
                    "message": f"check failed: difference {c['difference']}",
                }
                for c in failed
            ],
            "checks-failed",
        )
    item = build_item(report, tenant=tenant, channel=channel, sender=sender)
    return item, failed
