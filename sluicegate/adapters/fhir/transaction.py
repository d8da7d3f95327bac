"""Transaction and batch Bundles posted to the FHIR base URL.

Work is extracted by the same ``parse_bundle`` as ``POST /Bundle``, over the
whole Bundle, so a report still finds its study, order and patient in sibling
entries. A transaction is all-or-nothing. A batch's entries are independent:
an entry is blamed for the issues located inside it, replaced by a stub that
keeps only its fullUrl (so its siblings' references still resolve and they are
judged on their own), and the Bundle is parsed again until it is clean.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from sluicegate.adapters.fhir.conditional import keyed, parse_condition
from sluicegate.adapters.fhir.outcome import operation_outcome
from sluicegate.core.ingest import Accepted
from sluicegate.core.interfaces import InvalidInput, Issue, WorkItem

RESPONSE_TYPES = {"transaction": "transaction-response", "batch": "batch-response"}
WRITE_METHODS = frozenset({"POST", "PUT"})
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"})
_IN_ENTRY = re.compile(r"^Bundle\.entry\[(\d+)\]")
# Stands in for a refused batch entry; parse_bundle never reads a Basic as work.
_STUB = {"resourceType": "Basic", "code": {"text": "entry refused in this batch"}}

Parser = Callable[[bytes], list[WorkItem]]


@dataclass(frozen=True)
class Plan:
    """What to submit, and how each request entry will be answered."""

    kind: str
    size: int
    items: list[WorkItem]
    item_entries: list[int]  # the entry each item came from
    failed: dict[int, InvalidInput] = field(default_factory=dict)  # batch only
    conditional: frozenset[int] = frozenset()  # entries created with ifNoneExist


def bundle_kind(doc: Any) -> str | None:
    """``transaction`` or ``batch`` when ``doc`` is such a Bundle, else None."""
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        kind = doc.get("type")
        return kind if kind in RESPONSE_TYPES else None
    return None


def plan_transaction(doc: dict[str, Any], parse: Parser) -> Plan:
    """All or nothing: any bad entry raises one InvalidInput for the whole Bundle."""
    entries = _entries(doc)
    problems = _request_problems(entries)
    if problems:
        issues = [i for exc in problems.values() for i in exc.issues]
        raise InvalidInput(issues, status=next(iter(problems.values())).status)
    items = parse(_dump(doc))
    return _with_conditions(
        Plan("transaction", len(entries), items, _entry_of(entries, items)), entries
    )


def plan_batch(doc: dict[str, Any], parse: Parser) -> Plan:
    """Entries fail on their own; only a problem with the Bundle itself raises."""
    entries = _entries(doc)
    failed = _request_problems(entries)
    bare: set[int] = set()  # stubs whose fullUrl is itself a problem
    while len(failed) < len(entries):
        stubbed = [_stub(e, i in bare) if i in failed else e for i, e in enumerate(entries)]
        try:
            items = parse(_dump({**doc, "entry": stubbed}))
        except InvalidInput as exc:
            blamed, stubs = _blame(exc, failed, len(entries))
            if not blamed and stubs <= bare:  # cannot happen unless the Bundle itself is bad
                raise
            failed.update(blamed)
            bare |= stubs
            continue
        plan = Plan("batch", len(entries), items, _entry_of(stubbed, items), failed)
        return _with_conditions(plan, entries)
    return Plan("batch", len(entries), [], [], failed)


def _with_conditions(plan: Plan, entries: list[Any]) -> Plan:
    """Key each item from a conditional create by its condition (see :mod:`.conditional`)."""
    items, conditional = list(plan.items), set()
    for n, index in enumerate(plan.item_entries):
        request = entries[index].get("request") or {}
        if "ifNoneExist" in request:
            at = f"Bundle.entry[{index}].request.ifNoneExist"
            rtype = entries[index]["resource"]["resourceType"]
            items[n] = keyed(items[n], rtype, parse_condition(request["ifNoneExist"], at))
            conditional.add(index)
    return dataclasses.replace(plan, items=items, conditional=frozenset(conditional))


def response_bundle(plan: Plan, accepted: list[Accepted]) -> dict[str, Any]:
    """The transaction-response / batch-response: one entry per request entry, in order."""
    jobs = _jobs_by_entry(plan, accepted)
    entries = [{"response": _entry_response(plan, i, jobs.get(i, []))} for i in range(plan.size)]
    return {"resourceType": "Bundle", "type": RESPONSE_TYPES[plan.kind], "entry": entries}


def async_issues(plan: Plan, accepted: list[Accepted]) -> list[Issue]:
    """The same answer as issues, for the 202 of ``Prefer: respond-async``."""
    jobs = _jobs_by_entry(plan, accepted)
    issues: list[Issue] = []
    for i in range(plan.size):
        if i in plan.failed:
            issues += plan.failed[i].issues
        for job in jobs.get(i, []):
            issues.append(_accepted_issue(job, f"Bundle.entry[{i}]"))
    return issues


def accepted_issues(accepted: list[Accepted]) -> list[Issue]:
    """One informational issue per job; also the body of ``POST /Bundle``'s 202."""
    return [_accepted_issue(a) for a in accepted]


