"""De-identification end to end: every structured identifier of every corpus message,
written into narrative in many formats, is gone from what the cloud would see; the
guard passes it; re-identification restores the originals however the model reformats
surrogates; date shifts keep intervals and formats."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import pytest

from sluicegate.core.config import PrivacyConfig
from sluicegate.core.interfaces import WorkItem
from sluicegate.core.privacy.engine import PrivacyEngine
from sluicegate.core.privacy.guard import known_hits
from sluicegate.core.privacy.rules import harvest_fhir, harvest_hl7
from tests.conftest import CORPUS

FHIR_FILES = sorted((CORPUS / "fhir" / "valid").glob("*.json"))
HL7_FILES = sorted(p for p in (CORPUS / "hl7v2").iterdir() if p.suffix in (".hl7", ".txt"))
MONTHS = "January February March April May June July August September October November December"
FILLER = "Chest radiograph: no focal consolidation, effusion or pneumothorax. Heart size normal."
NAME_KEYS = ("name", "provider")

ENGINES = {mode: PrivacyEngine(PrivacyConfig(surrogates=mode)) for mode in ("tags", "realistic")}


def _date(value: str) -> date | None:
    m = re.match(r"(\d{4})-?(\d{2})-?(\d{2})", value)
    if not m:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def formats(kind: str, value: str) -> list[str]:
    """The ways a report writer might write ``value``."""
    out = [value]
    if kind in NAME_KEYS:
        out += [value.upper(), value.title()]
        words = value.replace(",", " ").split()
        if "," not in value and len(words) > 1:
            out.append(f"{words[-1]}, {' '.join(words[:-1])}")
    elif "date" in kind:
        d = _date(value)
        if d is not None:
            month = MONTHS.split()[d.month - 1]
            out = [
                d.isoformat(),
                f"{d.month}/{d.day}/{d.year}",
                f"{d.month:02d}/{d.day:02d}/{d.year}",
                f"{month} {d.day}, {d.year}",
                f"{d.day} {month[:3]} {d.year}",
                d.strftime("%Y%m%d"),
            ]
    elif sum(c.isdigit() for c in value) >= 4:
        digits = re.sub(r"\D", "", value)
        out += [] if any(c.isalpha() for c in value) else [digits]
        if len(digits) == 10:
            out.append(f"({digits[:3]}) {digits[3:6]}-{digits[6:]}")
    else:
        out.append(value.upper())
    return out


def narrative(identifiers: dict[str, list[str]]) -> str:
    lines = ["HISTORY:", FILLER]
    for kind, values in identifiers.items():
        for value in values:
            for written in formats(kind, value):
                lines.append(f"Noted ({kind}): {written}. {FILLER}")
    return "\n".join(lines)


def remaining(identifiers: dict[str, list[str]], text: str) -> list[str]:
    """Which inserted spellings survive, checked without the engine's or guard's code."""
    low = text.casefold()
    left = []
    for kind, values in identifiers.items():
        for value in values:
            for written in formats(kind, value):
                if sum(c.isalnum() for c in written) < 3:
                    continue
                needle = written.casefold()
                if needle in low and re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", low):
                    left.append(kind)
    return left


def item_for(identifiers: dict[str, list[str]], text: str, channel: str = "fhir") -> WorkItem:
    return WorkItem(
        tenant="t",
        channel=channel,
        task="radiology_report",
        source_ref="test",
        idempotency_key="k",
        payload={},
        prompt_inputs={"findings": text, "procedure": "CT chest"},
        identifiers=identifiers,
    )


def _check(identifiers: dict[str, list[str]], mode: str) -> None:
    assert identifiers, "the corpus document should carry identifiers"
    item = item_for(identifiers, narrative(identifiers))
    engine = ENGINES[mode]
    out = engine.deidentify(item)
    cloud = "\n".join(out.inputs.values())
    assert remaining(identifiers, cloud) == []
    assert known_hits(identifiers, out.inputs.values()) == []
    assert engine.guard(item, out.inputs) == []  # realistic fakes too: reserved ranges
    assert FILLER in cloud  # clinical content survives
    assert all(isinstance(k, str) and isinstance(n, int) for k, n in out.counts.items())
    back = engine.reidentify(cloud, out.vault)
    assert back.unresolved == 0 and back.restored > 0


def _fhir(path: Path) -> dict[str, list[str]]:
    return harvest_fhir(json.loads(path.read_text(encoding="utf-8")))


FHIR_WITH_PEOPLE = [p for p in FHIR_FILES if _fhir(p)]


@pytest.mark.parametrize("mode", ["tags", "realistic"])
@pytest.mark.parametrize("path", FHIR_WITH_PEOPLE, ids=lambda p: p.name)
def test_fhir_corpus_identifiers_never_reach_the_cloud(path: Path, mode: str) -> None:
    _check(_fhir(path), mode)


def test_fhir_corpus_documents_without_people_are_few() -> None:
    empty = {p.name for p in FHIR_FILES} - {p.name for p in FHIR_WITH_PEOPLE}
    assert len(FHIR_WITH_PEOPLE) >= 18
    assert empty <= {
        "hl7-r4-Bundle-bundle-example.json",
        "hl7-r4-Organization-1.json",
        "synthea-r4-hospitalInformation_transaction.json",
    }


@pytest.mark.parametrize("mode", ["tags", "realistic"])
@pytest.mark.parametrize("path", HL7_FILES, ids=lambda p: p.name)
def test_hl7_corpus_identifiers_never_reach_the_cloud(path: Path, mode: str) -> None:
    identifiers = harvest_hl7(path.read_text(encoding="utf-8", errors="replace"))
    _check(identifiers, mode)


# --- consistency, re-identification, date shifting ------------------------------------------

IDS = {
    "name": ["Jane Q. Testperson", "Testperson", "Jane", "Testperson, Jane"],
    "mrn": ["MRN-0048213"],
    "birth_date": ["1961-04-17"],
    "phone": ["+1-617-555-0142"],
    "address": ["42 Example Lane", "Springfield"],
}
TEXT = (
    "Ms. Jane Testperson (MRN 0048213, DOB 04/17/1961) of 42 Example Lane, Springfield.\n"
    "TESTPERSON, JANE was seen on 2024-03-01; prior study 2024-02-20.\n"
    "Call Testperson's daughter at (617) 555-0142. Jane tolerated the procedure."
)


def test_one_person_one_surrogate_in_tags_mode() -> None:
    engine = ENGINES["tags"]
    out = engine.deidentify(item_for(IDS, TEXT))
    text = out.inputs["findings"]
    assert "Testperson" not in text and "JANE" not in text and "0048213" not in text
    assert set(re.findall(r"\[PATIENT_\d+\]", text)) == {"[PATIENT_1]"}
    assert text.count("[PATIENT_1]") == 4
    assert "[DATE_" in text and "1961" not in text
    assert out.counts["name"] == 4 and out.counts["date"] >= 3
    assert engine.guard(item_for(IDS, TEXT), out.inputs) == []


@pytest.mark.parametrize(
    "written",
    [
        "[PATIENT_1]",
        "[Patient 1]",
        "PATIENT_1",
        "[patient_1]",
        "[ PATIENT_1 ]",
        "\\[PATIENT\\_1\\]",
        "**[PATIENT_1]**",
        "[Patient-1]",
    ],
)
def test_reidentify_tolerates_reformatted_tags(written: str) -> None:
    engine = ENGINES["tags"]
    out = engine.deidentify(item_for(IDS, TEXT))
    back = engine.reidentify(f"Impression for {written}: stable.", out.vault)
    assert back.text.replace("*", "") == "Impression for Jane Q. Testperson: stable."
    assert (back.restored, back.unresolved) == (1, 0)


def test_reidentify_round_trip_and_unknown_tags() -> None:
    engine = ENGINES["tags"]
    out = engine.deidentify(item_for(IDS, TEXT))
    model_output = out.inputs["findings"] + "\nSee also [PATIENT_7] and [DATE_99]."
    back = engine.reidentify(model_output, out.vault)
    assert "Jane Q. Testperson" in back.text and "[PATIENT_7]" in back.text
    assert "2024-03-01" in back.text and "MRN 0048213" in back.text  # as it was written
    assert back.unresolved == 2
    assert "[PATIENT_1]" not in back.text and "[DATE_1]" not in back.text


def _dates_in(text: str) -> list[date]:
    return [date.fromisoformat(m) for m in re.findall(r"\d{4}-\d{2}-\d{2}", text)]


def test_realistic_mode_shifts_dates_keeping_intervals_and_formats() -> None:
    engine = ENGINES["realistic"]
    out = engine.deidentify(item_for(IDS, TEXT))
    text = out.inputs["findings"]
    offset = out.vault.date_offset_days
    assert offset != 0
    assert _dates_in(text) == [
        date(2024, 3, 1) + timedelta(offset),
        date(2024, 2, 20) + timedelta(offset),
    ]
    dob = date(1961, 4, 17) + timedelta(offset)
    assert f"DOB {dob.month:02d}/{dob.day:02d}/{dob.year}" in text  # same format
    for gone in ("Testperson", "TESTPERSON", "0048213", "Example Lane", "(617) 555-0142", "Jane"):
        assert not re.search(rf"(?<!\w){re.escape(gone)}(?!\w)", text)
    assert re.search(r"\(\d{3}\) 555-01\d\d", text)  # a fictional-range phone number
    assert engine.guard(item_for(IDS, TEXT), out.inputs) == []
    back = engine.reidentify(text, out.vault)
    assert back.text == TEXT


def test_realistic_reidentify_tolerates_case_spacing_possessive_and_other_date_format() -> None:
    engine = ENGINES["realistic"]
    out = engine.deidentify(item_for(IDS, "Jane Testperson was scanned on 2024-03-01."))
    fake_name = out.inputs["findings"].split(" was")[0]
    first, last = fake_name.split()
    shifted = date(2024, 3, 1) + timedelta(out.vault.date_offset_days)
    reply = (
        f"{first.upper()}  {last}'s scan of {shifted.strftime('%B')} {shifted.day}, {shifted.year}."
    )
    back = engine.reidentify(reply, out.vault)
    assert back.text == "Jane Testperson's scan of March 1, 2024."


def test_ages_over_89_are_generalised() -> None:
    engine = ENGINES["tags"]
    out = engine.deidentify(item_for({}, "A 94-year-old man; his wife is 67 years old."))
    text = out.inputs["findings"]
    assert "94" not in text and "90+" in text and "67" in text


def test_each_job_gets_its_own_vault() -> None:
    engine = ENGINES["realistic"]
    a = engine.deidentify(item_for(IDS, TEXT))
    b = engine.deidentify(item_for(IDS, TEXT))
    assert a.vault is not b.vault and a.vault.seed != b.vault.seed


def test_per_channel_profile_and_mode() -> None:
    config = PrivacyConfig.model_validate(
        {
            "channels": {
                "hl7": {"surrogates": "realistic", "hl7": [{"field": "PID-8", "method": "redact"}]}
            }
        }
    )
    engine = PrivacyEngine(config)
    assert engine.mode_for("hl7") == "realistic" and engine.mode_for("fhir") == "tags"
    assert engine.profile_for("hl7").hl7[0].target == "PID-8"
    assert engine.profile_for("fhir").hl7[0].target != "PID-8"
    vault = engine.new_vault("hl7")
    er7 = (
        "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||123456^^^H^MR||Doe^John||19700101|M\r"
    )
    copy = engine.deidentify_hl7(er7, vault, "hl7")
    assert "Doe" not in copy and "123456" not in copy and "|M\r" not in copy


def test_odd_identifier_values_are_tolerated() -> None:
    odd: dict[str, list[str]] = {"name": ["", "  ", "Jane Testperson"], "mrn": [None, 12]}  # type: ignore[list-item]
    engine = ENGINES["tags"]
    out = engine.deidentify(item_for(odd, "Jane Testperson, seen today."))
    assert out.inputs["findings"] == "[PATIENT_1], seen today."


def test_items_of_one_message_share_compiled_matchers() -> None:
    engine = PrivacyEngine(PrivacyConfig())
    first = engine.deidentify(item_for(IDS, TEXT))
    second = engine.deidentify(item_for(dict(IDS), TEXT))
    assert len(engine._compiled) == 1
    assert first.inputs == second.inputs  # tags: same text, same surrogates
