"""The finished summary: JSON (facts, ratios, checks, narrative, grounding) plus Markdown.

Everything but the narrative is recomputed here from the stored report, so the
grounding report always judges the final text against the same facts the
model was shown. Each figure in the Markdown carries its fact id, and the
facts table maps every id to the line item (JSON pointer, source tag).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from sluicegate.adapters.finance.analysis import Analysis, analyse, grounding_pool
from sluicegate.adapters.finance.facts import format_amount
from sluicegate.adapters.finance.grounding import GroundingReport, check_narrative, problems
from sluicegate.adapters.finance.models import Report
from sluicegate.adapters.finance.options import ChecksOptions
from sluicegate.adapters.finance.workitem import report_of
from sluicegate.core.interfaces import Generation, Rendered, WorkItem

MEDIA_TYPE = "application/json"


def _d(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def grounding_of(
    item: WorkItem, text: str, options: ChecksOptions
) -> tuple[Report, Analysis, GroundingReport]:
    report = report_of(item)
    analysis = analyse(report, options)
    return report, analysis, check_narrative(text, grounding_pool(report, analysis))


def render_summary(
    item: WorkItem, generation: Generation, job_id: str, options: ChecksOptions
) -> Rendered:
    narrative = generation.text.strip()
    report, analysis, grounding = grounding_of(item, narrative, options)
    document = summary_json(report, analysis, grounding, narrative, item, job_id)
    document["markdown"] = summary_markdown(report, analysis, grounding, narrative)
    document["model"] = {
        "backend": generation.backend_id,
        "model": generation.model,
        "zone": generation.zone.value,
    }
    return Rendered(json.dumps(document, ensure_ascii=False).encode(), MEDIA_TYPE)


def summary_json(
    report: Report,
    analysis: Analysis,
    grounding: GroundingReport,
    narrative: str,
    item: WorkItem,
    job_id: str,
) -> dict[str, Any]:
    flagged = not grounding.grounded
    return {
        "job_id": job_id,
        "entity": report.entity.name,
        "period": report.period.model_dump(mode="json", exclude_none=True),
        "currency": report.currency,
        "version": report.version,
        "facts": [
            {
                "id": f.id,
                "period": f.period,
                "statement": f.statement,
                "concept": f.concept,
                "label": f.label,
                "value": str(f.value),
                "unit": f.unit,
                "line_item": f.pointer,
                "source": f.source,
            }
            for f in analysis.facts
        ],
        "ratios": [
            {
                "id": r.id,
                "name": r.name,
                "label": r.label,
                "value": str(r.value),
                "unit": r.unit,
                "facts": list(r.facts),
            }
            for r in analysis.ratios
        ],
        "checks": [
            {
                "name": c.name,
                "description": c.description,
                "status": c.status,
                "expected": _d(c.expected),
                "actual": _d(c.actual),
                "difference": _d(c.difference),
                "tolerance": _d(c.tolerance),
                "facts": list(c.facts),
            }
            for c in analysis.checks
        ],
        "narrative": narrative,
        "grounding": {
            "grounded": grounding.grounded,
            "flagged": flagged,
            "numbers": [
                {
                    "text": n.text,
                    "sentence": n.sentence,
                    "grounded": n.grounded,
                    "facts": list(n.facts),
                }
                for n in grounding.numbers
            ],
            "ungrounded": [n.text for n in grounding.ungrounded],
            "problems": problems(grounding, item.identifiers),
        },
    }


def _annotate(narrative: str, grounding: GroundingReport) -> str:
    """Append each grounded number's fact ids after it: "$1.2 billion [F3]"."""
    out, cursor = [], 0
    for number in grounding.numbers:
        at = narrative.find(number.text, cursor)
        if at < 0:
            continue
        end = at + len(number.text)
        tag = (
            f" [{', '.join(number.facts)}]"
            if number.facts
            else (" [UNGROUNDED]" if not number.grounded else "")
        )
        out.append(narrative[cursor:end] + tag)
        cursor = end
    out.append(narrative[cursor:])
    return "".join(out)


def summary_markdown(
    report: Report, analysis: Analysis, grounding: GroundingReport, narrative: str
) -> str:
    period = report.period
    span = f"{period.start} to {period.end}" if period.start else f"as of {period.end}"
    lines = [
        f"# Financial summary: {report.entity.name}",
        "",
        f"Period: {span} · Currency: {report.currency} · Version: {report.version}",
        "",
    ]
    if not grounding.grounded:
        bad = ", ".join(n.text for n in grounding.ungrounded)
        lines += [
            f"> **FLAGGED:** the narrative contains numbers not found in the facts: {bad}",
            "",
        ]
    lines += ["## Narrative", "", _annotate(narrative, grounding) or "_(empty)_", ""]
    lines += [
        "## Facts",
        "",
        "| id | period | statement | item | value | unit | line item | source |",
        "|---|---|---|---|---:|---|---|---|",
    ]
    for f in analysis.facts:
        lines.append(
            f"| {f.id} | {f.period} | {f.statement} | {f.label} | {format_amount(f.value)} "
            f"| {f.unit} | `{f.pointer}` | {f.source or ''} |"
        )
    if analysis.ratios:
        lines += ["", "## Ratios", "", "| id | ratio | value | from facts |", "|---|---|---:|---|"]
        lines += [
            f"| {r.id} | {r.label} | {r.display} | {', '.join(r.facts)} |" for r in analysis.ratios
        ]
    lines += [
        "",
        "## Checks",
        "",
        "| check | status | expected | actual | difference | facts |",
        "|---|---|---:|---:|---:|---|",
    ]
    for c in analysis.checks:
        lines.append(
            f"| {c.description} | {c.status} | {_d(c.expected) or ''} | {_d(c.actual) or ''} "
            f"| {_d(c.difference) or ''} | {', '.join(c.facts)} |"
        )
    return "\n".join(lines) + "\n"