def status_line(status: int) -> str:
    """``Bundle.entry.response.status``: the code and its reason phrase."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _accepted_issue(accepted: Accepted, location: str | None = None) -> Issue:
    again = "" if accepted.created else " (same content was accepted before)"
    text = f"accepted as job {accepted.job_id}{again}; follow /jobs/{accepted.job_id}"
    return Issue("information", "informational", text, location)


def _entry_response(plan: Plan, index: int, jobs: list[Accepted]) -> dict[str, Any]:
    if index in plan.failed:
        refused = plan.failed[index]
        return {"status": status_line(refused.status), "outcome": operation_outcome(refused.issues)}
    if not jobs:
        return {"status": "200 OK"}  # context (a Patient, say): read, not a job of its own
    if index in plan.conditional and not jobs[0].created:
        # Conditional create matched an earlier one: nothing new, point at what exists.
        return {"status": "200 OK", "location": f"/jobs/{jobs[0].job_id}"}
    return {
        "status": "202 Accepted",
        "location": f"/jobs/{jobs[0].job_id}",
        "outcome": operation_outcome(accepted_issues(jobs)),
    }


def _jobs_by_entry(plan: Plan, accepted: list[Accepted]) -> dict[int, list[Accepted]]:
    jobs: dict[int, list[Accepted]] = {}
    for index, job in zip(plan.item_entries, accepted, strict=True):
        jobs.setdefault(index, []).append(job)
    return jobs


# --- the request part of each entry ---------------------------------------------


def _request_problems(entries: list[Any]) -> dict[int, InvalidInput]:
    problems = {i: _request_problem(i, raw) for i, raw in enumerate(entries)}
    return {i: p for i, p in problems.items() if p is not None}


def _request_problem(index: int, raw: Any) -> InvalidInput | None:
    """Why an entry is not a write we accept; messages never quote input values."""
    at = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict):
        return _refuse(400, "structure", "Entry must be a JSON object.", at)
    request = raw.get("request")
    if not isinstance(request, dict) or not isinstance(request.get("method"), str):
        message = "A transaction or batch entry needs request.method and request.url."
        return _refuse(400, "required", message, f"{at}.request")
    method = request["method"]
    if method not in WRITE_METHODS:
        named = method if method in HTTP_METHODS else "This method"
        message = f"{named} is not supported: entries may only POST or PUT resources."
        return _refuse(405, "not-supported", message, f"{at}.request.method")
    resource = raw.get("resource")
    if not isinstance(resource, dict):
        return _refuse(400, "required", f"A {method} entry needs a resource.", f"{at}.resource")
    if "ifNoneExist" in request:
        if method != "POST":
            message = "ifNoneExist applies only to a POST (conditional create)."
            return _refuse(400, "invalid", message, f"{at}.request.ifNoneExist")
        try:
            parse_condition(request["ifNoneExist"], f"{at}.request.ifNoneExist")
        except InvalidInput as exc:
            return exc
    url, rtype = request.get("url"), resource.get("resourceType")
    # Without a resourceType the validator has the better message.
    if isinstance(url, str) and isinstance(rtype, str) and not _url_names(url, method, resource):
        message = f"request.url does not name this resource as a {method} must."
        return _refuse(400, "invalid", message, f"{at}.request.url")
    return None


def _url_names(url: str, method: str, resource: dict[str, Any]) -> bool:
    """POST [type]; PUT [type]/[id] with the resource's own id, or [type]?criteria."""
    path, conditional, _ = url.partition("?")
    parts = path.rstrip("/").split("/")
    rtype = resource.get("resourceType")
    if method == "POST" or conditional:
        return parts[-1] == rtype
    return len(parts) >= 2 and parts[-2:] == [rtype, resource.get("id")]


