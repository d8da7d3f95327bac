"""`sluicegate audit ...`: verify, checkpoint, export and purge the audit trail."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sluicegate.core.runtime import Runtime

audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", envvar="SLUICEGATE_CONFIG", help="YAML config file."),
]
TenantOption = Annotated[str | None, typer.Option(help="One tenant (default: all).")]


def _runtime(config: Path | None) -> Runtime:
    from sluicegate.cli import _settings
    from sluicegate.core.runtime import build_runtime

    return build_runtime(_settings(config))


@audit_app.command("verify")
def verify(tenant: TenantOption = None, config: ConfigOption = None) -> None:
    """Check every chain; exit 1 naming the first bad event if any was tampered with."""
    from sqlmodel import Session

    from sluicegate.core import audit

    runtime = _runtime(config)
    try:
        with Session(runtime.engine) as session:
            names = [tenant] if tenant else audit.tenants(session)
            verdicts = [audit.verify(session, name, runtime.sealer) for name in names]
    finally:
        runtime.close()
    for v in verdicts:
        if v.ok:
            typer.echo(f"OK   {v.tenant}: {v.events} events, {v.checkpoints} checkpoints")
        else:
            where = f"event seq {v.first_bad_seq}" + (
                f" (row {v.first_bad_id})" if v.first_bad_id else ""
            )
            typer.echo(f"BAD  {v.tenant}: first bad {where}: {v.reason}")
    if not all(v.ok for v in verdicts):
        raise typer.Exit(1)


@audit_app.command("checkpoint")
def checkpoint(
    tenant: TenantOption = None,
    auto: Annotated[
        bool,
        typer.Option("--auto", help="Only chains with security.audit_checkpoint_every new events."),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Sign each chain's current head (run periodically, e.g. from cron)."""
    from sqlmodel import Session

    from sluicegate.core import audit
    from sluicegate.core.db import transaction

    runtime = _runtime(config)
    try:
        with Session(runtime.engine) as session:
            names = [tenant] if tenant else audit.tenants(session)
        for name in names:
            with transaction(runtime.engine) as session:
                every = runtime.settings.security.audit_checkpoint_every if auto else 1
                mark = audit.checkpoint(session, runtime.sealer, name, every)
                if mark is not None:
                    typer.echo(f"{name}: signed head at seq {mark.seq}")
    finally:
        runtime.close()


@audit_app.command("export")
def export(
    tenant: TenantOption = None,
    job: Annotated[str | None, typer.Option(help="Only this job's events.")] = None,
    channel: Annotated[str | None, typer.Option(help="Only jobs of this channel.")] = None,
    since: Annotated[datetime | None, typer.Option(help="From this time (UTC).")] = None,
    until: Annotated[datetime | None, typer.Option(help="Before this time (UTC).")] = None,
    fhir: Annotated[bool, typer.Option("--fhir", help="FHIR R4B AuditEvent lines.")] = False,
    config: ConfigOption = None,
) -> None:
    """Write events as JSON Lines on stdout (one event, or AuditEvent, per line)."""
    from sqlmodel import Session

    from sluicegate.core import audit

    runtime = _runtime(config)
    try:
        with Session(runtime.engine) as session:
            rows = audit.export_rows(
                session,
                tenant,
                job_id=job,
                channel=channel,
                since=_utc(since),
                until=_utc(until),
            )
    finally:
        runtime.close()
    for event in rows:
        view = audit.fhir_audit_event(event) if fhir else audit.event_view(event)
        sys.stdout.write(json.dumps(view, separators=(",", ":")) + "\n")


@audit_app.command("purge")
def purge(
    older_than_days: Annotated[
        int | None, typer.Option(help="Default: security.audit_retention_days.")
    ] = None,
    tenant: TenantOption = None,
    config: ConfigOption = None,
) -> None:
    """Drop old events; a signed anchor keeps the rest of each chain verifiable."""
    from sqlmodel import Session

    from sluicegate.core import audit
    from sluicegate.core.db import transaction
    from sluicegate.core.tables import utcnow

    runtime = _runtime(config)
    try:
        days = older_than_days or runtime.settings.security.audit_retention_days
        if days is None:
            typer.echo("give --older-than-days or set security.audit_retention_days", err=True)
            raise typer.Exit(2)
        before = utcnow() - timedelta(days=days)
        with Session(runtime.engine) as session:
            names = [tenant] if tenant else audit.tenants(session)
        for name in names:
            with transaction(runtime.engine) as session:
                dropped = audit.purge_before(session, runtime.sealer, name, before)
            typer.echo(f"{name}: purged {dropped} events older than {days} days")
    finally:
        runtime.close()


def _utc(value: datetime | None) -> datetime | None:
    from datetime import UTC

    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
