"""Places for the fresh-data corpus: addresses, towns, hospitals, clinics, wards.

U.S. addresses come from Faker's ``en_US`` streets with real towns (listed here
by hand) or Faker's invented ones; foreign ones from the other locales. Hospital,
clinic and ward names are built from surnames, saints and towns, the way real
ones are, so that a detector must recognise the pattern, not a list.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

from faker import Faker

from sluicegate.core.privacy.fresh_formats import Piece
from sluicegate.core.privacy.fresh_people import LOCALES, fake, person

#: Real U.S. towns (Faker's U.S. cities are invented), written here by hand.
US_CITIES = (
    ("Worcester", "MA"),
    ("Framingham", "MA"),
    ("Lowell", "MA"),
    ("Pawtucket", "RI"),
    ("Nashua", "NH"),
    ("Bangor", "ME"),
    ("Burlington", "VT"),
    ("Stamford", "CT"),
    ("Yonkers", "NY"),
    ("Schenectady", "NY"),
    ("Paterson", "NJ"),
    ("Allentown", "PA"),
    ("Wilmington", "DE"),
    ("Towson", "MD"),
    ("Roanoke", "VA"),
    ("Asheville", "NC"),
    ("Savannah", "GA"),
    ("Tallahassee", "FL"),
    ("Mobile", "AL"),
    ("Chattanooga", "TN"),
    ("Lexington", "KY"),
    ("Dayton", "OH"),
    ("Kalamazoo", "MI"),
    ("Peoria", "IL"),
    ("Green Bay", "WI"),
    ("Duluth", "MN"),
    ("Cedar Rapids", "IA"),
    ("Wichita", "KS"),
    ("Tulsa", "OK"),
    ("Lubbock", "TX"),
    ("El Paso", "TX"),
    ("Las Cruces", "NM"),
    ("Flagstaff", "AZ"),
    ("Boise", "ID"),
    ("Spokane", "WA"),
    ("Eugene", "OR"),
    ("Fresno", "CA"),
    ("San Bernardino", "CA"),
    ("Reno", "NV"),
    ("Billings", "MT"),
    ("Fort Collins", "CO"),
    ("Sioux Falls", "SD"),
)
SAINTS = (
    "Anne",
    "Brigid",
    "Luke",
    "Vincent",
    "Joseph",
    "Elizabeth",
    "Francis",
    "Jude",
    "Agnes",
    "Catherine",
    "Michael",
    "Rita",
    "Clare",
    "Patrick",
    "Margaret",
    "Camillus",
)


def one_line(text: str) -> str:
    return " ".join(text.split()).replace(" ,", ",")


@dataclass(frozen=True)
class Address:
    street: str
    city: str
    region: tuple[Piece, ...]  # a U.S. state, or a country abroad
    zip: str
    us: bool


def address(r: random.Random) -> Address:
    if r.random() < 0.65:
        faker = fake(r, "en_US")
        street = one_line(faker.street_address())
        if r.random() < 0.3:
            for word, short in (("Street", "St"), ("Avenue", "Ave."), ("Road", "Rd")):
                street = street.replace(word, short)
        if r.random() < 0.5:
            city, state = r.choice(US_CITIES)
        else:
            city, state = faker.city(), faker.state_abbr()
        if r.random() < 0.2:
            state = faker.state()
        code = faker.zipcode_plus4() if r.random() < 0.25 else faker.zipcode()
        return Address(street, city, ((state, "STATE"),), code, True)
    locale = r.choice([loc for loc in LOCALES if loc != "en_US"])
    faker = fake(r, locale)
    country: tuple[Piece, ...] = ((faker.current_country(), "COUNTRY"),)
    street, town = one_line(faker.street_address()), _city(r, faker, locale)
    return Address(street, town, country, faker.postcode(), False)


def _city(r: random.Random, faker: Faker, locale: str) -> str:
    """``faker.city()``, except where the locale's list of cities is in hash order.

    Faker's it_IT list is built from a set, so the same seed picked another
    city in every process; drawn from the sorted list, a note is again a pure
    function of (seed, index).
    """
    listed = _sorted_cities(locale)
    return r.choice(listed) if listed else str(faker.city())


@cache
def _sorted_cities(locale: str) -> tuple[str, ...]:
    for provider in Faker(locale).providers:
        cities = getattr(provider, "cities", None)
        if isinstance(cities, list) and cities:
            return tuple(sorted(cities))
    return ()


def hospital(r: random.Random, town: str) -> str:
    last = person(r).last
    return r.choice(
        [
            f"{last} Memorial Hospital",
            f"St. {r.choice(SAINTS)} Hospital",
            f"Saint {r.choice(SAINTS)}'s Medical Center",
            f"{town} General Hospital",
            f"{town} General",
            f"{town} Regional Medical Center",
            f"{last} Medical Center",
            f"{town} Community Hospital",
            f"Mount {last} Hospital",
            f"{last} Rehabilitation Hospital",
            f"{last} House Nursing Home",
            f"{town} VA Medical Center",
            f"{town} Children's Hospital",
            f"{last} Manor",
        ]
    )


def clinic(r: random.Random, town: str) -> str:
    last, other = person(r).last, person(r).last
    return r.choice(
        [
            f"{last} Family Practice",
            f"{town} Cardiology Associates",
            f"{last} Street Health Center",
            f"{town} Pulmonary Clinic",
            f"{last} & {other} Internal Medicine",
            f"{town} Renal Associates",
            f"{last} Medical Group",
        ]
    )


def ward(r: random.Random) -> str:
    last, n = person(r).last, r.randint(2, 14)
    return r.choice(
        [f"{last} {n}", f"{last} {n} North", f"{last} Unit", f"{last} Pavilion", f"{last} {n}B"]
    )
