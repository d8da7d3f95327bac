"""RFC 9457 problem+json for finance: every error names its field path.

Messages carry paths and reasons only — never the submitted values, which may
be account numbers or customer names.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import ValidationError

from sluicegate.adapters.finance.models import Report
from sluicegate.core.problems import PROBLEM_JSON

PROBLEM_BASE = "https://sluicegate.dev/problems/finance/"


class ReportRejected(Exception):
    """A report (or one bulk line) that cannot be accepted; ``errors`` name field paths."""

    def __init__(self, status: int, title: str, errors: list[dict[str, str]], kind: str) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.errors = errors
        self.kind = kind

    def response(self) -> JSONResponse:
        detail = "; ".join(f"{e['field'] or '(body)'}: {e['message']}" for e in self.errors[:20])
        return problem_response(self.status, self.title, detail, self.kind, errors=self.errors)


def problem_response(status: int, title: str, detail: str, kind: str, **extra: Any) -> JSONResponse:
    """RFC 9457 body with a finance problem ``type`` URI."""
    body = {
        "type": PROBLEM_BASE + kind,
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    out = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = [str(p) for p in err["loc"]]
        out.append({"field": ".".join(loc), "pointer": "/" + "/".join(loc), "message": err["msg"]})
    return out


def load_report(data: bytes | str) -> Report:
    """Parse one JSON report exactly: JSON numbers become Decimal, never float.

    Fast path first: pydantic-core parses and validates the JSON in one pass,
    without building the intermediate dicts (about 40% of the cost of the
    exact path). It only ever *accepts* reports whose money values are decimal
    strings or JSON integers, where both paths give the same model; a JSON
    fraction reaches the money validator as a float and fails there. Every
    failure (fractions, malformed JSON, other encodings, invalid fields) is
    decided by the exact path below, so its answer and its errors stay the
    authoritative ones.
    """
    try:
        return Report.model_validate_json(data)
    except ValidationError:
        pass
    try:
        doc: Any = json.loads(data, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        where = (
            f"line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        )
        raise ReportRejected(
            400,
            "Malformed JSON",
            [{"field": "", "pointer": "", "message": f"not valid JSON {where}".strip()}],
            "malformed-json",
        ) from None
    return validate_report(doc)


def load_reports(data: bytes | str) -> list[Report]:
    """Parse a JSON array of reports exactly (one bulk line that is stored all or nothing).

    Field paths start with the report's index in the array (``1.currency``).
    """
    try:
        doc: Any = json.loads(data, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise ReportRejected(
            400,
            "Malformed JSON",
            [{"field": "", "pointer": "", "message": "not valid JSON"}],
            "malformed-json",
        ) from None
    if not isinstance(doc, list) or not doc:
        raise ReportRejected(
            422,
            "Invalid report",
            [{"field": "", "pointer": "", "message": "expected a non-empty array of reports"}],
            "invalid-report",
        )
    reports: list[Report] = []
    errors: list[dict[str, str]] = []
    for index, element in enumerate(doc):
        try:
            reports.append(validate_report(element))
        except ReportRejected as exc:
            errors.extend(
                {
                    "field": f"{index}.{e['field']}" if e["field"] else str(index),
                    "pointer": f"/{index}{e.get('pointer', '')}",
                    "message": e["message"],
                }
                for e in exc.errors
            )
    if errors:
        raise ReportRejected(422, "Invalid report", errors, "invalid-report")
    return reports


def validate_report(doc: Any) -> Report:
    try:
        return Report.model_validate(doc)
    except ValidationError as exc:
        raise ReportRejected(422, "Invalid report", field_errors(exc), "invalid-report") from None
