"""What real feeds send, read before the ACK: endings, BOM, escapes, documents, junk."""

from __future__ import annotations

import base64

import pytest
from hl7apy.parser import parse_message

from sluicegate.adapters.hl7v2.ack import build_ack
from sluicegate.adapters.hl7v2.er7 import DEFAULT_ENCODING, escape, split_lines, unescape
from sluicegate.adapters.hl7v2.extract import NO_REPORT_TEXT, extract
from sluicegate.adapters.hl7v2.parse import Hl7Error, Location, read_message
from sluicegate.adapters.hl7v2.render import ORDER_ONLY_NOTE, render_oru
from sluicegate.core.interfaces import Generation, Zone
from sluicegate.inference.prompts import build_messages
from tests.conftest import CORPUS

BASE = [
    "MSH|^~\\&|RIS|HOSP|SG|SG|20250102||ORU^R01|C1|P|2.5",
    "PID|1||MRN1^^^HOSP^MR||Doe^Jane||19700101|F",
    "OBR|1|P1|F1|XR^XR CHEST 2V^L",
    "OBX|1|TX|||Lungs clear.~Heart normal. \\T\\ stable\\.br\\No effusion \\F\\ pipe",
    "ZDS|1.2.3^EPIC",
]


def findings(text: str | bytes) -> str:
    [item] = extract(read_message(text), tenant="t", channel="c").items
    return item.prompt_inputs["findings"]


@pytest.mark.parametrize("ending", ["\r", "\n", "\r\n"])
def test_segment_endings_bom_and_trailing_whitespace(ending: str) -> None:
    raw = ("\ufeff" + ending.join(BASE) + ending + "  \n\n").encode("utf-8")
    text = findings(raw)
    # repetitions are line breaks; escapes resolved; Z-segment ignored
    assert text == "Lungs clear.\nHeart normal. & stable\nNo effusion | pipe"


def test_encoding_characters_from_msh_are_honoured() -> None:
    other = [s.replace("|", "#").replace("^", "@") for s in BASE[:3]]
    other[0] = "MSH#@~\\&#RIS#HOSP#SG#SG#20250102##ORU@R01#C2#P#2.5"
    other.append("OBX#1#FT###Line one\\.br\\with a literal | and ^ inside")
    assert findings("\r".join(other)) == "Line one\nwith a literal | and ^ inside"


def test_latin1_feed_and_hex_escape() -> None:
    raw = "\r".join([*BASE[:3], "OBX|1|TX|||Perfusion ±60% \\XB0\\"]).encode("latin-1")
    assert findings(raw) == "Perfusion ±60% °"


def test_msh18_latin1_is_honoured() -> None:
    header = BASE[0] + "||||||8859/1"
    # These latin-1 bytes happen to be valid UTF-8 too ("é"); MSH-18 decides.
    raw = "\r".join([header, *BASE[1:3], "OBX|1|TX|||Ã© normal"]).encode("latin-1")
    assert findings(raw) == "Ã© normal"


def test_embedded_text_document_with_stray_carriage_returns() -> None:
    doc = base64.b64encode(
        b"<ClinicalDocument><text>Mild degenerative change.</text></ClinicalDocument>"
    ).decode()
    broken = doc[:20] + "\r" + doc[20:]  # a stray CR inside the base64
    text = "\r".join([*BASE[:3], f"OBX|1|ED|||^text^XML^Base64^{broken}||||||F"])
    assert findings(text) == "Mild degenerative change."


def test_stray_line_outside_obx_is_an_error() -> None:
    with pytest.raises(Hl7Error) as bad:
        read_message("\r".join([BASE[0], "not a segment", *BASE[1:]]))
    assert bad.value.ack_code == "AE" and bad.value.code == "100"


@pytest.mark.parametrize(
    ("change", "ack", "code"),
    [
        (("ORU^R01", "ORU^R02"), "AR", "201"),
        (("ORU^R01", "RDE^O11"), "AR", "200"),
        (("|2.5", "|2.2"), "AR", "203"),
        (("|P|", "|X|"), "AR", "202"),
        (("|C1|", "||"), "AR", "101"),
        (("^~\\&", "^^\\&"), "AR", "102"),
    ],
)
def test_msh_problems_are_rejected(change: tuple[str, str], ack: str, code: str) -> None:
    with pytest.raises(Hl7Error) as bad:
        read_message("\r".join([BASE[0].replace(*change, 1), *BASE[1:]]))
    assert (bad.value.ack_code, bad.value.code) == (ack, code)
    assert "Doe" not in str(bad.value)  # never a value in the error


