"""The service's ticks (jobs.service) when the wall clock jumps: APScheduler times its interval
job on the wall clock, which NTP, an operator or a resumed virtual machine may set back or
ahead."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo

import apscheduler.schedulers.base
import pytest

from jobs.service import Service
from tests.support.pipelines import local_settings, pipeline_for
from tests.support.workers import InlineWorkers

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


class _WallClock(datetime):
    """The wall clock as APScheduler reads it, `behind` the machine's: a clock set back."""

    behind = timedelta(0)

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
        return datetime.now(tz) - cls.behind


async def _until(done: Callable[[], bool]) -> None:
    """Waits until `done()`, looking every 0.05 s for up to a minute."""
    for _ in range(1200):
        if done():
            return
        await asyncio.sleep(0.05)


async def test_a_wall_clock_set_back_an_hour_does_not_stop_the_ticks(
    database_url: str, inline_workers: InlineWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wall clock set back an hour while the service ticks every 0.1 s: it goes on
    ticking (claiming due feeds), instead of waiting an hour for the time APScheduler had set
    for its next tick, polling nothing meanwhile."""
    monkeypatch.setattr(apscheduler.schedulers.base, "datetime", _WallClock)
    monkeypatch.setattr(_WallClock, "behind", timedelta(0))
    settings = local_settings(database_url, tick_seconds=0.1)
    async with pipeline_for(settings, inline_workers) as pipeline:
        service = Service(pipeline, tick_seconds=settings.tick_seconds)
        running = asyncio.create_task(service.run())
        try:
            await _until(lambda: pipeline.claims >= 3)
            monkeypatch.setattr(_WallClock, "behind", timedelta(hours=1))
            claimed = pipeline.claims
            await _until(lambda: pipeline.claims >= claimed + 5)
        finally:
            service.stop()
            await running
    assert pipeline.claims >= claimed + 5


async def test_a_wall_clock_set_ahead_a_day_goes_on_ticking(
    database_url: str, inline_workers: InlineWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wall clock set a day ahead while the service ticks every 0.1 s (NTP stepping a
    clock that was behind, a machine without a real-time clock synchronised after the
    service started): it goes on ticking, the day of ticks APScheduler finds it skipped run
    as one, and it catches up in one step, asking its trigger for a few run times, instead
    of listing all 864,000 one interval after the other before running one (seconds of the
    event loop held for a day at 0.1 s; for a clock set from 1970 to now at 30 s, 59 million
    of them, minutes held and gigabytes of memory)."""
    monkeypatch.setattr(apscheduler.schedulers.base, "datetime", _WallClock)
    monkeypatch.setattr(_WallClock, "behind", timedelta(0))
    settings = local_settings(database_url, tick_seconds=0.1)
    asked = 0
    async with pipeline_for(settings, inline_workers) as pipeline:
        service = Service(pipeline, tick_seconds=settings.tick_seconds)
        running = asyncio.create_task(service.run())
        try:
            await _until(lambda: pipeline.claims >= 3)
            assert service._scheduler is not None
            trigger = type(service._scheduler.get_job("poll_due_feeds").trigger)
            next_fire_time = trigger.get_next_fire_time

            def counted(self: object, previous: datetime | None, now: datetime) -> datetime | None:
                nonlocal asked
                asked += 1
                return next_fire_time(self, previous, now)  # type: ignore[no-any-return]

            monkeypatch.setattr(trigger, "get_next_fire_time", counted)
            monkeypatch.setattr(_WallClock, "behind", -timedelta(days=1))
            claimed = pipeline.claims
            await _until(lambda: pipeline.claims >= claimed + 5)
        finally:
            service.stop()
            await running
    assert pipeline.claims >= claimed + 5
    # Two a tick (the run times due, the next one); a few hundred ticks at most.
    assert asked < 10_000
