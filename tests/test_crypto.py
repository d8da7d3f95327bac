from __future__ import annotations

import base64
import multiprocessing
import multiprocessing.synchronize
import stat
from multiprocessing.queues import Queue

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


def _first_key_at(home: str, start: multiprocessing.synchronize.Event, out: Queue[str]) -> None:
    from pathlib import Path

    start.wait(30)
    sealer = sealer_from_settings(make_settings(Path(home)))
    out.put(sealer.seal(b"x", b"aad").hex())


def test_processes_starting_on_a_new_home_share_one_first_key(tmp_path) -> None:
    """API replicas sharing a home all start: none reads a half-written key or
    dies on a key id another one claimed, and all seal under the same key."""
    ctx = multiprocessing.get_context("spawn")
    for attempt in range(3):
        home = tmp_path / f"round{attempt}"
        start, out = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_first_key_at, args=(str(home), start, out)) for _ in range(6)]
        for p in procs:
            p.start()
        start.set()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0] * 6
        blobs = [bytes.fromhex(out.get(timeout=5)) for _ in procs]
        only = sealer_from_settings(make_settings(home))
        assert all(only.open(blob, b"aad") == b"x" for blob in blobs)
        assert sorted(p.name for p in (home / "keys").iterdir()) == ["k0001.key"]
