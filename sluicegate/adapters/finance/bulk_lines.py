"""One bulk line → parsed, validated and analysed work (CPU only, no database).

Kept apart from :mod:`sluicegate.adapters.finance.bulk` (which stores) so that a
helper process can import it cheaply and prepare lines while the server
process stores the previous batch (see :mod:`sluicegate.adapters.finance.bulk_pool`).
Everything here pickles: lines in, :class:`Prepared` out. A prepared report
travels as an :class:`~sluicegate.core.ingest.Encoded` item (its JSON, ready to
seal): the storing process then neither serialises it nor unpickles a whole
work item, and the helpers' spare CPU does that work.
"""

from __future__ import annotations

from dataclasses import dataclass

from sluicegate.adapters.finance.errors import ReportRejected, load_report, load_reports
from sluicegate.adapters.finance.intake import prepare
from sluicegate.adapters.finance.options import FinanceOptions
from sluicegate.core.ingest import Encoded


@dataclass(frozen=True)
class Line:
    number: int
    data: bytes | None  # None: over the line limit
    error: str | None = None


@dataclass(frozen=True)
class Prepared:
    """One line after parsing and analysis: ready to store, or its refusal.

    ``reports`` holds one (item, content digest, failed checks) triple for a
    report line, several for an array line (stored all or nothing); ``errors``
    is set when refused.
    """

    number: int
    reports: list[tuple[Encoded, str, list[dict[str, str]]]]
    errors: list[dict[str, str]] | None = None
    group: bool = False


def prepare_line(
    line: Line, options: FinanceOptions, adapter: str, tenant: str, sender: str
) -> Prepared:
    """Parse, validate and analyse one line (CPU only: no database)."""
    if line.data is None:
        return Prepared(line.number, [], [{"field": "", "message": line.error or ""}])
    group = line.data.lstrip()[:1] == b"["
    try:
        reports = load_reports(line.data) if group else [load_report(line.data)]
        ready = []
        for index, report in enumerate(reports):
            try:
                item, failed = prepare(
                    report, options, tenant=tenant, channel=adapter, sender=sender
                )
                digest = str(item.payload["content_digest"])
                ready.append((Encoded.of(item), digest, failed))
            except ReportRejected as exc:
                if not group:
                    raise
                raise ReportRejected(
                    exc.status,
                    exc.title,
                    [{**e, "field": f"{index}.{e['field']}".rstrip(".")} for e in exc.errors],
                    exc.kind,
                ) from None
    except ReportRejected as exc:
        return Prepared(line.number, [], exc.errors, group)
    return Prepared(line.number, ready, None, group)


def prepare_lines(
    lines: list[Line], options: FinanceOptions, adapter: str, tenant: str, sender: str
) -> list[Prepared]:
    return [prepare_line(line, options, adapter, tenant, sender) for line in lines]