def test_missing_segment_is_a_content_error() -> None:
    with pytest.raises(Hl7Error) as bad:
        read_message("\r".join([BASE[0], *BASE[2:]]))
    assert bad.value.ack_code == "AE" and bad.value.location and bad.value.location.segment == "PID"


def test_the_nhapi_no_exception_fuzz_case_parses() -> None:
    """Its upstream verdict is 'NoException': it splits into segments without error;
    being an ADT^A07 with processing id '0' it is then answered AR, not crashed on."""
    raw = (CORPUS / "hl7v2/invalid/nhapi-bad-PipeParser-NoException-id_000109.hl7").read_bytes()
    assert split_lines(raw.decode("latin-1"))[0].startswith("MSH|")
    with pytest.raises(Hl7Error) as rejected:
        read_message(raw)
    assert rejected.value.ack_code == "AR" and rejected.value.header is not None


@pytest.mark.parametrize("version", ["2.3", "2.4", "2.5.1", "2.8"])
def test_ack_swaps_routing_and_uses_the_inbound_version(version: str) -> None:
    message = read_message("\r".join([BASE[0].replace("|2.5", f"|{version}"), *BASE[1:]]))
    error = Hl7Error("AE", "101", "required field missing")
    for text in (build_ack(message.header, "AA"), build_ack(message.header, "AE", error)):
        ack = parse_message(text, find_groups=False)  # hl7apy validates the structure
        assert ack.msh.msh_3.value == "SG" and ack.msh.msh_5.value == "RIS"
        assert ack.msh.msh_12.to_er7() == version
        assert ack.msa.msa_2.value == "C1"
        assert ack.msh.msh_10.value != "C1"


def test_escape_round_trip() -> None:
    text = "a|b^c~d&e\\f\nnext"
    assert unescape(escape(text), DEFAULT_ENCODING) == text


def test_every_corpus_message_is_handled_without_crashing() -> None:
    from sluicegate.adapters.hl7v2.er7 import decode
    from sluicegate.adapters.hl7v2.parse import split_batch

    for path in sorted((CORPUS / "hl7v2").rglob("*.hl7")):
        for message in split_batch(decode(path.read_bytes())):
            try:
                extract(read_message(message), tenant="t", channel="c")
            except Hl7Error as exc:
                assert exc.ack_code in ("AE", "AR")


def test_mdm_document_becomes_a_summary() -> None:
    raw = (CORPUS / "hl7v2/msfc-MDM-T02-03.hl7").read_bytes()
    [item] = extract(read_message(raw), tenant="t", channel="c").items
    assert item.task == "summary" and len(item.prompt_inputs["text"]) > 100


def test_orders_are_pending_and_cancellation_is_seen() -> None:
    order = [
        "MSH|^~\\&|HIS|HOSP|SG|SG|20250101||OMI^O23|O1|P|2.5.1",
        "PID|1||MRN1^^^HOSP^MR",
        "ORC|NW|PL1|FI1",
        "OBR|1|PL1|FI1|CTA^CT ANGIO CHEST^L",
    ]
    placed = extract(read_message("\r".join(order)), tenant="t", channel="c")
    assert placed.items == [] and not placed.orders[0].cancelled
    assert placed.orders[0].numbers == ["PL1", "FI1"]
    assert placed.orders[0].inputs["modality"] == "CT"
    order[2] = "ORC|CA|PL1|FI1"
    cancelled = extract(read_message("\r".join(order)), tenant="t", channel="c")
    assert cancelled.orders[0].cancelled


RESULT = [
    "MSH|^~\\&|RIS|HOSP|SG|SG|20250102||ORU^R01|R1|P|2.4",
    "PID|1||MRN1^^^HOSP^MR||Doe^Jane||19700101|F",
    "OBR|1|P1|F1|IMG2816^US ABDOMEN LIMITED^L" + "|" * 27 + "^Right upper quadrant pain",
]


