"""A "fresh data" corpus: clinical notes generated on demand, with exact gold spans.

Why: the other corpora are fixed, so rules written while reading them can fit
their habits. This generator writes new notes for every seed -- six note styles,
a hundred sentence templates and many identifier formats written for it -- with
names, streets and cities drawn from Faker in eleven locales, independent of the
Census name lists and the GeoNames gazetteer the detector uses. ``sluicegate
privacy eval --corpus fresh --seed N`` then measures how the detector
generalises. Each document is a pure function of ``(seed, index)`` (for a given
Faker version), so any miss in a report can be regenerated.

Every gold span is recorded while the text is assembled, piece by piece, so its
offsets cannot drift from the value inserted. States and countries are
annotated but, like in ``evaluate``'s other maps, not counted as identifiers:
HIPAA Safe Harbor keeps the state; ages of 89 or less are clinical content and
not annotated at all.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta

from sluicegate.core.privacy import fresh_formats as fmt
from sluicegate.core.privacy.evaluate import Document, GoldSpan
from sluicegate.core.privacy.findings import Kind
from sluicegate.core.privacy.fresh_clinical import FILLERS
from sluicegate.core.privacy.fresh_formats import Piece
from sluicegate.core.privacy.fresh_people import RELATIONS, Person, ascii_fold, fake, person
from sluicegate.core.privacy.fresh_places import address, clinic, hospital, ward
from sluicegate.core.privacy.fresh_templates import CLINICAL, STYLES, Style

FRESH_KINDS: dict[str, Kind | None] = {
    "PATIENT_NAME": Kind.NAME,
    "CLINICIAN_NAME": Kind.NAME,
    "RELATIVE_NAME": Kind.NAME,
    "PATIENT_INITIALS": Kind.NAME,
    "DATE": Kind.DATE,
    "BIRTH_DATE": Kind.DATE,
    "DATE_YEAR": Kind.DATE,
    "PHONE": Kind.PHONE,
    "FAX": Kind.PHONE,
    "PAGER": Kind.PHONE,
    "MRN": Kind.ID,
    "ACCOUNT": Kind.ID,
    "ACCESSION": Kind.ID,
    "MEMBER_ID": Kind.ID,
    "EMAIL": Kind.EMAIL,
    "SSN": Kind.SSN,
    "STREET": Kind.LOCATION,
    "CITY": Kind.LOCATION,
    "ZIP": Kind.LOCATION,
    "HOSPITAL": Kind.LOCATION,
    "CLINIC": Kind.LOCATION,
    "WARD": Kind.LOCATION,
    "AGE_OVER_89": Kind.AGE,
    "STATE": None,  # Safe Harbor keeps the state
    "COUNTRY": None,
}


class Note:
    """The cast and facts of one note, and the filling of its template slots."""

    def __init__(self, r: random.Random) -> None:
        self.r = r
        self.patient = person(r)
        self.age = r.randint(90, 104) if r.random() < 0.15 else r.randint(19, 89)
        self.clinicians = [person(r) for _ in range(3)]
        self.nurse = person(r)
        self.relation = r.choice(list(RELATIONS))
        shares_name = self.relation not in ("friend", "neighbor", "HCP") and r.random() < 0.6
        self.relative = person(
            r, RELATIONS[self.relation], self.patient.last if shares_name else None
        )
        self.admitted = fmt.random_date(r, date(2015, 1, 1), 4300)
        self.born = self.admitted - timedelta(days=365 * self.age + r.randrange(365))
        self.home = address(r)
        self.hospitals = [hospital(r, self._town()) for _ in range(2)]
        self.clinic = clinic(r, self._town())
        self.ward = ward(r)
        self.slots = self._slots()

    def _town(self) -> str:
        return self.home.city if self.r.random() < 0.5 else address(self.r).city

    def fill(self, slot: str) -> list[Piece]:
        """The pieces for ``{slot}``: gold where it is an identifier."""
        if slot in FILLERS:
            return [(FILLERS[slot](self.r), None)]
        return self.slots[slot]()

    def _slots(self) -> dict[str, Callable[[], list[Piece]]]:
        r, pt, he = self.r, self.patient, "she" if self.patient.female else "he"
        his, him = ("her", "her") if pt.female else ("his", "him")
        pat = "PATIENT_NAME"
        return {
            "pt_first": lambda: [(pt.first, pat)],
            "pt_last": lambda: [(pt.last, pat)],
            "PT_LAST": lambda: [(pt.last.upper(), pat)],
            "pt_full": lambda: self._full(pt, pat),
            "pt_formal": lambda: [(self._formal(pt), pat)],
            "PT_FORMAL": lambda: [(self._formal(pt).upper(), pat)],
            "pt_title": lambda: self._titled(pt, pat),
            "pt_init": lambda: [(self._initials(pt), "PATIENT_INITIALS")],
            "dr": lambda: self._doctor(r.choice(self.clinicians)),
            "dr2": lambda: self._doctor(self.clinicians[2]),
            "dr_last": lambda: [(r.choice(self.clinicians).last, "CLINICIAN_NAME")],
            "dr_sig": lambda: self._signature(self.clinicians[0]),
            "rn": lambda: self._nurse(),
            "rel": lambda: self._relative(),
            "rel_title": lambda: self._titled(self.relative, "RELATIVE_NAME", full=False),
            "reltype": lambda: [(self.relation, None)],
            "Reltype": lambda: [(self.relation[0].upper() + self.relation[1:], None)],
            "he": lambda: [(he, None)],
            "He": lambda: [(he.title(), None)],
            "his": lambda: [(his, None)],
            "His": lambda: [(his.title(), None)],
            "him": lambda: [(him, None)],
            "sex_m": lambda: [
                (r.choice(["woman", "female"] if pt.female else ["man", "male"]), None)
            ],
            "sex_f": lambda: [(r.choice(["F", "female"] if pt.female else ["M", "male"]), None)],
            "age": lambda: [(str(self.age), "AGE_OVER_89" if self.age > 89 else None)],
            "date": lambda: fmt.any_date(r, self._near()),
            "fdate": lambda: [(fmt.full_date(r, self.admitted), "DATE")],
            "fdate2": lambda: [(fmt.full_date(r, self._discharged()), "DATE")],
            "date_time": lambda: fmt.date_time(r, self._near()),
            "dob": lambda: [(fmt.full_date(r, self.born), "BIRTH_DATE")],
            "year": lambda: [(str(self.admitted.year - r.randint(1, 30)), "DATE_YEAR")],
            "year2": lambda: [(str(self.admitted.year - r.randint(1, 30)), "DATE_YEAR")],
            "monyear": lambda: fmt.month_year(r, self.admitted - timedelta(r.randint(60, 900))),
            "daymon": lambda: fmt.partial_date(r, self._near()),
            "phone": lambda: [(fmt.phone(r), "PHONE")],
            "fax": lambda: [(fmt.phone(r), "FAX")],
            "pager": lambda: [(fmt.pager(r), "PAGER")],
            "email": lambda: [(self._email(), "EMAIL")],
            "mrn": lambda: fmt.mrn(r),
            "mrn_v": lambda: [(fmt.mrn_value(r), "MRN")],
            "account": lambda: fmt.account(r),
            "accession": lambda: [(fmt.accession(r), "ACCESSION")],
            "member": lambda: [(fmt.member_id(r), "MEMBER_ID")],
            "ssn": lambda: [(fmt.ssn(r), "SSN")],
            "street": lambda: [(self.home.street, "STREET")],
            "city": lambda: [(self.home.city, "CITY")],
            "state": lambda: list(self.home.region),
            "zip": lambda: [(self.home.zip, "ZIP")],
            "addr": lambda: self._address(),
            "hospital": lambda: [(self.hospitals[0], "HOSPITAL")],
            "hospital2": lambda: [(self.hospitals[1], "HOSPITAL")],
            "clinic": lambda: [(self.clinic, "CLINIC")],
            "ward": lambda: [(self.ward, "WARD")],
        }

    def _near(self) -> date:
        return self.admitted + timedelta(days=self.r.randint(-60, 30))

    def _discharged(self) -> date:
        return self.admitted + timedelta(days=self.r.randint(1, 20))

    # ------------------------------------------------------------ name formats

    def _full(self, p: Person, cat: str) -> list[Piece]:
        r = self.r
        text = r.choice(
            [
                f"{p.first} {p.last}",
                f"{p.first} {p.last}",
                f"{p.first} {p.mi}. {p.last}",
                f"{p.first} {p.middle} {p.last}",
                f"{p.first[0]}. {p.last}",
                f"{p.first} {p.mi} {p.last}",
                f"{p.first} {p.last}".upper(),
            ]
        )
        return [(text, cat)]

    def _formal(self, p: Person) -> str:
        return self.r.choice(
            [
                f"{p.last}, {p.first}",
                f"{p.last.upper()}, {p.first}",
                f"{p.last}, {p.first} {p.mi}.",
                f"{p.last},{p.first}",
                f"{p.last}, {p.first[0]}.",
            ]
        )

    def _titled(self, p: Person, cat: str, full: bool = True) -> list[Piece]:
        r = self.r
        title = r.choice(["Mrs. ", "Ms. ", "Ms ", "Miss "] if p.female else ["Mr. ", "Mr "])
        if full and r.random() < 0.25:
            return [(title, None), (f"{p.first} {p.last}", cat)]
        return [(title, None), (p.last, cat)]

    def _initials(self, p: Person) -> str:
        f, m, last = p.first[0], p.mi, p.initial()
        return self.r.choice([f"{f}.{last}.", f"{f}{last}", f"{f}. {last}.", f"{f}{m}{last}"])

    def _doctor(self, p: Person) -> list[Piece]:
        r, cat = self.r, "CLINICIAN_NAME"
        return r.choice(
            [
                [("Dr. ", None), (p.last, cat)],
                [("Dr ", None), (p.last, cat)],
                [("Dr. ", None), (f"{p.first} {p.last}", cat)],
                [(f"{p.first} {p.last}", cat), (", MD", None)],
                [(f"{p.first} {p.mi}. {p.last}", cat), (" MD", None)],
                [(f"{p.last}, {p.first}", cat), (", MD", None)],
                [("Dr. ", None), (f"{p.first[0]}. {p.last}", cat)],
                [
                    (f"{p.first} {p.last}", cat),
                    (r.choice([", NP", ", PA-C", " DO", ", MBBS"]), None),
                ],
                [("Dr. ", None), (p.last.upper(), cat)],
            ]
        )

    def _signature(self, p: Person) -> list[Piece]:
        name = self.r.choice([f"{p.first} {p.last}", f"{p.first} {p.mi}. {p.last}"])
        return [(name, "CLINICIAN_NAME"), (self.r.choice([", MD", " MD FRCP", ", DO"]), None)]

    def _nurse(self) -> list[Piece]:
        p, r, cat = self.nurse, self.r, "CLINICIAN_NAME"
        return r.choice(
            [
                [(p.first, cat), (" RN", None)],
                [(p.first, cat)],
                [(f"{p.first} {p.initial()}.", cat), (", RN", None)],
                [(f"{p.first} {p.last}", cat), (", RN", None)],
                [(f"{p.first} {p.last}", cat), (" RN BSN", None)],
            ]
        )

    def _relative(self) -> list[Piece]:
        p, r, cat = self.relative, self.r, "RELATIVE_NAME"
        roll = r.random()
        if roll < 0.45:
            return [(p.first, cat)]
        if roll < 0.85:
            return [(f"{p.first} {p.last}", cat)]
        return self._titled(p, cat, full=False)

    # ------------------------------------------------------------ contact and places

    def _email(self) -> str:
        r = self.r
        p = self.patient if r.random() < 0.7 else self.relative
        first, last = ascii_fold(p.first) or "x", ascii_fold(p.last) or "y"
        local = r.choice(
            [
                f"{first}.{last}",
                f"{first[0]}{last}{r.randint(1, 99)}",
                f"{last}{first[0]}",
                f"{first}_{last}{r.randint(50, 99)}",
                f"{first}{r.randint(1940, 2005)}",
            ]
        )
        return f"{local}@{fake(r, p.locale).free_email_domain()}"

    def _address(self) -> list[Piece]:
        h, r = self.home, self.r
        street, city, code = (h.street, "STREET"), (h.city, "CITY"), (h.zip, "ZIP")
        if h.us:
            if r.random() < 0.5:
                return [street, (", ", None), city, (", ", None), *h.region, (" ", None), code]
            return [street, (", ", None), city, (" ", None), code]
        if r.random() < 0.5:
            return [street, (", ", None), code, (" ", None), city]
        return [street, (", ", None), city, (" ", None), code, (", ", None), *h.region]


# ------------------------------------------------------------------ assembly


def render(template: str, note: Note) -> list[Piece]:
    """``template``'s literal text and filled slots, in order."""
    pieces: list[Piece] = []
    rest = template
    while "{" in rest:
        before, _, tail = rest.partition("{")
        slot, _, rest = tail.partition("}")
        pieces.append((before, None))
        pieces.extend(note.fill(slot))
    pieces.append((rest, None))
    return pieces


