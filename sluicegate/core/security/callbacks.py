"""SSRF protection for outbound callbacks (webhooks).

A callback URL must start with one of the channel's allowed prefixes, use
http(s), and resolve only to public addresses unless private ones are
explicitly allowed. The request then goes to the very address that was
checked (Host header and TLS server name keep the original host), so a DNS
answer that changes between check and connect cannot redirect it.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeCallback(Exception):
    """The URL is not allowed (policy), as opposed to a failure to reach it."""


@dataclass(frozen=True)
class Target:
    url: str  # with the checked IP address in place of the host name
    host_header: str
    server_name: str


def is_public(address: IpAddress) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return address.is_global and not address.is_multicast


def resolve(host: str, port: int) -> list[IpAddress]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0]) for info in infos]


def check(url: str, allowed: list[str], allow_private: bool) -> Target:
    """Vet ``url``; raises UnsafeCallback, or OSError when the name does not resolve."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeCallback("callback URL must be http(s) with a host")
    if not any(url.startswith(prefix) for prefix in allowed):
        raise UnsafeCallback("callback URL is not in the channel's allowlist")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = resolve(parts.hostname, port)
    if not addresses:
        raise OSError("callback host has no address")
    if not allow_private:
        refused = [a for a in addresses if not is_public(a)]
        if refused:
            raise UnsafeCallback(
                "callback host resolves to a private, loopback, link-local or metadata "
                "address (allow it with security.callback_private_addresses or allow_private)"
            )
    chosen = addresses[0]
    literal = f"[{chosen}]" if chosen.version == 6 else str(chosen)
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    host_header = parts.netloc.rsplit("@", 1)[-1]
    pinned = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    return Target(pinned, host_header, parts.hostname)