def test_report_text_in_nte_is_the_findings() -> None:
    raw = "\r".join([*RESULT, "NTE|1|L|Gallbladder normal.~No ductal dilatation."])
    [item] = extract(read_message(raw), tenant="t", channel="c").items
    assert item.prompt_inputs["findings"] == "Gallbladder normal.\nNo ductal dilatation."
    assert item.prompt_inputs["basis"] == "nte"


def test_imaging_result_without_report_text_drafts_from_the_order() -> None:
    """No OBX, no NTE: a drafting job from procedure and indication, marked as such."""
    extraction = extract(read_message("\r".join(RESULT)), tenant="t", channel="c")
    [item] = extraction.items
    inputs = item.prompt_inputs
    assert inputs["basis"] == "order" and inputs["findings"] == NO_REPORT_TEXT
    assert inputs["procedure"] == "US ABDOMEN LIMITED" and inputs["modality"] == "US"
    assert inputs["clinical_history"] == "Right upper quadrant pain"
    assert extraction.orders == []
    prompt = build_messages(item.task, inputs)[1].content
    assert "carried no report text" in prompt and "US ABDOMEN LIMITED" in prompt
    rendered = render_oru(
        item, Generation("draft", "b", "m", Zone.ONPREM, 0.1), "job-1", ("SG", "SG")
    )
    notes = [seg for seg in rendered.body.decode().split("\r") if seg.startswith("NTE|")]
    assert notes[1] == f"NTE|2|L|{ORDER_ONLY_NOTE}"


def test_lab_result_without_obx_is_no_report() -> None:
    """The same shape for a lab panel (no imaging modality) stays a pending order."""
    lab = [*RESULT[:2], "OBR|1|P1|F1|57128-1^Newborn screening panel^LN", "NTE|1|L|Pending."]
    extraction = extract(read_message("\r".join(lab)), tenant="t", channel="c")
    assert extraction.items == [] and extraction.orders[0].numbers == ["P1", "F1"]


def test_mutated_corpus_messages_never_crash_the_reader() -> None:
    """2,000 random byte-level mutations of corpus messages: each is read and
    acknowledged, or rejected with an HL7 error; nothing else is ever raised."""
    import random

    from sluicegate.adapters.hl7v2.ack import error_ack
    from sluicegate.adapters.hl7v2.er7 import decode
    from sluicegate.adapters.hl7v2.parse import split_batch

    rng = random.Random(7)
    messages = [
        m
        for path in sorted((CORPUS / "hl7v2").rglob("*.hl7"))
        for m in split_batch(decode(path.read_bytes()))
    ]
    alphabet = "|^~\\&\r\n\x0bMSHPIDOBXR0123456789 "
    for _ in range(2000):
        chars = list(rng.choice(messages))
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(chars))
            if rng.random() < 0.5:
                chars.insert(i, rng.choice(alphabet))
            else:
                chars[i] = rng.choice(alphabet)
        try:
            extract(read_message("".join(chars).encode()), tenant="t", channel="c")
        except Hl7Error as exc:
            ack = error_ack(exc, ("SG", "SG"))
            assert "\rMSA" in ack and exc.ack_code in ack


# ---- which results are report-drafting work ----


def _items(name: str) -> list:
    raw = (CORPUS / "hl7v2" / name).read_bytes()
    return extract(read_message(raw), tenant="t", channel="c").items


def test_pdf_report_with_dicom_references_is_no_work() -> None:
    """Its ST OBX are study/series/instance UIDs, its report a PDF: nothing to draft
    from; the order is kept for the report that follows."""
    raw = (CORPUS / "hl7v2/dcm4che-ORU_R01-PDF.hl7").read_bytes()
    extraction = extract(read_message(raw), tenant="t", channel="c")
    assert extraction.items == []
    assert "AccessionNumber" in extraction.orders[0].numbers


