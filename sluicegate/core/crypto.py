"""Encryption at rest: AES-256-GCM under a key id, so keys can rotate.

Every sealed blob names the key that sealed it, so old rows stay readable
after a new key becomes active. Callers pass associated data (e.g. the row's
table and id) so a ciphertext cannot be moved to another row unnoticed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sluicegate.core.config import Settings

_VERSION = 1
_NONCE_BYTES = 12


class CryptoError(Exception):
    """A key is missing, malformed, or a blob cannot be opened."""


class Sealer:
    """Seals and opens byte strings with AES-256-GCM."""

    def __init__(self, keys: dict[str, bytes], active_key_id: str) -> None:
        if active_key_id not in keys:
            raise CryptoError(f"active key id {active_key_id!r} is not among the configured keys")
        for kid, key in keys.items():
            if len(key) != 32:
                raise CryptoError(f"key {kid!r} must be 32 bytes (AES-256), got {len(key)}")
            if not kid or len(kid.encode()) > 255:
                raise CryptoError("key ids must be 1-255 bytes")
        self._keys = {kid: AESGCM(key) for kid, key in keys.items()}
        self.active_key_id = active_key_id
        # Search tokens must stay comparable across rotations, so they are keyed
        # from the oldest key (retiring it means re-indexing; see docs/operations.md).
        oldest = keys[sorted(keys)[0]]
        self._token_key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"sluicegate search tokens"
        ).derive(oldest)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        kid = self.active_key_id.encode()
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = self._keys[self.active_key_id].encrypt(nonce, plaintext, aad)
        return bytes([_VERSION, len(kid)]) + kid + nonce + ciphertext

    def token(self, purpose: str, value: str) -> str:
        """A keyed hash of ``value`` for equality search without storing the value."""
        message = purpose.encode() + b"\x00" + value.encode()
        return hmac.new(self._token_key, message, hashlib.sha256).hexdigest()

    def open(self, blob: bytes, aad: bytes) -> bytes:
        if len(blob) < 2 or blob[0] != _VERSION:
            raise CryptoError("not a sealed blob of a known version")
        kid_len = blob[1]
        kid = blob[2 : 2 + kid_len].decode()
        nonce = blob[2 + kid_len : 2 + kid_len + _NONCE_BYTES]
        body = blob[2 + kid_len + _NONCE_BYTES :]
        aead = self._keys.get(kid)
        if aead is None:
            raise CryptoError(f"blob sealed under unknown key id {kid!r}")
        try:
            return aead.decrypt(nonce, body, aad)
        except Exception as exc:  # cryptography raises InvalidTag without a message
            raise CryptoError("blob failed authentication (tampered, or wrong row)") from exc


def _key_dir(settings: Settings) -> Path:
    return settings.home_path / "keys"


def _load_key_files(directory: Path) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for path in sorted(directory.glob("*.key")):
        keys[path.stem] = base64.b64decode(path.read_text().strip())
    return keys


def generate_key_file(directory: Path) -> str:
    """Create a new random key file (mode 0600); returns its key id.

    The key is written to a private temporary file and then linked under its
    final name, which fails if that name exists: a reader never sees a
    half-written key, and two processes starting together (API replicas
    sharing a home) cannot both claim one id. The loser raises FileExistsError.
    """
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    kid = f"k{len(list(directory.glob('*.key'))) + 1:04d}"
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".new-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:  # mkstemp creates it 0600
            handle.write(base64.b64encode(AESGCM.generate_key(bit_length=256)).decode())
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temp, directory / f"{kid}.key")
    finally:
        os.unlink(temp)
    return kid


def sealer_from_settings(settings: Settings) -> Sealer:
    """Keys from config when given, else key files in <home>/keys (made on first use)."""
    enc = settings.encryption
    if enc.keys:
        try:
            keys = {kid: base64.b64decode(value, validate=True) for kid, value in enc.keys.items()}
        except ValueError as exc:
            raise CryptoError("encryption.keys values must be base64") from exc
        active = enc.active_key_id or sorted(keys)[-1]
        return Sealer(keys, active)
    directory = _key_dir(settings)
    keys = _load_key_files(directory) if directory.exists() else {}
    if not keys:
        with contextlib.suppress(FileExistsError):  # another process made the first key
            generate_key_file(directory)
        keys = _load_key_files(directory)
    return Sealer(keys, enc.active_key_id or sorted(keys)[-1])
