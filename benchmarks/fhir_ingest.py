"""FHIR ingest over HTTP: bundles/s accepted by the real server vs the raw R4B parse.

Baseline, measured in the same process and run, on the same bytes:
``fhir.resources.R4B.bundle.Bundle.model_validate(json.loads(body))``.
Measured: real HTTP (httpx, one keep-alive connection, sequential requests) to a
real ``sluicegate serve`` process (API only: no worker, relay or Triton),
SQLite in a temp home: every request is read, validated
(media type, JSON, R4B models, rules), its work extracted, persisted (sealed work
item + job + outbox + audit event, one transaction) and queued, and only then
answered. Target: accepted bundles/s >= 0.5 x the raw parse rate.

Bundles, from the shared corpus (only ones the adapter accepts count; the script
checks, and refuses to measure a bundle that is not accepted):

- ``synthea``: synthea-r4-Todd315_Stamm704_transaction.json (~660 KB, 230
  entries, one ImagingStudy), posted as a transaction to ``POST /fhir/r4``. As
  Synthea writes it, it has no findings text anywhere, so the adapter refuses it
  (422 business-rule, no radiology work); a findings line is added to its
  ImagingStudy (``note``), which makes it the radiology work it is meant to be;
- ``dr-f201`` / ``dr-ultrasound``: hl7-r4-DiagnosticReport-f201.json and
  -ultrasound.json, each wrapped in a collection Bundle, to ``POST /fhir/r4/Bundle``;
- ``sample``: samples/fhir/radiology-bundle.json (collection), ``POST /fhir/r4/Bundle``.

Every posted bundle is unique (Bundle.id and one findings line vary), so
idempotency never short-circuits an insert (the script checks the jobs are new).

    .venv/bin/python benchmarks/fhir_ingest.py [--repeats 5] [--synthea 8] [--small 60]
        [--kinds synthea,dr-f201,...] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import functools
import itertools
import json
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _common import load_now, machine, median, p90, serve_api, table
from fhir.resources.R4B.bundle import Bundle

from sluicegate.adapters.fhir.parse import parse_bundle
from sluicegate.core.interfaces import InvalidInput

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
VALID = CORPUS / "fhir" / "valid"
SAMPLE = REPO / "samples" / "fhir" / "radiology-bundle.json"
FHIR_JSON = "application/fhir+json"
Json = dict[str, Any]


@dataclass
class Kind:
    """One kind of bundle: a template, how to make it unique, where it is posted."""

    name: str
    source: str
    path: str  # /fhir/r4 (transaction) or /fhir/r4/Bundle (collection)
    template: Json
    vary: Callable[[Json, str], None]  # sets Bundle.id and one findings text
    note: str = ""
    count: int = 0
    raw_rates: list[float] = field(default_factory=list)
    raw_lat: list[float] = field(default_factory=list)
    http_rates: list[float] = field(default_factory=list)
    http_lat: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    conc_rate: float | None = None

    def make(self, tag: str) -> bytes:
        doc = copy.deepcopy(self.template)
        self.vary(doc, tag)
        body = json.dumps(doc, ensure_ascii=False).encode()
        self.sizes.append(len(body))
        return body


# --- the bundles ------------------------------------------------------------------


def _entries_of(doc: Json, rtype: str) -> list[Json]:
    return [e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == rtype]


def _vary_study_note(doc: Json, tag: str) -> None:
    doc["id"] = f"bench-{tag}"
    study = _entries_of(doc, "ImagingStudy")[0]
    study["note"] = [{"text": f"XR arm: no fracture or dislocation. Benchmark bundle {tag}."}]


def _vary_conclusion(doc: Json, tag: str) -> None:
    doc["id"] = f"bench-{tag}"
    report = _entries_of(doc, "DiagnosticReport")[0]
    report["conclusion"] = f"{report.get('conclusion', '')} Benchmark bundle {tag}.".strip()


def _vary_presented_form(doc: Json, tag: str) -> None:
    doc["id"] = f"bench-{tag}"
    form = _entries_of(doc, "DiagnosticReport")[0]["presentedForm"][0]
    text = base64.b64decode(form["data"]).decode() + f"Addendum: benchmark bundle {tag}.\n"
    form["data"] = base64.b64encode(text.encode()).decode()


def _wrap(name: str) -> Json:
    resource = json.loads((VALID / name).read_bytes())
    url = f"http://example.org/fhir/{resource['resourceType']}/{resource['id']}"
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": url, "resource": resource}],
    }


def kinds() -> list[Kind]:
    synthea = json.loads((VALID / "synthea-r4-Todd315_Stamm704_transaction.json").read_bytes())
    return [
        Kind(
            "synthea",
            "synthea-r4-Todd315_Stamm704_transaction.json + ImagingStudy findings note",
            "/fhir/r4",
            synthea,
            _vary_study_note,
        ),
        Kind("dr-f201", "hl7-r4-DiagnosticReport-f201.json in a collection", "/fhir/r4/Bundle",
             _wrap("hl7-r4-DiagnosticReport-f201.json"), _vary_conclusion),
        Kind("dr-ultrasound", "hl7-r4-DiagnosticReport-ultrasound.json in a collection",
             "/fhir/r4/Bundle", _wrap("hl7-r4-DiagnosticReport-ultrasound.json"), _vary_conclusion),
        Kind("sample", "samples/fhir/radiology-bundle.json (collection)", "/fhir/r4/Bundle",
             json.loads(SAMPLE.read_bytes()), _vary_presented_form),
    ]  # fmt: skip


def accepted_by_adapter(doc: Json) -> str | None:
    """None when the adapter accepts ``doc`` as it is, else why not (no PHI)."""
    try:
        parse_bundle(json.dumps(doc).encode(), FHIR_JSON, tenant="default", channel="fhir")
    except InvalidInput as exc:
        return f"{exc.status} " + ", ".join(f"{i.code} at {i.location}" for i in exc.issues[:3])
    return None


# --- the server -------------------------------------------------------------------


@contextlib.contextmanager
def server(home: Path) -> Iterator[str]:
    """A real ``sluicegate serve`` in its own process (API only); yields its base URL."""
    with serve_api(home) as (base, _pid):
        yield base


def post(client: httpx.Client, kind: Kind, body: bytes) -> None:
    """One request; raises unless the bundle was accepted as new work."""
    response = client.post(kind.path, content=body, headers={"Content-Type": FHIR_JSON})
    if kind.path == "/fhir/r4":
        ok = response.status_code == 200 and any(
            e["response"]["status"].startswith("202") for e in response.json()["entry"]
        )
    else:
        ok = response.status_code == 202
    if not ok:
        raise RuntimeError(
            f"{kind.name}: not accepted: {response.status_code} {response.text[:300]}"
        )
    if "same content was accepted before" in response.text:
        raise RuntimeError(f"{kind.name}: idempotency short-circuited: a bundle was not unique")


# --- the run ----------------------------------------------------------------------


def measure(bodies: list[bytes], step: Callable[[bytes], object]) -> tuple[float, list[float]]:
    clock = time.perf_counter
    latencies = []
    for body in bodies:
        started = clock()
        step(body)
        latencies.append(clock() - started)
    return len(bodies) / sum(latencies), latencies


def raw_parse(body: bytes) -> object:
    return Bundle.model_validate(json.loads(body))


def run(args: argparse.Namespace) -> None:
    run_tag = uuid.uuid4().hex[:8]
    selected = [k for k in kinds() if k.name in args.kinds]
    for kind in selected:
        refused = accepted_by_adapter(kind.template)
        if refused is not None:
            kind.note = f"as published: refused ({refused}); measured with the findings note"
        varied = copy.deepcopy(kind.template)
        kind.vary(varied, "check")
        refused = accepted_by_adapter(varied)
        if refused is not None:
            raise SystemExit(f"{kind.name}: the adapter refuses the measured bundle: {refused}")

    counter = itertools.count(1)

    def tag() -> str:
        return f"{run_tag}-{next(counter):06d}"

    with contextlib.ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sg-bench-http-")))
        base = stack.enter_context(server(home))
        client = stack.enter_context(httpx.Client(base_url=base, timeout=120))
        for kind in selected:  # warm: imports, model caches, first transactions, connection
            for _ in range(2):
                body = kind.make(tag())
                raw_parse(body)
                post(client, kind, body)
        started = time.monotonic()
        for _ in range(args.repeats):
            for kind in selected:
                n = args.synthea if kind.name == "synthea" else args.small
                bodies = [kind.make(tag()) for _ in range(n)]
                kind.count += n
                rate, lat = measure(bodies, raw_parse)
                kind.raw_rates.append(rate)
                kind.raw_lat += lat
                rate, lat = measure(bodies, functools.partial(post, client, kind))
                kind.http_rates.append(rate)
                kind.http_lat += lat
        if args.concurrency > 1:
            for kind in selected:
                n = max(
                    args.concurrency * 2, args.synthea if kind.name == "synthea" else args.small
                )
                bodies = [kind.make(tag()) for _ in range(n)]
                kind.conc_rate = concurrent_rate(base, kind, bodies, args.concurrency)
        elapsed = time.monotonic() - started
    report(args, selected, elapsed)


def concurrent_rate(base: str, kind: Kind, bodies: list[bytes], workers: int) -> float:
    """Aggregate bundles/s with ``workers`` clients posting at once."""
    local = threading.local()

    def one(body: bytes) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=base, timeout=120)
        post(local.client, kind, body)

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, bodies))
    return len(bodies) / (time.perf_counter() - started)


def report(args: argparse.Namespace, selected: list[Kind], elapsed: float) -> None:
    print(
        f"FHIR ingest over HTTP benchmark: {args.repeats} repeats, {elapsed:.1f}s measured; "
        f"`sluicegate serve` in its own process, SQLite, sequential requests on one connection; "
        f"{machine(args.load_at_start)}"
    )
    rows: list[list[str]] = []
    for k in selected:
        size = median(k.sizes)
        for label, rates, lat in (
            ("raw R4B parse", k.raw_rates, k.raw_lat),
            ("HTTP accepted", k.http_rates, k.http_lat),
        ):
            rate = median(rates)
            rows.append(
                [
                    f"{k.name}: {label}",
                    f"{size / 1024:,.0f}",
                    str(k.count),
                    f"{rate:,.1f}",
                    f"{rate * size / 1e6:,.2f}",
                    f"{median(lat) * 1e3:,.2f}",
                    f"{p90(lat) * 1e3:,.2f}",
                ]
            )
    headers = ["bundle: path", "KB", "n", "bundles/s", "MB/s", "ms p50", "ms p90"]
    print(table(headers, rows))
    for k in selected:
        ratio = median(k.http_rates) / median(k.raw_rates)
        extra = (median(k.http_lat) - median(k.raw_lat)) * 1e3
        verdict = "meets" if ratio >= 0.5 else "misses"
        print(
            f"ratio {k.name}: HTTP accepted / raw parse = {ratio:.3f} ({verdict} the 0.5 target; "
            f"{extra:+.2f} ms per bundle at the median)"
        )
        if k.conc_rate is not None:
            print(
                f"  {k.name} with {args.concurrency} concurrent clients: {k.conc_rate:,.1f} "
                f"bundles/s ({k.conc_rate / median(k.raw_rates):.3f} of the sequential raw rate)"
            )
    if len(selected) > 1:
        # The corpus as a feed would send it: one of each bundle. Time per mix is the sum of
        # the per-bundle medians; the ratio is dominated by the large bundle, so it is printed
        # beside (never instead of) the per-bundle ratios above.
        raw_s = sum(1 / median(k.raw_rates) for k in selected)
        http_s = sum(1 / median(k.http_rates) for k in selected)
        mix = raw_s / http_s
        print(
            f"ratio corpus mix (one of each: {', '.join(k.name for k in selected)}): "
            f"HTTP accepted / raw parse = {mix:.3f} ({raw_s * 1e3:,.1f} ms raw vs "
            f"{http_s * 1e3:,.1f} ms accepted per mix)"
        )
    for k in selected:
        print(f"{k.name}: {k.source}" + (f"; {k.note}" if k.note else ""))


NAMES = ("synthea", "dr-f201", "dr-ultrasound", "sample")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--synthea", type=int, default=8, help="Synthea bundles per repeat")
    parser.add_argument("--small", type=int, default=60, help="small bundles per kind per repeat")
    parser.add_argument("--kinds", default=",".join(NAMES), help=f"comma-separated of {NAMES}")
    parser.add_argument(
        "--concurrency", type=int, default=0, help="also post with N clients at once (N > 1)"
    )
    args = parser.parse_args()
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if unknown := set(args.kinds) - set(NAMES):
        parser.error(f"unknown kinds: {sorted(unknown)}")
    args.load_at_start = load_now()
    run(args)


if __name__ == "__main__":
    main()
