"""Required bindings for the rule engine (:mod:`.rules`), kept apart because it is a table.

The HL7 Java validator checks these codes without a terminology server; the
table covers the elements this gateway reads (R4 4.0.1 value sets), not the
whole of R4 terminology. Keys are element paths without indices.
"""

from __future__ import annotations

# fmt: off
REQUIRED_CODES: dict[str, frozenset[str]] = {
    "Bundle.type": frozenset({
        "document", "message", "transaction", "transaction-response", "batch",
        "batch-response", "history", "searchset", "collection"}),
    "Bundle.entry.request.method": frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"}),
    "Bundle.entry.search.mode": frozenset({"match", "include", "outcome"}),
    "Patient.gender": frozenset({"male", "female", "other", "unknown"}),
    "Encounter.status": frozenset({
        "planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled",
        "entered-in-error", "unknown"}),
    "DiagnosticReport.status": frozenset({
        "registered", "partial", "preliminary", "final", "amended", "corrected", "appended",
        "cancelled", "entered-in-error", "unknown"}),
    "Observation.status": frozenset({
        "registered", "preliminary", "final", "amended", "corrected", "cancelled",
        "entered-in-error", "unknown"}),
    "ImagingStudy.status": frozenset({
        "registered", "available", "cancelled", "entered-in-error", "unknown"}),
    "ServiceRequest.status": frozenset({
        "draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}),
    "ServiceRequest.intent": frozenset({
        "proposal", "plan", "directive", "order", "original-order", "reflex-order",
        "filler-order", "instance-order", "option"}),
    "ServiceRequest.priority": frozenset({"routine", "urgent", "asap", "stat"}),
}
# fmt: on
