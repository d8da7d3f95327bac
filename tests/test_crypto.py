import base64
import stat

import pytest

from sluicegate.core.crypto import CryptoError, Sealer, sealer_from_settings
from tests.conftest import make_settings

K1, K2 = bytes(range(32)), bytes(range(1, 33))


def test_seal_roundtrip_and_ciphertext_hides_plaintext() -> None:
    sealer = Sealer({"a": K1}, "a")
    blob = sealer.seal(b"Jane Testperson MRN 12345", b"row:1")
    assert b"Testperson" not in blob
    assert sealer.open(blob, b"row:1") == b"Jane Testperson MRN 12345"


def test_blob_moved_to_another_row_is_rejected() -> None:
    sealer = Sealer({"a": K1}, "a")
    blob = sealer.seal(b"secret", b"row:1")
    with pytest.raises(CryptoError, match="authentication"):
        sealer.open(blob, b"row:2")


def test_tampered_blob_is_rejected() -> None:
    sealer = Sealer({"a": K1}, "a")
    blob = bytearray(sealer.seal(b"secret", b"row:1"))
    blob[-1] ^= 1
    with pytest.raises(CryptoError):
        sealer.open(bytes(blob), b"row:1")


def test_rotation_keeps_old_blobs_readable() -> None:
    old = Sealer({"a": K1}, "a").seal(b"old", b"r")
    rotated = Sealer({"a": K1, "b": K2}, "b")
    assert rotated.open(old, b"r") == b"old"
    assert rotated.seal(b"new", b"r")[2:3] == b"b"  # new data names the new key
    with pytest.raises(CryptoError, match="unknown key id"):
        Sealer({"b": K2}, "b").open(old, b"r")


def test_bad_key_material_is_refused() -> None:
    with pytest.raises(CryptoError, match="32 bytes"):
        Sealer({"a": b"short"}, "a")
    with pytest.raises(CryptoError, match="not among"):
        Sealer({"a": K1}, "b")


def test_embedded_key_file_is_generated_private_and_reused(tmp_path) -> None:
    settings = make_settings(tmp_path)
    first = sealer_from_settings(settings)
    key_files = list((tmp_path / "keys").glob("*.key"))
    assert len(key_files) == 1
    assert stat.S_IMODE(key_files[0].stat().st_mode) == 0o600
    blob = first.seal(b"x", b"r")
    assert sealer_from_settings(settings).open(blob, b"r") == b"x"


def test_keys_from_config(tmp_path) -> None:
    settings = make_settings(
        tmp_path, encryption={"keys": {"prod-1": base64.b64encode(K1).decode()}}
    )
    sealer = sealer_from_settings(settings)
    assert sealer.active_key_id == "prod-1"
    assert not (tmp_path / "keys").exists()