def _refuse(status: int, code: str, message: str, location: str) -> InvalidInput:
    return InvalidInput([Issue("error", code, message, location)], status=status)


# --- issues and work items back to entries --------------------------------------


def _blame(
    exc: InvalidInput, failed: dict[int, InvalidInput], size: int
) -> tuple[dict[int, InvalidInput], set[int]]:
    """The entries newly refused for ``exc``'s issues, and the stubs it points at.

    "No radiology work" is about every entry left, so each of them carries it; any
    other issue outside an entry is about the Bundle itself and raises.
    """
    located = [(_entry_index(issue, size), issue) for issue in exc.issues]
    if any(index is None for index, _ in located):
        if all(issue.code == "business-rule" for issue in exc.issues):
            return {i: exc for i in range(size) if i not in failed}, set()
        raise InvalidInput(exc.issues, status=exc.status)
    blamed: dict[int, list[Issue]] = {}
    stubs: set[int] = set()
    for index, issue in located:
        if index in failed:
            stubs.add(index)
        elif index is not None:
            blamed.setdefault(index, []).append(issue)
    return {i: InvalidInput(found, status=exc.status) for i, found in blamed.items()}, stubs


def _stub(entry: Any, bare: bool) -> dict[str, Any]:
    stub: dict[str, Any] = {"resource": dict(_STUB), "request": {"method": "POST", "url": "Basic"}}
    url = entry.get("fullUrl") if isinstance(entry, dict) else None
    if isinstance(url, str) and not bare:
        stub["fullUrl"] = url
    return stub


def _entry_index(issue: Issue, size: int) -> int | None:
    """The request entry an issue is located in, if any."""
    match = _IN_ENTRY.match(issue.location or "")
    return int(match.group(1)) if match and int(match.group(1)) < size else None


def _entry_of(entries: list[Any], items: list[WorkItem]) -> list[int]:
    """The entry each item was extracted from, matched on what its payload records."""
    used: set[int] = set()
    found: list[int] = []
    for item in items:
        source = item.payload.get("source") or {}
        key = (source.get("resourceType"), source.get("id"), source.get("fullUrl"))
        index = next((i for i, e in enumerate(entries) if i not in used and _key(e) == key), None)
        if index is None:
            raise RuntimeError("a work item matches no entry of its Bundle")
        used.add(index)
        found.append(index)
    return found


def _key(entry: Any) -> tuple[Any, str | None, Any]:
    resource = entry.get("resource") if isinstance(entry, dict) else None
    if not isinstance(resource, dict):
        return (None, None, None)
    rid = resource.get("id")
    return resource.get("resourceType"), rid if isinstance(rid, str) else None, entry.get("fullUrl")


def _entries(doc: dict[str, Any]) -> list[Any]:
    entries = doc.get("entry")
    return entries if isinstance(entries, list) else []


def _dump(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")
