"""``sluicegate finance push`` against a real running server process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import CORPUS, FAKE_INFERENCE, free_port, make_settings
from tests.processes import start_cli, stop_group, wait_for, write_config

# The scripted router; no local Triton (the push path never reaches a model).
INFERENCE = {**FAKE_INFERENCE, "local_triton": {"enabled": False}}

FILES = [
    CORPUS / "finance" / "camt053.v2.multi.statement.xml",
    CORPUS / "finance" / "mt940-jejik-abnamro.sta",
    CORPUS / "finance" / "csv2ofx-schwab-checking.csv",
    CORPUS / "finance" / "sec-xbrl-nflx-20100930-10Q.xml",
]


@pytest.fixture
def server(tmp_path: Path):
    port = free_port()
    settings = make_settings(
        tmp_path / "home",
        inference=INFERENCE,
        api={"port": port},
        worker={"embedded": False},
        relay={"embedded": False},
    )
    config = write_config(settings, tmp_path / "sluicegate.yaml")
    log = tmp_path / "server.log"
    proc = start_cli(["serve", "--config", str(config)], log, env={"PYTHONPATH": str(Path.cwd())})
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code < 500
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, 90, "server to answer", log)
        yield url
    finally:
        stop_group(proc)


def push(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluicegate.cli", "finance", "push", "--url", url, *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_push_imports_streams_and_resumes(server: str, tmp_path: Path) -> None:
    first = push(server, "--json", *map(str, FILES))
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout)
    assert out["totals"] == {"accepted": 6, "duplicate": 0, "rejected": 0}
    assert [f["format"] for f in out["files"]] == ["camt053", "mt940", "csv", "xbrl"]
    # Re-running (as after an interruption) sends everything again: all recognised.
    again = push(server, "--json", *map(str, FILES))
    assert again.returncode == 0
    assert json.loads(again.stdout)["totals"] == {"accepted": 0, "duplicate": 6, "rejected": 0}


def test_push_exits_non_zero_when_anything_is_rejected(server: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.ofx"
    bad.write_bytes((CORPUS / "finance" / "ofxparse-NEG-decimal_error.ofx").read_bytes())
    good = CORPUS / "finance" / "ofxparse-checking.ofx"
    result = push(server, str(good), str(bad))
    assert result.returncode == 1
    assert "finance push" in result.stdout and "total" in result.stdout
    assert "bad.ofx" in result.stdout


def test_push_retries_until_the_server_is_up(tmp_path: Path) -> None:
    port = free_port()
    settings = make_settings(
        tmp_path / "home",
        inference=INFERENCE,
        api={"port": port},
        worker={"embedded": False},
        relay={"embedded": False},
    )
    config = write_config(settings, tmp_path / "sluicegate.yaml")
    url = f"http://127.0.0.1:{port}"
    pusher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sluicegate.cli",
            "finance",
            "push",
            "--json",
            "--url",
            url,
            str(FILES[0]),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc = start_cli(["serve", "--config", str(config)], tmp_path / "server.log")
    try:
        out, err = pusher.communicate(timeout=180)
        assert pusher.returncode == 0, err
        assert json.loads(out)["totals"]["accepted"] == 2
    finally:
        pusher.kill()
        stop_group(proc)


def test_push_sends_the_api_key_when_auth_is_on(tmp_path: Path) -> None:
    port = free_port()
    settings = make_settings(
        tmp_path / "home",
        inference=INFERENCE,
        api={"port": port},
        worker={"embedded": False},
        relay={"embedded": False},
        security={"auth": "enabled"},
    )
    config = write_config(settings, tmp_path / "sluicegate.yaml")
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "sluicegate.cli",
            "keys",
            "create",
            "--role",
            "ingest",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    log = tmp_path / "server.log"
    proc = start_cli(["serve", "--config", str(config)], log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _up(url), 90, "server to answer", log)
        refused = push(url, "--json", str(FILES[0]))
        assert refused.returncode == 2 and "401" in refused.stderr + refused.stdout
        ok = push(url, "--json", "--api-key", key, str(FILES[0]))
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout)["totals"]["accepted"] == 2
    finally:
        stop_group(proc)


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
