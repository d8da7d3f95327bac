"""``sluicegate privacy eval``: the detector's recall/precision/F2 table per corpus."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

privacy_app = typer.Typer(help="Privacy engine: detection quality.", no_args_is_help=True)


@privacy_app.command("eval")
def eval_command(
    corpus: Annotated[
        str, typer.Option(help="physionet | presidio | radiology | fresh | all")
    ] = "all",
    corpus_dir: Annotated[
        Path | None, typer.Option(help="Corpus root (default: <repo>/../shared/corpus).")
    ] = None,
    report: Annotated[
        Path, typer.Option(help="Local file for misses and false positives (shows PHI).")
    ] = Path("privacy-eval-report.md"),
    ner: Annotated[bool, typer.Option(help="Add the optional Presidio NER recognizer.")] = False,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the generated 'fresh' corpus (default: random).")
    ] = None,
    fresh_docs: Annotated[int, typer.Option(help="Notes in the 'fresh' corpus.")] = 500,
) -> None:
    """Print recall, precision and F2 per kind; write misses only to --report."""
    from sluicegate.core.privacy.detect import Detector
    from sluicegate.core.privacy.evaluate import (
        CORPORA,
        LOADERS,
        Result,
        default_corpus_dir,
        evaluate,
        load_fresh,
        write_report,
    )

    names = CORPORA if corpus == "all" else (corpus,)
    if any(n not in LOADERS for n in names):
        raise typer.BadParameter(f"unknown corpus; choose from {', '.join(CORPORA)} or all")
    root = corpus_dir or default_corpus_dir()
    console = Console()
    detector = Detector(ner=ner)
    results: list[Result] = []
    fresh_seed = random.randrange(10**6) if seed is None else seed
    if "fresh" in names:  # printed so that a run on a random seed can be repeated
        console.print(f"fresh corpus: {fresh_docs} notes, --seed {fresh_seed}")
    for name in names:
        if name == "fresh":
            docs = list(load_fresh(root, fresh_docs, fresh_seed))
        else:
            docs = list(LOADERS[name](root))
        splits = sorted({d.split for d in docs})
        if len(splits) > 1:
            for split in splits:
                results.append(
                    evaluate([d for d in docs if d.split == split], detector, f"{name}/{split}")
                )
        results.append(evaluate(docs, detector, name))
    for r in results:
        console.print(render_table(r))
    write_report(results, report)
    console.print(f"misses and false positives written to {report} (contains PHI: keep it local)")


def render_table(result: object) -> Table:
    """One rich table: a row per kind and an 'all' row."""
    from sluicegate.core.privacy.evaluate import Result

    assert isinstance(result, Result)
    table = Table(
        title=f"{result.corpus}: {result.documents} documents, {result.chars:,} chars",
        caption=(
            f"content retained: {result.retained():.1%} of {result.content_words:,} "
            "words outside the gold spans left intact"
        ),
    )
    for col in ("kind", "gold", "found", "recall", "detected", "precision", "F2"):
        table.add_column(col, justify="left" if col == "kind" else "right")
    for kind in [*result.kinds(), None]:
        rc = result.recall_counts.get(kind) if kind else None
        pc = result.precision_counts.get(kind) if kind else None
        gold = (
            rc.gold
            if rc
            else (sum(c.gold for c in result.recall_counts.values()) if kind is None else 0)
        )
        found = (
            rc.found
            if rc
            else (sum(c.found for c in result.recall_counts.values()) if kind is None else 0)
        )
        det = (
            pc.detected
            if pc
            else (sum(c.detected for c in result.precision_counts.values()) if kind is None else 0)
        )
        table.add_row(
            kind or "all",
            str(gold),
            str(found),
            f"{result.recall(kind):.3f}" if gold else "-",
            str(det),
            f"{result.precision(kind):.3f}" if det else "-",
            f"{result.f2(kind):.3f}" if gold and det else "-",
        )
    return table
