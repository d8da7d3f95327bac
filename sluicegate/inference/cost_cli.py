"""``sluicegate cost report``: what inference cost, from the results table."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sluicegate.core.config_loader import ConfigError, load_settings
from sluicegate.inference.cost import GroupBy, Report, load_usage, summarise

cost_app = typer.Typer(help="Inference cost from recorded usage.", no_args_is_help=True)


def _since(value: str | None) -> datetime | None:
    """ISO date or date-time; naive values are UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("use an ISO date such as 2026-11-01") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _money(value: float | None, currency: str) -> str:
    return "n/a" if value is None else f"{value:,.4f} {currency}"


def render(report: Report, console: Console) -> None:
    """The grouped table, then the cloud vs private vs hybrid comparison."""
    cur = report.currency
    table = Table(title=f"Inference cost by {report.by}")
    for name in (report.by, "calls", "cached", "prompt tok", "output tok", "cloud", "on-prem"):
        table.add_column(name, justify="left" if name == report.by else "right")
    table.add_column("total", justify="right", style="bold")
    rows = [*report.groups.items(), ("TOTAL", report.total)]
    for key, g in rows:
        table.add_row(
            key,
            str(g.calls),
            str(g.cached),
            f"{g.prompt_tokens:,}",
            f"{g.completion_tokens:,}",
            _money(g.cloud_cost, cur) + (f" (+{g.unpriced} unpriced)" if g.unpriced else ""),
            _money(g.onprem_cost, cur),
            _money(g.total, cur),
            end_section=key == rows[-2][0] if len(rows) > 1 else False,
        )
    console.print(table)
    comp = report.comparison
    if comp is None:
        return
    versus = Table(title="Same calls, three deployments")
    versus.add_column("deployment")
    versus.add_column("cost", justify="right")
    versus.add_column("how")
    versus.add_row("hybrid (actual)", _money(comp.hybrid, cur), "as routed")
    versus.add_row(
        "cloud only",
        _money(comp.cloud, cur),
        f"every call at {comp.cloud_model} prices" if comp.cloud_model else "no prices configured",
    )
    speed = (
        f"GPU time; cloud calls at {comp.onprem_s_per_token:.3f} s/output token measured on-prem"
        if comp.onprem_s_per_token is not None
        else "no on-prem calls to measure"
    )
    versus.add_row("private only", _money(comp.private, cur), speed)
    console.print(versus)


@cost_app.command("report")
def report(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", envvar="SLUICEGATE_CONFIG", help="YAML config file."),
    ] = None,
    by: Annotated[GroupBy, typer.Option(help="Group rows by channel, backend or day.")] = "backend",
    since: Annotated[
        str | None, typer.Option(help="Only results from this ISO date/time (UTC).")
    ] = None,
) -> None:
    """Summarise model usage and cost, with the cloud vs private vs hybrid comparison."""
    from sluicegate.core import db

    console = Console()
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        Console(stderr=True).print(f"configuration is invalid\n{exc}", highlight=False)
        raise typer.Exit(2) from None
    engine = db.make_engine(settings.database_url)
    try:
        usage = load_usage(engine, _since(since))
    finally:
        engine.dispose()
    render(summarise(usage, settings.inference, by), console)
