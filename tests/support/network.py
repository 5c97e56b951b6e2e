"""Keeping tests on loopback: a tripwire that refuses (and records) any connection leaving
127.0.0.0/8, and resolvers and address checks that let a loopback server play a public site
while the real SSRF guard refuses everything else.

The SSRF cases aim at link-local, private and public addresses on purpose. They must be refused
before any connection; if a regression let one through, the tripwire stops it at the socket and
the test fails, so no packet ever leaves 127.0.0.0/8 whatever the code under test does."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any

import pytest

from ingest.config import Settings
from ingest.fetch import Fetcher, Resolver, check_address, system_resolver

# --- the loopback tripwire -----------------------------------------------------------------------


@dataclass
class Tripwire:
    """Every destination the process tried to connect to outside loopback."""

    refused: list[object] = field(default_factory=list)


def _is_loopback(address: object) -> bool:
    if not isinstance(address, tuple) or not address:
        return True  # AF_UNIX paths (PostgreSQL's socket) and the like
    try:
        ip = ipaddress.ip_address(str(address[0]).split("%")[0])
    except ValueError:
        return False  # a name: the code under test must resolve first, never hand us one
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def install_tripwire(monkeypatch: pytest.MonkeyPatch) -> Tripwire:
    """Refuse, as ECONNREFUSED, any socket connection of this process that would leave
    loopback, until `monkeypatch` is undone (at the end of the test)."""
    wire = Tripwire()
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if not _is_loopback(address):
            wire.refused.append(address)
            raise ConnectionRefusedError(111, f"tripwire: {address!r} is not loopback")
        connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        if not _is_loopback(address):
            wire.refused.append(address)
            return 111
        return connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    return wire


# --- name resolution for "public" hosts ----------------------------------------------------------


async def numeric_only(host: str, port: int) -> list[str]:
    """The production resolver, for host strings that are numeric in some spelling (hex,
    integer, short, octal): those never cause a DNS query. A name fails here instead."""
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror as e:
        raise OSError(f"test resolver: {host!r} is not numeric") from e
    return await system_resolver(host, port)


def fake_dns(table: dict[str, list[str]]) -> Resolver:
    """A resolver answering from `table`, and numeric spellings as the system would: no DNS
    query ever leaves the machine, and any other name fails."""

    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            return await numeric_only(host, port)
        return table[host]

    return resolve


def only_first_loopback_is_public(ip: str) -> None:
    """The real address check, except that 127.0.0.1 stands in for a public web server."""
    if ip != "127.0.0.1":
        check_address(ip, allow_private=False)


def public_fetcher(settings: Settings, dns: dict[str, list[str]]) -> Fetcher:
    """A fetcher with the production guard (private networks refused), where the names in
    `dns` resolve as given and 127.0.0.1 plays the public internet."""
    return Fetcher(settings, resolver=fake_dns(dns), address_check=only_first_loopback_is_public)
