"""API keys: random secrets shown once, stored only as a keyed hash.

The hash is an HMAC (the sealer's search-token key acts as the server-side
pepper), so a copy of the database alone cannot be used to test guesses.
A key is ``sg_<id>_<secret>``; the id is public and names the key in
listings and audit events, the secret never appears anywhere after creation.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Final, get_args

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from sluicegate.core import audit
from sluicegate.core.config import Role
from sluicegate.core.crypto import Sealer
from sluicegate.core.db import transaction
from sluicegate.core.tables import ApiKey, utcnow

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
ROLES: Final[tuple[str, ...]] = get_args(Role)
BOOTSTRAP_ENV: Final = "SLUICEGATE_BOOTSTRAP_ADMIN_KEY"
DEFAULT_TENANT: Final = "default"
_PURPOSE: Final = "api-key"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key id, its tenant and roles (admin implies every role)."""

    key_id: str
    tenant: str
    roles: frozenset[str]
    allow_from: tuple[IpNetwork, ...] = ()
    channels: frozenset[str] = frozenset()  # empty: every channel of the tenant

    def has(self, role: str) -> bool:
        return role in self.roles or "admin" in self.roles

    def may_use(self, channel: str) -> bool:
        return not self.channels or channel in self.channels

    def may_connect_from(self, host: str | None) -> bool:
        """A key bound to source networks is only good from inside them."""
        if not self.allow_from:
            return True
        try:
            address = ipaddress.ip_address(host or "")
        except ValueError:
            return False
        return any(address.version == n.version and address in n for n in self.allow_from)


def check_roles(roles: list[str]) -> list[str]:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown or not roles:
        raise ValueError(f"roles must be among {', '.join(ROLES)}; got {', '.join(roles)}")
    return sorted(set(roles))


def check_networks(cidrs: list[str]) -> list[str]:
    try:
        return [str(ipaddress.ip_network(c, strict=False)) for c in cidrs]
    except ValueError as exc:
        raise ValueError(f"allow_from: {exc}") from None


def key_hash(sealer: Sealer, key: str) -> str:
    return sealer.token(_PURPOSE, key)


def create(
    engine: Engine,
    sealer: Sealer,
    tenant: str,
    roles: list[str],
    name: str = "",
    allow_from: list[str] | None = None,
    channels: list[str] | None = None,
) -> tuple[ApiKey, str]:
    """Make a key; returns the stored row and the key itself (never stored, shown once)."""
    roles = check_roles(roles)
    networks = check_networks(allow_from or [])
    key_id = uuid.uuid4().hex[:12]
    key = f"sg_{key_id}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        id=key_id,
        tenant=tenant,
        name=name,
        roles=",".join(roles),
        key_hash=key_hash(sealer, key),
        allow_from=",".join(networks),
        channels=",".join(sorted(set(channels or []))),
    )
    with transaction(engine) as session:
        session.add(row)
        audit.record(session, tenant, "key_created", None, key_id=key_id, roles=roles, name=name)
    return row, key


def list_keys(engine: Engine, tenant: str | None = None) -> list[ApiKey]:
    query = select(ApiKey).order_by(col(ApiKey.created_at))
    if tenant is not None:
        query = query.where(ApiKey.tenant == tenant)
    with Session(engine) as session:
        return list(session.exec(query).all())


def revoke(engine: Engine, key_id: str, tenant: str | None = None) -> bool:
    """Revoke a key (of ``tenant`` when given); False if there is no such live key."""
    with transaction(engine) as session:
        row = session.get(ApiKey, key_id)
        if row is None or row.revoked_at is not None or (tenant and row.tenant != tenant):
            return False
        row.revoked_at = utcnow()
        audit.record(session, row.tenant, "key_revoked", None, key_id=key_id)
        return True


class KeyCache:
    """Recently resolved keys (by keyed hash), so most requests skip the database."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[float, Principal | None]] = {}

    def get(self, digest: str) -> tuple[bool, Principal | None]:
        entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, digest: str, principal: Principal | None) -> None:
        if self.ttl_s <= 0 or principal is None:  # unknown keys are never cached
            return
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[digest] = (time.monotonic() + self.ttl_s, principal)

    def clear(self) -> None:
        self._entries.clear()


def resolve(engine: Engine, sealer: Sealer, key: str, bootstrap: str | None) -> Principal | None:
    """The principal a presented key stands for, or None for an unknown/revoked key."""
    if bootstrap and secrets.compare_digest(key.encode(), bootstrap.encode()):
        return Principal("bootstrap", DEFAULT_TENANT, frozenset({"admin"}))
    digest = key_hash(sealer, key)
    with Session(engine) as session:
        row = session.exec(select(ApiKey).where(ApiKey.key_hash == digest)).first()
    if row is None or row.revoked_at is not None:
        return None
    networks = tuple(ipaddress.ip_network(c) for c in row.allow_from.split(",") if c)
    channels = frozenset(c for c in row.channels.split(",") if c)
    return Principal(row.id, row.tenant, frozenset(row.roles.split(",")), networks, channels)
