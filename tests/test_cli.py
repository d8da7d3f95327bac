"""The command line as an operator uses it: config check, db upgrade, the contract
between README's Quick start and CI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel
from typer.testing import CliRunner

import sluicegate.core.tables  # noqa: F401  (registers the tables)
from sluicegate.cli import app
from sluicegate.core import db
from tests.conftest import REPO

runner = CliRunner()


def test_config_check_accepts_the_samples() -> None:
    for sample in ("embedded.yaml", "scale-out.yaml"):
        result = runner.invoke(
            app,
            ["config", "check", str(REPO / "samples" / "config" / sample)],
            env={"SLUICEGATE_DATA_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
        )
        assert result.exit_code == 0, result.output
        assert result.output.startswith("OK:")


def test_config_check_lists_every_error_with_line_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "api:\n  port: not-a-port\npipeline:\n  max_attempts: 0\n"
        "database:\n  url: postgresql://app:s3cret@db/x\n  colour: blue\n"
    )
    result = runner.invoke(app, ["config", "check", str(bad)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert any(line.startswith(f"{bad}:2: api.port:") for line in lines)
    assert any(line.startswith(f"{bad}:4: pipeline.max_attempts:") for line in lines)
    assert any(line.startswith(f"{bad}:7: database.colour:") for line in lines)
    assert "s3cret" not in result.output


def test_config_check_redacts_passwords_in_its_summary(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("database:\n  url: postgresql+psycopg://app:s3cret@db:5432/x\n")
    result = runner.invoke(app, ["config", "check", str(good)])
    assert result.exit_code == 0
    assert "s3cret" not in result.output and "app:***@db:5432/x" in result.output


def test_db_upgrade_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    config = tmp_path / "pg.yaml"
    config.write_text(f"home: {tmp_path}\ndatabase:\n  url: {pg_url}\n")
    result = runner.invoke(app, ["db", "upgrade", "--config", str(config)])
    assert result.exit_code == 0, result.output
    tables = set(sa.inspect(sa.create_engine(pg_url)).get_table_names())
    assert {"jobs", "work_items", "outbox", "results", "audit_events"} <= tables


def test_migrations_match_the_models(tmp_path: Path) -> None:
    """A model change without a migration would pass on SQLite dev boxes and break prod."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    db.upgrade(url)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.+?)\n```", quick_start)
    assert len(commands) == 2, "Quick start must hold exactly two commands"
    assert commands[0].endswith("sluicegate demo")
    ci_script = (REPO / ".ci" / "run").read_text().splitlines()
    assert commands[1] in ci_script


def test_cli_help_lists_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sluicegate.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for command in ("serve", "worker", "relay", "demo", "config", "db", "triton"):
        assert command in out
