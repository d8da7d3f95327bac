"""Optional NER recognizer: Microsoft Presidio's analyzer (extra ``sluicegate[ner]``).

It can only add findings to the rule-based ones. Presidio needs a spaCy
model, which is not on PyPI: install one with ``python -m spacy download
en_core_web_lg`` (or ``en_core_web_sm``) on a machine that can reach
spaCy's releases, or ``pip install`` the model wheel from a local mirror.
"""

from __future__ import annotations

from typing import Any

from sluicegate.core.privacy.findings import Finding, Kind

#: Presidio entity type -> our Kind; other types are ignored.
ENTITY_KINDS: dict[str, Kind] = {
    "PERSON": Kind.NAME,
    "DATE_TIME": Kind.DATE,
    "LOCATION": Kind.LOCATION,
    "PHONE_NUMBER": Kind.PHONE,
    "EMAIL_ADDRESS": Kind.EMAIL,
    "URL": Kind.URL,
    "IP_ADDRESS": Kind.IP,
    "US_SSN": Kind.SSN,
    "CREDIT_CARD": Kind.ACCOUNT,
    "IBAN_CODE": Kind.ACCOUNT,
    "US_BANK_NUMBER": Kind.ACCOUNT,
    "MEDICAL_LICENSE": Kind.ID,
    "US_DRIVER_LICENSE": Kind.ID,
    "US_PASSPORT": Kind.ID,
}


class NerRecognizer:
    """Wraps ``presidio_analyzer.AnalyzerEngine``; raises if the extra is missing."""

    def __init__(self, *, language: str = "en", min_score: float = 0.4) -> None:
        try:
            from presidio_analyzer import AnalyzerEngine
        except ImportError as exc:
            raise RuntimeError(
                "NER needs the optional extra: pip install 'sluicegate[ner]' and a spaCy "
                "model (python -m spacy download en_core_web_lg)"
            ) from exc
        try:
            self._engine: Any = AnalyzerEngine()
        except (OSError, ValueError) as exc:
            raise RuntimeError(
                "Presidio is installed but its spaCy model is missing: "
                "python -m spacy download en_core_web_lg"
            ) from exc
        self._language = language
        self._min_score = min_score

    def find(self, text: str) -> list[Finding]:
        """Presidio's results above ``min_score``, mapped onto Kinds."""
        results = self._engine.analyze(
            text=text, language=self._language, entities=list(ENTITY_KINDS)
        )
        return [
            Finding(r.start, r.end, ENTITY_KINDS[r.entity_type], "ner")
            for r in results
            if r.entity_type in ENTITY_KINDS and r.score >= self._min_score
        ]
