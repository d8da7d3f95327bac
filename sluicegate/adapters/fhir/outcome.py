"""Issues in FHIR's own idiom: OperationOutcome, and pydantic errors made safe.

Pydantic error messages and contexts can quote the offending input, and in a
clinical bundle the input is PHI. :func:`validation_issues` therefore keeps
only the location and a message that is known not to echo the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import ValidationError

from sluicegate.core.interfaces import Issue

# http://hl7.org/fhir/R4/valueset-issue-type.html
# fmt: off
ISSUE_TYPES = frozenset({
    "invalid", "structure", "required", "value", "invariant", "security", "login", "unknown",
    "expired", "forbidden", "suppressed", "processing", "not-supported", "duplicate",
    "multiple-matches", "not-found", "deleted", "too-long", "code-invalid", "extension",
    "too-costly", "business-rule", "conflict", "transient", "lock-error", "no-store",
    "exception", "timeout", "incomplete", "throttled", "informational"
})
# fmt: on
SEVERITIES = frozenset({"fatal", "error", "warning", "information"})

MAX_ISSUES = 100

# Error types whose pydantic/fhir-core message can carry input-derived context.
_UNSAFE_TYPES = frozenset(
    {
        "union_tag_invalid",
        "fhir-validation-wrong-resource-type",
        "json_invalid",
        "assertion_error",
        "url_parsing",
        "url_syntax_violation",
    }
)
_REQUIRED_TYPES = frozenset({"missing", "model_field_validation.missing"})
_STRUCTURE_SUFFIXES = ("_type", "_parsing", "extra_forbidden", "model_validation_format")
# FHIR element names are lower camel case; anything else in a key position
# (for instance a person's name used as a key) is not repeated back.
_ELEMENT_NAME = re.compile(r"^_?[a-z][A-Za-z0-9]{0,63}$")


def operation_outcome(issues: Sequence[Issue]) -> dict[str, Any]:
    """Build an R4 OperationOutcome; it needs at least one issue, so an empty list
    becomes a single informational one."""
    if not issues:
        issues = [Issue("information", "informational", "No issues.")]
    out: list[dict[str, Any]] = []
    for issue in issues:
        entry: dict[str, Any] = {
            "severity": issue.severity if issue.severity in SEVERITIES else "error",
            "code": issue.code if issue.code in ISSUE_TYPES else "processing",
        }
        if issue.diagnostics.strip():
            entry["diagnostics"] = issue.diagnostics
        if issue.location:
            entry["expression"] = [issue.location]
        out.append(entry)
    return {"resourceType": "OperationOutcome", "issue": out}


def validation_issues(exc: ValidationError, data: Any, root: str) -> list[Issue]:
    """One PHI-free Issue per pydantic error, located as a FHIRPath-like path.

    ``data`` is the validated document, used to tell its real keys from
    pydantic's internal location parts.
    """
    errors = exc.errors()
    issues = [_issue(err, data, root) for err in errors[:MAX_ISSUES]]
    if len(errors) > MAX_ISSUES:
        more = len(errors) - MAX_ISSUES
        issues.append(Issue("error", "too-costly", f"{more} further issues not reported."))
    return issues


def fhir_path(root: str, loc: Iterable[str | int], data: Any) -> str:
    """Render a pydantic location as ``Root.a[0].b``, dropping pydantic-internal
    parts (union branch names and the like) that are not keys of ``data``."""
    path = root
    node: Any = data
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            node = node[part] if isinstance(node, list) and -len(node) <= part < len(node) else None
            continue
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif re.fullmatch(r"_?[A-Za-z][A-Za-z0-9]*", part):
            node = None  # a missing element: its name is schema, not input
        else:
            continue
        if not _ELEMENT_NAME.match(part):
            path += ".<unrecognised>"
            continue
        path += "." + part.removeprefix("_")
    return path


def _issue(err: Any, data: Any, root: str) -> Issue:
    etype = str(err.get("type", ""))
    location = fhir_path(root, err.get("loc", ()), data)
    if etype == "extra_forbidden":
        return Issue("error", "structure", "Unrecognised element (not part of FHIR R4).", location)
    if etype in _REQUIRED_TYPES:
        return Issue("error", "required", "Required element is missing.", location)
    code = "structure" if etype.endswith(_STRUCTURE_SUFFIXES) else "value"
    return Issue("error", code, _safe_message(err, etype), location)


def _safe_message(err: Any, etype: str) -> str:
    generic = f"Invalid value ({etype or 'unknown error'})."
    msg = str(err.get("msg", "")).removeprefix("Value error, ").strip()
    msg = msg.translate({9: "\\t", 10: "\\n", 13: "\\r"})  # regexes in messages
    if not msg or etype in _UNSAFE_TYPES:
        return generic
    # Any input scalar that shows up in the message (directly or via ctx) is
    # treated as an echo; a false alarm only costs detail, not privacy.
    if any(len(v) >= 2 and v in msg for v in _leaves(err.get("input"))):
        return generic
    return msg if msg.endswith((".", "!", "?")) else msg + "."


def _leaves(value: Any) -> set[str]:
    """Scalar values inside an error's input (the things that must not leak)."""
    if isinstance(value, dict):
        return {leaf for v in value.values() for leaf in _leaves(v)}
    if isinstance(value, list):
        return {leaf for v in value for leaf in _leaves(v)}
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return {str(value)}
    return set()
