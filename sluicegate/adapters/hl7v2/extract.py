"""Turning a checked message into work: report drafting, pending orders, patients.

- ORU^R01: one ``radiology_report`` item per OBR group that is a report
  (:func:`_findings`): narrative OBX text (TX/FT/ST/ED; repetitions are line
  breaks; text/XML/HTML ED decoded, PDF and other binaries skipped) of an
  imaging OBR, or of any OBR whose message is not a lab result (its numeric
  and coded results do not outnumber the narrative). DICOM references (study,
  series, instance UIDs) are never report text, but mark the OBR as imaging.
  An imaging OBR without any OBX takes its report text from its NTE notes,
  where some senders put it; one with neither (the exam is done, the result
  carries only the order) still becomes a drafting job from the order
  details, marked ``basis: order`` and told in its findings that no report
  text came, so the draft is an outline for the radiologist rather than
  invented findings. A lab panel (with or without comments), a binary-only
  report (PDF) or UIDs alone are no work: the message is still acknowledged
  AA, without a job, and its order details are kept like an order's, for the
  result that follows.
- ORM^O01 / OMI^O23: no job (a draft needs findings, which only the result
  brings). The order is kept, sealed, as *pending*; the ORU that answers it
  (same placer, filler or accession number) gets its procedure and clinical
  history from it when the ORU itself lacks them, and the placer, filler and
  accession numbers its outbound ORU needs. ORC-1 ``CA`` drops it.
- ADT^A01/A04/A08/A40: no job; the patient's identifiers are kept, sealed,
  keyed by PID-3 and merged into later items for that patient (A40 moves the
  MRG-1 patient's identifiers to the surviving one).
- MDM^T02: one ``summary`` item over the document text (none for binary-only).
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from dataclasses import dataclass, field
from typing import Any

from sluicegate.adapters.hl7v2.er7 import (
    Encoding,
    Segment,
    component,
    first_subcomponent,
    repetitions,
    unescape,
)
from sluicegate.adapters.hl7v2.identifiers import harvest
from sluicegate.adapters.hl7v2.parse import (
    REQUIRED_MISSING,
    Header,
    Hl7Error,
    Location,
    Message,
)
from sluicegate.core.interfaces import WorkItem

_TEXT_TYPES = frozenset({"TX", "FT", "ST", "CE", "CWE", "CF", "NM", "SN", "TS", "DT", "TM", "ID"})
_NARRATIVE = frozenset({"TX", "FT", "ST", "ED"})
# The findings of a result that carried no report text: the prompt says so in
# the findings' place, so the model drafts an outline instead of findings.
NO_REPORT_TEXT = (
    "None received: this result message carried no report text, only the order "
    "details above. Do not describe, assume or invent any finding; write the "
    "examination and the indication, and leave the findings and the impression "
    "for the radiologist to dictate."
)
_TAG = re.compile(r"<[^>]+>")
_MODALITIES = (
    (re.compile(r"\b(MAMMO\w*|MG)\b", re.I), "MG"),
    (re.compile(r"\b(MRI?|MRA|MAGNETIC)\b", re.I), "MR"),
    (re.compile(r"\b(CTA?|COMPUTED TOMOGRAPHY)\b", re.I), "CT"),
    (re.compile(r"\b(US|ULTRASOUND|SONO\w*|ECHO\w*)\b", re.I), "US"),
    (re.compile(r"\b(PET)\b", re.I), "PT"),
    (re.compile(r"\b(NM|NUCLEAR)\b", re.I), "NM"),
    (re.compile(r"\b(ANGIO\w*|IR|INTERVENTIONAL|FLUORO\w*)\b", re.I), "XA"),
    (re.compile(r"\b(XR|X-RAY|XRAY|RADIOGRAPH\w*|CR|DX)\b", re.I), "XR"),
    (re.compile(r"\b\d*VIEWS?\b", re.I), "XR"),  # "chest 2 views", "single view AP"
)
# Imaging, for results without OBX: the codes above, DICOM modalities and the
# imaging diagnostic service sections of HL7 table 0074 (OBR-24).
_IMAGING = frozenset(
    {code for _, code in _MODALITIES}
    | {"DX", "CR", "RF", "RAD", "RUS", "CUS", "OUS", "VUS", "NMS", "NMR", "XRC"}
)
# Laboratory and pathology sections of table 0074 (OBR-24): never a radiology report.
_LAB_SECTIONS = frozenset(
    {"LAB", "CH", "HM", "MB", "MCB", "MYC", "SR", "BLB", "BG", "IMM", "VR", "TX", "SP", "CP", "PAT"}
)
# OBX-3 codes (DCM) of references to DICOM objects: study, series, instance.
_DICOM_REFERENCES = frozenset({"113014", "113015", "113016"})
_DICOM_UID = re.compile(r"\d+(\.\d+){3,}")
_DIGITS_AND_DOTS = re.compile(r"[\d.]+")
_DIGIT_OR_DOT = frozenset("0123456789.")
_UID_LABEL = re.compile(r"\bUID\b", re.I)
# Result value types that are no narrative: numbers, codes, dates, times.
_RESULTS = frozenset({"NM", "SN", "CE", "CWE", "CF", "CNE", "TS", "DT", "DTM", "TM", "ID", "IS"})


@dataclass(frozen=True)
class OrderFacts:
    """A pending order: the numbers that identify it and what a draft can use."""

    numbers: list[str]
    inputs: dict[str, str]
    obr: str
    orc: str
    cancelled: bool = False
    ids: dict[str, list[str]] = field(default_factory=dict)  # see :func:`order_ids`


@dataclass(frozen=True)
class PatientFacts:
    """A patient's identifiers, keyed by PID-3 (and, for A40, the merged-away ids)."""

    keys: list[str]
    identifiers: dict[str, list[str]]
    merged_keys: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Extraction:
    """Everything the durable step needs; ``items`` lack their idempotency keys."""

    header: Header
    items: list[WorkItem]
    patient_keys: list[str]
    patient: PatientFacts | None = None
    orders: list[OrderFacts] = field(default_factory=list)


