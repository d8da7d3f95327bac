"""Who made the draft report, and from what: a Provenance and two Devices.

The model that wrote the text is the Provenance ``author``, Sluicegate (which
assembled the Bundle) the ``assembler``; both are Device resources in the same
Bundle. The entities are the input resources the report was derived from, by
the references the parser kept, so the sending system can match them. Nothing
here carries patient data: references only, never names, MRNs or displays.
Every element used exists in FHIR R4 (4.0.1) as well as R4B.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sluicegate.core.interfaces import Generation, WorkItem

Json = dict[str, Any]

URI_SYSTEM = "urn:ietf:rfc:3986"  # Identifier.system for "the value is a URI"
PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
CREATE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
            "code": "CREATE",
            "display": "create",
        }
    ]
}
GATEWAY_NAME = "Sluicegate"
UNKNOWN_VERSION = "0+unknown"
MAX_LATENCY_S = 86_400.0  # beyond a day, a latency is a bug, not a period


def portable_ref(ref: Json, rtype: str | None = None) -> Json | None:
    """A reference that means the same outside the input Bundle, or None.

    ``#contained`` targets did not come along, and ``urn:`` targets (bundle-local
    fullUrls) would dangle in the output Bundle, so those become a URI
    identifier (typed ``rtype`` when given): still matchable, never resolved.
    """
    out = {k: ref[k] for k in ("reference", "type", "identifier") if ref.get(k)}
    target = out.get("reference")
    if isinstance(target, str) and target.startswith(("#", "urn:")):
        del out["reference"]
        if target.startswith("urn:"):
            out.setdefault("identifier", {"system": URI_SYSTEM, "value": target})
        if rtype:
            out.setdefault("type", rtype)
    return out if "reference" in out or "identifier" in out else None


def model_device(generation: Generation, rid: str) -> Json:
    """The model that wrote the text; its owner and manufacturer are not known here.

    The version is the one the backend reported (Triton's model version, the
    cloud API's model id), else a ``name@version`` / ``name:tag`` suffix.
    """
    model = generation.model or "unknown"
    device: Json = {"resourceType": "Device", "id": rid}
    if generation.backend_id:
        device["identifier"] = [
            {"type": {"text": "Sluicegate backend id"}, "value": generation.backend_id}
        ]
    device["deviceName"] = [{"name": model, "type": "model-name"}]
    device["type"] = {"text": "AI language model"}
    model_version = generation.model_version or _model_version(model)
    if model_version:
        device["version"] = [{"type": {"text": "model version"}, "value": model_version}]
    return device


def gateway_device(rid: str) -> Json:
    """This gateway, which prompted the model and assembled the Bundle."""
    return {
        "resourceType": "Device",
        "id": rid,
        "deviceName": [{"name": GATEWAY_NAME, "type": "user-friendly-name"}],
        "type": {"text": "Integration gateway software"},
        "version": [{"type": {"text": "software version"}, "value": gateway_version()}],
    }


def provenance(
    item: WorkItem,
    generation: Generation,
    rid: str,
    *,
    target: str,
    author: str,
    assembler: str,
    now: datetime,
) -> Json:
    """The Provenance of the report at fullUrl ``target``, recorded at ``now`` (aware)."""
    res: Json = {
        "resourceType": "Provenance",
        "id": rid,
        "target": [{"reference": target, "type": "DiagnosticReport"}],
    }
    latency = generation.latency_s
    if math.isfinite(latency) and 0 <= latency <= MAX_LATENCY_S:
        # Rendering follows generation directly, so this is the model's run.
        start = now - timedelta(seconds=latency)
        res["occurredPeriod"] = {"start": instant(start), "end": instant(now)}
    res["recorded"] = instant(now)
    res["activity"] = CREATE
    res["agent"] = [
        {"type": _participant("author", "Author"), "who": {"reference": author, "type": "Device"}},
        {
            "type": _participant("assembler", "Assembler"),
            "who": {"reference": assembler, "type": "Device"},
        },
    ]
    entities = [{"role": "source", "what": what} for what in source_refs(item.payload)]
    if entities:
        res["entity"] = entities
    return res


def with_devices_contained(provenance: Json, by_url: dict[Any, Json]) -> Json:
    """A copy whose ``agent.who`` Devices live inside it, for use outside the result Bundle.

    Published and written-back Provenance must stand alone; containing the
    Devices also keeps an HIS from filing a new Device record per report.
    """
    copy: Json = json.loads(json.dumps(provenance))
    contained: list[Json] = []
    for agent in copy.get("agent", []):
        device = by_url.get(agent.get("who", {}).get("reference"))
        if device is not None:
            contained.append(device)
            agent["who"]["reference"] = f"#{device['id']}"
    if contained:
        copy["contained"] = contained
    return copy


def source_refs(payload: Json) -> list[Json]:
    """References to the input resources the report derives from, without repeats.

    The source resource also carries its original fullUrl as a URI identifier
    when that differs from its reference (e.g. ``urn:uuid:`` next to ``Type/id``).
    """
    kinds = {"imaging_studies": "ImagingStudy", "service_requests": "ServiceRequest"}
    described: list[tuple[Any, str | None]] = [
        (payload.get("source"), None),
        (payload.get("report"), "DiagnosticReport"),
    ]
    for key, kind in kinds.items():
        listed = payload.get(key)
        described += [(d, kind) for d in (listed if isinstance(listed, list) else [])]
    refs: list[Json] = []
    for desc, rtype in described:
        if not isinstance(desc, dict):
            continue
        ref: Json = {"reference": desc.get("reference"), "type": rtype or desc.get("resourceType")}
        full_url = desc.get("fullUrl")
        if isinstance(full_url, str) and full_url and full_url != ref["reference"]:
            ref["identifier"] = {"system": URI_SYSTEM, "value": full_url}
        portable = portable_ref(ref)
        if portable is not None and not any(_same_target(portable, r) for r in refs):
            refs.append(portable)
    return refs


@cache
def gateway_version() -> str:
    try:
        return version("sluicegate")
    except PackageNotFoundError:
        return UNKNOWN_VERSION


def _model_version(model: str) -> str | None:
    """The version a model id carries as ``name@version`` or ``name:tag``, if any."""
    for sep in ("@", ":"):
        name, found, tail = model.rpartition(sep)
        if found and name and tail:
            return tail
    return None


def _participant(code: str, display: str) -> Json:
    return {"coding": [{"system": PARTICIPANT_TYPE, "code": code, "display": display}]}


def _same_target(a: Json, b: Json) -> bool:
    keys = ("reference", "identifier")
    return any(a.get(k) is not None and a.get(k) == b.get(k) for k in keys)


def instant(moment: datetime) -> str:
    """An R4 instant in UTC, written the way FHIR libraries write it back (``Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
