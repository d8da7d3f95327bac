"""A small but real FHIR R4 server for write-back tests (a test peer, not product code).

It speaks the REST wire format over real HTTP and validates everything it is
sent with the same ``fhir.resources`` R4B models Sluicegate uses. It runs as
its own process (``python -m tests.fhir_server --port N``, started by
:class:`FhirServerProcess`), like the hospital's server would; tests inspect
and script it through a small control API under ``/_control``:

- ``POST [base]`` with a ``transaction`` Bundle: every entry must be a POST of
  its resource type; ``urn:uuid:`` references are resolved to the ids it
  assigns (an unresolvable one fails the whole transaction, as real servers
  do); ``ifNoneExist`` on ``identifier=system|value`` is honoured. Answers 200
  with a ``transaction-response`` Bundle.
- ``POST [base]/{type}``: create, 201 with ``Location``; ``If-None-Exist`` too.
- ``GET [base]/{type}/{id}``: read back what was stored.

Invalid input gets 400/422 with an OperationOutcome. ``fail_next`` scripts
failures (e.g. a 503 burst with ``Retry-After``, or a 422) for the next requests.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request, Response
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from tests.conftest import free_port

Json = dict[str, Any]
FHIR_JSON = "application/fhir+json"


@dataclass
class Scripted:
    status: int
    retry_after: str | None = None
    diagnostics: str = "scripted failure"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Json | None


class Rejected(Exception):
    def __init__(self, status: int, code: str, diagnostics: str) -> None:
        super().__init__(diagnostics)
        self.status, self.code, self.diagnostics = status, code, diagnostics


def outcome(code: str, diagnostics: str, severity: str = "error") -> Json:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


def fhir_response(status: int, body: Json | None = None, **headers: str) -> Response:
    content = json.dumps(body).encode() if body is not None else b""
    return Response(content, status_code=status, media_type=FHIR_JSON, headers=headers)


@dataclass
class FhirServer:
    """The server's state and its FastAPI app (served by :func:`main`)."""

    store: dict[str, dict[str, Json]] = field(default_factory=dict)
    script: deque[Scripted] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    base_url: str = ""

    def fail_next(
        self,
        status: int,
        times: int = 1,
        *,
        retry_after: str | None = None,
        diagnostics: str = "scripted failure",
    ) -> None:
        self.script.extend(Scripted(status, retry_after, diagnostics) for _ in range(times))

    def read(self, location: str) -> Json:
        """The stored resource a ``Type/id[/_history/n]`` location (or URL) names."""
        parts = location.split("/fhir/", 1)[-1].split("/")
        return self.store[parts[0]][parts[1]]

    # ---- serving ----

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/fhir")
        async def transaction(request: Request) -> Response:
            return await self._handle(request, self._transaction)

        @app.post("/fhir/{rtype}")
        async def create(rtype: str, request: Request) -> Response:
            return await self._handle(request, lambda body: self._create(rtype, body, request))

        @app.get("/_control/state")
        def state() -> dict[str, Any]:
            received = [r.__dict__ for r in self.received]
            return {"store": self.store, "received": received}

        @app.post("/_control/fail_next")
        async def fail_next(request: Request) -> dict[str, int]:
            spec = await request.json()
            self.fail_next(
                spec["status"],
                spec.get("times", 1),
                retry_after=spec.get("retry_after"),
                diagnostics=spec.get("diagnostics", "scripted failure"),
            )
            return {"queued": len(self.script)}

        @app.get("/fhir/{rtype}/{rid}")
        def read(rtype: str, rid: str) -> Response:
            found = self.store.get(rtype, {}).get(rid)
            if found is None:
                return fhir_response(404, outcome("not-found", f"{rtype}/{rid} is not known"))
            return fhir_response(200, found)

        return app

    async def _handle(self, request: Request, handler: Any) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.received.append(Received(request.method, request.url.path, headers, body))
        if self.script:
            step = self.script.popleft()
            extra = {"Retry-After": step.retry_after} if step.retry_after else {}
            return fhir_response(step.status, outcome("processing", step.diagnostics), **extra)
        if headers.get("content-type", "").split(";")[0].strip() != FHIR_JSON:
            return fhir_response(415, outcome("not-supported", "send application/fhir+json"))
        if not isinstance(body, dict):
            return fhir_response(400, outcome("structure", "body is not a JSON object"))
        try:
            result: Response = handler(body)
        except Rejected as exc:
            return fhir_response(exc.status, outcome(exc.code, exc.diagnostics))
        return result

    # ---- interactions ----

    def _transaction(self, bundle: Json) -> Response:
        _validate(Bundle, bundle)
        if bundle.get("type") != "transaction":
            raise Rejected(400, "invalid", "POST [base] takes a transaction Bundle")
        planned: list[tuple[Json, str, str, bool]] = []  # resource, type, id, created
        ids: dict[str, str] = {}
        for entry in bundle.get("entry", []):
            resource, request = entry.get("resource"), entry.get("request", {})
            rtype = resource.get("resourceType") if isinstance(resource, dict) else None
            if not rtype or request.get("method") != "POST" or request.get("url") != rtype:
                raise Rejected(400, "not-supported", "only POST <Type> entries are supported")
            _validate(get_fhir_model_class(rtype), resource)
            existing = self._match(rtype, request.get("ifNoneExist"))
            rid = existing or uuid.uuid4().hex[:16]
            if entry.get("fullUrl"):
                ids[entry["fullUrl"]] = f"{rtype}/{rid}"
            planned.append((resource, rtype, rid, existing is None))
        for resource, *_ in planned:
            _resolve(resource, ids)
        answers = []
        for resource, rtype, rid, created in planned:
            if created:
                self._put(rtype, rid, resource)
            status = "201 Created" if created else "200 OK"
            answers.append(
                {"response": {"status": status, "location": f"{rtype}/{rid}/_history/1"}}
            )
        reply = {"resourceType": "Bundle", "type": "transaction-response", "entry": answers}
        _validate(Bundle, reply)
        return fhir_response(200, reply)

    def _create(self, rtype: str, resource: Json, request: Request) -> Response:
        if resource.get("resourceType") != rtype:
            raise Rejected(400, "invalid", f"resourceType must be {rtype}")
        _validate(get_fhir_model_class(rtype), resource)
        existing = self._match(rtype, request.headers.get("if-none-exist"))
        rid = existing or uuid.uuid4().hex[:16]
        if existing is None:
            _resolve(resource, {})
            self._put(rtype, rid, resource)
        location = f"{self.base_url}/{rtype}/{rid}/_history/1"
        return fhir_response(201 if existing is None else 200, None, Location=location)

    def _put(self, rtype: str, rid: str, resource: Json) -> None:
        stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        resource = {**resource, "id": rid}
        resource["meta"] = {**resource.get("meta", {}), "versionId": "1", "lastUpdated": stamp}
        self.store.setdefault(rtype, {})[rid] = resource

    def _match(self, rtype: str, condition: str | None) -> str | None:
        """The id matching ``identifier=system|value``, or None (only that search is known)."""
        if not condition:
            return None
        name, _, wanted = condition.partition("=")
        if name != "identifier" or "|" not in wanted:
            raise Rejected(400, "not-supported", f"unsupported condition {name!r}")
        system, _, value = wanted.partition("|")
        for rid, stored in self.store.get(rtype, {}).items():
            for ident in stored.get("identifier", []):
                if ident.get("system") == system and ident.get("value") == value:
                    return rid
        return None


