"""Optional NER recognizer: Microsoft Presidio's analyzer (extra ``sluicegate[ner]``).

It can only add findings to the rule-based ones. Presidio needs a spaCy
pipeline, which is not on PyPI: install one with ``python -m spacy download
en_core_web_lg`` (or ``en_core_web_sm``) on a machine that can reach
spaCy's releases, or ``pip install`` the model wheel from a local mirror. Which
pipeline is used is the ``SLUICEGATE_NER_MODEL`` environment variable (a package
name or a directory written by ``nlp.to_disk``), default ``en_core_web_lg``.

A missing pipeline is a start-up error here, before Presidio would try to
download one at run time (a gateway on a closed network must not hang on it).
Errors while analysing are not caught: they reach the privacy engine's caller,
which keeps the work on-prem (fail closed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sluicegate.core.privacy.findings import Finding, Kind

#: Environment variable naming the spaCy pipeline Presidio runs (package or directory).
MODEL_ENV = "SLUICEGATE_NER_MODEL"
DEFAULT_MODEL = "en_core_web_lg"

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
    """Wraps ``presidio_analyzer.AnalyzerEngine``; raises if the extra or the model is missing.

    ``model`` overrides ``SLUICEGATE_NER_MODEL``; ``nlp_engine`` takes a
    Presidio NLP engine that is already built (any ``NlpEngine``), for callers
    that assemble their own pipeline.
    """

    def __init__(
        self,
        *,
        language: str = "en",
        min_score: float = 0.4,
        model: str | None = None,
        nlp_engine: Any = None,
    ) -> None:
        try:
            from presidio_analyzer import AnalyzerEngine
            from presidio_analyzer.nlp_engine import SpacyNlpEngine
        except ImportError as exc:
            raise RuntimeError(
                "NER needs the optional extra: pip install 'sluicegate[ner]' and a spaCy "
                f"model (python -m spacy download {DEFAULT_MODEL})"
            ) from exc
        if nlp_engine is None:
            name = model or os.environ.get(MODEL_ENV) or DEFAULT_MODEL
            if not _pipeline_available(name):
                raise RuntimeError(
                    "Presidio is installed but its spaCy model is missing: "
                    f"python -m spacy download {DEFAULT_MODEL}, or set {MODEL_ENV} "
                    "to an installed pipeline"
                )
            nlp_engine = SpacyNlpEngine(models=[{"lang_code": language, "model_name": name}])
        try:
            self._engine: Any = AnalyzerEngine(
                nlp_engine=nlp_engine, supported_languages=[language]
            )
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"Presidio could not load its spaCy pipeline: {exc}") from exc
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


def _pipeline_available(name: str) -> bool:
    """An installed spaCy pipeline package, or a pipeline directory on disk."""
    import spacy.util

    return bool(spacy.util.is_package(name)) or Path(name).is_dir()
