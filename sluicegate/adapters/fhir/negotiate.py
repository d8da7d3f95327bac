"""Content negotiation and preferences for the FHIR routes.

Sluicegate speaks FHIR JSON only. ``_format`` (which FHIR lets override
``Accept``) naming XML or anything else is answered 415, as the issue asks;
an ``Accept`` header that rules JSON out is 406.
"""

from __future__ import annotations

import re

from fastapi import Request

from sluicegate.core.interfaces import InvalidInput, Issue

JSON_FORMATS = frozenset(
    {"json", "application/json", "application/fhir+json", "application/json+fhir"}
)
XML_FORMATS = frozenset({"xml", "text/xml", "application/xml", "application/fhir+xml"})
ACCEPTABLE = (JSON_FORMATS - {"json"}) | {"*/*", "application/*"}


def negotiate(request: Request) -> None:
    """We speak FHIR JSON only: ``_format`` other than JSON is 415, an Accept without it 406."""
    formats = request.query_params.getlist("_format")
    for value in formats:
        # An unencoded "+" in a query string arrives as a space.
        media = value.split(";")[0].strip().lower().replace(" ", "+")
        if media in XML_FORMATS or media.endswith("+xml"):
            raise _refuse(415, "XML is not supported; this server speaks JSON.")
        if media not in JSON_FORMATS:
            raise _refuse(415, "_format must be json or application/fhir+json.")
    if not formats and not _accepts_json(request.headers.get("accept")):
        raise _refuse(406, "Responses are application/fhir+json only.")


def _accepts_json(accept: str | None) -> bool:
    if not accept or not accept.strip():
        return True
    for part in accept.split(","):
        media, *params = (p.strip().lower() for p in part.split(";"))
        refused = any(re.fullmatch(r"q\s*=\s*0(\.0*)?", p) for p in params)
        if media in ACCEPTABLE and not refused:
            return True
    return False


def wants_async(request: Request) -> bool:
    """``Prefer: respond-async`` (RFC 7240) among any Prefer headers."""
    prefs = re.split(r"[,;]", ",".join(request.headers.getlist("prefer")))
    return any(p.split("=")[0].strip().lower() == "respond-async" for p in prefs)


def _refuse(status: int, message: str) -> InvalidInput:
    return InvalidInput([Issue("error", "not-supported", message)], status=status)
