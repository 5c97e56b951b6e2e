"""HostLimiter on virtual time: per-host delay between request starts, per-host and global
concurrency, FIFO order, cancellation and forgetting idle hosts. Nothing here really sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from ingest.fetch import HostLimiter
from tests.support.virtual_time import VirtualTime

pytestmark = pytest.mark.anyio


def _limiter(
    vt: VirtualTime,
    per_host: int = 1,
    delay: float | Callable[[str], float] = 0.0,
    total: int | None = None,
) -> HostLimiter:
    return HostLimiter(per_host, total=total, delay=delay, clock=vt, sleep=vt.sleep)


class _Recorder:
    """Runs fake requests through a limiter and records when each one started."""

    def __init__(self, vt: VirtualTime, limiter: HostLimiter) -> None:
        self.vt = vt
        self.limiter = limiter
        self.starts: list[tuple[str, float]] = []
        self.inside: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    async def request(
        self, key: str, *, arrive: float = 0.0, takes: float = 0.0, urgent: bool = False
    ) -> float:
        if arrive:
            await self.vt.sleep(arrive)
        async with self.limiter.slot(key, urgent=urgent):
            start = self.vt.now
            self.starts.append((key, start))
            self.inside[key] = self.inside.get(key, 0) + 1
            self.peak[key] = max(self.peak.get(key, 0), self.inside[key])
            if takes:
                await self.vt.sleep(takes)
            self.inside[key] -= 1
        return start

    def times(self, key: str) -> list[float]:
        return [t for k, t in self.starts if k == key]


async def test_delay_spaces_request_starts_to_one_host() -> None:
    """Back-to-back requests to one host start `delay` apart, the first one at once."""
    vt = VirtualTime()
    rec = _Recorder(vt, _limiter(vt, per_host=4, delay=1.5))
    starts = await vt.run(*(rec.request("http://a:80") for _ in range(4)))
    assert starts == [0.0, 1.5, 3.0, 4.5]


async def test_delay_counts_from_the_start_not_the_end() -> None:
    """A request longer than the delay lets the next one start as soon as a slot frees."""
    vt = VirtualTime()
    rec = _Recorder(vt, _limiter(vt, per_host=1, delay=1.0))
    starts = await vt.run(*(rec.request("http://a:80", takes=3.0) for _ in range(3)))
    assert starts == [0.0, 3.0, 6.0]


async def test_no_delay_when_the_host_was_idle_long_enough() -> None:
    """A request arriving after the delay has passed starts immediately."""
    vt = VirtualTime()
    rec = _Recorder(vt, _limiter(vt, delay=1.0))
    starts = await vt.run(rec.request("http://a:80"), rec.request("http://a:80", arrive=5.0))
    assert starts == [0.0, 5.0]


async def test_hosts_do_not_delay_each_other() -> None:
    """A slow host (delay 10) and a fast one (delay 1) each keep their own pace."""
    vt = VirtualTime()
    delays = {"http://slow:80": 10.0, "http://fast:80": 1.0}
    rec = _Recorder(vt, _limiter(vt, per_host=2, delay=delays.__getitem__))
    jobs = [rec.request(key) for _ in range(3) for key in delays]
    await vt.run(*jobs)
    assert rec.times("http://slow:80") == [0.0, 10.0, 20.0]
    assert rec.times("http://fast:80") == [0.0, 1.0, 2.0]


async def test_waiters_start_in_arrival_order() -> None:
    """FIFO: waiters start in arrival order; a newcomer as a slot frees does not jump the queue."""
    vt = VirtualTime()
    limiter = _limiter(vt, per_host=1)
    order: list[str] = []

    async def request(name: str, arrive: float, takes: float) -> None:
        await vt.sleep(arrive)
        async with limiter.slot("http://a:80"):
            order.append(name)
            await vt.sleep(takes)

    waiters = [request(f"w{i}", 0.1 * (i + 1), 1.0) for i in range(6)]
    await vt.run(request("late", 5.0, 1.0), request("holder", 0.0, 5.0), *waiters)
    assert order == ["holder", "w0", "w1", "w2", "w3", "w4", "w5", "late"]


async def test_concurrency_limit_and_delay_together() -> None:
    """A start waits for a free slot and for the delay since the last start, whichever is later."""
    vt = VirtualTime()
    rec = _Recorder(vt, _limiter(vt, per_host=2, delay=1.0))
    starts = await vt.run(*(rec.request("http://a:80", takes=3.0) for _ in range(5)))
    # slots free at 3 (1st), 4 (2nd), 6 (3rd); delay asks for >= previous start + 1
    assert starts == [0.0, 1.0, 3.0, 4.0, 6.0]
    assert rec.peak["http://a:80"] == 2


async def test_delay_is_read_again_while_waiting() -> None:
    """A delay raised while a request waits (a Crawl-delay just arrived) applies to it."""
    vt = VirtualTime()
    delays = {"http://a:80": 1.0}
    rec = _Recorder(vt, _limiter(vt, delay=lambda key: delays[key]))

    async def raise_delay() -> None:
        await vt.sleep(0.5)
        delays["http://a:80"] = 5.0

    await vt.run(rec.request("http://a:80"), rec.request("http://a:80"), raise_delay())
    assert rec.times("http://a:80") == [0.0, 5.0]


async def test_waiting_out_a_delay_holds_no_global_slot() -> None:
    """With total=1, a host sleeping out its delay does not block another host's request."""
    vt = VirtualTime()
    delays = {"http://a:80": 10.0, "http://b:80": 0.0}
    rec = _Recorder(vt, _limiter(vt, per_host=1, delay=delays.__getitem__, total=1))
    await vt.run(
        rec.request("http://a:80", takes=1.0),
        rec.request("http://a:80", takes=1.0),
        rec.request("http://b:80", arrive=2.0, takes=1.0),
    )
    assert rec.times("http://a:80") == [0.0, 10.0]
    assert rec.times("http://b:80") == [2.0]


