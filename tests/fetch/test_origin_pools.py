"""OriginPools: one connection pool per origin, idle origins kept for a while and up to a
number, the least recently used closed first, origins in use never closed. No network: the
pools are real httpx transports that never connect."""

from __future__ import annotations

import ssl

import httpx
import pytest

from ingest.fetch import OriginPools

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _pools(clock: Clock, max_idle: int = 2, keepalive: float = 30.0) -> OriginPools:
    context = ssl.create_default_context()
    return OriginPools(
        lambda: httpx.AsyncHTTPTransport(verify=context),
        max_idle=max_idle,
        keepalive=keepalive,
        clock=clock,
    )


async def _use(pools: OriginPools, url: str) -> httpx.AsyncHTTPTransport:
    async with pools.transport(httpx.URL(url)) as transport:
        return transport


async def test_one_pool_per_origin_reused() -> None:
    pools = _pools(Clock())
    a = await _use(pools, "http://a.example/feed")
    assert await _use(pools, "http://a.example/other?x=1") is a
    assert await _use(pools, "https://a.example/feed") is not a
    assert await _use(pools, "http://a.example:8080/feed") is not a
    # Three origins, at most two idle: the least recently used one (http://a) was closed.
    assert len(pools) == 2
    assert await _use(pools, "http://a.example/feed") is not a
    await pools.aclose()
    assert len(pools) == 0


async def test_least_recently_used_idle_origin_goes_first() -> None:
    pools = _pools(Clock(), max_idle=2)
    a = await _use(pools, "http://a.example/")
    b = await _use(pools, "http://b.example/")
    assert await _use(pools, "http://a.example/") is a  # a is now the most recent
    await _use(pools, "http://c.example/")
    assert len(pools) == 2
    assert await _use(pools, "http://a.example/") is a
    assert await _use(pools, "http://b.example/") is not b
    await pools.aclose()


async def test_idle_origins_expire_after_the_keepalive() -> None:
    clock = Clock()
    pools = _pools(clock, max_idle=10, keepalive=30.0)
    a = await _use(pools, "http://a.example/")
    clock.now += 20
    await _use(pools, "http://b.example/")
    clock.now += 15  # a idle for 35 s, b for 15 s: releasing c sweeps a
    await _use(pools, "http://c.example/")
    assert len(pools) == 2
    assert await _use(pools, "http://a.example/") is not a
    await pools.aclose()


async def test_an_origin_in_use_is_never_closed() -> None:
    clock = Clock()
    pools = _pools(clock, max_idle=1, keepalive=1.0)
    async with pools.transport(httpx.URL("http://busy.example/")) as busy:
        for name in "abcde":
            clock.now += 5
            await _use(pools, f"http://{name}.example/")
        async with pools.transport(httpx.URL("http://busy.example/x")) as again:
            assert again is busy
    # Released, busy is the most recently used idle origin: with max_idle 1 only it stays.
    assert len(pools) == 1
    assert await _use(pools, "http://busy.example/") is busy
    await pools.aclose()


async def test_closing_with_an_origin_in_use() -> None:
    """Closing while a request holds an origin: its release afterwards keeps nothing, and the
    closed pools refuse new requests."""
    pools = _pools(Clock(), max_idle=1)
    await _use(pools, "http://idle.example/")
    async with pools.transport(httpx.URL("http://busy.example/")):
        await pools.aclose()
    assert len(pools) == 0
    with pytest.raises(RuntimeError, match="closed"):
        await _use(pools, "http://busy.example/")


def test_idle_origins_follow_the_open_file_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A thousand origins are kept alive where the process may open four thousand files; a
    quarter of a lower limit otherwise, and never fewer than 16."""
    import resource

    from ingest.fetch import pools

    for soft, kept in ((1_048_576, 1024), (4096, 1024), (1024, 256), (40, 16)):
        monkeypatch.setattr(resource, "getrlimit", lambda _which, soft=soft: (soft, soft))
        assert pools._idle_origins() == kept
    monkeypatch.setattr(resource, "getrlimit", lambda _which: (resource.RLIM_INFINITY, -1))
    assert pools._idle_origins() == 1024
