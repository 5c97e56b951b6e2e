"""`Fetcher.fetch(starting=...)`: the hook a caller bounding its pages in flight takes its slot
in runs when the host's politeness lets the request start, never while the request waits out
the host's delay (a page queued behind its host holds no slot another host's page could use)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from ingest.config import Settings
from ingest.fetch import Fetcher
from tests.support.httpserver import LocalServer, static

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_starting_runs_after_the_host_delay_not_before(server: LocalServer) -> None:
    settings = Settings(allow_private_networks=True, host_delay=600)
    started: list[str] = []

    def hook(name: str) -> Callable[[], Awaitable[None]]:
        async def starting() -> None:
            started.append(name)

        return starting

    server.routes["/a"] = static("<html><body>a</body></html>")
    server.routes["/b"] = static("<html><body>b</body></html>")
    async with Fetcher(settings) as fetcher:
        first = await fetcher.fetch(server.url("/a"), "page", starting=hook("a"))
        assert first.status == 200
        second = asyncio.ensure_future(fetcher.fetch(server.url("/b"), "page", starting=hook("b")))
        # The second request to the host waits out its 600 s delay: it has not started,
        # so it has taken no slot.
        for _ in range(20):
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)
        assert started == ["a"]
        assert not second.done()
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
    assert [r.path for r in server.requests] == ["/a"]
