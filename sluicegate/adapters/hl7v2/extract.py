"""Turning a checked message into work: report drafting, pending orders, patients.

- ORU^R01: one ``radiology_report`` item per OBR group that has narrative report
  text (OBX TX/FT/ST/ED; repetitions are line breaks; text/XML/HTML ED decoded,
  PDF and other binaries skipped). A group without any OBX takes its report
  text from its NTE notes, where some senders put it; a group with neither
  (the exam is done, the result carries only the order) still becomes a
  drafting job from the order details, marked ``basis: order`` and told in
  its findings that no report text came, so the draft is an outline for the
  radiologist rather than invented findings. A group of numeric results only
  (a lab panel) or a binary-only report (PDF) is no work: the message is still
  acknowledged AA, without a job, and its order details are kept like an
  order's, for the result that follows.
- ORM^O01 / OMI^O23: no job (a draft needs findings, which only the result
  brings). The order is kept, sealed, as *pending*; the ORU that answers it
  (same placer, filler or accession number) gets its procedure and clinical
  history from it when the ORU itself lacks them. ORC-1 ``CA`` drops it.
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


@dataclass(frozen=True)
class OrderFacts:
    """A pending order: the numbers that identify it and what a draft can use."""

    numbers: list[str]
    inputs: dict[str, str]
    obr: str
    orc: str
    cancelled: bool = False


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


def _decode_ed(value: str, enc: Encoding) -> str:
    """ED (source^type^subtype^encoding^data): text documents only; binaries skipped."""
    subtype = component(value, 3, enc).upper()
    encoding = component(value, 4, enc).upper()
    data = component(value, 5, enc)
    if not any(t in subtype for t in ("TEXT", "XML", "HTML", "RTF", "PLAIN")) and subtype:
        return ""
    if encoding in ("BASE64", "B64"):
        try:
            raw = base64.b64decode(re.sub(r"\s", "", data), validate=False)
        except (binascii.Error, ValueError):
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


def _findings(group: _Group, enc: Encoding, imaging: bool) -> tuple[str, str] | None:
    """(findings, basis) for a result group, or None when it is no drafting work.

    ``basis``: ``obx`` (report text in OBX), ``nte`` (no OBX; the notes carry
    the report) or ``order`` (no OBX, no notes: draft from the order only).
    The last two only for an imaging exam: a lab result without OBX (a panel
    still pending, a note that the specimen was rejected) is no report.
    """
    types = [component(o.field(2), 1, enc).upper() for o in group.obxs]
    if group.obxs:
        if not any(t in _NARRATIVE for t in types):
            return None  # numeric results only (a lab panel): nothing to draft a report from
        text = "\n".join(t for obx in group.obxs if (t := obx_text(obx, enc)))
        return (text, "obx") if text.strip() else None  # a binary-only (PDF) report
    if not imaging:
        return None
    notes = _notes(group.ntes, enc)
    return (notes, "nte") if notes else (NO_REPORT_TEXT, "order")


def _diagnoses(message: Message, enc: Encoding) -> list[str]:
    return [
        _coded_text(dg1.field(3), enc) or _text(dg1.field(4), enc) for dg1 in message.all("DG1")
    ]


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
    }


def _results(message: Message, tenant: str, channel: str) -> list[WorkItem]:
    h = message.header
    enc = h.encoding
    identifiers = harvest(message)
    diagnoses = _diagnoses(message, enc)
    items = []
    for index, group in enumerate(_groups(message), start=1):
        inputs = order_inputs(group.obr, enc, diagnoses)
        found = _findings(group, enc, inputs["modality"].upper() in _IMAGING)
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


def _orders(message: Message) -> list[OrderFacts]:
    enc = message.header.encoding
    diagnoses = _diagnoses(message, enc)
    orders = []
    for group in _groups(message):
        obr, orc = group.obr, group.orc
        numbers = _ids(obr.field(2), enc) + _ids(obr.field(3), enc) + _ids(obr.field(18), enc)
        if orc is not None:
            numbers += _ids(orc.field(2), enc) + _ids(orc.field(3), enc)
        numbers = list(dict.fromkeys(n for n in numbers if n))
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
        pending = [] if items else _orders(message)
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
