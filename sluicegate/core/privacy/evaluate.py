"""Evaluate the Detector against annotated corpora: recall, precision and F2 per kind.

Matching rule (documented in docs/privacy-detection.md):

* a gold span is **found** when every alphanumeric character in it is covered
  by some detected span, whatever kind the detector gave it (de-identification
  removes it either way); punctuation and spaces inside a gold span do not count;
* a detected span is a **true positive** when it shares at least one
  alphanumeric character with some gold span (of any category), otherwise it is
  a false positive.

Recall is per gold category mapped onto a Kind; precision per detected Kind.
Gold categories that are not identifiers under HIPAA Safe Harbor (an age of 89
or less, an organisation, a job title, a nationality) are left out of recall,
and detections overlapping them are not counted against precision.

**Content retained** measures over-redaction from the reader's side: of the
words that lie outside every gold span (the clinical content a drafting model
needs), the share that no detection touches.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sluicegate.core.privacy.detect import Detector
from sluicegate.core.privacy.findings import Finding, Kind

PHYSIONET_KINDS: dict[str, Kind] = {
    "HCPName": Kind.NAME,
    "PTName": Kind.NAME,
    "RelativeProxyName": Kind.NAME,
    "PTNameInitial": Kind.NAME,
    "Date": Kind.DATE,
    "DateYear": Kind.DATE,
    "Location": Kind.LOCATION,
    "Phone": Kind.PHONE,
    "Age": Kind.AGE,
    "Other": Kind.ID,
}
PRESIDIO_KINDS: dict[str, Kind | None] = {
    "PERSON": Kind.NAME,
    "STREET_ADDRESS": Kind.LOCATION,
    "GPE": Kind.LOCATION,
    "ZIP_CODE": Kind.LOCATION,
    "CREDIT_CARD": Kind.ACCOUNT,
    "IBAN_CODE": Kind.ACCOUNT,
    "DATE_TIME": Kind.DATE,
    "PHONE_NUMBER": Kind.PHONE,
    "AGE": Kind.AGE,
    "EMAIL_ADDRESS": Kind.EMAIL,
    "DOMAIN_NAME": Kind.URL,
    "US_SSN": Kind.SSN,
    "IP_ADDRESS": Kind.IP,
    "US_DRIVER_LICENSE": Kind.ID,
    "ORGANIZATION": None,
    "TITLE": None,
    "NRP": None,
}
RADIOLOGY_KINDS: dict[str, Kind] = {
    "PATIENT_NAME": Kind.NAME,
    "PROVIDER_NAME": Kind.NAME,
    "DATE_OF_BIRTH": Kind.DATE,
    "DATE_TIME": Kind.DATE,
    "DATE": Kind.DATE,
    "MRN": Kind.ID,
    "ACCESSION": Kind.ID,
}
CORPORA = ("physionet", "presidio", "radiology", "fresh")
FRESH_DOCS = 500  # default size of the generated corpus


@dataclass(frozen=True)
class GoldSpan:
    start: int
    end: int
    category: str
    kind: Kind | None  # None: annotated but not an identifier we must remove


@dataclass
class Document:
    corpus: str
    doc_id: str
    text: str
    gold: list[GoldSpan]
    split: str = "all"


@dataclass
class Counts:
    gold: int = 0
    found: int = 0
    detected: int = 0
    correct: int = 0


@dataclass
class Result:
    """Counts per kind, plus misses and false positives for the local report."""

    corpus: str
    recall_counts: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    precision_counts: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    misses: list[tuple[str, str, str, str]] = field(default_factory=list)
    false_positives: list[tuple[str, str, str, str]] = field(default_factory=list)
    documents: int = 0
    chars: int = 0
    content_words: int = 0  # words outside every gold span
    content_kept: int = 0  # ... that no detection touched

    def retained(self) -> float:
        """Share of non-identifier words left intact (1.0 = nothing over-redacted)."""
        return self.content_kept / self.content_words if self.content_words else 1.0

    def recall(self, kind: str | None = None) -> float:
        cs = [self.recall_counts[kind]] if kind else list(self.recall_counts.values())
        gold = sum(c.gold for c in cs)
        return sum(c.found for c in cs) / gold if gold else 1.0

    def precision(self, kind: str | None = None) -> float:
        cs = [self.precision_counts[kind]] if kind else list(self.precision_counts.values())
        det = sum(c.detected for c in cs)
        return sum(c.correct for c in cs) / det if det else 1.0

    def f2(self, kind: str | None = None) -> float:
        return f_beta(self.precision(kind), self.recall(kind), 2.0)

    def kinds(self) -> list[str]:
        return sorted(set(self.recall_counts) | set(self.precision_counts))


def f_beta(p: float, r: float, beta: float) -> float:
    b2 = beta * beta
    return (1 + b2) * p * r / (b2 * p + r) if p + r else 0.0


_WORD = re.compile(r"\w+")


def _alnum_positions(text: str, start: int, end: int) -> list[int]:
    return [i for i in range(start, end) if text[i].isalnum()]


def score(result: Result, doc: Document, found: list[Finding], context: int = 30) -> None:
    """Add one document's matches to ``result``."""
    result.documents += 1
    result.chars += len(doc.text)
    covered = bytearray(len(doc.text))
    for f in found:
        covered[f.start : f.end] = b"\x01" * (f.end - f.start)
    gold_mask = bytearray(len(doc.text))
    for g in doc.gold:
        gold_mask[g.start : g.end] = b"\x01" * (g.end - g.start)
    for g in doc.gold:
        if g.kind is None:
            continue
        key = g.kind.value
        result.recall_counts[key].gold += 1
        alnum = _alnum_positions(doc.text, g.start, g.end)
        if all(covered[i] for i in alnum):
            result.recall_counts[key].found += 1
        else:
            result.misses.append(
                (
                    doc.doc_id,
                    g.category,
                    doc.text[g.start : g.end],
                    _context(doc.text, g.start, g.end, context),
                )
            )
    for word in _WORD.finditer(doc.text):
        if not any(gold_mask[word.start() : word.end()]):
            result.content_words += 1
            result.content_kept += not any(covered[word.start() : word.end()])
    for f in found:
        key = f.kind.value
        result.precision_counts[key].detected += 1
        alnum = _alnum_positions(doc.text, f.start, f.end)
        if any(gold_mask[i] for i in alnum):
            result.precision_counts[key].correct += 1
        else:
            result.false_positives.append(
                (
                    doc.doc_id,
                    f"{key}/{f.source}",
                    doc.text[f.start : f.end],
                    _context(doc.text, f.start, f.end, context),
                )
            )


