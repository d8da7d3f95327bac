"""The seams that hold Sluicegate together.

``core`` never imports ``adapters`` or ``inference``; it talks to them only
through the small protocols below, resolved at run time from config by the
registry (see :mod:`sluicegate.core.registry`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


class Sensitivity(StrEnum):
    """How sensitive a work item is; decides which trust zone may see it."""

    PHI = "phi"
    PII = "pii"
    DEIDENTIFIED = "deidentified"
    PUBLIC = "public"


class Zone(StrEnum):
    """Where a backend runs: inside the customer's walls, or a third party's."""

    ONPREM = "onprem"
    CLOUD = "cloud"


@dataclass(frozen=True)
class WorkItem:
    """One unit of work parsed from a domain message.

    ``payload`` is the adapter's own parsed view (JSON-serialisable, stored
    encrypted). ``prompt_inputs`` are the named text fields the task's prompt
    template uses (e.g. ``findings``). ``identifiers`` are the known identifiers
    pulled from structured fields (names, MRNs, dates), kept for the privacy
    engine; they never leave on-prem.
    """

    tenant: str
    channel: str
    task: str
    source_ref: str
    idempotency_key: str
    payload: dict[str, Any]
    prompt_inputs: dict[str, str]
    identifiers: dict[str, list[str]] = field(default_factory=dict)
    sender: str = ""  # who sent it (API key id, MLLP peer / certificate); audited, never PHI


@dataclass(frozen=True)
class Issue:
    """One problem with an input, in a domain-neutral shape.

    ``code`` follows the FHIR issue-type value set (``structure``, ``required``,
    ``value``, ``invalid``, ``not-supported``, ``business-rule`` ...), which is
    general enough for every adapter; ``location`` is a path to the element
    (FHIRPath, HL7 field position, JSON pointer).
    """

    severity: str
    code: str
    diagnostics: str
    location: str | None = None


class InvalidInput(Exception):
    """Raised while parsing; the adapter renders it in its own idiom.

    ``status`` is the HTTP status the adapter answers with (400 for input that
    cannot be parsed at all, 415 for a wrong media type, 422 for parsed but
    invalid content). Messages must never carry PHI values.
    """

    def __init__(self, issues: list[Issue], status: int = 422) -> None:
        self.issues = issues
        self.status = status
        super().__init__("; ".join(i.diagnostics for i in issues))


@dataclass(frozen=True)
class Rendered:
    """A finished job rendered into the domain's output format."""

    body: bytes
    media_type: str


@dataclass(frozen=True)
class Publication:
    """One produced resource a domain lets clients read and search for.

    ``search`` maps search-parameter names to the values the resource matches
    (e.g. ``{"subject:identifier": ["http://hospital/mrn|123", "123"]}``). Core
    stores only keyed hashes of them, so identifiers are searchable without
    being kept in plaintext.
    """

    resource_type: str
    resource_id: str
    body: bytes
    search: dict[str, list[str]] = field(default_factory=dict)


def inputs_digest(inputs: Mapping[str, str]) -> str:
    """SHA-256 of prompt inputs in canonical form: what a :class:`Clearance` vouches for."""
    canonical = json.dumps(dict(inputs), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Clearance:
    """Proof that these exact inputs passed de-identification and the guard.

    The pipeline issues it only after the guard's independent scan found
    nothing; the router refuses to send anything to a ``cloud`` backend unless
    the request carries a clearance whose digest matches its inputs, so text
    edited after the guard can never leave.
    """

    digest: str

    @classmethod
    def for_inputs(cls, inputs: Mapping[str, str]) -> Clearance:
        return cls(inputs_digest(inputs))

    def covers(self, inputs: Mapping[str, str]) -> bool:
        return self.digest == inputs_digest(inputs)


@dataclass(frozen=True)
class GenerationRequest:
    """What the pipeline asks of the inference layer.

    ``channel`` selects the channel's routing policy. ``clearance`` is present
    only for de-identified inputs that passed the guard; without it no cloud
    backend may see the request.
    """

    job_id: str
    task: str
    sensitivity: Sensitivity
    inputs: dict[str, str]
    max_tokens: int | None = None
    channel: str = ""
    clearance: Clearance | None = None


@dataclass(frozen=True)
class Generation:
    """What came back from a model."""

    text: str
    backend_id: str
    model: str
    zone: Zone
    latency_s: float
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    model_version: str = ""
    prompt_cache_hit_tokens: int | None = None
    prompt_cache_miss_tokens: int | None = None
    from_cache: bool = False
    route_reason: str = ""  # why the router chose this backend (audited; no content)


class BackendUnavailable(Exception):
    """A retryable inference failure: unreachable, overloaded, timed out.

    The pipeline retries the job with backoff; work is never moved to a less
    trusted zone because of it.
    """


class GenerationFailed(Exception):
    """A permanent inference failure (bad request, auth, model error)."""


@dataclass(frozen=True)
class WriteBackPolicy:
    """Where and how persistently an adapter writes results back to the sender.

    Core only needs this much to queue and retry a ``writeback`` delivery; the
    adapter keeps the protocol details (URLs, headers, modes) to itself.
    ``target`` names the destination on the delivery row (no credentials).
    """

    target: str
    max_attempts: int | None = 8  # None: retry until the receiver answers
    backoff_s: float = 5.0
    backoff_max_s: float = 3600.0


class DeliveryFailed(Exception):
    """An adapter could not write a result back to the sender's system.

    ``retryable`` decides whether core retries with backoff or dead-letters at
    once; ``retry_after_s`` (from a ``Retry-After`` header) is the earliest
    the next attempt may run. Messages must never carry PHI or resource content.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status_code: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status_code = status_code
        self.retry_after_s = retry_after_s


@runtime_checkable
class Adapter(Protocol):
    """A domain adapter: turns its protocol's input into work, and back."""

    name: str

    def render(self, item: WorkItem, generation: Generation, job_id: str) -> Rendered:
        """Render a finished generation as the domain's output document."""
        ...

    # Optional, looked up with getattr (adapters without write-back omit both):
    #   write_back_policy() -> WriteBackPolicy | None
    #   write_back(body: bytes, media_type: str, item: WorkItem, job_id: str) -> str | None
    #       returns the Location the sender's system answered; raises DeliveryFailed.
    #   complete_item(item: WorkItem) -> WorkItem
    #       derives what only the worker needs from what was stored (e.g. prompt text
    #       built from the stored payload), called once per claim after the item is
    #       opened; must accept items that already have it. An exception ends the job
    #       (its type only is recorded: the message may hold PHI).


@runtime_checkable
class Router(Protocol):
    """Chooses backends for a request by policy and calls them (fail closed)."""

    async def generate(self, request: GenerationRequest) -> Generation: ...

    def cloud_eligible(self, task: str, channel: str) -> bool:
        """Whether cleared, de-identified work of this task and channel would be
        routed to a cloud backend: only then does the pipeline de-identify."""
        ...

    async def health(self) -> dict[str, bool]:
        """Reachability of each configured backend, by backend id."""
        ...

    async def aclose(self) -> None: ...
