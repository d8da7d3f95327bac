"""Recall rules for names and places by phrasing class (issue 6), each with its counter-cases.

Every phrase here was written for this test: middle initials with and without a period,
the person spoken of after a verb of speech, a request to see a patient, a summary's
title, surname particles in capitals, and towns that open with a prefix word.
"""

from __future__ import annotations

import pytest

from sluicegate.core.privacy.findings import Finding, Kind
from sluicegate.core.privacy.names import NameRecognizer


@pytest.fixture(scope="module")
def recognizer() -> NameRecognizer:
    return NameRecognizer()


def _covered(text: str, value: str, found: list[Finding], kind: Kind | None = None) -> bool:
    start = text.find(value)
    assert start >= 0, (value, text)
    mask = bytearray(len(text))
    for f in found:
        if kind is None or f.kind is kind:
            mask[f.start : f.end] = b"\x01" * (f.end - f.start)
    return all(mask[i] for i in range(start, start + len(value)) if text[i].isalnum())


def _words(text: str, found: list[Finding]) -> list[str]:
    return [text[f.start : f.end] for f in found]


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        # The surname after a dotted middle initial, also when it is a word ("Farmer").
        ("Attending: Hector B. Farmer MD reviewed the films.", "Hector B. Farmer", Kind.NAME),
        (
            "Rx written for Umberto K. Quellinghast, follow up in 2 wk.",
            "Umberto K. Quellinghast",
            Kind.NAME,
        ),
        ("Patient: Charles T. Graham DOB 01/02/1950", "Charles T. Graham", Kind.NAME),
        # An undotted middle initial between a given name and a surname.
        ("Follow up with Margaret R Tammerknoll next month.", "Margaret R Tammerknoll", Kind.NAME),
        (
            "Consult placed; seen with Ingrid P Vasquez-Lorne today.",
            "Ingrid P Vasquez-Lorne",
            Kind.NAME,
        ),
        # Lower-case notes: only a dotted initial bridges.
        ("called by patricia l. quimbledon re: her labs", "patricia l. quimbledon", Kind.NAME),
        # The person spoken of after a verb of speech, a request to see, a summary's title.
        ("THE SON SAYS MARGARET HAS BEEN SLEEPING MORE SINCE SUNDAY.", "MARGARET", Kind.NAME),
        ("her husband says steven has been more tired this week. no fever.", "steven", Kind.NAME),
        ("The neighbour said Gwendolyn was found on the floor this am.", "Gwendolyn", Kind.NAME),
        ("Nurse reports Kowalczyk's sats dropped to 88% overnight.", "Kowalczyk", Kind.NAME),
        ("Many thanks, please see Patricia at your earliest convenience.", "Patricia", Kind.NAME),
        ("DISCHARGE SUMMARY FOR DOROTHY (DOB 1/2/1940)", "DOROTHY", Kind.NAME),
        (
            "Discharge summary for Wenzeslaus Prillwitz (DOB 3/4/1950).",
            "Wenzeslaus Prillwitz",
            Kind.NAME,
        ),
        # The person examined as the subject of "was seen".
        (
            "Tolerating a regular diet. Ottoline was seen by PT/OT on the ward.",
            "Ottoline",
            Kind.NAME,
        ),
        # Surname particles join names in all-caps notes.
        (
            "CT ORDERED BY DR. TEN BRINK DE GROOTWATER FOR CHEST PAIN.",
            "TEN BRINK DE GROOTWATER",
            Kind.NAME,
        ),
        ("SEEN BY DR. OKONKWO DA SILVEIRA THIS AM.", "OKONKWO DA SILVEIRA", Kind.NAME),
        # Towns that open with a prefix word, after a place verb.
        (
            "She is 70 and lives independently in Port Quillmarsh, OH.",
            "Port Quillmarsh",
            Kind.LOCATION,
        ),
        ("HE LIVES ALONE IN NORTH FENWICKSTEAD, OREGON.", "NORTH FENWICKSTEAD", Kind.LOCATION),
        (
            "Lives with her sister in San Bartolo de los Pinares.",
            "San Bartolo de los Pinares",
            Kind.LOCATION,
        ),
        ("lives in lake brambleshire with his wife", "lake brambleshire", Kind.LOCATION),
    ],
)
def test_recall_by_phrasing_class(
    recognizer: NameRecognizer, text: str, value: str, kind: Kind
) -> None:
    found = recognizer.find(text)
    assert _covered(text, value, found, kind), _words(text, found)


@pytest.mark.parametrize(
    "text",
    [
        "SON REPORTS HE'S HOH. NO SPONT RESP.",
        "Pt states Tylenol helps. She says Percocet made her itchy. He said Monday was bad.",
        "CCU NPN: PLEASE SEE FLOWSHEET FOR OBJECTIVE DATA.",
        "Please see attached notes; please see MD note. Please see Cardiology recs.",
        "ECHO: LA DILATED, EF 40%. DE NOVO LESION NOT SEEN.",
        "Given A Dose of lasix 40 IV; Hepatitis B Surface antigen negative, Vitamin D Level low.",
        "Transferred to the East Wing; port flushed. Lives in the North End of town.",
        "Pt states she lives at home in a new apartment.",
        "Edema seen on CXR. Infiltrate was seen on the film. Dilaudid was seen to help.",
    ],
)
def test_the_new_rules_leave_clinical_prose_alone(recognizer: NameRecognizer, text: str) -> None:
    found = recognizer.find(text)
    assert found == [], _words(text, found)


def test_particle_in_capitals_needs_a_name_after_it(recognizer: NameRecognizer) -> None:
    text = "ECHO READ BY DR. QUARTERSON LA DILATED, EF 40%."
    found = recognizer.find(text)
    assert "LA" not in _words(text, found)
    assert _covered(text, "QUARTERSON", found, Kind.NAME)
