"""Write-back: file a finished draft report on the hospital's own FHIR server.

Core owns durability (the delivery row, retries, dead-lettering); this module
owns the FHIR REST wire format. ``transaction`` mode POSTs one ``transaction``
Bundle to the server base (the DiagnosticReport plus its Provenance, whose
generating Devices ride along as contained resources); ``create`` mode POSTs
the DiagnosticReport alone. Either way the report carries a stable identifier
and is created conditionally (``ifNoneExist``), so a retry after a lost answer
finds the first copy instead of filing a second one.
"""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sluicegate.adapters.fhir.provenance import with_devices_contained
from sluicegate.core.interfaces import DeliveryFailed, WriteBackPolicy

Json = dict[str, Any]
FHIR_JSON = "application/fhir+json"
IDENTIFIER_SYSTEM = "urn:ietf:rfc:3986"  # value: the report's urn:uuid fullUrl
RETRYABLE = frozenset({408, 429})
MAX_DIAGNOSTICS = 200


class WriteBackOptions(BaseModel):
    """``adapters.<name>.options.write_back``; validated when the adapter is built."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(description="FHIR base of the hospital's server, e.g. https://his/fhir")
    mode: Literal["transaction", "create"] = "transaction"
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    backoff_s: float = Field(default=5.0, gt=0)
    backoff_max_s: float = Field(default=3600.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http:// or https:// FHIR base")
        return value.rstrip("/")

    def policy(self) -> WriteBackPolicy:
        return WriteBackPolicy(
            target=self.base_url,
            max_attempts=self.max_attempts,
            backoff_s=self.backoff_s,
            backoff_max_s=self.backoff_max_s,
        )


def write_back(options: WriteBackOptions, body: bytes) -> str | None:
    """POST the result to the hospital's server; returns the report's Location."""
    bundle: Json = json.loads(body)
    headers = {
        "Content-Type": FHIR_JSON,
        "Accept": FHIR_JSON,
        "Prefer": "return=minimal",
        "User-Agent": "sluicegate-writeback",
        **options.headers,
    }
    if options.mode == "create":
        report = report_for_create(bundle)
        headers["If-None-Exist"] = _if_none_exist(report)
        response = _post(options, f"{options.base_url}/DiagnosticReport", report, headers)
        return response.headers.get("location") or response.headers.get("content-location")
    response = _post(options, options.base_url, transaction_bundle(bundle), headers)
    return _report_location(response)


def transaction_bundle(bundle: Json) -> Json:
    """The result Bundle as a ``transaction``: report and Provenance, devices contained."""
    by_url = {e.get("fullUrl"): e["resource"] for e in bundle.get("entry", []) if "resource" in e}
    entries: list[Json] = []
    for entry in bundle.get("entry", []):
        resource = entry.get("resource", {})
        rtype = resource.get("resourceType")
        if rtype == "DiagnosticReport":
            report = _with_identifier(resource, entry["fullUrl"])
            request = {"method": "POST", "url": rtype, "ifNoneExist": _if_none_exist(report)}
            entries.append({"fullUrl": entry["fullUrl"], "resource": report, "request": request})
        elif rtype == "Provenance":
            prov = with_devices_contained(resource, by_url)
            prov.pop("id", None)
            request = {"method": "POST", "url": rtype}
            entries.append({"fullUrl": entry["fullUrl"], "resource": prov, "request": request})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def report_for_create(bundle: Json) -> Json:
    """The DiagnosticReport alone, ready for ``POST [base]/DiagnosticReport``."""
    for entry in bundle.get("entry", []):
        if entry.get("resource", {}).get("resourceType") == "DiagnosticReport":
            return _with_identifier(entry["resource"], entry["fullUrl"])
    raise DeliveryFailed("result holds no DiagnosticReport", retryable=False)


def _with_identifier(report: Json, full_url: str) -> Json:
    """A copy without our id (the server assigns one) and with a stable identifier."""
    copy: Json = json.loads(json.dumps(report))
    copy.pop("id", None)
    mine = {"system": IDENTIFIER_SYSTEM, "value": full_url}
    copy["identifier"] = [*copy.get("identifier", []), mine]
    return copy


def _if_none_exist(report: Json) -> str:
    mine = report["identifier"][-1]
    return f"identifier={mine['system']}|{mine['value']}"


def _post(
    options: WriteBackOptions, url: str, resource: Json, headers: dict[str, str]
) -> httpx.Response:
    content = json.dumps(resource, ensure_ascii=False).encode("utf-8")
    try:
        response = httpx.post(url, content=content, headers=headers, timeout=options.timeout_s)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}"[:500], retryable=True) from None
    if 200 <= response.status_code < 300:
        return response
    raise _failure(response)


def _failure(response: httpx.Response) -> DeliveryFailed:
    code = response.status_code
    retryable = code in RETRYABLE or code >= 500
    message = f"FHIR server answered {code}"
    diagnostics = _diagnostics(response)
    if diagnostics:
        message += f": {diagnostics}"
    return DeliveryFailed(
        message,
        retryable=retryable,
        status_code=code,
        retry_after_s=_retry_after_s(response) if retryable else None,
    )


def _diagnostics(response: httpx.Response) -> str | None:
    """The OperationOutcome's first issue text, truncated (servers may echo content)."""
    try:
        outcome = response.json()
    except ValueError:
        return None
    if not isinstance(outcome, dict) or outcome.get("resourceType") != "OperationOutcome":
        return None
    for issue in outcome.get("issue", []):
        text = issue.get("diagnostics") or issue.get("details", {}).get("text")
        if text:
            text = str(text)
            return text if len(text) <= MAX_DIAGNOSTICS else text[: MAX_DIAGNOSTICS - 1] + "…"
    return None


def _retry_after_s(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds from now (delta-seconds or HTTP-date)."""
    raw = response.headers.get("retry-after")
    if not raw:
        return None
    if raw.strip().isdigit():
        return float(raw.strip())
    try:
        return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _report_location(response: httpx.Response) -> str | None:
    """The first entry's ``response.location``: entries answer in request order."""
    try:
        bundle = response.json()
    except ValueError:
        return None  # written (2xx) but unreadable: nothing to record, nothing to retry
    if not isinstance(bundle, dict) or bundle.get("type") != "transaction-response":
        return None
    entries = bundle.get("entry") or [{}]
    location = (entries[0].get("response") or {}).get("location")
    return str(location) if location else None
