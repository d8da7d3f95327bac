"""Place classes found by their shape: facilities, street lines, named streets, wards.

The notes are generated on every run from the Census surname list and the GeoNames
gazetteer, in mixed, upper and lower case, so each rule is checked on names it
was not written for. Clinical phrases of the same shape must stay untouched.
"""

from __future__ import annotations

import random

import pytest

from sluicegate.core.privacy.findings import Finding, Kind
from sluicegate.core.privacy.gazetteer import place_names
from sluicegate.core.privacy.lexicon import Lexicon
from sluicegate.core.privacy.names import NameRecognizer


@pytest.fixture(scope="module")
def recognizer() -> NameRecognizer:
    return NameRecognizer()


@pytest.fixture(scope="module")
def pools() -> tuple[list[str], list[str]]:
    """Surnames and towns that are no English word: a fair draw for every rule."""
    lex = Lexicon()
    surnames = sorted(
        w
        for w in lex.surnames
        if w.isalpha() and len(w) >= 5 and w not in lex.common and w not in lex.stop
    )
    towns = sorted(
        w
        for w in place_names()
        if w.isalpha() and len(w) >= 6 and not lex.ordinary(w) and w not in lex.stop
    )
    return surnames, towns


def _covered(text: str, findings: list[Finding], part: str) -> bool:
    start = text.index(part)
    covered = bytearray(len(text))
    for f in findings:
        if f.kind is Kind.LOCATION:
            covered[f.start : f.end] = b"\x01" * (f.end - f.start)
    return all(covered[i] for i in range(start, start + len(part)) if text[i].isalnum())


_FACILITIES = [
    "{S} Family Practice",
    "{T} Cardiology Associates",
    "{S} & {S2} Internal Medicine",
    "{S} Medical Group",
    "{T} Pulmonary Clinic",
    "{S} Pavilion",
    "{T} General",
    "{S} Renal Associates",
]
_FACILITY_NOTES = [
    "PCP: Dr. {D}, {F}. Negative Murphy's sign.",
    "Follow-up with Dr. {D} at {F} on 10/11 at 11am.",
    "cc: Dr. {D}, {F}\n",
    "Prior outside study from {F} (2014) was not available.",
]


@pytest.mark.parametrize("seed", range(4))
def test_facility_names_before_service_and_head_nouns(
    recognizer: NameRecognizer, pools: tuple[list[str], list[str]], seed: int
) -> None:
    surnames, towns = pools
    rng = random.Random(seed)
    missed = []
    for _ in range(60):
        s, s2, d = (rng.choice(surnames).title() for _ in range(3))
        facility = rng.choice(_FACILITIES).format(S=s, S2=s2, T=rng.choice(towns).title())
        note = rng.choice(_FACILITY_NOTES).format(D=d, F=facility)
        case = rng.choice([str, str.upper, str.lower])
        text, part = case(note), case(facility)
        if not _covered(text, recognizer.find(text), part):
            missed.append(part)
    assert len(missed) <= 3, missed


_TYPES = ["Street", "Gardens", "Shores", "Wells", "Station", "Views", "Crossing", "Rd", "Ave"]
_STREET_NOTES = [
    "She lives at {A}. Lungs clear.",
    "{A}\nTel (555) 201-3344",
    "Discharged to {A}. Abdomen soft.",
    "Pt states her new address is {A}; demographics updated.",
]


@pytest.mark.parametrize("seed", range(4))
def test_street_lines_with_town_state_and_postal_code(
    recognizer: NameRecognizer, pools: tuple[list[str], list[str]], seed: int
) -> None:
    surnames, towns = pools
    rng = random.Random(100 + seed)
    missed = []
    for _ in range(60):
        unit = rng.choice(["", f" Apt. {rng.randint(1, 900)}", f" Suite {rng.randint(1, 900)}"])
        street = f"{rng.randint(1, 99999)} {rng.choice(surnames).title()} {rng.choice(_TYPES)}"
        town = rng.choice(towns).title()
        tail = rng.choice([f", {town}, OH {rng.randint(10000, 99999)}", f", {town}", f"\n{town}"])
        address = street + unit + tail
        note = rng.choice(_STREET_NOTES).format(A=address)
        case = rng.choice([str, str.upper, str.lower])
        text = case(note)
        found = recognizer.find(text)
        for part in (street + unit, town):
            if not _covered(text, found, case(part)):
                missed.append(case(part))
    assert len(missed) <= 4, missed


@pytest.mark.parametrize(
    "street",
    ["{S}laan 542", "{S}straat 12", "rue de {S}", "24, rue {S}", "Calle {S} 943", "Via {S}, 44"],
)
def test_streets_named_before_their_number_after_an_address_cue(
    recognizer: NameRecognizer, pools: tuple[list[str], list[str]], street: str
) -> None:
    surnames, towns = pools
    rng = random.Random(street)
    for _ in range(10):
        part = street.format(S=rng.choice(surnames).title())
        town = rng.choice(towns).title()
        for cue in ("He lives at", "Pt states his new address is", "BIBA from home at"):
            text = f"{cue} {part}, {town} {rng.randint(10000, 99999)}. Lungs clear."
            assert _covered(text, recognizer.find(text), part), text


@pytest.mark.parametrize("seed", range(3))
def test_wards_with_a_wing_and_towns_after_lives_with(
    recognizer: NameRecognizer, pools: tuple[list[str], list[str]], seed: int
) -> None:
    surnames, towns = pools
    rng = random.Random(200 + seed)
    for _ in range(20):
        ward = f"{rng.choice(surnames).title()} {rng.randint(2, 14)}{rng.choice(['B', ' North'])}"
        text = f"Awaiting bed on {ward}; report called."
        assert _covered(text, recognizer.find(text), ward), text
        town = rng.choice(towns).title()
        text = f"She lives with her son Theodore in {town}. Labs at discharge: Na 139."
        assert _covered(text, recognizer.find(text), town), text


@pytest.mark.parametrize(
    "text",
    [
        "Norco 5/325 1-2 tabs q4h PRN pain; Lasix 40 mg daily.",
        "s/p AVR with a St. Jude valve (2000).",
        "Insurance: Blue Cross, member ID pending.",
        "Seen in Cardiology Clinic and the Family Practice.",
        "General appearance: well. Transferred to the Step Down Unit.",
        "Admitted to the Surgical Intensive Care Unit overnight.",
        "HAD BASELINE LBBB AND 1 ST DEGREE AV BLOCK.",
        "ONE 8 BEAT RUN OF VT NOTED.",
        "Pt lives at home with her husband. Arrived at 10 pm.",
        "He lives alone and walks 2 blocks with a cane.",
        "NSR in the 90 to st in the 130s.",
        "Support group on the unit at 3 pm; blood group O positive.",
    ],
)
def test_clinical_text_of_the_same_shape_is_no_place(recognizer: NameRecognizer, text: str) -> None:
    for case in (lambda s: s, str.upper, str.lower):
        note = case(text)
        places = [note[f.start : f.end] for f in recognizer.find(note) if f.kind is Kind.LOCATION]
        assert places == [], (note, places)
