"""The evaluation harness on the permissively licensed corpora, with the thresholds reached.

Targets asserted here are what the detector reaches today (rounded down), so a
regression fails the build; the issue's goal (recall >= 0.99 on PhysioNet) is
reported by ``sluicegate privacy eval`` and in docs/privacy-detection.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sluicegate.core.privacy.detect import Detector
from sluicegate.core.privacy.evaluate import (
    Document,
    GoldSpan,
    Result,
    evaluate,
    load_physionet,
    load_presidio,
    load_radiology,
    score,
)
from sluicegate.core.privacy.findings import Finding, Kind
from tests.conftest import CORPUS


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector()


def test_matching_rule_counts_alphanumerics_only() -> None:
    doc = Document("t", "d1", "Dr. Jo Smith, 3/14", [GoldSpan(4, 12, "HCPName", Kind.NAME)])
    r = Result("t")
    # Covers "Jo" and "Smith" separately: the space between does not count.
    score(r, doc, [Finding(4, 6, Kind.NAME, "dictionary"), Finding(7, 12, Kind.NAME, "dictionary")])
    assert r.recall("name") == 1.0 and r.precision("name") == 1.0
    r2 = Result("t")
    score(r2, doc, [Finding(7, 12, Kind.NAME, "dictionary"), Finding(14, 18, Kind.DATE, "pattern")])
    assert r2.recall("name") == 0.0  # "Jo" left uncovered
    assert r2.precision() == 0.5  # the date is not gold
    assert r2.misses and r2.false_positives


def test_content_retained_counts_words_outside_the_gold() -> None:
    text = "Dr. Jo Smith saw a small nodule on 3/14"
    doc = Document("t", "d1", text, [GoldSpan(4, 12, "HCPName", Kind.NAME)])
    r = Result("t")
    # "small" over-redacted; the gold name's words do not count either way.
    score(r, doc, [Finding(4, 12, Kind.NAME, "x"), Finding(19, 24, Kind.NAME, "x")])
    # words outside gold: Dr, saw, a, small, nodule, on, 3, 14 -> 8, 7 kept
    assert (r.content_words, r.content_kept) == (8, 7)
    assert r.retained() == 7 / 8


PRESIDIO_TARGETS = {  # kind: (recall, precision) reached on presidio-research synth v2
    "email": (0.99, 0.99),
    "url": (0.99, 0.99),
    "ip": (0.99, 0.99),
    "ssn": (0.99, 0.99),
    "account": (0.99, 0.99),
    "phone": (0.98, 0.99),
    "id": (0.99, 0.99),
    "date": (0.84, 0.90),
    "name": (0.79, 0.95),
    "location": (0.61, 0.95),
}


def test_presidio_synthetic_thresholds(detector: Detector) -> None:
    result = evaluate(load_presidio(CORPUS), detector, "presidio")
    assert result.documents == 1500
    for kind, (recall, precision) in PRESIDIO_TARGETS.items():
        assert result.recall(kind) >= recall, (kind, result.recall(kind))
        assert result.precision(kind) >= precision, (kind, result.precision(kind))
    assert result.precision() >= 0.95
    assert result.retained() >= 0.98  # 0.99 measured: little over-redaction


def test_radiology_silver_thresholds(detector: Detector) -> None:
    result = evaluate(load_radiology(CORPUS), detector, "radiology")
    assert result.documents == 9
    assert result.recall("id") == 1.0
    assert result.recall("date") >= 0.9
    assert result.recall("name") >= 0.90
    assert result.retained() >= 0.98  # clinical findings survive de-identification


def test_physionet_held_out_half(detector: Detector) -> None:
    """Real ICU notes (GPL data, read in place from ../shared, never copied).

    Only the held-out half (even patient ids), which no rule was tuned on. The
    issue's goal is recall >= 0.99; these are the regression floors reached today.
    """
    docs = [d for d in load_physionet(CORPUS) if d.split == "held-out"]
    result = evaluate(docs, detector, "physionet/held-out")
    assert result.documents == 984
    assert result.recall("name") >= 0.88 and result.precision("name") >= 0.85
    assert result.recall("date") >= 0.91 and result.precision("date") >= 0.88
    assert result.recall("phone") >= 0.95 and result.precision("phone") >= 0.84
    assert result.recall("location") >= 0.80 and result.precision("location") >= 0.75
    assert result.precision() >= 0.78
    assert result.retained() >= 0.99


def test_cli_prints_table_and_keeps_phi_in_report(tmp_path: Path) -> None:
    from sluicegate.cli import app

    report = tmp_path / "report.md"
    res = CliRunner().invoke(
        app,
        [
            "privacy",
            "eval",
            "--corpus",
            "radiology",
            "--corpus-dir",
            str(CORPUS),
            "--report",
            str(report),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "recall" in res.output and "precision" in res.output and "F2" in res.output
    text = report.read_text()
    assert "Misses" in text
    # A miss's text is in the report, never on stdout.
    miss_values = [line.split("`")[3] for line in text.splitlines() if line.startswith("- `")]
    assert miss_values
    for value in miss_values:
        assert value not in res.output
