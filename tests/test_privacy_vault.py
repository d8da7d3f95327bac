"""The pseudonym vault: consistent surrogates, both modes, and a byte round trip."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from sluicegate.core.privacy.surrogates import find_dates, generalize_zip, parse_date
from sluicegate.core.privacy.vault import Vault


def test_tags_are_consistent_per_original_and_numbered_per_label() -> None:
    vault = Vault(mode="tags")
    vault.add_person(["Jane Q. Testperson", "Testperson, Jane", "Testperson"], "PATIENT")
    assert vault.surrogate("NAME", "JANE TESTPERSON") == "[PATIENT_1]"
    assert vault.surrogate("NAME", "Ms. Testperson") == "[PATIENT_1]"
    assert vault.surrogate("NAME", "Testperson, Jane Q.") == "[PATIENT_1]"
    assert vault.surrogate("NAME", "Gregory House") == "[NAME_1]"  # numbered per label
    assert vault.surrogate("NAME", "Dr. Gregory House") == "[NAME_1]"
    assert vault.surrogate("ID", "MRN-0048213") == "[ID_1]"
    assert vault.surrogate("ID", "mrn 0048213") == "[ID_1]"  # same id, other punctuation
    assert vault.surrogate("ID", "77-12") == "[ID_2]"
    assert vault.surrogate("DATE", "2024-03-01") == "[DATE_1]"
    assert vault.surrogate("DATE", "March 1, 2024") == "[DATE_1]"  # same day, other format
    assert vault.surrogate("DATE", "03/01/2024") == "[DATE_1]"
    assert vault.surrogate("LOCATION", "42  Example Lane") == vault.surrogate(
        "LOCATION", "42 example lane"
    )
    assert vault.tag("PATIENT", 1) == "Jane Q. Testperson"
    assert vault.tag("NAME", 1) == "Gregory House"
    assert vault.tag("DATE", 1) == "2024-03-01"
    assert vault.tag("PATIENT", 9) is None


def test_two_people_sharing_a_surname_stay_apart() -> None:
    vault = Vault(mode="tags")
    vault.add_person(["John Smith", "Mary Smith"], "PATIENT")
    assert vault.surrogate("NAME", "John Smith") != vault.surrogate("NAME", "Mary Smith")
    assert vault.surrogate("NAME", "Mary") == vault.surrogate("NAME", "Mary Smith")


def test_realistic_ids_and_phones_never_coincide_with_another_real_value() -> None:
    """A fake for one short real id must not be another real id (the guard would flag it)."""
    real_ids = ["270", "410", "480"]
    real_phones = ["555-0142", "555-0143"]
    for seed in range(1500):
        vault = Vault(mode="realistic", seed=seed)
        vault.avoid([*real_ids, *real_phones])
        assert vault.surrogate("ID", "270") not in real_ids, seed
        assert vault.surrogate("PHONE", "555-0142") not in real_phones, seed


def test_realistic_fakes_never_contain_a_long_real_number() -> None:
    """A real 7-digit number must not sit inside a fake phone (555-01xx is the fake range)."""
    for seed in range(500):
        vault = Vault(mode="realistic", seed=seed)
        vault.avoid(["555-0142"])
        fake = vault.surrogate("PHONE", "(617) 555-0199")
        assert "5550142" not in re.sub(r"\D", "", fake), (seed, fake)
        assert fake.endswith(tuple("0123456789")), fake  # found without the fallback


def test_realistic_ssns_never_contain_another_real_value() -> None:
    """A fake SSN's digit groups must not be a real short id (the guard flags the token)."""
    real_ids = [f"{n:04d}" for n in range(0, 10000, 7)]  # one in seven 4-digit groups
    for seed in range(300):
        vault = Vault(mode="realistic", seed=seed)
        vault.avoid(real_ids)
        fake = vault.surrogate("SSN", "123-45-6789")
        assert fake.split("-")[-1] not in real_ids, (seed, fake)


def test_realistic_names_map_token_by_token_and_avoid_real_values() -> None:
    vault = Vault(mode="realistic", seed=7)
    vault.avoid(["Jane Testperson", "Springfield"])
    vault.add_person(["Jane Testperson", "Testperson, Jane"], "PATIENT")
    full = vault.surrogate("PATIENT", "Jane Testperson")
    first, last = full.split()
    assert vault.surrogate("PATIENT", "Testperson, Jane") == f"{last}, {first}"
    assert vault.surrogate("PATIENT", "TESTPERSON") == last.upper()
    assert "Testperson" not in full and "Jane" not in full
    assert vault.original(full) == "Jane Testperson"
    city = vault.surrogate("LOCATION", "Springfield")
    assert city != "Springfield" and vault.original(city) == "Springfield"


def test_realistic_values_come_from_reserved_ranges() -> None:
    vault = Vault(mode="realistic", seed=3)
    phone = vault.surrogate("PHONE", "(617) 555-0142")
    assert re.fullmatch(r"\(\d{3}\) 555-01\d\d", phone)
    assert vault.surrogate("EMAIL", "jane@hospital.org").split("@")[1].startswith("example.")
    assert vault.surrogate("SSN", "123-45-6789").startswith("9")
    assert vault.surrogate("IP", "10.1.2.3").startswith(("192.0.2.", "198.51.100.", "203.0.113."))
    ident = vault.surrogate("ID", "123456789012")
    assert len(ident) == 12 and not re.search(r"\d{8}", ident)
    assert vault.surrogate("ID", "123456789012") == ident  # consistent
    assert vault.surrogate("LOCATION", "02139") == "021"  # ZIP generalised
    assert vault.surrogate("AGE", "94") == "90+" and vault.surrogate("AGE", "67") == "67"