def _text(value: str, enc: Encoding) -> str:
    return unescape(value, enc).strip()


def _coded_text(value: str, enc: Encoding) -> str:
    """The readable part of a CE/CWE: text (2), else alternate text (5), else code."""
    for n in (2, 5, 1):
        text = _text(first_subcomponent(component(value, n, enc), enc), enc)
        if text:
            return text
    return ""


def _ids(value: str, enc: Encoding) -> list[str]:
    return [component(rep, 1, enc).strip() for rep in repetitions(value, enc) if rep.strip()]


def patient_keys(message: Message) -> list[str]:
    """PID-3 identifiers as ``id^authority`` keys (hashed before they are stored)."""
    enc = message.header.encoding
    pid = message.first("PID")
    return _cx_keys(pid.field(3), enc) if pid else []


def _cx_keys(value: str, enc: Encoding) -> list[str]:
    keys = []
    for rep in repetitions(value, enc):
        ident = component(rep, 1, enc).strip()
        if ident:
            authority = first_subcomponent(component(rep, 4, enc), enc).strip()
            keys.append(f"{ident}^{authority}")
    return keys


def ed_base64(value: str, enc: Encoding) -> bytes | None:
    """The bytes of a base64 ED (None if undecodable); whitespace (a stray CR
    joined back as a space) is not part of the data."""
    try:
        return base64.b64decode(re.sub(r"\s", "", component(value, 5, enc)), validate=False)
    except (binascii.Error, ValueError):
        return None


def _decode_ed(value: str, enc: Encoding) -> str:
    """ED (source^type^subtype^encoding^data): text documents only; binaries skipped."""
    subtype = component(value, 3, enc).upper()
    encoding = component(value, 4, enc).upper()
    data = component(value, 5, enc)
    if not any(t in subtype for t in ("TEXT", "XML", "HTML", "RTF", "PLAIN")) and subtype:
        return ""
    if encoding in ("BASE64", "B64"):
        raw = ed_base64(value, enc)
        if raw is None:
            return ""
        body = raw.decode("utf-8", errors="replace")
    else:
        body = _text(data, enc)
    if "XML" in subtype or "HTML" in subtype or body.lstrip().startswith("<"):
        body = html.unescape(_TAG.sub(" ", body))
    return re.sub(r"[ \t]+", " ", body).strip()