def _compose(r: random.Random, style: Style) -> list[str]:
    picked = sorted(r.sample(range(len(style.body)), k=min(len(style.body), r.randint(4, 8))))
    body = [style.body[i] for i in picked]  # in the style's order: findings before impression
    for sentence in r.sample(CLINICAL, k=r.randint(1, 3)):
        body.insert(r.randint(0, len(body)), sentence)
    return [r.choice(style.headers), style.joiner.join(body), r.choice(style.closers)]


def build(seed: int, index: int) -> tuple[Document, list[str]]:
    """Document ``index`` of the corpus for ``seed``, with the gold values in order."""
    r = random.Random(f"fresh:{seed}:{index}")
    style = r.choice(STYLES)
    note = Note(r)
    roll = r.random()
    case: Callable[[str], str] = (
        str.lower if roll < 0.1 else str.upper if roll < 0.22 else (lambda s: s)
    )
    pieces: list[Piece] = []
    for part in _compose(r, style):
        if part:
            pieces.extend([*render(part, note), ("\n", None)])
    text: list[str] = []
    gold: list[GoldSpan] = []
    values: list[str] = []
    pos = 0
    for raw, category in pieces:
        piece = case(raw)  # per piece: upper() may change a piece's length (ß -> SS)
        if category is not None:
            gold.append(GoldSpan(pos, pos + len(piece), category, FRESH_KINDS[category]))
            values.append(piece)
        text.append(piece)
        pos += len(piece)
    return Document("fresh", f"fresh-{seed}-{index}-{style.name}", "".join(text), gold), values


def generate(n: int, seed: int) -> list[Document]:
    """``n`` fresh notes for ``seed``; document ``i`` depends only on ``(seed, i)``."""
    return [build(seed, i)[0] for i in range(n)]
