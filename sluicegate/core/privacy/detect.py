"""The free-text detector: known identifiers, patterns, dictionaries, optional NER."""

from __future__ import annotations

from sluicegate.core.privacy.findings import Finding, merge
from sluicegate.core.privacy.known import KnownIdentifiers
from sluicegate.core.privacy.patterns import find_patterns


class Detector:
    """Find identifiers in text; stateless after construction and thread-safe.

    ``ner=True`` adds the Presidio analyzer (extra ``sluicegate[ner]``); it can
    only add findings, never remove one.
    """

    def __init__(
        self, *, ner: bool = False, patterns: bool = True, dictionary: bool = True
    ) -> None:
        self._patterns = patterns
        self._names = None
        if dictionary:
            from sluicegate.core.privacy.names import NameRecognizer

            self._names = NameRecognizer()
        self._ner = None
        if ner:
            from sluicegate.core.privacy.ner import NerRecognizer

            self._ner = NerRecognizer()

    def detect(self, text: str, known: KnownIdentifiers | None = None) -> list[Finding]:
        """Sorted, non-overlapping findings with offsets into ``text``."""
        found: list[Finding] = []
        if known is not None:
            found.extend(known.find(text))
        if self._patterns:
            found.extend(find_patterns(text))
        if self._names is not None:
            found.extend(self._names.find(text))
        if self._ner is not None:
            found.extend(self._ner.find(text))
        return merge(found)
