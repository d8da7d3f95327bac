"""`POST /hl7/v2`: the same accept path over HTTP; the ACK is the response body.

200 with the ACK for AA, AE and AR alike (the ACK is the answer), except an
AR for a storage failure, which is 503 so that HTTP clients retry too.
``Content-Location: /jobs/{id}`` names the first job the message created.
"""

from __future__ import annotations

import codecs
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, Response

from sluicegate.adapters.hl7v2.render import MEDIA_TYPE
from sluicegate.core.http import BodyTooLarge, read_body, runtime_of, sender_of
from sluicegate.core.problems import problem

if TYPE_CHECKING:
    from sluicegate.adapters.hl7v2 import Hl7v2Adapter

ACCEPTED_TYPES = ("x-application/hl7-v2+er7", "application/hl7-v2", "text/plain", "")


def _iana_charset(codec: str) -> str:
    """The HTTP (IANA) name of the Python codec the ACK was encoded in."""
    name = codecs.lookup(codec).name  # 'iso8859-2', 'latin-1', 'ascii', 'utf-8'
    if name == "latin-1":
        return "ISO-8859-1"
    if name.startswith("iso8859-"):
        return "ISO-8859-" + name.removeprefix("iso8859-")
    return "US-ASCII" if name == "ascii" else "UTF-8"


def build_router(adapter: Hl7v2Adapter, name: str, tenant: str) -> APIRouter:
    router = APIRouter(tags=["hl7v2"])
    path = "/hl7/v2" if name == "hl7v2" else f"/hl7/v2/{name}"

    @router.post(path, summary="Send one HL7 v2 message (ER7); the response is its ACK")
    async def post_message(request: Request) -> Response:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in ACCEPTED_TYPES:
            return problem(415, "Unsupported media type", "send ER7 as x-application/hl7-v2+er7")
        try:
            body = await read_body(request)
        except BodyTooLarge as exc:
            return problem(413, "Body too large", str(exc))
        intake = adapter.intake(runtime_of(request), name, tenant)
        reply = await intake.handle(body, sender_of(request))
        relay = getattr(request.app.state, "relay", None)
        if relay is not None and reply.job_ids:
            relay.nudge()
        headers = {"Content-Location": f"/jobs/{reply.job_ids[0]}"} if reply.job_ids else {}
        return Response(
            reply.ack,
            status_code=503 if reply.retry_later else 200,
            media_type=f"{MEDIA_TYPE}; charset={_iana_charset(reply.charset)}",
            headers=headers,
        )

    return router