def _context(text: str, start: int, end: int, n: int) -> str:
    left = text[max(0, start - n) : start]
    right = text[end : end + n]
    return " ".join(f"{left}[[{text[start:end]}]]{right}".split())


def evaluate(documents: Iterable[Document], detector: Detector, corpus: str = "corpus") -> Result:
    """Run ``detector`` over ``documents`` and score it."""
    result = Result(corpus)
    for doc in documents:
        score(result, doc, detector.detect(doc.text))
    return result


# ---------------------------------------------------------------- loaders


def load_physionet(root: Path) -> Iterator[Document]:
    """PhysioNet deid notes; split 'tune' = odd patient ids, 'held-out' = even."""
    folder = root / "reports" / "physionet-deid"
    raw = (folder / "id.text").read_text(encoding="latin-1")
    gold: dict[tuple[str, str], list[GoldSpan]] = defaultdict(list)
    for line in (folder / "id-phi.phrase").read_text(encoding="latin-1").splitlines():
        parts = line.split(" ", 5)
        if len(parts) < 5:
            continue
        patient, note, start, end, category = parts[:5]
        kind = PHYSIONET_KINDS.get(category, Kind.ID)
        gold[(patient, note)].append(GoldSpan(int(start), int(end), category, kind))
    for m in re.finditer(
        r"START_OF_RECORD=(\d+)\|\|\|\|(\d+)\|\|\|\|\n(.*?)\|\|\|\|END_OF_RECORD", raw, re.S
    ):
        patient, note, body = m.group(1), m.group(2), m.group(3)
        split = "tune" if int(patient) % 2 else "held-out"
        yield Document(
            "physionet", f"p{patient}-n{note}", body, gold.get((patient, note), []), split
        )


def load_presidio(root: Path) -> Iterator[Document]:
    """Presidio-research synthetic PII sentences (MIT)."""
    path = root / "reports" / "presidio-research-synth_dataset_v2.json"
    for i, item in enumerate(json.loads(path.read_text(encoding="utf-8"))):
        text = item["full_text"]
        spans = []
        for s in item["spans"]:
            etype = s["entity_type"]
            kind = PRESIDIO_KINDS.get(etype, Kind.ID)
            if kind is Kind.AGE and not _over_89(text[s["start_position"] : s["end_position"]]):
                kind = None  # ages of 89 or less are not Safe Harbor identifiers
            spans.append(GoldSpan(s["start_position"], s["end_position"], etype, kind))
        yield Document("presidio", f"presidio-{i}", text, spans)


def load_radiology(root: Path) -> Iterator[Document]:
    """Radiology report texts with SILVER spans (washu-tag/scout, MIT)."""
    folder = root / "reports" / "radiology-scout"
    for txt in sorted(folder.glob("*.txt")):
        silver = txt.with_name(txt.name[: -len(".txt")] + ".silver.json")
        if not silver.exists():
            continue
        spans = [
            GoldSpan(s["start"], s["end"], s["type"], RADIOLOGY_KINDS.get(s["type"], Kind.ID))
            for s in json.loads(silver.read_text(encoding="utf-8"))["spans"]
        ]
        yield Document("radiology", txt.stem, txt.read_text(encoding="utf-8"), spans)


def _over_89(value: str) -> bool:
    m = re.search(r"\d+", value)
    return m is not None and int(m.group()) > 89


def load_fresh(root: Path, n: int = FRESH_DOCS, seed: int = 0) -> Iterator[Document]:
    """Notes generated for ``seed`` (``fresh.py``): not a file corpus, ``root`` is unused."""
    from sluicegate.core.privacy.fresh import generate  # fresh imports this module

    yield from generate(n, seed)


LOADERS = {
    "physionet": load_physionet,
    "presidio": load_presidio,
    "radiology": load_radiology,
    "fresh": load_fresh,
}


def default_corpus_dir() -> Path:
    """``<repo>/../shared/corpus``, found from this file's location."""
    repo = Path(__file__).resolve().parents[3]
    return repo.parent / "shared" / "corpus"


def write_report(results: Iterable[Result], path: Path) -> None:
    """Misses and false positives with their text: PHI, so a local file only."""
    lines = [
        "# Privacy evaluation report (contains PHI surrogates: keep local, never commit)",
        "",
    ]
    for r in results:
        lines += [
            f"## {r.corpus}",
            "",
            f"recall {r.recall():.4f}, precision {r.precision():.4f}, "
            f"content retained {r.retained():.4f}",
            "",
        ]
        lines += [f"### Misses ({len(r.misses)})", ""]
        lines += [f"- `{d}` {c}: `{t}` — {ctx}" for d, c, t, ctx in r.misses]
        lines += ["", f"### False positives ({len(r.false_positives)})", ""]
        lines += [f"- `{d}` {c}: `{t}` — {ctx}" for d, c, t, ctx in r.false_positives]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