def obx_text(obx: Segment, enc: Encoding) -> str:
    """The report text one OBX carries (repetitions are line breaks)."""
    value_type = component(obx.field(2), 1, enc).upper()
    value = obx.field(5)
    if value_type == "ED":
        return _decode_ed(value, enc)
    if value_type not in _TEXT_TYPES and value_type:
        return ""
    lines = []
    for rep in value.split(enc.repetition):
        if value_type in ("CE", "CWE", "CF"):
            lines.append(_coded_text(rep, enc))
        elif value_type == "SN":
            lines.append(" ".join(_text(p, enc) for p in rep.split(enc.component) if p))
        else:
            lines.append(_text(rep, enc))
    text = "\n".join(lines).rstrip()
    if value_type in ("NM", "SN", "CE", "CWE") and text:
        label = _coded_text(obx.field(3), enc)
        units = _coded_text(obx.field(6), enc)
        text = f"{label}: {text} {units}".strip() if label else f"{text} {units}".strip()
    return text


def modality(*texts: str) -> str:
    for text in texts:
        for pattern, code in _MODALITIES:
            if text and pattern.search(text):
                return code
    return ""


def order_inputs(obr: Segment, enc: Encoding, extra_history: list[str]) -> dict[str, str]:
    """procedure, modality and clinical history from one OBR (and DG1 diagnoses)."""
    procedure = _coded_text(obr.field(4), enc) or _coded_text(obr.field(44), enc)
    section = component(obr.field(24), 1, enc).strip()
    history = [_coded_text(rep, enc) for rep in repetitions(obr.field(31), enc)] + [
        _text(obr.field(13), enc)
    ]
    history += extra_history
    found = modality(section, component(obr.field(4), 5, enc), procedure)
    return {
        "procedure": procedure,
        "modality": found or section,
        "clinical_history": "; ".join(h for h in history if h),
    }


@dataclass
class _Group:
    """One OBR with its ORC, OBX and NTE segments, in message order."""

    obr: Segment
    orc: Segment | None
    obxs: list[Segment] = field(default_factory=list)
    ntes: list[Segment] = field(default_factory=list)


def _groups(message: Message) -> list[_Group]:
    groups: list[_Group] = []
    orc: Segment | None = None
    for seg in message.segments:
        if seg.id == "ORC":
            orc = seg
        elif seg.id == "OBR":
            groups.append(_Group(seg, orc))
        elif seg.id == "OBX" and groups:
            groups[-1].obxs.append(seg)
        elif seg.id == "NTE" and groups:
            groups[-1].ntes.append(seg)
    return groups


def _notes(ntes: list[Segment], enc: Encoding) -> str:
    """NTE-3 comment text (repetitions are line breaks)."""
    lines = [_text(rep, enc) for nte in ntes for rep in nte.field(3).split(enc.repetition)]
    return "\n".join(lines).strip()


def dicom_reference(obx: Segment, enc: Encoding) -> bool:
    """A reference to a DICOM object (study/series/instance UID), not an observation."""
    code = obx.field(3)
    upper = code.upper()  # cheap tests first: this runs for every OBX on the ACK path
    if "DCM" in upper and component(code, 1, enc) in _DICOM_REFERENCES:
        return component(code, 3, enc).upper() == "DCM"
    if "UID" in upper and _UID_LABEL.search(_coded_text(code, enc)):
        return True
    value = obx.field(5).lstrip()
    if not value[:1].isdigit():
        return False
    return bool(_DICOM_UID.fullmatch(first_subcomponent(component(value, 1, enc), enc).strip()))


def _bare_number(value: str, enc: Encoding) -> bool:
    """Digits and dots only (the first character tested before anything is unescaped)."""
    return value.strip()[:1] in _DIGIT_OR_DOT and bool(
        _DIGITS_AND_DOTS.fullmatch(_text(value, enc))
    )


def _kind(obx: Segment, enc: Encoding) -> str:
    """``reference``, ``narrative`` (report text), ``result`` (numbers, codes) or ``other``."""
    value_type = component(obx.field(2), 1, enc).upper()
    if dicom_reference(obx, enc):
        return "reference"
    if value_type in ("TX", "FT", "ST") and _bare_number(obx.field(5), enc):
        return "result"  # a bare number or an OID in a text field: no prose
    if value_type in _NARRATIVE:
        return "narrative"
    return "result" if value_type in _RESULTS else "other"


