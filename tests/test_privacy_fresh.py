"""The fresh-data corpus: reproducible, exact gold, every category, and detector floors."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sluicegate.core.privacy.detect import Detector
from sluicegate.core.privacy.evaluate import CORPORA, LOADERS, Result, evaluate, load_fresh
from sluicegate.core.privacy.fresh import (
    FRESH_KINDS,
    Note,
    build,
    generate,
    render,
)
from sluicegate.core.privacy.fresh_people import LOCALES, person
from sluicegate.core.privacy.fresh_templates import CLINICAL, STYLES


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector()


def test_documents_are_reproducible_from_seed_and_index() -> None:
    first = generate(12, seed=41)
    assert [(d.text, d.gold) for d in first] == [(d.text, d.gold) for d in generate(12, 41)]
    # Document i does not depend on how many were asked for, or on what ran before.
    build(99, 0)
    assert build(41, 11)[0].text == first[11].text
    assert generate(12, 42)[0].text != first[0].text
    assert len({d.text for d in first}) == 12


def test_documents_are_the_same_in_processes_with_other_hash_seeds() -> None:
    """``--seed N`` must repeat a run: nothing may depend on set or dict hash order."""
    script = (
        "import hashlib; from sluicegate.core.privacy.fresh import generate; "
        "print(hashlib.sha256(''.join(d.text for d in generate(300, 7)).encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for hash_seed in (1, 2, 3)
    }
    assert len(digests) == 1


def test_gold_spans_hold_exactly_the_inserted_values() -> None:
    for i in range(300):
        doc, values = build(5, i)
        assert [doc.text[g.start : g.end] for g in doc.gold] == values
        for g, value in zip(doc.gold, values, strict=True):
            assert value == value.strip() and any(c.isalnum() for c in value), (doc.doc_id, value)
            assert g.kind == FRESH_KINDS[g.category]
            # A span never cuts a word: only a unit may be glued on (``90yo``).
            before = doc.text[g.start - 1] if g.start else " "
            after = doc.text[g.end] if g.end < len(doc.text) else " "
            assert not _same_class(before, value[0]), (doc.doc_id, value)
            assert not _same_class(value[-1], after), (doc.doc_id, value)


def _same_class(a: str, b: str) -> bool:
    return (a.isalpha() and b.isalpha()) or (a.isdigit() and b.isdigit())


def test_every_category_style_and_case_appears_in_500_documents() -> None:
    docs = generate(500, seed=3)
    counts = Counter(g.category for d in docs for g in d.gold)
    assert set(counts) == set(FRESH_KINDS), set(FRESH_KINDS) - set(counts)
    assert min(counts.values()) >= 10, counts.most_common()[-3:]
    assert {d.doc_id.split("-", 3)[3] for d in docs} == {s.name for s in STYLES}
    assert any(d.text == d.text.upper() for d in docs)
    assert any(d.text == d.text.lower() for d in docs)


def test_every_template_renders_and_names_come_from_every_locale() -> None:
    note = Note(random.Random(1))
    templates = [t for s in STYLES for t in (*s.headers, *s.body, *s.closers)] + list(CLINICAL)
    assert len(templates) >= 60
    for template in templates:
        text = "".join(p for p, _ in render(template, note))
        assert "{" not in text and "}" not in text, template
    rng = random.Random(2)
    assert {person(rng).locale for _ in range(600)} == set(LOCALES)


def test_fresh_is_a_registered_corpus_that_ignores_the_root() -> None:
    assert LOADERS["fresh"] is load_fresh and "fresh" in CORPORA
    docs = list(load_fresh(Path("/nonexistent"), 3, 8))
    assert [d.text for d in docs] == [d.text for d in generate(3, 8)]


# ------------------------------------------------------------------ regression floors

#: Regression floors on 250 fresh notes, set just below the minimum measured over
#: 20 seeds on 2026-11-28 (docs/privacy-detection.md). They catch regressions
#: only; they are NOT the target: the issue asks for recall >= 0.99 on fresh data,
#: and names (~0.92; floor raised after the name classes of issue 6: labels, verbs of
#: contact, sign-offs, repeated mentions, initials; min 0.912 over seeds 1-12) and
#: locations (~0.89; floors raised after the place classes of issue 6: facilities,
#: street lines, named streets, wards) are far from it.
RECALL_FLOORS = {
    "name": 0.89,
    "date": 0.98,
    "id": 0.98,
    "phone": 0.98,
    "email": 0.99,
    "ssn": 0.99,
    "location": 0.80,
    "age": 0.90,
}
PRECISION_FLOORS = {
    "name": 0.97,
    "date": 0.98,
    "id": 0.98,
    "phone": 0.98,
    "email": 0.99,
    "ssn": 0.99,
    "location": 0.97,
}
RETAINED_FLOOR = 0.985


def _check_floors(result: Result, seed: int) -> None:
    failures = [
        f"recall {kind} {result.recall(kind):.3f} < {floor}"
        for kind, floor in RECALL_FLOORS.items()
        if result.recall(kind) < floor
    ]
    failures += [
        f"precision {kind} {result.precision(kind):.3f} < {floor}"
        for kind, floor in PRECISION_FLOORS.items()
        if result.precision(kind) < floor
    ]
    if result.retained() < RETAINED_FLOOR:
        failures.append(f"content retained {result.retained():.4f} < {RETAINED_FLOOR}")
    rerun = f"sluicegate privacy eval --corpus fresh --seed {seed} --fresh-docs 250"
    assert not failures, f"seed {seed} ({rerun}): " + "; ".join(failures)


def test_detector_floors_on_a_fixed_seed(detector: Detector) -> None:
    result = evaluate(generate(250, seed=1), detector, "fresh")
    _check_floors(result, 1)


def test_detector_floors_on_a_random_seed(detector: Detector) -> None:
    seed = random.randrange(10**6)
    print(f"fresh corpus seed {seed}")  # shown on failure
    _check_floors(evaluate(generate(250, seed), detector, "fresh"), seed)


def test_cli_prints_the_seed_so_a_random_run_can_be_repeated(tmp_path: Path) -> None:
    from sluicegate.cli import app

    report = tmp_path / "report.md"
    args = ["privacy", "eval", "--corpus", "fresh", "--fresh-docs", "8", "--report", str(report)]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    match = re.search(r"--seed (\d+)", first.output)
    assert match and "fresh: 8 documents" in first.output
    again = CliRunner().invoke(app, [*args, "--seed", match.group(1)])
    assert again.exit_code == 0, again.output
    table = lambda out: out[out.index("fresh: 8") :]  # noqa: E731
    assert table(again.output) == table(first.output)
