"""The SSRF guard: which addresses the service never connects to, and the resolver whose
answers are checked after DNS, for every connection and every redirect."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Final

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""host, port -> IP address strings, in the order to try them."""

AddressCheck = Callable[[str], None]
"""Raises `BlockedAddressError` for an IP address that must not be connected to."""


class BlockedAddressError(ValueError):
    """An address the guard refuses. Raised inside the network layer; `Fetcher.fetch` turns it
    into `BlockedError` with the URL attached."""


_CGNAT: Final = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64_WELL_KNOWN: Final = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the translation forms.

    ::ffff:a.b.c.d reaches a.b.c.d on dual-stack sockets; 64:ff9b::/96 (RFC 6052) reaches it
    through a NAT64 gateway; 2002::/16 (6to4) and Teredo tunnel to it. Python reports several of
    these as `is_global` whatever they embed, so the embedded address is what gets checked."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(addr) & 0xFFFF_FFFF)
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]
    return None


def _refusal(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why `addr` is not a public unicast address, or None if it is."""
    if addr.is_loopback:
        return "loopback"
    if addr.is_unspecified:
        return "unspecified"
    if addr.is_link_local:
        return "link-local"
    if addr.is_multicast:
        # Python counts most multicast ranges as `is_global`.
        return "multicast"
    if isinstance(addr, ipaddress.IPv4Address) and addr in _CGNAT:
        return "shared (carrier-grade NAT)"
    if addr.is_private:
        return "private"
    if addr.is_reserved:
        return "reserved"
    if isinstance(addr, ipaddress.IPv6Address) and addr.is_site_local:
        return "site-local"
    if not addr.is_global:
        return "non-global"
    return None


def check_address(ip: str, allow_private: bool) -> None:
    """Return if `ip` may be connected to; raise `BlockedAddressError` otherwise.

    Only globally routable unicast addresses pass (checked after unwrapping IPv4-mapped, NAT64,
    6to4 and Teredo forms), unless `allow_private` is set (tests, intranet deployments)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError as e:
        raise BlockedAddressError(f"{ip!r} is not an IP address") from e
    if allow_private:
        return
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(addr)
        if embedded is not None:
            reason = _refusal(embedded)
            if reason is not None:
                raise BlockedAddressError(f"{ip} embeds {embedded}, a {reason} address")
            return
    reason = _refusal(addr)
    if reason is not None:
        raise BlockedAddressError(f"{ip} is a {reason} address")


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the OS resolver (getaddrinfo), keeping its order and dropping duplicates."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and its causes: the useful detail is often a few exceptions down."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def refused(exc: BaseException) -> bool:
    return any(isinstance(c, OSError) and c.errno == errno.ECONNREFUSED for c in chain(exc))


def caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    return any(isinstance(c, kind) for c in chain(exc))