@pytest.mark.parametrize(
    "name",
    [
        "msfc-LRI_2.0-NG_CBC_Typ_Message.hl7",  # 19 NM, 6 CWE and 3 TX comments
        "cdc-ti-002_CA_ORU_R01.hl7",  # newborn screening: a TX comment OBR per condition
    ],
)
def test_lab_panel_with_comments_is_no_report(name: str) -> None:
    assert _items(name) == []


def test_dicom_references_are_never_findings() -> None:
    [item] = _items("dcm4che-ORU_R01-CDA.hl7")
    assert "Chest X-Ray" in item.prompt_inputs["findings"]
    assert "1.2.392" not in item.prompt_inputs["findings"]
    [item] = _items("dcm4che-ORU_R01-SR.hl7")
    assert "right kidney is slightly enlarged" in item.prompt_inputs["findings"]
    assert "1.2.392" not in item.prompt_inputs["findings"]


LOCAL = [*BASE[:2], "OBR|1|P1|F1|LOC42^LOCAL PROCEDURE 42^L"]  # no modality in its wording
MEASURED = ["OBX|2|NM|LV^Left ventricle^L||55|mm", "OBX|3|NM|RV^Right ventricle^L||30|mm"]
REPORT = "OBX|4|TX|||Normal chamber sizes."


def test_a_dicom_study_reference_marks_the_result_as_imaging() -> None:
    """Measurements outnumber the narrative: a lab-like result, unless the OBX
    reference a DICOM study, which makes it an imaging report (UID not in it)."""
    lab_like = extract(
        read_message("\r".join([*LOCAL, *MEASURED, REPORT])), tenant="t", channel="c"
    )
    assert lab_like.items == []
    study = "OBX|1|ST|113014^DICOM Study^DCM||1.2.840.113619.2.55.3"
    [item] = extract(
        read_message("\r".join([*LOCAL, study, *MEASURED, REPORT])), tenant="t", channel="c"
    ).items
    assert item.prompt_inputs["findings"].splitlines() == [
        "Left ventricle: 55 mm",
        "Right ventricle: 30 mm",
        "Normal chamber sizes.",
    ]


def test_narrative_result_of_a_local_procedure_code_is_a_report_unless_lab() -> None:
    """Report text under a procedure code that names no modality is still a report
    (some radiology feeds send only local codes), unless OBR-24 names a lab section."""
    [item] = extract(read_message("\r".join([*LOCAL, REPORT])), tenant="t", channel="c").items
    assert item.prompt_inputs["findings"] == "Normal chamber sizes."
    hematology = LOCAL[2] + "|" * 20 + "HM"
    lab = extract(
        read_message("\r".join([*LOCAL[:2], hematology, REPORT])), tenant="t", channel="c"
    )
    assert lab.items == []


def test_a_bare_number_in_a_text_field_is_no_report_text() -> None:
    only_ids = ["OBX|1|ST|^Series Instance UID||1.2.3.4.5.6", "OBX|2|ST|||42"]
    assert (
        extract(read_message("\r".join([*LOCAL, *only_ids])), tenant="t", channel="c").items == []
    )


# ---- stray carriage returns ----


def test_stray_cr_inside_report_text_is_a_space() -> None:
    raw = "\r".join([*BASE[:3], "OBX|1|TX|||No acute\rfindings.||||||F"])
    assert findings(raw) == "No acute findings."


def test_pdf_base64_with_a_stray_cr_still_decodes() -> None:
    """The corpus PDF breaks its base64 with a CR; joined back (with a space) it is
    still the whole document."""
    from sluicegate.adapters.hl7v2.extract import ed_base64

    message = read_message((CORPUS / "hl7v2/dcm4che-ORU_R01-PDF.hl7").read_bytes())
    [ed] = [o for o in message.all("OBX") if o.field(2) == "ED"]
    data = ed_base64(ed.field(5), message.header.encoding)
    assert data is not None and data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")


# ---- ACKs in the inbound message's own idiom ----

ROUTED = "MSH|^~\\&|RISAPP|RISFAC|SGAPP|SGFAC|20250102||ORU^R01|C9|P|{v}"


def _ack_fields(ack: str, segment: str, sep: str = "|") -> list[str]:
    [line] = [s for s in ack.split("\r") if s.startswith(segment + sep)]
    fields = line.split(sep)
    return ["MSH", sep, *fields[1:]] if segment == "MSH" else fields