def _imaging(group: _Group, modality_code: str, enc: Encoding) -> bool:
    """An imaging exam: its modality (OBR-24, the procedure) or a DICOM study in its OBX."""
    if modality_code.upper() in _IMAGING:
        return True
    return any(dicom_reference(obx, enc) for obx in group.obxs)


def _lab_section(group: _Group, enc: Encoding) -> bool:
    return component(group.obr.field(24), 1, enc).strip().upper() in _LAB_SECTIONS


def _lab_message(groups: list[_Group], enc: Encoding) -> bool:
    """Numeric and coded results outnumber the narrative OBX of the message's
    non-imaging OBRs: a lab report, whose comments (one OBR per screened
    condition, say) are no radiology report."""
    kinds = [_kind(obx, enc) for group in groups for obx in group.obxs]
    return kinds.count("result") > kinds.count("narrative")


def _findings(group: _Group, enc: Encoding, imaging: bool, lab: bool) -> tuple[str, str] | None:
    """(findings, basis) for a result group, or None when it is no drafting work.

    ``basis``: ``obx`` (report text in OBX), ``nte`` (no OBX; the notes carry
    the report) or ``order`` (no OBX, no notes: draft from the order only).
    With OBX: narrative text is needed (UIDs, a PDF, numbers and codes alone
    are nothing to draft from), and a non-imaging OBR must not be ``lab``
    work. Without OBX: only an imaging exam, as a lab result without OBX (a
    panel still pending, a note that the specimen was rejected) is no report.
    """
    if group.obxs:
        if not imaging and lab:
            return None
        texts = [
            (k, obx_text(obx, enc)) for obx in group.obxs if (k := _kind(obx, enc)) != "reference"
        ]
        if not any(k == "narrative" and t for k, t in texts):
            return None  # a binary-only (PDF) report, UIDs or numbers only
        return "\n".join(t for _, t in texts if t), "obx"
    if not imaging:
        return None
    notes = _notes(group.ntes, enc)
    return (notes, "nte") if notes else (NO_REPORT_TEXT, "order")


def _diagnoses(message: Message, enc: Encoding) -> list[str]:
    return [
        _coded_text(dg1.field(3), enc) or _text(dg1.field(4), enc) for dg1 in message.all("DG1")
    ]


def order_ids(obr: Segment | None, orc: Segment | None, enc: Encoding) -> dict[str, list[str]]:
    """Placer (OBR-2, else ORC-2), filler (OBR-3, else ORC-3) and accession (OBR-18)
    numbers as unescaped components, so an order's numbers can be written into a
    result that arrived in other encoding characters."""

    def parts(*values: str) -> list[str]:
        for value in values:
            first = repetitions(value, enc)[:1]
            comps = [_text(c, enc) for c in first[0].split(enc.component)] if first else []
            if any(comps):
                return comps
        return []

    def fld(seg: Segment | None, n: int) -> str:
        return seg.field(n) if seg is not None else ""

    return {
        "placer": parts(fld(obr, 2), fld(orc, 2)),
        "filler": parts(fld(obr, 3), fld(orc, 3)),
        "accession": parts(fld(obr, 18)),
    }


def _payload(message: Message, obr: Segment | None, orc: Segment | None) -> dict[str, Any]:
    h = message.header
    pid, pv1 = message.first("PID"), message.first("PV1")
    return {
        "message_type": h.message_type,
        "version": h.version,
        "control_id": h.control_id,
        "processing_id": h.processing_id,
        "encoding": h.encoding.field + h.encoding.msh2,
        "sending_application": h.sending_application,
        "sending_facility": h.sending_facility,
        "receiving_application": h.receiving_application,
        "receiving_facility": h.receiving_facility,
        "pid": pid.raw if pid else "",
        "pv1": pv1.raw if pv1 else "",
        "obr": obr.raw if obr else "",
        "orc": orc.raw if orc else "",
        "order_ids": order_ids(obr, orc, h.encoding),
    }


