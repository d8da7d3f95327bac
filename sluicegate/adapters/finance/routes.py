"""HTTP ingress under ``/finance``: one report, NDJSON bulk, or a channel's CSV export.

Accepted reports become asynchronous jobs followed through ``/jobs/{id}``;
every refusal is RFC 9457 problem+json naming field paths, and nothing is
stored for a refused report.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from sluicegate.adapters.finance.accept import Conflict, accept_all
from sluicegate.adapters.finance.bulk import CONFLICT, drain, run_bulk, spool
from sluicegate.adapters.finance.errors import ReportRejected, load_report, problem_response
from sluicegate.adapters.finance.importers.csv_mapping import ReportMeta, read_csv
from sluicegate.adapters.finance.intake import prepare
from sluicegate.adapters.finance.models import Report
from sluicegate.core.http import BodyTooLarge, read_body, runtime_of, sender_of

if TYPE_CHECKING:
    from sluicegate.adapters.finance import FinanceAdapter

NDJSON = "application/x-ndjson"
_JSON = ("application/json",)
_NDJSON = (
    "application/x-ndjson",
    "application/jsonl",
    "application/json-lines",
    "application/ndjson",
)


def _media(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _refuse(status: int, title: str, detail: str, kind: str) -> Response:
    return ReportRejected(
        status, title, [{"field": "", "pointer": "", "message": detail}], kind
    ).response()


def _date_param(request: Request, name: str) -> date | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ReportRejected(
            422,
            "Invalid query parameter",
            [{"field": name, "pointer": "", "message": "must be an ISO date (YYYY-MM-DD)"}],
            "invalid-parameter",
        ) from None


def _meta(request: Request) -> ReportMeta:
    q = request.query_params
    year = q.get("fiscal_year")
    return ReportMeta(
        entity=q.get("entity"),
        period_end=_date_param(request, "period_end"),
        period_start=_date_param(request, "period_start"),
        prior_period_end=_date_param(request, "prior_period_end"),
        currency=q.get("currency"),
        version=q.get("version", "1"),
        fiscal_year=int(year) if year and year.isdigit() else None,
        fiscal_period=q.get("fiscal_period"),
    )


def build_router(adapter: FinanceAdapter, name: str, tenant: str) -> APIRouter:
    router = APIRouter(prefix="/finance", tags=["finance"])
    options = adapter.options
    errors: dict[int | str, dict[str, Any]] = {s: {} for s in (400, 409, 413, 415, 422)}

    @router.post(
        "/reports",
        status_code=202,
        responses=errors,
        summary="Submit one report (JSON, or CSV through the channel's mapping)",
    )
    async def post_report(request: Request) -> Response:
        media = _media(request)
        try:
            body = await read_body(request)
            if media in _JSON or media.endswith("+json"):
                reports = [await asyncio.to_thread(load_report, body)]
            elif media == "text/csv":
                if options.csv is None:
                    return _refuse(
                        415,
                        "CSV not configured",
                        f"channel {name!r} has no csv mapping (adapters.{name}.options.csv)",
                        "csv-not-configured",
                    )
                reports = await asyncio.to_thread(read_csv, body, options.csv, _meta(request))
            else:
                return _refuse(
                    415,
                    "Unsupported media type",
                    "send application/json or text/csv (bulk: POST /finance/reports:bulk)",
                    "unsupported-media-type",
                )
            return await _submit(request, reports)
        except BodyTooLarge as exc:
            return _refuse(413, "Body too large", str(exc), "too-large")
        except ReportRejected as exc:
            return exc.response()

    async def _submit(request: Request, reports: list[Report]) -> Response:
        key = request.headers.get("idempotency-key")
        if key is not None and not 1 <= len(key) <= 255:
            return _refuse(
                400, "Invalid Idempotency-Key", "must be 1 to 255 characters", "invalid-key"
            )
        sender = sender_of(request)
        prepared = [
            prepare(r, options, tenant=tenant, channel=name, sender=sender) for r in reports
        ]
        header_keys = [
            f"{key}#{i}" if key and len(reports) > 1 else key for i in range(len(reports))
        ]
        runtime = runtime_of(request)
        pipeline = runtime.settings.pipeline
        try:
            # All or nothing: a conflict on any report of a multi-report upload
            # stores none of them.
            outcomes = await asyncio.to_thread(
                accept_all,
                runtime.engine,
                runtime.sealer,
                name,
                [item for item, _ in prepared],
                max_attempts=pipeline.max_attempts,
                lease_s=pipeline.lease_s,
                header_keys=header_keys,
            )
        except Conflict as exc:
            extra: dict[str, Any] = {"job_id": exc.job_id}
            detail = CONFLICT
            if len(reports) > 1:
                extra["report"] = exc.index
                detail = f"report {exc.index} of {len(reports)}: {CONFLICT}; nothing was stored"
            response = problem_response(
                409,
                "Idempotency key reused with different content",
                detail,
                "idempotency-conflict",
                **extra,
            )
            response.headers["content-location"] = f"/jobs/{exc.job_id}"
            return response
        relay = getattr(request.app.state, "relay", None)
        if relay is not None:
            relay.nudge()
        results = [
            {
                "job_id": o.job_id,
                "status": o.status,
                "location": f"/jobs/{o.job_id}",
                "failed_checks": failed,
            }
            for o, (_, failed) in zip(outcomes, prepared, strict=True)
        ]
        created = any(o.status == "accepted" for o in outcomes)
        body: dict[str, Any] = results[0] if len(results) == 1 else {"reports": results}
        response = JSONResponse(body, status_code=202 if created else 200)
        response.headers["content-location"] = f"/jobs/{outcomes[0].job_id}"
        return response

    @router.post(
        "/reports:bulk",
        responses=errors,
        summary="NDJSON bulk load: one report per line, per-line results streamed back",
    )
    async def post_bulk(request: Request) -> Response:
        if _media(request) not in _NDJSON:
            return _refuse(
                415, "Unsupported media type", f"send {NDJSON}", "unsupported-media-type"
            )
        runtime = runtime_of(request)
        out = spool()
        tally = await run_bulk(
            runtime,
            options,
            name,
            tenant,
            request.stream(),
            out,
            sender_of(request),
            adapter.helpers,
        )
        relay = getattr(request.app.state, "relay", None)
        if relay is not None and tally.accepted:
            relay.nudge()
        return StreamingResponse(
            drain(out),
            media_type=NDJSON,
            headers={
                "x-accepted": str(tally.accepted),
                "x-rejected": str(tally.rejected),
                "x-duplicate": str(tally.duplicate),
            },
        )

    return router