def test_ack_swaps_applications_and_facilities() -> None:
    message = read_message("\r".join([ROUTED.format(v="2.5"), *BASE[1:]]))
    msh = _ack_fields(build_ack(message.header, "AA"), "MSH")
    assert msh[3:7] == ["SGAPP", "SGFAC", "RISAPP", "RISFAC"]


def test_ack_uses_the_inbound_encoding_characters() -> None:
    inbound = "MSH#@~\\&#RIS#HOSP#SG#SGF#20250102##ORU@R01#ENC1#P#2.5"
    message = read_message("\r".join([inbound, *(s.replace("|", "#") for s in BASE[1:])]))
    error = Hl7Error("AE", "101", "required field missing", Location("PID", field=3))
    ack = build_ack(message.header, "AE", error)
    msh = _ack_fields(ack, "MSH", "#")
    assert msh[1:3] == ["#", "@~\\&"]
    assert msh[9] == "ACK@R01@ACK"
    assert _ack_fields(ack, "MSA", "#")[1:3] == ["AE", "ENC1"]
    err = _ack_fields(ack, "ERR", "#")
    assert err[2] == "PID@1@3" and err[3] == "101@Required field missing@HL70357"
    truncation = read_message(
        "\r".join([BASE[0].replace("^~\\&", "^~\\&#").replace("|2.5", "|2.7"), *BASE[1:]])
    )
    assert _ack_fields(build_ack(truncation.header, "AA"), "MSH")[2] == "^~\\&#"


@pytest.mark.parametrize("version", ["2.5", "2.5.1", "2.7", "2.8"])
def test_err_location_and_code_from_2_5_on(version: str) -> None:
    message = read_message("\r".join([ROUTED.format(v=version), *BASE[1:]]))
    error = Hl7Error("AE", "102", "data type error", Location("OBR", sequence=2, field=7))
    err = _ack_fields(build_ack(message.header, "AE", error), "ERR")
    assert err[1] == ""  # ERR-1 (ELD) is withdrawn from 2.5 on
    assert err[2] == "OBR^2^7"  # ERR-2: segment, sequence, field
    assert err[3] == "102^Data type error^HL70357"  # ERR-3: table 0357
    assert err[4] == "E"  # ERR-4 severity
    assert err[8] == "data type error"  # ERR-8: the text


@pytest.mark.parametrize("version", ["2.3", "2.3.1", "2.4"])
def test_err_location_and_code_before_2_5(version: str) -> None:
    message = read_message("\r".join([ROUTED.format(v=version), *BASE[1:]]))
    error = Hl7Error("AE", "102", "data type error", Location("OBR", sequence=2, field=7))
    err = _ack_fields(build_ack(message.header, "AE", error), "ERR")
    assert len(err) == 2  # ERR-1 only
    segment, sequence, fieldno, code = err[1].split("^")
    assert (segment, sequence, fieldno) == ("OBR", "2", "7")
    assert code.split("&") == ["102", "data type error", "HL70357"]


def test_ack_to_a_latin1_message_is_latin1_and_says_so() -> None:
    from sluicegate.adapters.hl7v2.ack import ack_bytes

    inbound = "MSH|^~\\&|RIS|Hôpital Süd|SG|SG|20250102||ORU^R01|L1|P|2.5.1||||||8859/1"
    raw = "\r".join([inbound, *BASE[1:]]).encode("latin-1")
    message = read_message(raw)
    ack = ack_bytes(build_ack(message.header, "AA"), message.header)
    msh = _ack_fields(ack.decode("latin-1"), "MSH")
    assert msh[6] == "Hôpital Süd" and msh[18] == "8859/1"
    assert "Hôpital Süd".encode("latin-1") in ack
    with_bom = read_message(b"\xef\xbb\xbf" + raw)  # a BOM in front of Latin-1 bytes
    assert with_bom.header.sending_facility == "Hôpital Süd"
    utf8 = read_message("\r".join([inbound.removesuffix("8859/1"), *BASE[1:]]).encode())
    assert "Hôpital Süd".encode() in ack_bytes(build_ack(utf8.header, "AA"), utf8.header)