async def test_global_limit_spans_hosts() -> None:
    """total caps requests in flight across hosts; the start recorded is after that wait."""
    vt = VirtualTime()
    rec = _Recorder(vt, _limiter(vt, per_host=2, delay=1.0, total=1))
    await vt.run(
        rec.request("http://a:80", takes=4.0),
        rec.request("http://b:80", takes=4.0),
        rec.request("http://a:80", takes=4.0),
    )
    # a:0, b waits for the global slot until 4, a's second start (due at 1) waits until 8.
    assert sorted(t for _, t in rec.starts) == [0.0, 4.0, 8.0]
    assert rec.times("http://a:80") == [0.0, 8.0]


async def test_delay_counts_from_the_real_start_after_the_global_wait() -> None:
    """Requests held up by the global limit still start `delay` apart once it frees."""
    vt = VirtualTime()
    delays = {"http://a:80": 1.0, "http://b:80": 0.0}
    rec = _Recorder(vt, _limiter(vt, per_host=3, delay=delays.__getitem__, total=1))
    await vt.run(
        rec.request("http://b:80", takes=5.0),
        *(rec.request("http://a:80") for _ in range(3)),
    )
    assert rec.times("http://a:80") == [5.0, 6.0, 7.0]


async def test_urgent_requests_take_the_next_global_slot() -> None:
    """Waiting for a global slot, urgent requests (a feed in progress waits on them) go before
    the others, whatever their order of arrival; among each kind, arrival order."""
    vt = VirtualTime()
    rec = _Recorder(vt, _limiter(vt, per_host=4, total=1))
    await vt.run(
        rec.request("http://a:80", takes=1.0),
        rec.request("http://feed1:80", arrive=0.1, takes=1.0),
        rec.request("http://feed2:80", arrive=0.2, takes=1.0),
        rec.request("http://page1:80", arrive=0.3, takes=1.0, urgent=True),
        rec.request("http://page2:80", arrive=0.4, takes=1.0, urgent=True),
    )
    assert [k for k, _ in rec.starts] == [
        "http://a:80",
        "http://page1:80",
        "http://page2:80",
        "http://feed1:80",
        "http://feed2:80",
    ]
    assert [t for _, t in rec.starts] == [0.0, 1.0, 2.0, 3.0, 4.0]


async def test_a_cancelled_global_waiter_leaks_no_slot() -> None:
    """A request cancelled while it waits for a global slot, or as one is handed to it, leaves
    the slot to the next waiter."""
    vt = VirtualTime()
    limiter = _limiter(vt, per_host=4, total=1)
    rec = _Recorder(vt, limiter)

    async def cancelled(at: float) -> None:
        task = asyncio.ensure_future(rec.request("http://b:80", urgent=True))
        await vt.sleep(at)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    await vt.run(
        rec.request("http://a:80", takes=2.0),
        cancelled(1.0),  # while it waits
        cancelled(2.0),  # as the slot is handed over, at the instant a's request ends
        rec.request("http://c:80", arrive=0.5),
    )
    assert rec.starts == [("http://a:80", 0.0), ("http://c:80", 2.0)]
    later = vt.now + 1.0
    await vt.run(rec.request("http://d:80", arrive=1.0))
    assert rec.starts[-1] == ("http://d:80", later)  # the one slot is free again