def test_realistic_dates_shift_by_one_offset_and_keep_format() -> None:
    vault = Vault(mode="realistic", seed=1, date_offset_days=-40)
    a = vault.surrogate("DATE", "2024-03-01")
    b = vault.surrogate("DATE", "03/11/2024")
    c = vault.surrogate("DATE", "11 Mar 2024")
    d = vault.surrogate("DATE", "March 21st, 2024")
    assert a == (date(2024, 3, 1) - timedelta(40)).isoformat()
    assert b == "01/31/2024" and c == "31 Jan 2024" and d == "February 10th, 2024"
    assert vault.original(b) == "03/11/2024"


def test_new_vaults_draw_offsets_that_do_not_land_on_known_dates() -> None:
    known = [date(2024, 1, 13) + timedelta(days=i) for i in range(0, 30, 3)]
    for _ in range(20):
        vault = Vault.new("realistic", (-30, 30), known)
        assert vault.date_offset_days != 0
        shifted = {d + timedelta(vault.date_offset_days) for d in known}
        assert not shifted & set(known)  # no shifted date reads as a real one


def test_bytes_round_trip() -> None:
    vault = Vault(mode="realistic", seed=11, date_offset_days=-12)
    vault.add_person(["Jane Testperson"], "PATIENT")
    originals = ["Jane Testperson", "2024-03-01", "MRN-0048213", "42 Example Lane"]
    labels = ["PATIENT", "DATE", "ID", "LOCATION"]
    made = [vault.surrogate(label, o) for label, o in zip(labels, originals, strict=True)]
    again = Vault.from_bytes(vault.to_bytes())
    assert again.to_bytes() == vault.to_bytes()
    assert again.mapping() == vault.mapping()
    assert (again.mode, again.seed, again.date_offset_days) == ("realistic", 11, -12)
    # the restored vault keeps handing out the same surrogates
    assert [again.surrogate(label, o) for label, o in zip(labels, originals, strict=True)] == made
    assert again.surrogate("PATIENT", "Testperson") == vault.surrogate("PATIENT", "Testperson")


def test_tags_vault_round_trip_keeps_counters() -> None:
    vault = Vault(mode="tags")
    vault.surrogate("ID", "A1")
    again = Vault.from_bytes(vault.to_bytes())
    assert again.surrogate("ID", "B2") == "[ID_2]"


@pytest.mark.parametrize(
    "data", [b"", b"not json", b"[]", b'{"v": 99}', b'{"v": 1}', b"Jane Testperson"]
)
def test_from_bytes_rejects_garbage_without_echoing_it(data: bytes) -> None:
    with pytest.raises(ValueError) as caught:
        Vault.from_bytes(data)
    assert "Testperson" not in str(caught.value) and "not json" not in str(caught.value)


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError):
        Vault(mode="fancy")


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2024-03-01", "2024-03-01"),
        ("3/1/2024", "2024-03-01"),
        ("03/01/24", "2024-03-01"),
        ("25/12/2023", "2023-12-25"),
        ("25.12.2023", "2023-12-25"),
        ("20231225", "2023-12-25"),
        ("198808181126+0215", "1988-08-18"),
        ("March 1, 2024", "2024-03-01"),
        ("Mar. 1st 2024", "2024-03-01"),
        ("1 March 2024", "2024-03-01"),
        ("1st of March, 2024", "2024-03-01"),
        ("01-Mar-2024", "2024-03-01"),
        ("SEPT 9, 2021", "2021-09-09"),
    ],
)
def test_date_formats_parse_and_render_alike(text: str, iso: str) -> None:
    expr = parse_date(text)
    assert expr is not None and expr.value.isoformat() == iso
    assert expr.render(expr.value) == text


def test_find_dates_ignores_versions_and_measurements() -> None:
    assert find_dates("HL7 v2.5.1, lesion 3.2 x 1.5 cm, BP 120/80, ratio 1/2") == []


def test_zip_generalisation() -> None:
    assert generalize_zip("02139-4307") == "021"
    assert generalize_zip("3999") == ""


def test_month_names_keep_their_style_when_shifted() -> None:
    expr = parse_date("June 5, 2024")
    assert expr is not None and expr.render(date(2024, 9, 5)) == "September 5, 2024"
    short = parse_date("5 JUN 2024")
    assert short is not None and short.render(date(2024, 9, 5)) == "5 SEP 2024"


def test_sealed_vault_round_trip_hides_every_value() -> None:
    import os

    from sluicegate.core.crypto import Sealer

    vault = Vault(mode="tags")
    vault.add_person(["Jane Testperson"], "PATIENT")
    vault.surrogate("PATIENT", "Jane Testperson")
    vault.surrogate("ID", "MRN-0048213")
    sealer = Sealer({"k1": os.urandom(32)}, "k1")
    blob = sealer.seal(vault.to_bytes(), b"job-1")
    assert b"Testperson" not in blob and b"0048213" not in blob
    again = Vault.from_bytes(sealer.open(blob, b"job-1"))
    assert again.tag("PATIENT", 1) == "Jane Testperson" and again.tag("ID", 1) == "MRN-0048213"


def test_wordless_name_spans_are_still_consistent() -> None:
    vault = Vault(mode="tags")
    assert vault.surrogate("NAME", "J.") == vault.surrogate("NAME", "j.") == "[NAME_1]"
    assert vault.surrogate("NAME", "K.") == "[NAME_2]"