def _validate(model: Any, data: Json) -> None:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise Rejected(422, "invalid", f"{where}: {first.get('msg')}") from None


def _resolve(node: Any, ids: dict[str, str]) -> None:
    """Rewrite ``urn:uuid:`` references to assigned ids; an unknown one is an error."""
    if isinstance(node, list):
        for item in node:
            _resolve(item, ids)
    elif isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref.startswith("urn:"):
            if ref not in ids:
                raise Rejected(400, "not-found", f"reference {ref} does not resolve")
            node["reference"] = ids[ref]
        for value in node.values():
            _resolve(value, ids)


class FhirServerProcess:
    """The server above in a process of its own, seen through its control API.

    Offers what the tests use of :class:`FhirServer`: ``base_url``, ``store``,
    ``received``, ``read``, ``fail_next`` and ``stop``.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/fhir"
        self._control = f"http://127.0.0.1:{self.port}/_control"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> FhirServerProcess:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.fhir_server", "--port", str(self.port)],
            cwd=Path(__file__).resolve().parents[1],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("test FHIR server process did not start")
            try:
                httpx.get(f"{self._control}/state", timeout=2).raise_for_status()
                return self
            except httpx.HTTPError:
                time.sleep(0.1)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def _state(self) -> dict[str, Any]:
        state: dict[str, Any] = httpx.get(f"{self._control}/state", timeout=10).json()
        return state

    @property
    def store(self) -> dict[str, dict[str, Json]]:
        store: dict[str, dict[str, Json]] = self._state()["store"]
        return store

    @property
    def received(self) -> list[Received]:
        return [Received(**r) for r in self._state()["received"]]

    def read(self, location: str) -> Json:
        parts = location.split("/fhir/", 1)[-1].split("/")
        return self.store[parts[0]][parts[1]]

    def fail_next(
        self,
        status: int,
        times: int = 1,
        *,
        retry_after: str | None = None,
        diagnostics: str = "scripted failure",
    ) -> None:
        spec = {
            "status": status,
            "times": times,
            "retry_after": retry_after,
            "diagnostics": diagnostics,
        }
        httpx.post(f"{self._control}/fail_next", json=spec, timeout=10).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description="a small FHIR R4 server (test peer)")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = FhirServer(base_url=f"http://127.0.0.1:{args.port}/fhir")
    uvicorn.run(server.app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