def _results(message: Message, tenant: str, channel: str) -> list[WorkItem]:
    h = message.header
    enc = h.encoding
    identifiers = harvest(message)
    diagnoses = _diagnoses(message, enc)
    groups = _groups(message)
    inputs_of = [order_inputs(group.obr, enc, diagnoses) for group in groups]
    imaging = [_imaging(g, i["modality"], enc) for g, i in zip(groups, inputs_of, strict=True)]
    others = [g for g, is_imaging in zip(groups, imaging, strict=True) if not is_imaging]
    lab_message = _lab_message(others, enc)
    items = []
    for index, (group, inputs, is_imaging) in enumerate(
        zip(groups, inputs_of, imaging, strict=True), start=1
    ):
        lab = lab_message or _lab_section(group, enc)
        found = _findings(group, enc, is_imaging, lab)
        if found is None:
            continue
        inputs["findings"], inputs["basis"] = found
        items.append(
            WorkItem(
                tenant=tenant,
                channel=channel,
                task="radiology_report",
                source_ref=f"HL7 {h.message_type} MSH-10 {h.control_id} OBR {index}",
                idempotency_key="",
                payload=_payload(message, group.obr, group.orc),
                prompt_inputs=inputs,
                identifiers=identifiers,
            )
        )
    return items


def _orders(message: Message, required: bool = True) -> list[OrderFacts]:
    """The orders of ``message``; an OBR without any number is AE when ``required``
    (ORM/OMI), else skipped (a result kept as an order: nothing to key it by)."""
    enc = message.header.encoding
    diagnoses = _diagnoses(message, enc)
    orders = []
    for group in _groups(message):
        obr, orc = group.obr, group.orc
        numbers = _ids(obr.field(2), enc) + _ids(obr.field(3), enc) + _ids(obr.field(18), enc)
        if orc is not None:
            numbers += _ids(orc.field(2), enc) + _ids(orc.field(3), enc)
        numbers = list(dict.fromkeys(n for n in numbers if n))
        if not numbers and not required:
            continue
        if not numbers:
            raise Hl7Error(
                "AE",
                REQUIRED_MISSING,
                "order has no placer, filler or accession number",
                Location("OBR", field=2),
                message.header,
            )
        status = component(orc.field(1), 1, enc) if orc else ""
        orders.append(
            OrderFacts(
                numbers=numbers,
                inputs=order_inputs(obr, enc, diagnoses),
                obr=obr.raw,
                orc=orc.raw if orc else "",
                cancelled=status in ("CA", "DC", "OC"),
                ids=order_ids(obr, orc, enc),
            )
        )
    return orders


def _document(message: Message, tenant: str, channel: str) -> list[WorkItem]:
    enc = message.header.encoding
    text = "\n".join(t for obx in message.all("OBX") if (t := obx_text(obx, enc)))
    if not text.strip():
        return []  # a binary-only document (PDF): nothing to summarise
    return [
        WorkItem(
            tenant=tenant,
            channel=channel,
            task="summary",
            source_ref=f"HL7 MDM^T02 MSH-10 {message.header.control_id}",
            idempotency_key="",
            payload=_payload(message, message.first("OBR"), message.first("ORC")),
            prompt_inputs={"text": text},
            identifiers=harvest(message),
        )
    ]


def extract(message: Message, *, tenant: str, channel: str) -> Extraction:
    """What ``message`` means for the gateway (raises :class:`Hl7Error` AE)."""
    h = message.header
    keys = patient_keys(message)
    if h.message_code == "ORU":
        items = _results(message, tenant, channel)
        # A result with nothing to draft from (numeric only, a PDF) is no work
        # yet; its order details are kept like an order's for the report to come.
        pending = [] if items else _orders(message, required=False)
        return Extraction(h, items, keys, orders=pending)
    if h.message_code == "MDM":
        return Extraction(h, _document(message, tenant, channel), keys)
    if h.message_code in ("ORM", "OMI"):
        return Extraction(h, [], keys, orders=_orders(message))
    # ADT
    if not keys:
        raise Hl7Error(
            "AE", REQUIRED_MISSING, "patient identifier list is empty", Location("PID", field=3), h
        )
    merged: list[str] = []
    if h.trigger == "A40":
        mrg = message.first("MRG")
        merged = _cx_keys(mrg.field(1), h.encoding) if mrg else []
        if not merged:
            raise Hl7Error(
                "AE",
                REQUIRED_MISSING,
                "prior patient identifier missing",
                Location("MRG", field=1),
                h,
            )
    return Extraction(h, [], keys, patient=PatientFacts(keys, harvest(message), merged))
