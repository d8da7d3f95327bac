"""Config changes on the audit record: each start with a new config is an event.

The configuration is loaded at start-up (there is no hot reload), so a start
whose effective config differs from the last one recorded is the "reload" an
auditor needs to see. Only a keyed digest is stored: configs hold secrets.
"""

from __future__ import annotations

import json

from sqlmodel import col, select

from sluicegate.core import audit
from sluicegate.core.db import transaction
from sluicegate.core.runtime import Runtime
from sluicegate.core.tables import AuditEvent

SECURITY_TENANT = "_security"


def config_digest(runtime: Runtime) -> str:
    return runtime.sealer.token("config", runtime.settings.model_dump_json())


def record_config(runtime: Runtime, process: str) -> bool:
    """Record ``config_changed`` if this config differs from the last one seen; True if so."""
    digest = config_digest(runtime)
    with transaction(runtime.engine) as session:
        last = session.exec(
            select(AuditEvent)
            .where(AuditEvent.tenant == SECURITY_TENANT)
            .where(AuditEvent.type == "config_changed")
            .order_by(col(AuditEvent.seq).desc())
            .limit(1)
        ).first()
        previous = json.loads(last.data).get("digest") if last is not None else None
        if previous == digest:
            return False
        audit.record(
            session,
            SECURITY_TENANT,
            "config_changed",
            None,
            digest=digest,
            previous=previous,
            process=process,
        )
        return True
