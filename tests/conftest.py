"""Shared fixtures: settings in a temp home, real PostgreSQL databases, sample data."""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sluicegate.core.config import Settings

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
SAMPLE_BUNDLE = REPO / "samples" / "fhir" / "radiology-bundle.json"
PG_ADMIN_URL = os.environ.get(
    "SLUICEGATE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("SLUICEGATE_TEST_REDIS", "redis://127.0.0.1:6379")
AMQP_URL = os.environ.get("SLUICEGATE_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672//")

pytest_plugins = ["tests.triton_fixture"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_settings(home: Path, **sections: Any) -> Settings:
    """Settings rooted in ``home``; ``sections`` override config sections (dicts)."""
    data: dict[str, Any] = {
        "home": str(home),
        "logging": {"level": "INFO"},
        # Other suites test their own features; security tests pass security= to enable it.
        "security": {"auth": "disabled", "callback_private_addresses": "allow"},
    }
    for key, value in sections.items():
        data[key] = value
    return Settings.model_validate(data)


FAKE_INFERENCE = {"router": "tests.fakes:build_scripted_router"}


@pytest.fixture
def sample_bundle() -> bytes:
    return SAMPLE_BUNDLE.read_bytes()


@pytest.fixture
def sample_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLE_BUNDLE.read_text())
    return data


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database per test on the real server, dropped afterwards."""
    name = f"sg_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def scripted() -> Iterator[Any]:
    from tests import fakes

    fakes.SCRIPT.clear()
    fakes.RECEIVED.clear()
    yield fakes
    fakes.SCRIPT.clear()
    fakes.RECEIVED.clear()


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """An engine on a freshly migrated database: SQLite file, then real PostgreSQL."""
    from sluicegate.core import db

    url = (
        f"sqlite:///{tmp_path / 'db.sqlite'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    db.upgrade(url)
    engine = db.make_engine(url)
    yield engine
    engine.dispose()
