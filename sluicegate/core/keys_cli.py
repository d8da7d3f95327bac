"""`sluicegate keys ...`: API keys and encryption-key rotation."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sluicegate.core.runtime import Runtime

keys_app = typer.Typer(help="API keys and data-key rotation.", no_args_is_help=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", envvar="SLUICEGATE_CONFIG", help="YAML config file."),
]


def _runtime(config: Path | None) -> Runtime:
    from sluicegate.cli import _settings
    from sluicegate.core.runtime import build_runtime

    return build_runtime(_settings(config))


@keys_app.command("create")
def create(
    role: Annotated[
        list[str], typer.Option("--role", "-r", help="ingest, read_results, audit, admin")
    ],
    tenant: Annotated[str, typer.Option(help="Tenant the key belongs to.")] = "default",
    name: Annotated[str, typer.Option(help="A label for listings.")] = "",
    allow_from: Annotated[
        list[str] | None,
        typer.Option("--allow-from", help="Source network (CIDR) the key is valid from."),
    ] = None,
    channel: Annotated[
        list[str] | None,
        typer.Option("--channel", help="Channel (adapter) the key may use; default: all."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Create a key; it is printed once, on stdout, and never stored."""
    from sluicegate.core.security import keys

    runtime = _runtime(config)
    try:
        row, key = keys.create(
            runtime.engine, runtime.sealer, tenant, role, name, allow_from, channel
        )
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    finally:
        runtime.close()
    typer.echo(f"created key {row.id} (tenant {row.tenant}, roles {row.roles})", err=True)
    typer.echo(key)


@keys_app.command("list")
def list_(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    config: ConfigOption = None,
) -> None:
    """List keys (ids, tenants, roles, state; never the keys)."""
    from sluicegate.core.security import keys

    runtime = _runtime(config)
    try:
        rows = keys.list_keys(runtime.engine, tenant)
    finally:
        runtime.close()
    for row in rows:
        state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
        source = f"from {row.allow_from or 'any'}; channels {row.channels or 'all'}"
        typer.echo(f"{row.id}\t{row.tenant}\t{row.roles}\t{source}\t{state}\t{row.name}")


@keys_app.command("revoke")
def revoke(key_id: str, config: ConfigOption = None) -> None:
    """Revoke a key at once."""
    from sluicegate.core.security import keys

    runtime = _runtime(config)
    try:
        ok = keys.revoke(runtime.engine, key_id)
    finally:
        runtime.close()
    if not ok:
        typer.echo(f"no live key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


@keys_app.command("rotate-data")
def rotate_data(
    new_key: Annotated[
        bool, typer.Option("--new-key", help="First make a new key file (it becomes active).")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Re-wrap every sealed row under the active encryption key."""
    from sluicegate.cli import _settings
    from sluicegate.core import audit
    from sluicegate.core.crypto import generate_key_file
    from sluicegate.core.db import transaction
    from sluicegate.core.runtime import build_runtime
    from sluicegate.core.security.rotation import rotate_data as rewrap

    settings = _settings(config)
    if new_key:
        if settings.encryption.keys:
            typer.echo("keys come from config: add the new key there instead", err=True)
            raise typer.Exit(2)
        generate_key_file(settings.home_path / "keys")
    runtime = build_runtime(settings)
    try:
        counts = rewrap(runtime.engine, runtime.sealer)
        with transaction(runtime.engine) as session:
            audit.record(
                session,
                "_security",
                "key_rotated",
                None,
                active_key_id=runtime.sealer.active_key_id,
                rewrapped=counts,
            )
    finally:
        runtime.close()
    typer.echo(f"active key {runtime.sealer.active_key_id}; re-wrapped {counts}")
