"""Re-wrap sealed rows under the active key (``sluicegate keys rotate-data``).

Each sealed column is listed with the associated data it was sealed under
(derived from the row itself), so every blob can be opened with its old key
and sealed again with the new one. Audit payloads are not re-wrapped: the
event hashes cover them; keep an old key until the events it sealed are purged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlmodel import SQLModel, select

from sluicegate.core.crypto import Sealer
from sluicegate.core.db import transaction
from sluicegate.core.tables import Hl7Context, PublishedResource, Result, VaultRow, WorkItemRow


@dataclass(frozen=True)
class SealedColumn:
    table: type[SQLModel]
    column: str
    aad: Callable[[Any], bytes]


# Must match the AAD each writer uses (ingest, pipeline, protect, publications, hl7v2 store).
SEALED: tuple[SealedColumn, ...] = (
    SealedColumn(WorkItemRow, "sealed", lambda r: f"work_items:{r.id}".encode()),
    SealedColumn(Result, "sealed_body", lambda r: f"results:{r.job_id}".encode()),
    SealedColumn(VaultRow, "sealed", lambda r: f"vaults:{r.job_id}".encode()),
    SealedColumn(
        PublishedResource,
        "sealed_body",
        lambda r: f"published:{r.tenant}:{r.resource_type}/{r.resource_id}".encode(),
    ),
    SealedColumn(
        Hl7Context, "sealed", lambda r: f"hl7_context:{r.tenant}:{r.kind}:{r.key}".encode()
    ),
)


def key_id_of(blob: bytes) -> str:
    return blob[2 : 2 + blob[1]].decode()


def rotate_data(engine: Engine, sealer: Sealer, batch: int = 500) -> dict[str, int]:
    """Re-seal every blob not under ``sealer.active_key_id``; returns counts per table."""
    counts: dict[str, int] = {}
    for spec in SEALED:
        table = spec.table.__table__  # type: ignore[attr-defined]
        pk = next(iter(table.primary_key.columns))
        with engine.connect() as conn:
            ids = [row[0] for row in conn.execute(select(pk))]
        done = 0
        for start in range(0, len(ids), batch):
            with transaction(engine) as session:
                for pk_value in ids[start : start + batch]:
                    row = session.get(spec.table, pk_value)
                    blob = getattr(row, spec.column) if row is not None else None
                    if blob is None or key_id_of(blob) == sealer.active_key_id:
                        continue
                    aad = spec.aad(row)
                    setattr(row, spec.column, sealer.seal(sealer.open(blob, aad), aad))
                    session.add(row)
                    done += 1
        counts[str(table.name)] = done
    return counts
