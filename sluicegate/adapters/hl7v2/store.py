"""The durable step: context, duplicates and jobs, committed before the ACK.

Runs in a worker thread for a *batch* of messages from any number of
connections (group commit): ADT/ORM context is written first, then every new
work item of the batch goes through core's ``accept`` in one transaction.
Each sender's ACK waits for that commit. Duplicates (same tenant, sending
facility and MSH-10 within ``duplicate_window_s``) are answered with the
jobs of the first copy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, LargeBinary, bindparam, cast, literal, null, union_all
from sqlalchemy import select as core_select
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from sluicegate.adapters.hl7v2.extract import Extraction, OrderFacts, PatientFacts
from sluicegate.core.db import make_engine, transaction
from sluicegate.core.ingest import accept
from sluicegate.core.interfaces import WorkItem
from sluicegate.core.runtime import Runtime
from sluicegate.core.tables import Hl7Context, Job, WorkItemRow, utcnow

PATIENT, ORDER = "patient", "order"
_ITEM = "item"  # marks work-item rows in the combined lookup
_MAX_GENERATIONS = 64  # re-sends of one control id after the window has passed
_ENRICH = ("procedure", "modality", "clinical_history")
_ORDER_IDS = ("placer", "filler", "accession")


class _Row(NamedTuple):
    kind: str
    key: str
    sealed: bytes


@dataclass(frozen=True)
class Stored:
    job_ids: list[str]
    duplicate: bool = False


def message_digest(tenant: str, extraction: Extraction) -> str:
    h = extraction.header
    return hashlib.sha256(
        f"{tenant}\x00{h.sending_facility}\x00{h.control_id}".encode()
    ).hexdigest()


def _item_key(digest: str, generation: int, index: int) -> str:
    return f"hl7:{digest}:{generation}:{index}"


def _merge(into: dict[str, list[str]], more: dict[str, list[str]]) -> dict[str, list[str]]:
    out = {k: list(v) for k, v in into.items()}
    for kind, values in more.items():
        bucket = out.setdefault(kind, [])
        bucket += [v for v in values if v not in bucket]
    return out


def _lookup_statement() -> Any:
    """Which first-generation keys exist, and the context rows: one UNION ALL.

    SQL Core with bound parameters, built once: constructing the statement
    per batch cost about as much as running it.
    """
    items: Any = core_select(
        literal(_ITEM).label("kind"),
        col(WorkItemRow.idempotency_key).label("key"),
        col(WorkItemRow.created_at).label("at"),
        cast(null(), LargeBinary).label("sealed"),
    ).where(
        col(WorkItemRow.tenant) == bindparam("tenant"),
        col(WorkItemRow.idempotency_key).in_(bindparam("keys", expanding=True)),
    )
    context = core_select(
        col(Hl7Context.kind),
        col(Hl7Context.key),
        col(Hl7Context.updated_at),
        col(Hl7Context.sealed),
    ).where(
        col(Hl7Context.tenant) == bindparam("tenant"),
        col(Hl7Context.key).in_(bindparam("tokens", expanding=True)),
    )
    return union_all(items, context)


_LOOKUP = _lookup_statement()


class Store:
    """One channel's durable step (thread-safe: each call has its own connections).

    On PostgreSQL it has an engine of its own without the pool's pre-ping
    (a round trip per checkout, two per message): a connection the server
    dropped fails the batch instead, and :meth:`commit` runs it once more.
    """

    def __init__(self, runtime: Runtime, adapter: str, tenant: str, window_s: float) -> None:
        self.runtime, self.adapter, self.tenant, self.window_s = runtime, adapter, tenant, window_s
        postgres = runtime.engine.dialect.name == "postgresql"
        url = runtime.settings.database_url
        self.engine = make_engine(url, pre_ping=False) if postgres else runtime.engine

    def close(self) -> None:
        if self.engine is not self.runtime.engine:
            self.engine.dispose()

    # ---- sealed context rows ----

    def _token(self, kind: str, value: str) -> str:
        return self.runtime.sealer.token(f"hl7v2.{kind}", f"{self.tenant}\x00{value}")

    def _aad(self, kind: str, key: str) -> bytes:
        return f"hl7_context:{self.tenant}:{kind}:{key}".encode()

    def _open(self, row: Hl7Context | _Row) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(
            self.runtime.sealer.open(row.sealed, self._aad(row.kind, row.key))
        )
        return data

    def _put(self, session: Session, kind: str, key: str, data: dict[str, Any]) -> None:
        sealed = self.runtime.sealer.seal(json.dumps(data).encode(), self._aad(kind, key))
        row = session.exec(
            select(Hl7Context).where(
                Hl7Context.tenant == self.tenant, Hl7Context.kind == kind, Hl7Context.key == key
            )
        ).first()
        if row is None:
            session.add(Hl7Context(tenant=self.tenant, kind=kind, key=key, sealed=sealed))
        else:
            row.sealed, row.updated_at = sealed, utcnow()
            session.add(row)
        session.flush()

    def _rows(self, session: Session, kind: str, values: list[str]) -> list[Hl7Context]:
        if not values:
            return []
        keys = [self._token(kind, v) for v in values]
        return list(
            session.exec(
                select(Hl7Context).where(
                    Hl7Context.tenant == self.tenant,
                    Hl7Context.kind == kind,
                    col(Hl7Context.key).in_(keys),
                )
            ).all()
        )

    def _learn_patient(self, session: Session, facts: PatientFacts) -> None:
        known: dict[str, list[str]] = {}
        for row in self._rows(session, PATIENT, facts.keys + facts.merged_keys):
            known = _merge(known, self._open(row)["identifiers"])
        for row in self._rows(session, PATIENT, facts.merged_keys):
            session.delete(row)  # A40: the merged-away record lives on under the survivor
        session.flush()
        merged = _merge(known, facts.identifiers)
        for value in facts.keys:
            self._put(session, PATIENT, self._token(PATIENT, value), {"identifiers": merged})

    def _learn_order(self, session: Session, order: OrderFacts) -> None:
        if order.cancelled:
            for row in self._rows(session, ORDER, order.numbers):
                session.delete(row)
            return
        data = {"inputs": order.inputs, "obr": order.obr, "orc": order.orc, "ids": order.ids}
        for number in order.numbers:
            self._put(session, ORDER, self._token(ORDER, number), data)

    def _tokens(self, extraction: Extraction) -> set[str]:
        """Keys of the patient and order rows that may concern this message."""
        wanted = {self._token(PATIENT, k) for k in extraction.patient_keys}
        for item in extraction.items:
            wanted |= {self._token(ORDER, n) for n in item.identifiers.get("accession", [])}
        return wanted

    def _lookup(
        self, conn: Connection, first_keys: list[str], tokens: set[str]
    ) -> tuple[dict[str, Any], dict[str, list[_Row]]]:
        """One round trip for the batch: which first-generation keys exist (with
        when), and the context rows for ``tokens``."""
        params = {"tenant": self.tenant, "keys": first_keys, "tokens": sorted(tokens)}
        seen: dict[str, Any] = {}
        found: dict[str, list[_Row]] = {}
        for kind, key, at, sealed in conn.execute(_LOOKUP, params).all():
            if kind == _ITEM:
                seen[key] = at
            else:
                found.setdefault(key, []).append(_Row(kind, key, sealed))
        return seen, found

    def _enrich(self, item: WorkItem, context: list[_Row]) -> WorkItem:
        """Patient identifiers, and from the pending order what the result lacks:
        procedure, modality, history, and the placer/filler/accession numbers
        the outbound ORU must carry."""
        identifiers = item.identifiers
        inputs = dict(item.prompt_inputs)
        ids: dict[str, list[str]] = dict(item.payload.get("order_ids") or {})
        numbers = {self._token(ORDER, n) for n in item.identifiers.get("accession", [])}
        complete = all(inputs.get(k) for k in _ENRICH) and all(ids.get(k) for k in _ORDER_IDS)
        order_done = item.task != "radiology_report" or complete
        for row in context:
            if row.kind == PATIENT:
                identifiers = _merge(identifiers, self._open(row)["identifiers"])
            elif row.kind == ORDER and row.key in numbers and not order_done:
                ordered = self._open(row)
                for k in _ENRICH:
                    inputs[k] = inputs.get(k) or ordered["inputs"].get(k, "")
                for k in _ORDER_IDS:
                    ids[k] = ids.get(k) or ordered.get("ids", {}).get(k, [])
                order_done = True
        payload = {**item.payload, "order_ids": ids} if ids else item.payload
        return replace(item, identifiers=identifiers, prompt_inputs=inputs, payload=payload)

    # ---- duplicates ----

    def _previous(
        self, conn: Connection, seen: dict[str, Any]
    ) -> dict[str, tuple[int, list[str] | None]]:
        """Per digest already stored: (next generation, its jobs if still inside the window).

        ``seen`` holds the first-generation keys found; only re-sent messages
        cost more queries.
        """
        if not seen:
            return {}
        seen = dict(seen)
        later = [_item_key(k.split(":")[1], g, 1) for k in seen for g in range(1, _MAX_GENERATIONS)]
        seen.update(self._keys(conn, later))
        generations: dict[str, dict[int, Any]] = {}
        for key, created in seen.items():
            _, digest, gen, _ = key.split(":")
            generations.setdefault(digest, {})[int(gen)] = created
        out: dict[str, tuple[int, list[str] | None]] = {}
        horizon = utcnow() - timedelta(seconds=self.window_s)
        for digest, gens in generations.items():
            latest = max(gens)
            jobs = self._jobs_of(conn, digest, latest) if gens[latest] >= horizon else None
            out[digest] = (latest + 1, jobs)
        return out

    def _keys(self, conn: Connection, keys: list[str]) -> dict[str, Any]:
        rows = conn.execute(
            select(col(WorkItemRow.idempotency_key), col(WorkItemRow.created_at)).where(
                WorkItemRow.tenant == self.tenant, col(WorkItemRow.idempotency_key).in_(keys)
            )
        ).all()
        return {key: created for key, created in rows}

    def _jobs_of(self, conn: Connection, digest: str, generation: int) -> list[str]:
        keys = [_item_key(digest, generation, i) for i in range(1, 257)]
        jobs = conn.execute(
            select(col(Job.id), col(WorkItemRow.idempotency_key))
            .join(WorkItemRow, col(WorkItemRow.id) == col(Job.work_item_id))
            .where(WorkItemRow.tenant == self.tenant, col(WorkItemRow.idempotency_key).in_(keys))
        ).all()
        ordered = sorted(jobs, key=lambda r: int(r[1].rsplit(":", 1)[1]))
        return [job_id for job_id, _ in ordered]

    # ---- the batch ----

    @contextmanager
    def _reader(self) -> Iterator[Connection]:
        """A read-only connection; on PostgreSQL without BEGIN/ROLLBACK round trips."""
        with self.engine.connect() as conn:
            if self.engine.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    def commit(self, batch: list[Extraction]) -> list[Stored]:
        """Store a batch; results in batch order (raises if the database fails).

        Once more if the connection turned out to be dead (the server
        restarted): safe, as a batch stored before the failure is found by the
        second pass's duplicate check and answered with its jobs.
        """
        try:
            return self._commit(batch)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            return self._commit(batch)

    def _commit(self, batch: list[Extraction]) -> list[Stored]:
        engine = self.engine
        if any(e.patient or e.orders for e in batch):
            with transaction(engine) as session:
                for extraction in batch:
                    if extraction.patient is not None:
                        self._learn_patient(session, extraction.patient)
                    for order in extraction.orders:
                        self._learn_order(session, order)
        outcomes: list[Stored | None] = [None] * len(batch)
        pending: list[tuple[int, list[WorkItem]]] = []
        working = [(n, e, message_digest(self.tenant, e)) for n, e in enumerate(batch) if e.items]
        if not working:
            return [Stored([]) for _ in batch]
        tokens = {n: self._tokens(e) for n, e, _ in working}
        with self._reader() as conn:
            firsts = sorted({_item_key(d, 0, 1) for _, _, d in working})
            seen, context = self._lookup(conn, firsts, set().union(*tokens.values()))
            previous = self._previous(conn, seen)
        for n, extraction, digest in working:
            generation, jobs = previous.get(digest, (0, None))
            if jobs is not None:
                outcomes[n] = Stored(jobs, duplicate=True)
                continue
            rows = [row for key in tokens[n] for row in context.get(key, [])]
            items = [
                replace(self._enrich(item, rows), idempotency_key=_item_key(digest, generation, i))
                for i, item in enumerate(extraction.items, start=1)
            ]
            pending.append((n, items))
        if pending:
            settings = self.runtime.settings.pipeline
            accepted = accept(
                engine,
                self.runtime.sealer,
                self.adapter,
                [item for _, items in pending for item in items],
                max_attempts=settings.max_attempts,
                lease_s=settings.lease_s,
            )
            offset = 0
            for n, items in pending:
                chunk = accepted[offset : offset + len(items)]
                offset += len(items)
                outcomes[n] = Stored(
                    [a.job_id for a in chunk], duplicate=not any(a.created for a in chunk)
                )
        return [o if o is not None else Stored([]) for o in outcomes]
