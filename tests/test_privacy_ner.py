"""The optional NER recognizer runs Presidio's real analyzer over a spaCy pipeline built here.

No spaCy model can be downloaded in CI, so each test writes a small pipeline
to disk (``spacy.blank("en")`` plus an ``entity_ruler`` with a few patterns)
and points ``SLUICEGATE_NER_MODEL`` at it: Presidio loads it, runs its
SpacyRecognizer and its own pattern recognizers, and our wrapper maps the
results. The module skips only where the extra is not installed and ``CI`` is
unset; in CI (``pip install .[test]`` brings the extra) a missing extra fails.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest

try:
    import presidio_analyzer  # noqa: F401
    import spacy
    from spacy.language import Language
except ImportError:
    if os.environ.get("CI"):
        raise
    pytest.skip("extra sluicegate[ner] not installed", allow_module_level=True)

from sluicegate.core.pipeline import execute
from sluicegate.core.privacy.detect import Detector
from sluicegate.core.privacy.findings import Finding, Kind
from sluicegate.core.privacy.ner import MODEL_ENV, NerRecognizer
from sluicegate.core.runtime import Runtime, build_runtime
from tests.conftest import make_settings
from tests.fakes import RecordingBackend
from tests.test_protect import BACKENDS, ROUTE_ALL, audit_of, submit

#: Names and places no Census list or gazetteer holds, so only NER can find them.
PATTERNS: list[dict[str, Any]] = [
    {"label": "PERSON", "pattern": [{"LOWER": "zorvath"}, {"LOWER": "quillane"}]},
    {"label": "PERSON", "pattern": [{"LOWER": "ybrenna"}]},
    {"label": "GPE", "pattern": [{"LOWER": "vantorr"}, {"LOWER": "hollow"}]},
]
BROKEN = "sluicegate_test_broken_ner"


@Language.component(BROKEN)
def _broken(doc: Any) -> Any:
    """A pipeline component that fails the way a model can (memory, a bad input)."""
    raise MemoryError("NER ran out of memory")


def _pipeline(path: Path, *, broken: bool = False) -> Path:
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns(PATTERNS)  # type: ignore[attr-defined]
    if broken:
        nlp.add_pipe(BROKEN)
    nlp.to_disk(path)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _pipeline(tmp_path_factory.mktemp("ner") / "pipeline")


@pytest.fixture
def ner_model(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(MODEL_ENV, str(model_dir))
    return model_dir


def _covered(text: str, findings: list[Finding]) -> set[int]:
    return {i for f in findings for i in range(f.start, f.end) if text[i].isalnum()}


TEXTS = [
    "Seen by Dr. Lindqvist; wife Ybrenna called from Vantorr Hollow at (617) 555-0143.",
    "Zorvath Quillane, MRN 0048213, admitted 3/14/2024 to Holy Cross Hospital.",
    "Pt   ate well.\n\nDaughter Ybrenna visiting from Spokane — cafe meeting at 14:00.",
    "Neuro: A&Ox3, MAE. Resp: lungs clear. No identifiers here at all.",
]


def test_ner_findings_only_add_to_the_rules(ner_model: Path) -> None:
    plain, with_ner = Detector(), Detector(ner=True)
    added = 0
    for text in TEXTS:
        base, more = plain.detect(text), with_ner.detect(text)
        assert _covered(text, base) <= _covered(text, more), text
        added += len(_covered(text, more) - _covered(text, base))
        for f in more:  # still sorted, non-overlapping, inside the text
            assert 0 <= f.start < f.end <= len(text)
        assert all(a.end <= b.start for a, b in itertools.pairwise(more))
    assert added > 0, "the NER pipeline should have found what the rules cannot"


def test_ner_offsets_and_kinds_map_onto_the_text(ner_model: Path) -> None:
    # Characters outside ASCII and odd whitespace before the names: offsets are characters.
    text = "Notes — Ryhänen's café ½.\n\n\tZorvath Quillane lives in  Vantorr Hollow; Ybrenna too."
    found = NerRecognizer().find(text)
    spans = {(text[f.start : f.end], f.kind, f.source) for f in found}
    assert ("Zorvath Quillane", Kind.NAME, "ner") in spans
    assert ("Ybrenna", Kind.NAME, "ner") in spans
    assert ("Vantorr Hollow", Kind.LOCATION, "ner") in spans


def test_ner_adds_presidio_pattern_findings_with_offsets(ner_model: Path) -> None:
    text = "Écrit par l'équipe: write to ana.reyes@example.org or call."
    found = NerRecognizer().find(text)
    assert ("ana.reyes@example.org", Kind.EMAIL) in {(text[f.start : f.end], f.kind) for f in found}


def test_min_score_filters_weak_results(ner_model: Path) -> None:
    # spaCy rules carry Presidio's default score (0.85): a higher bar drops them.
    assert NerRecognizer(min_score=0.99).find("Ybrenna called.") == []


def test_model_argument_and_missing_model(model_dir: Path, tmp_path: Path) -> None:
    assert NerRecognizer(model=str(model_dir)).find("Ybrenna called.")
    with pytest.raises(RuntimeError, match=MODEL_ENV):
        NerRecognizer(model=str(tmp_path / "no-such-pipeline"))


def test_an_ner_error_is_not_swallowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODEL_ENV, str(_pipeline(tmp_path / "broken", broken=True)))
    with pytest.raises(MemoryError):
        Detector(ner=True).detect("Ybrenna called from Vantorr Hollow.")


def test_an_ner_error_keeps_the_work_on_prem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sample_bundle: bytes
) -> None:
    """Through the real pipeline: privacy.ner on, the NER model fails, the cloud sees nothing."""
    monkeypatch.setenv(MODEL_ENV, str(_pipeline(tmp_path / "broken", broken=True)))
    rt = _runtime_with_ner(tmp_path)
    try:
        job_id, _ = submit(rt, sample_bundle)
        assert execute(rt, job_id) == "succeeded"
        assert RecordingBackend.sent["cloud"] == []
        assert len(RecordingBackend.sent["onprem"]) == 1
        events = audit_of(rt, job_id)
        assert ("privacy_error", {"error": "MemoryError"}) in events
        assert "Testperson" not in json.dumps(events)
    finally:
        rt.close()


def _runtime_with_ner(tmp_path: Path) -> Runtime:
    settings = make_settings(
        tmp_path,
        inference={
            "backends": BACKENDS,
            "policy": {"rules": [ROUTE_ALL]},
            "cache": {"enabled": False},
        },
        privacy={"ner": True},
    )
    return build_runtime(settings)
