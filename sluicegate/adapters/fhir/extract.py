"""Which resources in a validated Bundle are radiology work, and their text.

Also pulls the patient's known identifiers (names and variants, MRNs, dates,
phone, address) from structured fields, for the privacy engine.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from sluicegate.core.interfaces import WorkItem
from sluicegate.core.privacy.rules import harvest_fhir

TASK = "radiology_report"
# Every resource type extraction reads something from; entries of other types are
# accepted and ignored (parse.ignored_entries notes them).
READ_TYPES = frozenset(
    {"DiagnosticReport", "ImagingStudy", "ServiceRequest", "Observation", "Patient"}
)


Json = dict[str, Any]

V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
# v2-0074 diagnostic service sections that are imaging, not just RAD.
IMAGING_SECTIONS = frozenset({"RAD", "RX", "CT", "NMR", "NMS", "VUS", "OUS", "CUS", "XRC"})
# LOINC class Radiology, SNOMED "Radiology - specialty", SNOMED "Imaging".
RADIOLOGY_CODES = frozenset({(LOINC, "LP29684-5"), (SNOMED, "394914008"), (SNOMED, "363679005")})


@dataclass(eq=False)
class _Entry:
    """A resource with where it sits; ``index`` is None for a contained one."""

    index: int | None
    full_url: str | None
    resource: Json

    @property
    def rtype(self) -> str:
        return str(self.resource.get("resourceType", ""))

    @property
    def rid(self) -> str | None:
        rid = self.resource.get("id")
        return rid if isinstance(rid, str) else None

    def ref(self) -> str | None:
        """A reference that still means something outside this Bundle, if any."""
        if self.index is None:
            return None
        if self.full_url and self.full_url.startswith(("http://", "https://")):
            return self.full_url
        if self.rid:
            return f"{self.rtype}/{self.rid}"
        return self.full_url


class _Index:
    """Bundle entries by every name a reference may use for them."""

    def __init__(self, doc: Json) -> None:
        self.bundle_id = doc.get("id") if isinstance(doc.get("id"), str) else None
        self.bundle_type = doc.get("type")
        self.entries: list[_Entry] = []
        self._by_key: dict[str, _Entry] = {}
        for i, raw in enumerate(doc.get("entry") or []):
            if not isinstance(raw, dict) or not isinstance(raw.get("resource"), dict):
                continue
            entry = _Entry(i, raw.get("fullUrl"), raw["resource"])
            self.entries.append(entry)
            for key in (entry.full_url, entry.rid and f"{entry.rtype}/{entry.rid}"):
                if key:
                    self._by_key.setdefault(key, entry)

    def of_type(self, rtype: str) -> list[_Entry]:
        return [e for e in self.entries if e.rtype == rtype]

    def resolve(self, ref: Any, holder: Json) -> _Entry | None:
        target = ref.get("reference") if isinstance(ref, dict) else None
        if not isinstance(target, str):
            return None
        if target.startswith("#"):
            for res in holder.get("contained") or []:
                if isinstance(res, dict) and res.get("id") == target[1:]:
                    return _Entry(None, None, res)
            return None
        target = target.split("/_history/")[0]
        hit = self._by_key.get(target)
        tail = re.search(r"[A-Z][A-Za-z]+/[A-Za-z0-9.-]{1,64}$", target)
        return hit or (self._by_key.get(tail.group(0)) if tail else None)

    def resolve_all(self, refs: Any, holder: Json, rtype: str) -> list[_Entry]:
        found = [self.resolve(r, holder) for r in _list(refs)]
        return [e for e in found if e is not None and e.rtype == rtype]


@dataclass
class _Work:
    source: _Entry
    report: _Entry | None
    studies: list[_Entry]
    requests: list[_Entry]
    code: Json | None
    prompt: dict[str, str]


def work_items(doc: Json, *, tenant: str, channel: str) -> list[WorkItem]:
    idx = _Index(doc)
    works = [
        w
        for e in idx.of_type("DiagnosticReport")
        if _is_radiology(e.resource.get("category"))
        if (w := _report_work(idx, e)) is not None
    ]
    if not works:
        works = _fallback_work(idx)
    known = _patient_identifiers(idx)
    for kind, values in harvest_fhir(doc).items():  # everything the privacy rules name
        for value in values:
            _add_text(known.setdefault(kind, []), value)
    return [_to_item(idx, w, known, tenant=tenant, channel=channel) for w in works]


def _is_radiology(categories: Any) -> bool:
    for cc in _list(categories):
        if not isinstance(cc, dict):
            continue
        words = [cc.get("text")]
        for coding in _list(cc.get("coding")):
            if not isinstance(coding, dict):
                continue
            system, code = coding.get("system"), coding.get("code")
            if (system == V2_0074 and code in IMAGING_SECTIONS) or (
                (system, code) in RADIOLOGY_CODES
            ):
                return True
            words.append(coding.get("display"))
        text = " ".join(w for w in words if isinstance(w, str)).lower()
        if "radiology" in text or "imaging" in text:
            return True
    return False


def _report_work(idx: _Index, entry: _Entry) -> _Work | None:
    """A radiology report is work when it, or its study/order, carries findings."""
    res = entry.resource
    requests = idx.resolve_all(res.get("basedOn"), res, "ServiceRequest")
    studies = idx.resolve_all(res.get("imagingStudy"), res, "ImagingStudy")
    for study in idx.of_type("ImagingStudy"):
        based_on = idx.resolve_all(study.resource.get("basedOn"), study.resource, "ServiceRequest")
        if any(_same(r, requests) for r in based_on):
            _add(studies, study)
    for study in studies:
        for req in idx.resolve_all(study.resource.get("basedOn"), study.resource, "ServiceRequest"):
            _add(requests, req)
    findings = _join(_report_texts(idx, res)) or _join(
        [t for s in studies for t in _study_texts(s.resource)]
        + [t for r in requests for t in _notes(r.resource)]
    )
    if not findings:
        return None
    prompt = _prompt(
        [res.get("code"), *(r.resource.get("code") for r in requests), *_procedure_codes(studies)],
        studies,
        requests,
        findings,
    )
    return _Work(entry, entry, studies, requests, _dict(res.get("code")), prompt)


def _fallback_work(idx: _Index) -> list[_Work]:
    """No radiology report: each study, then each imaging order, with findings text."""
    works: list[_Work] = []
    used: list[_Entry] = []
    for study in idx.of_type("ImagingStudy"):
        res = study.resource
        requests = idx.resolve_all(res.get("basedOn"), res, "ServiceRequest")
        used.extend(requests)
        findings = _join(_study_texts(res))
        if findings:
            codes = [*_procedure_codes([study]), *(r.resource.get("code") for r in requests)]
            prompt = _prompt(codes, [study], requests, findings)
            code = next((c for c in map(_dict, codes) if c), None)
            works.append(_Work(study, None, [study], requests, code, prompt))
    for req in idx.of_type("ServiceRequest"):
        res = req.resource
        imaging = _is_radiology(res.get("category")) or _same(req, used)
        findings = _join(_notes(res))
        if imaging and findings and not any(_same(req, w.requests) for w in works):
            prompt = _prompt([res.get("code")], [], [], findings)
            prompt["clinical_history"] = _join([_cc_text(c) for c in _list(res.get("reasonCode"))])
            works.append(_Work(req, None, [], [req], _dict(res.get("code")), prompt))
    return works


def _prompt(
    codes: list[Any], studies: list[_Entry], requests: list[_Entry], findings: str
) -> dict[str, str]:
    modalities: list[str] = []
    for study in studies:
        res = study.resource
        series = [s.get("modality") for s in _list(res.get("series")) if isinstance(s, dict)]
        for coding in [*_list(res.get("modality")), *series]:
            if isinstance(coding, dict):
                _add_text(modalities, coding.get("code") or coding.get("display"))
    history: list[str] = []
    for entry in [*requests, *studies]:
        for reason in _list(entry.resource.get("reasonCode")):
            _add_text(history, _cc_text(reason))
    for req in requests:
        for note in _notes(req.resource):
            _add_text(history, note)
    return {
        "procedure": next((t for t in map(_cc_text, codes) if t), ""),
        "modality": ", ".join(modalities),
        "clinical_history": "\n".join(history),
        "findings": findings,
    }


def _report_texts(idx: _Index, res: Json) -> list[str]:
    texts = [res.get("conclusion")]
    texts += [_attachment_text(a) for a in _list(res.get("presentedForm"))]
    for obs in idx.resolve_all(res.get("result"), res, "Observation"):
        label, value = _cc_text(obs.resource.get("code")), obs.resource.get("valueString")
        if isinstance(value, str) and value.strip():
            texts.append(f"{label}: {value}" if label else value)
        texts += _notes(obs.resource)
    narrative = _dict(res.get("text")) or {}
    # A "generated" narrative only restates structured fields (status, subject
    # name, ...); treating that as findings would have the model invent a report.
    if narrative.get("status") != "generated":
        texts.append(_html_text(narrative.get("div")))
    return [t for t in texts if isinstance(t, str)]


def _study_texts(res: Json) -> list[str]:
    texts = [res.get("description"), *_notes(res)]
    texts += [s.get("description") for s in _list(res.get("series")) if isinstance(s, dict)]
    return [t for t in texts if isinstance(t, str)]


def _procedure_codes(studies: list[_Entry]) -> list[Any]:
    return [c for s in studies for c in _list(s.resource.get("procedureCode"))]


def _attachment_text(att: Any) -> str:
    """Plain text (or HTML, stripped) from an inline attachment; others are skipped."""
    if not isinstance(att, dict) or not isinstance(att.get("data"), str):
        return ""
    media, _, params = str(att.get("contentType", "")).partition(";")
    media = media.strip().lower()
    if media not in {"text/plain", "text/html", "application/xhtml+xml"}:
        return ""
    charset = re.search(r"charset\s*=\s*\"?([\w.-]+)", params, re.IGNORECASE)
    try:
        raw = base64.b64decode(att["data"], validate=False)
        text = raw.decode(charset.group(1) if charset else "utf-8", errors="replace")
    except (ValueError, LookupError):
        return ""
    return text if media == "text/plain" else _html_text(text)


class _TextOnly(HTMLParser):
    """XHTML narrative to plain text, keeping block boundaries as line breaks."""

    BLOCKS = frozenset({"p", "div", "br", "li", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _html_text(html: Any) -> str:
    if not isinstance(html, str) or not html.strip():
        return ""
    parser = _TextOnly()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


# --- identifiers, references and the WorkItem itself --------------------------


def _patient_identifiers(idx: _Index) -> dict[str, list[str]]:
    """Known identifiers of every Patient in the Bundle (entries and contained)."""
    out: dict[str, list[str]] = {
        k: [] for k in ("name", "mrn", "birth_date", "phone", "email", "address")
    }
    patients = [e.resource for e in idx.of_type("Patient")]
    for e in idx.entries:
        patients += [
            c
            for c in _list(e.resource.get("contained"))
            if isinstance(c, dict) and c.get("resourceType") == "Patient"
        ]
    for pat in patients:
        people = [pat, *(c for c in _list(pat.get("contact")) if isinstance(c, dict))]
        for person in people:
            for name in [*_list(person.get("name")), person.get("name")]:
                for variant in _name_variants(name):
                    _add_text(out["name"], variant)
            for tel in _list(person.get("telecom")):
                if isinstance(tel, dict):
                    kind = "email" if tel.get("system") == "email" else "phone"
                    _add_text(out[kind], tel.get("value"))
            for addr in [*_list(person.get("address")), person.get("address")]:
                for part in _address_parts(addr):
                    _add_text(out["address"], part)
        for ident in _list(pat.get("identifier")):
            if isinstance(ident, dict):
                _add_text(out["mrn"], ident.get("value"))
        _add_text(out["birth_date"], pat.get("birthDate"))
    return out


def _system_value_pairs(idx: _Index) -> list[str]:
    """``system|value`` of every Patient identifier: what ``subject:identifier`` searches."""
    pairs: list[str] = []
    for entry in idx.of_type("Patient"):
        for ident in _list(entry.resource.get("identifier")):
            if isinstance(ident, dict) and isinstance(ident.get("value"), str):
                system = ident.get("system") if isinstance(ident.get("system"), str) else ""
                _add_text(pairs, f"{system}|{ident['value']}")
    return pairs


def _name_variants(name: Any) -> list[str]:
    if not isinstance(name, dict):
        return []
    family = name.get("family") if isinstance(name.get("family"), str) else ""
    given = [g for g in _list(name.get("given")) if isinstance(g, str) and g.strip()]
    variants = [name.get("text"), family]
    variants += [g for g in given if len(g.strip(". ")) > 1]  # bare initials match everywhere
    if given and family:
        variants += [
            " ".join([*given, family]),
            f"{given[0]} {family}",
            f"{family}, {' '.join(given)}",
            f"{family}, {given[0]}",
        ]
    return [v for v in variants if isinstance(v, str)]


def _address_parts(addr: Any) -> list[str]:
    if not isinstance(addr, dict):
        return []
    lines = [x for x in _list(addr.get("line")) if isinstance(x, str)]
    fields = [addr.get(k) for k in ("city", "district", "postalCode")]
    region = " ".join(x for x in (addr.get("state"), addr.get("postalCode")) if isinstance(x, str))
    joined = ", ".join(x for x in [*lines, addr.get("city"), region] if isinstance(x, str) and x)
    return [x for x in [addr.get("text"), *lines, *fields, joined] if isinstance(x, str)]


def _to_item(
    idx: _Index, work: _Work, known: dict[str, list[str]], *, tenant: str, channel: str
) -> WorkItem:
    src = work.source
    res_part = f"{src.rtype}/{src.rid}" if src.rid else (src.full_url or f"entry[{src.index}]")
    source_ref = f"Bundle/{idx.bundle_id}#{res_part}" if idx.bundle_id else f"Bundle#{res_part}"
    canonical = json.dumps(src.resource, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256("\x1f".join((tenant, source_ref, canonical)).encode()).hexdigest()

    subject, patient, display = _subject(idx, src)
    identifiers = {k: list(v) for k, v in known.items()}
    _add_text(identifiers["name"], display)

    payload: Json = {
        "bundle": {"id": idx.bundle_id, "type": idx.bundle_type},
        "source": {**_describe(src), "resourceType": src.rtype, "fullUrl": src.full_url},
        "report": _describe(work.report) if work.report else None,
        "imaging_studies": [_describe(s) for s in work.studies],
        "service_requests": [_describe(r) for r in work.requests],
        "subject": subject,
        "patient": patient,
        "patient_identifiers": _system_value_pairs(idx),
        "code": work.code,
    }
    return WorkItem(
        tenant=tenant,
        channel=channel,
        task=TASK,
        source_ref=source_ref,
        idempotency_key=digest,
        payload=payload,
        prompt_inputs=work.prompt,
        identifiers=identifiers,
    )


def _subject(idx: _Index, src: _Entry) -> tuple[Json | None, Json | None, str | None]:
    """The subject reference for the output, the patient it names (if it is one),
    and its display text, which is a name to protect when it is a patient."""
    ref = _dict(src.resource.get("subject"))
    if ref is None:
        return None, None, None
    target = idx.resolve(ref, src.resource)
    subject: Json = {k: ref[k] for k in ("reference", "type", "identifier") if k in ref}
    if target is not None and target.ref():
        subject["reference"] = target.ref()
    reference = subject.get("reference")
    is_patient = (target.rtype if target else ref.get("type")) == "Patient" or str(
        reference
    ).startswith("Patient/")
    if not is_patient:
        return subject or None, None, None
    patient = {"reference": reference, "id": target.rid if target else None}
    display = ref.get("display")
    return subject or None, patient, display if isinstance(display, str) else None


def _describe(entry: _Entry) -> Json:
    return {"id": entry.rid, "reference": entry.ref()}


# --- small JSON helpers --------------------------------------------------------


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> Json | None:
    return value if isinstance(value, dict) and value else None


def _cc_text(cc: Any) -> str:
    """A CodeableConcept's words: its text, else the first coding display."""
    if not isinstance(cc, dict):
        return ""
    if isinstance(cc.get("text"), str) and cc["text"].strip():
        return str(cc["text"]).strip()
    for coding in _list(cc.get("coding")):
        if isinstance(coding, dict) and isinstance(coding.get("display"), str):
            return str(coding["display"]).strip()
    return ""


def _notes(res: Json) -> list[str]:
    return [
        n["text"]
        for n in _list(res.get("note"))
        if isinstance(n, dict) and isinstance(n.get("text"), str)
    ]


def _join(texts: list[Any]) -> str:
    seen: list[str] = []
    for text in texts:
        _add_text(seen, text)
    return "\n\n".join(seen)


def _add_text(bucket: list[str], text: Any) -> None:
    if isinstance(text, str) and text.strip() and text.strip() not in bucket:
        bucket.append(text.strip())


def _add(entries: list[_Entry], entry: _Entry) -> None:
    if not _same(entry, entries):
        entries.append(entry)


def _same(entry: _Entry, entries: list[_Entry]) -> bool:
    return any(e.resource is entry.resource for e in entries)
