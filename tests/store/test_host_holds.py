"""`ingest.holds.HostHolds` against the real database: a host's hold as its requests, its
renewal and its release interleave."""

from __future__ import annotations

import asyncio

import pytest

from ingest.holds import HostHolds
from ingest.store import Store

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_a_host_let_go_during_its_renewal_is_taken_again_by_its_next_request(
    store: Store,
) -> None:
    """The last request to a host ends while a renewal is waiting on the database: the host
    is let go (released in the database) and the renewal, answering after, leaves it so; the
    next request to it takes it again (was: the renewal marked it held a lease more, with no
    host recorded, and requests went out for two thirds of a lease while the database said
    it was free to any other process)."""
    holds = HostHolds(store, "replica-a", lease_seconds=600, delay=0.5, quiet_for=lambda url: 0.5)
    renewing, answer = asyncio.Event(), asyncio.Event()
    real_renew = store.renew_hosts
    takes: list[str] = []
    real_take = store.take_host

    async def slow_renew(owner: str, hosts: object, lease: float) -> set[str]:
        kept = await real_renew(owner, hosts, lease)  # type: ignore[arg-type]
        renewing.set()
        await answer.wait()
        return kept

    async def counted_take(owner: str, url: str, lease: float):  # type: ignore[no-untyped-def]
        takes.append(url)
        return await real_take(owner, url, lease)

    store.renew_hosts = slow_renew  # type: ignore[method-assign]
    store.take_host = counted_take  # type: ignore[method-assign]
    url = "https://news.example/story/1"
    async with holds.hold(url):
        renewal = asyncio.create_task(holds.renew())
        await renewing.wait()
    # The request ended: the host was let go while the renewal waited for its answer.
    answer.set()
    await renewal
    async with holds.hold("https://news.example/story/2"):
        pass
    assert takes == [url, "https://news.example/story/2"]