async def test_cancelled_waiter_gives_up_its_turn() -> None:
    """A waiter cancelled during its delay lets the next one go and leaks no slot."""
    vt = VirtualTime()
    limiter = _limiter(vt, per_host=1, delay=2.0)
    rec = _Recorder(vt, limiter)

    async def cancelled_waiter() -> None:
        task = asyncio.ensure_future(rec.request("http://a:80"))
        await vt.sleep(1.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    await vt.run(
        rec.request("http://a:80"),
        cancelled_waiter(),
        rec.request("http://a:80", arrive=0.5),
    )
    # The cancelled one never started; the third waited for the delay after the first (and
    # could start at all, so the cancelled waiter leaked neither its turn nor a slot).
    assert rec.times("http://a:80") == [0.0, 2.0]
    await vt.run(rec.request("http://a:80", arrive=10.0, takes=3.0))
    assert rec.times("http://a:80") == [0.0, 2.0, 12.0]
    assert len(limiter) == 0


async def test_idle_host_is_kept_while_its_delay_runs_and_then_forgotten() -> None:
    """An idle host stays in the table only as long as its delay still matters."""
    vt = VirtualTime()
    limiter = _limiter(vt, delay=1.0)
    rec = _Recorder(vt, limiter)
    await vt.run(rec.request("http://a:80"))
    assert len(limiter) == 1  # finished at 0, the next start must still wait until 1
    await vt.run(rec.request("http://a:80", arrive=0.25, takes=2.0))
    assert rec.times("http://a:80") == [0.0, 1.0]
    assert len(limiter) == 0  # finished at 3, two seconds after its start: nothing to remember


async def test_table_stays_bounded_over_many_hosts() -> None:
    """Over 20 000 hosts, idle entries past their delay are swept: the table stays small."""
    vt = VirtualTime()
    limiter = _limiter(vt, delay=1.0)
    largest = 0
    for i in range(20_000):
        vt.now += 0.01  # about 100 hosts inside their delay at any time
        async with limiter.slot(f"http://host{i}.example:80"):
            pass
        largest = max(largest, len(limiter))
    assert largest <= 1100
    vt.now += 2.0
    async with limiter.slot("http://one-more.example:80"):
        pass
    assert len(limiter) <= 1100


async def test_zero_delay_forgets_hosts_at_once() -> None:
    """Without a delay nothing needs remembering: the table empties as requests finish."""
    vt = VirtualTime()
    rec = _Recorder(vt, _limiter(vt, per_host=2))
    await vt.run(*(rec.request(f"http://h{i % 3}:80", takes=1.0) for i in range(9)))
    assert len(rec.limiter) == 0
    assert max(rec.peak.values()) == 2


async def test_a_caller_holding_requests_back_cannot_shorten_the_host_delay() -> None:
    """Two requests to one host (2 slots, 0.5 s apart) whose caller holds them back until
    t = 2 (`ready`: a full worker backlog, say): when it lets them go, they still start 0.5 s
    apart, not together, and each counts as started only once it goes."""
    vt = VirtualTime()
    limiter = _limiter(vt, per_host=2, delay=0.5)
    readied: list[float] = []

    async def ready() -> None:
        readied.append(vt.now)
        if vt.now < 2.0:
            await vt.sleep(2.0 - vt.now)

    async def request() -> float:
        async with limiter.slot("http://a:80", ready=ready):
            return vt.now

    starts = await vt.run(request(), request())
    assert starts == [2.0, 2.5]
    assert readied == [0.0, 2.5]  # once each; the second once its own delay was served


async def test_an_untimed_request_neither_waits_for_the_delay_nor_is_ignored_by_it() -> None:
    """robots.txt (untimed) goes out at once after a request, and the next timed request waits
    the delay from the untimed one's start."""
    vt = VirtualTime()
    limiter = _limiter(vt, per_host=2, delay=1.0)

    async def request(timed: bool, arrive: float) -> float:
        await vt.sleep(arrive)
        async with limiter.slot("http://a:80", timed=timed):
            return vt.now

    starts = await vt.run(request(True, 0.0), request(False, 0.25), request(True, 0.5))
    assert starts == [0.0, 0.25, 1.25]
