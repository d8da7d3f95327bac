"""The API over real TLS: 1.3 required by default, client certificates when configured."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sluicegate.app import create_app
from sluicegate.core.config import TlsConfig
from sluicegate.core.security import tls
from tests.conftest import FAKE_INFERENCE, free_port, make_settings


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    issuer_name, issuer_key = issuer or (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA with a server and a client certificate."""
    root = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue("test-ca", ca_key, None, ca=True)
    _write(root / "ca", ca, ca_key)
    for name in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        _write(root / name, _issue(name, key, (ca.subject, ca_key)), key)
    return root


def _serve(tmp_path: Path, cfg: TlsConfig) -> Iterator[str]:
    settings = make_settings(tmp_path, inference=FAKE_INFERENCE, security={"auth": "enabled"})
    port = free_port()
    config = tls.uvicorn_config(
        create_app(settings, run_relay=False), cfg, "127.0.0.1", port, log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def _client_context(pki: Path, max_version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if max_version is not None:
        context.maximum_version = max_version
    return context


@pytest.fixture
def server(tmp_path: Path, pki: Path) -> Iterator[str]:
    cfg = TlsConfig(certfile=str(pki / "server.crt"), keyfile=str(pki / "server.key"))
    yield from _serve(tmp_path, cfg)


@pytest.fixture
def mtls_server(tmp_path: Path, pki: Path) -> Iterator[str]:
    cfg = TlsConfig(
        certfile=str(pki / "server.crt"),
        keyfile=str(pki / "server.key"),
        client_ca=str(pki / "ca.crt"),
    )
    yield from _serve(tmp_path, cfg)


def test_tls13_is_served_and_tls12_refused(server: str, pki: Path) -> None:
    ok = httpx.get(f"{server}/healthz", verify=_client_context(pki), timeout=30)
    assert ok.status_code == 200
    port = int(server.rsplit(":", 1)[1])
    modern = _client_context(pki)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
        modern.wrap_socket(raw, server_hostname="localhost") as conn,
    ):
        assert conn.version() == "TLSv1.3"
    old = _client_context(pki, ssl.TLSVersion.TLSv1_2)
    with (
        pytest.raises(ssl.SSLError),  # the server ends the handshake
        socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
    ):
        old.wrap_socket(raw, server_hostname="localhost")


def test_client_certificate_required_when_configured(mtls_server: str, pki: Path) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{mtls_server}/healthz", verify=_client_context(pki), timeout=30)
    with_cert = _client_context(pki)
    with_cert.load_cert_chain(pki / "client.crt", pki / "client.key")
    assert httpx.get(f"{mtls_server}/healthz", verify=with_cert, timeout=30).status_code == 200


def test_server_context_defaults_to_tls13(pki: Path) -> None:
    cfg = TlsConfig(certfile=str(pki / "server.crt"), keyfile=str(pki / "server.key"))
    context = tls.server_context(cfg)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert context.verify_mode == ssl.CERT_NONE
    relaxed = tls.server_context(cfg.model_copy(update={"min_version": "1.2"}))
    assert relaxed.minimum_version == ssl.TLSVersion.TLSv1_2


def test_sluicegate_serve_uses_tls_and_the_bootstrap_key(tmp_path: Path, pki: Path) -> None:
    """The real `sluicegate serve` process: TLS 1.3 from config, bootstrap key from env."""
    from tests.processes import start_cli, stop_group, wait_for, write_config

    port = free_port()
    settings = make_settings(
        tmp_path,
        inference={**FAKE_INFERENCE, "local_triton": {"enabled": False}},
        worker={"embedded": False},
        api={"port": port},
        security={
            "auth": "enabled",
            "tls": {"certfile": str(pki / "server.crt"), "keyfile": str(pki / "server.key")},
        },
    )
    config = write_config(settings, tmp_path / "config.yaml")
    log = tmp_path / "serve.log"
    proc = start_cli(
        ["serve", "--config", str(config)], log, env={"SLUICEGATE_BOOTSTRAP_ADMIN_KEY": "boot-123"}
    )
    context = _client_context(pki)
    url = f"https://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/healthz", verify=context, timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 90, "sluicegate serve over TLS", log)
        assert httpx.get(f"{url}/keys", verify=context, timeout=10).status_code == 401
        admin = {"Authorization": "Bearer boot-123"}
        assert (
            httpx.get(f"{url}/keys", headers=admin, verify=context, timeout=10).status_code == 200
        )
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)  # no plain HTTP
    finally:
        stop_group(proc)
