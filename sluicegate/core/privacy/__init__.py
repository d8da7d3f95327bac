"""Privacy engine: classify now; de-identify, re-identify and guard build on it.

Classification is deliberately conservative: anything that carries known
identifiers, or whose sensitivity cannot be established, is sensitive. A
sensitive item may only ever be routed to an on-prem backend.
"""

from __future__ import annotations

from sluicegate.core.interfaces import Sensitivity, WorkItem

_PHI_TASKS = frozenset({"radiology_report"})


def classify(item: WorkItem) -> tuple[Sensitivity, list[str]]:
    """Return the item's sensitivity and the reasons for it (no values, only kinds)."""
    reasons: list[str] = []
    found = sorted(kind for kind, values in item.identifiers.items() if values)
    if found:
        reasons.append("structured identifiers present: " + ", ".join(found))
    if item.task in _PHI_TASKS:
        reasons.append(f"task {item.task!r} works on clinical records")
        return Sensitivity.PHI, reasons
    if found:
        return Sensitivity.PII, reasons
    # Free text has not been through de-identification: uncertain, so sensitive.
    reasons.append("free text not de-identified")
    return Sensitivity.PII, reasons
