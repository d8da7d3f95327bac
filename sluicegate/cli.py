"""The one entry point: ``sluicegate serve | worker | relay | demo | config | db | triton``,
plus ``cost`` and ``models``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sluicegate.adapters.finance.push_cli import app as finance_app
from sluicegate.core.audit_cli import audit_app
from sluicegate.core.config import Settings
from sluicegate.core.config_loader import ConfigError, load_settings
from sluicegate.core.keys_cli import keys_app
from sluicegate.core.privacy.eval_cli import privacy_app
from sluicegate.inference.cost_cli import cost_app
from sluicegate.inference.models import models_app

# Tracebacks never show local variables: they may hold patient data.
app = typer.Typer(
    help="Sluicegate: privacy-routing integration gateway.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
config_app = typer.Typer(help="Inspect the configuration file.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
triton_app = typer.Typer(help="The local (CPU) Triton server.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Webhook deliveries.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(triton_app, name="triton")
app.add_typer(webhooks_app, name="webhooks")
mllp_app = typer.Typer(help="The HL7 v2 MLLP listener.", no_args_is_help=True)
app.add_typer(mllp_app, name="mllp")
app.add_typer(cost_app, name="cost")
app.add_typer(models_app, name="models")
app.add_typer(privacy_app, name="privacy")
app.add_typer(finance_app, name="finance")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")

console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", envvar="SLUICEGATE_CONFIG", help="YAML config file (default: embedded)."
    ),
]


def _settings(config: Path | None) -> Settings:
    """Load config or exit 2 with every problem listed; exports it to child processes."""
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        console.print(f"[red]configuration is invalid[/red]\n{exc}", highlight=False)
        raise typer.Exit(2) from None
    if config is not None:
        os.environ["SLUICEGATE_CONFIG"] = str(Path(config).resolve())
    from sluicegate.core.logging import configure_logging

    configure_logging(settings.logging)
    return settings


@config_app.command("check")
def config_check(file: Path) -> None:
    """Validate FILE; print every error as FILE:LINE: PATH: MESSAGE and exit 1 if any."""
    try:
        settings = load_settings(file)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    backends = ", ".join(f"{k} ({b.zone})" for k, b in settings.inference.backends.items())
    typer.echo(
        f"OK: {file}\n  database: {_redact(settings.database_url)}\n"
        f"  broker: {_redact(settings.broker_url)}\n  backends: {backends}"
    )


def _redact(url: str) -> str:
    """Hide a password in a URL before printing it."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return url
    return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}"


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None, revision: str = "heads") -> None:
    """Apply database migrations."""
    from sluicegate.core import db

    settings = _settings(config)
    db.upgrade(settings.database_url, revision)
    typer.echo(f"database at {_redact(settings.database_url)} is at revision {revision}")


@app.command()
def worker(
    config: ConfigOption = None,
    concurrency: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
) -> None:
    """Run a Celery worker for the pipeline."""
    from sluicegate.core.queue import declare_queue, make_celery

    settings = _settings(config)
    if settings.auto_migrate:
        from sluicegate.core import db

        db.upgrade(settings.database_url)
    _metrics_exporter(settings, "worker")
    declare_queue(settings)
    celery = make_celery(settings)
    celery.worker_main(
        [
            "worker",
            "--loglevel",
            settings.logging.level,
            "--pool",
            "prefork",
            "--concurrency",
            str(concurrency or settings.worker.concurrency),
            "--queues",
            "sluicegate",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"sluicegate@{os.uname().nodename}.{os.getpid()}",
        ]
    )


@app.command()
def relay(config: ConfigOption = None) -> None:
    """Run the outbox relay and job sweeper on its own (scale-out)."""
    from sluicegate.core.relay import Relay
    from sluicegate.core.runtime import build_runtime

    settings = _settings(config)
    _metrics_exporter(settings, "relay")
    Relay(build_runtime(settings)).run_forever()


def _metrics_exporter(settings: Settings, role: str) -> None:
    """Serve this process tree's /metrics on ``metrics.exporter_port``, when set.

    Celery's prefork children count in files under PROMETHEUS_MULTIPROC_DIR;
    it must be set before prometheus-client is first imported, so a private
    directory is made here when the operator did not give one.
    """
    port = settings.metrics.exporter_port
    if port is None:
        return
    directory = settings.home_path / "metrics" / f"{role}-{os.getpid()}"
    own_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if own_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    from sluicegate.core import metrics

    if own_dir:
        metrics.prepare_multiprocess_dir(directory)
    metrics.serve_exporter(port, settings.metrics.exporter_host)
    if role == "worker":
        metrics.drop_dead_children()


@app.command()
def status(
    url: Annotated[str, typer.Option(help="Base URL of a running API.")] = "http://127.0.0.1:8080",
    once: Annotated[bool, typer.Option("--once", help="Print one snapshot and exit.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 1.0,
    api_key: Annotated[
        str | None, typer.Option(envvar="SLUICEGATE_API_KEY", help="Key for /metrics, if needed.")
    ] = None,
) -> None:
    """Live view of queues, backends, breakers and throughput (reads /metrics and /readyz)."""
    from sluicegate.status_view import run

    raise typer.Exit(run(url, once=once, interval_s=interval, api_key=api_key))


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default from config).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from config).")] = None,
) -> None:
    """Run the API with the relay; on the embedded default also a worker and local Triton."""
    from sluicegate.stack import serve_stack

    serve_stack(_settings(config), host=host, port=port)


@app.command()
def demo(
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 110.0,
) -> None:
    """Start the embedded stack, submit the sample radiology bundle, print the draft report."""
    from sluicegate.demo import run_demo

    raise typer.Exit(run_demo(console, timeout_s=timeout))


@webhooks_app.command("replay")
def webhooks_replay(
    delivery_id: Annotated[str | None, typer.Argument(help="One delivery id.")] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="Every dead delivery.")] = False,
    config: ConfigOption = None,
) -> None:
    """Put dead-lettered webhook deliveries back in the queue."""
    from sluicegate.core import webhooks
    from sluicegate.core.runtime import build_runtime

    if (delivery_id is None) == (not all_dead):
        console.print("give either a delivery id or --all-dead")
        raise typer.Exit(2)
    count = webhooks.replay(build_runtime(_settings(config)), delivery_id)
    typer.echo(f"{count} delivery(ies) queued again")
    if delivery_id is not None and count == 0:
        raise typer.Exit(1)


@triton_app.command("serve-local")
def triton_serve_local(config: ConfigOption = None) -> None:
    """Serve the small CPU model through a real tritonserver (PyTriton)."""
    from sluicegate.inference.local_triton import serve_local

    settings = _settings(config)
    serve_local(settings.inference.local_triton, settings.home_path / "triton")


@mllp_app.command("serve")
def mllp_serve(
    config: ConfigOption = None,
    channel: Annotated[
        str | None, typer.Option(help="HL7 v2 channel (default: the first enabled).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from config).")] = None,
) -> None:
    """Listen for HL7 v2 over MLLP; ACK AA only after each message is stored."""
    from sluicegate.adapters.hl7v2.listener import run

    run(_settings(config), channel, port)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
