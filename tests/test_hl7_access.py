"""Who may talk MLLP to us: source networks, TLS 1.3, client certificates by subject.

Real TLS clients (Python's ``ssl``) against the real listener; certificates
are generated for each test with ``cryptography``.
"""

from __future__ import annotations

import datetime
import socket
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.test_hl7_mllp import ORU_SAMPLE, hl7_settings, jobs, running_listener

FRAME = b"\x0b" + ORU_SAMPLE + b"\x1c\r"


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert(subject: str, key, issuer_name, issuer_key, *, ca: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if subject == "localhost":
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    """A throwaway CA, the listener's certificate and two client certificates."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = _cert("Test CA", ca_key, ca_name, ca_key, ca=True)
    files: dict[str, Path] = {"ca": tmp_path / "ca.pem"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for name in ("localhost", "ris.hospital.example", "intruder.example"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(name, key, ca_name, ca_key)
        files[f"{name}.crt"] = tmp_path / f"{name}.crt"
        files[f"{name}.key"] = tmp_path / f"{name}.key"
        files[f"{name}.crt"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files[f"{name}.key"].write_bytes(_key_pem(key))
    return files


def _tls_send(port: int, pki: dict[str, Path], client: str | None, **kw: object) -> bytes:
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    if "maximum_version" in kw:
        context.maximum_version = kw["maximum_version"]  # type: ignore[assignment]
    if client is not None:
        context.load_cert_chain(str(pki[f"{client}.crt"]), str(pki[f"{client}.key"]))
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    with context.wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(FRAME)
        reply = b""
        while not reply.endswith(b"\x1c\r"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
        return reply


def _tls_settings(tmp_path: Path, pki: dict[str, Path], **mllp: object) -> object:
    return hl7_settings(
        tmp_path,
        mllp={
            "tls_cert": str(pki["localhost.crt"]),
            "tls_key": str(pki["localhost.key"]),
            "tls_client_ca": str(pki["ca"]),
            **mllp,
        },
    )


def test_client_certificates_are_checked_by_subject(tmp_path: Path, pki) -> None:
    settings = _tls_settings(tmp_path, pki, client_cert_subjects=["ris.hospital.example"])
    with running_listener(settings) as (port, runtime):
        assert b"MSA|AA|" in _tls_send(port, pki, "ris.hospital.example")
        assert _tls_send(port, pki, "intruder.example") == b""  # closed, nothing acknowledged
        # No certificate at all: with TLS 1.3 the server's refusal arrives after the
        # client's handshake returns, as an alert or a closed connection.
        assert _refused(lambda: _tls_send(port, pki, None))
        assert len(jobs(runtime)) == 1


def _refused(send) -> bool:
    try:
        return b"MSA|" not in send()
    except (ssl.SSLError, ConnectionError):
        return True


def test_tls_1_2_is_refused_when_1_3_is_required(tmp_path: Path, pki) -> None:
    with running_listener(_tls_settings(tmp_path, pki)) as (port, runtime):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            _tls_send(port, pki, "ris.hospital.example", maximum_version=ssl.TLSVersion.TLSv1_2)
        assert b"MSA|AA|" in _tls_send(port, pki, "ris.hospital.example")
        assert len(jobs(runtime)) == 1


def _plain_send(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(FRAME)
        reply = b""
        while not reply.endswith(b"\x1c\r"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
        return reply


def test_source_networks_outside_the_allowlist_are_refused(tmp_path: Path) -> None:
    with running_listener(hl7_settings(tmp_path, mllp={"allow_from": ["10.9.0.0/16"]})) as (
        port,
        runtime,
    ):
        assert _refused(lambda: _plain_send(port))  # closed (or reset) before any ACK
        assert jobs(runtime) == []
    with running_listener(hl7_settings(tmp_path / "ok", mllp={"allow_from": ["127.0.0.0/8"]})) as (
        port,
        runtime,
    ):
        assert b"MSA|AA|" in _plain_send(port)
        assert len(jobs(runtime)) == 1


def test_the_received_event_names_the_sender(tmp_path: Path, pki) -> None:
    """Audit: who sent each message (peer address and certificate CN), never its content."""
    import json

    from sqlmodel import Session, select

    from sluicegate.core.tables import AuditEvent

    settings = _tls_settings(tmp_path, pki)
    with running_listener(settings) as (port, runtime):
        assert b"MSA|AA|" in _tls_send(port, pki, "ris.hospital.example")
        with Session(runtime.engine) as s:
            [event] = s.exec(select(AuditEvent).where(AuditEvent.type == "received")).all()
    assert json.loads(event.data)["sender"] == "mllp:127.0.0.1;cn=ris.hospital.example"
