"""The process pool for CPU-bound work (feed parsing, page extraction), sized to the cores.
Each task has a hard time limit: a worker that overruns is killed and replaced (pebble), so a
pathological page cannot stall the service, and the event loop never runs this work itself."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import structlog
from pebble import CONSTS, ProcessExpired, ProcessPool

from ingest.errors import ParseError, WorkerCrashed, WorkerError, WorkerTimeout
from ingest.ports import WorkerPool
from ingest.workers import forkserver

T = TypeVar("T")

log = structlog.get_logger(__name__)

__all__ = ["WorkerCrashed", "WorkerTimeout", "Workers", "parse_in_worker", "stop_promptly"]

PROMPT_POLL = 0.02
"""Seconds between two looks of the pool's manager threads at their state, in a process that
runs briefly (pebble's default is 0.1 s)."""


def stop_promptly() -> None:
    """For a process that runs briefly (`ingest run --once`): closing the pool waits for its
    manager threads' next look at their state, which pebble takes every 0.1 s (its
    `CONSTS.sleep_unit`, process-wide): 70-90 ms of every short run's exit. Every PROMPT_POLL
    instead, the exit waits 10-20 ms. The service keeps pebble's default: the looks of an idle
    two-worker pool cost 2.6 ms of CPU a second, 10 ms at this rate (docs/performance.md,
    section "Where the CPU of a cold run goes")."""
    CONSTS.sleep_unit = PROMPT_POLL


class Workers:
    def __init__(self, size: int, *, max_tasks: int = 1000) -> None:
        # The fork server imports the heavy modules and loads the language model once, so every
        # worker (including replacements for killed or recycled ones) starts warm. Started here
        # unless `ingest run` already did, so that it ignores SIGINT either way (see there).
        forkserver.start()
        self._pool = ProcessPool(
            max_workers=size, max_tasks=max_tasks, context=forkserver.context()
        )
        self.size = size
        self._max_tasks = max_tasks
        self._ready: asyncio.Future[None] | None = None
        self._probe: Future[int] | None = None
        self._closing = threading.Event()
        self._waiting: dict[Future[Any], ProcessPool] = {}
        """The pebble futures of the tasks callers wait for, each with its pool (`close`, and
        `_pool_after` for a broken pool, fail those it leaves)."""

    def start_soon(self) -> None:
        """Start the fork server and the workers in a thread, now, while the caller goes on
        (fetching the first feeds); tasks wait for it without blocking the event loop. Left to
        the first task, that start (the fork server imports and warms the extraction stack:
        about a second) would run inside `schedule()` on the event loop and stall every fetch
        in flight."""
        if self._ready is None:
            self._ready = asyncio.ensure_future(asyncio.to_thread(self._start))

    def _start(self) -> None:
        deadline = time.monotonic() + 120
        try:
            self._probe = self._pool.schedule(os.getpid)
            while not self._closing.is_set() and time.monotonic() < deadline:
                try:
                    self._probe.result(timeout=0.25)
                    return
                except FutureTimeout:
                    continue
        except Exception:  # stopped meanwhile, or cannot start: tasks get the pool's own error
            return

    async def run(self, fn: Callable[..., T], *args: Any, timeout: float) -> T:
        """`fn(*args)` in a worker: its value, or its exception as itself; WorkerTimeout past
        `timeout` seconds (the worker is killed and replaced), WorkerCrashed where the worker
        died or the pool was closed under the task.

        A caller cancelled meanwhile leaves its task to run to its end (at most `timeout`): the
        task is not cancelled in pebble. pebble kills the worker of a cancelled task once it
        sees the task started, and by then that worker may have finished it and taken another
        caller's task, which would die with it (pebble issue 153); and a task cancelled while it
        waited in the pipe, which holds several pages (`forkserver.PIPE_BYTES`), would cost a
        worker's restart each."""
        if self._ready is not None and not self._ready.done():
            await asyncio.shield(self._ready)
        pool = self._pool
        try:
            future = pool.schedule(fn, args=args, timeout=timeout)
        except RuntimeError as e:  # pebble: "The Pool is not active", or broken
            if self._closing.is_set():
                raise WorkerCrashed("worker pool closed") from e
            pool = self._pool_after(pool, e)
            future = pool.schedule(fn, args=args, timeout=timeout)
        self._waiting[future] = pool
        future.add_done_callback(lambda done: self._waiting.pop(done, None))
        try:
            result: T = await asyncio.shield(asyncio.wrap_future(future))
        except FutureTimeout as e:
            raise WorkerTimeout(f"timed out after {timeout:g}s") from e
        except ProcessExpired as e:
            raise WorkerCrashed(f"worker died (exit code {e.exitcode})") from e
        except (FutureCancelled, BrokenProcessPool) as e:
            raise WorkerCrashed(f"task lost: {type(e).__name__}") from e
        except WorkerError:
            raise
        except Exception as e:
            # pebble's own errors as the pool closes under a task (a task being written when
            # its pipe closes gets a TypeError), not the function's.
            if self._closing.is_set():
                raise WorkerCrashed("worker pool closed") from e
            raise
        return result

    def _pool_after(self, broken: ProcessPool, error: RuntimeError) -> ProcessPool:
        """A new pool in place of `broken`, which pebble gave up on ("Unexpected error within
        the Pool") when it could start no worker: its fork server was killed (by the kernel's
        OOM killer) and a worker died or was retired. Every later task would fail, each page
        stored from its feed's text and each feed failing, until the process was restarted.
        Made once, by whichever caller finds the pool broken first, with a new fork server;
        the broken pool's workers are stopped in a thread, and the tasks it still held fail
        (`WorkerCrashed`) rather than wait for ever."""
        if self._pool is broken:
            log.warning("worker_pool_restarted", error=str(error))
            broken.stop()  # type: ignore[no-untyped-call]
            threading.Thread(
                target=self._stop_broken, args=(broken,), name="ingest-pool-stop", daemon=True
            ).start()
            forkserver.start()
            self._pool = ProcessPool(
                max_workers=self.size, max_tasks=self._max_tasks, context=forkserver.context()
            )
        return self._pool

    def _stop_broken(self, broken: ProcessPool) -> None:
        broken.join(timeout=10)
        for future, pool in list(self._waiting.items()):
            if pool is broken:
                with contextlib.suppress(InvalidStateError):
                    future.set_exception(WorkerCrashed("worker pool broken"))

    def close(self) -> None:
        self._closing.set()
        if self._probe is not None:
            self._probe.cancel()  # a start still in progress returns at once
        self._pool.stop()  # type: ignore[no-untyped-call]
        self._pool.join(timeout=10)
        # pebble leaves the futures of the tasks it had not handed to a worker pending for
        # ever, and those in the pipe too unless its reader noticed the closed pipe first.
        for future in list(self._waiting):
            if not future.done():
                future.set_exception(WorkerCrashed("worker pool closed"))


async def parse_in_worker(
    workers: WorkerPool, fn: Callable[..., T], *args: Any, url: str, timeout: float
) -> T:
    """`workers.run` for a document's parser: a worker that overruns or dies fails the
    document, as a ParseError about `url` ("feed parsing failed: timed out after 3s"). The one
    place where worker failures become the caller's error; a page's extraction makes them its
    outcome instead (`ingest.pages`)."""
    try:
        return await workers.run(fn, *args, timeout=timeout)
    except WorkerError as e:
        raise ParseError(url, f"feed parsing failed: {e}") from e
