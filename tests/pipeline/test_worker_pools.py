"""The two worker pools the pipeline runs on (`ingest.ports.WorkerPool`): the service's, in
processes, and the in-process one of the pipeline tests answer alike: the function's result,
its exception as itself, `WorkerTimeout` past the time limit."""

from __future__ import annotations

import asyncio
import fcntl
import multiprocessing.forkserver
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from ingest.errors import ParseError, WorkerTimeout
from ingest.ports import WorkerPool
from ingest.workers.forkserver import PIPE_BYTES, widen
from ingest.workers.pool import Workers
from ingest.workers.tasks import parse_feed
from tests.support.pool_tasks import pipe_sizes
from tests.support.workers import InlineWorkers

pytestmark = pytest.mark.anyio

FEED = b"<rss version='2.0'><channel><title>Pools</title></channel></rss>"


@pytest.fixture(params=["processes", "in-process"])
def pool(
    request: pytest.FixtureRequest, workers: Workers, inline_workers: InlineWorkers
) -> WorkerPool:
    return workers if request.param == "processes" else inline_workers


async def test_result_comes_back(pool: WorkerPool) -> None:
    """A task's value is returned, one task at a time with one worker."""
    parsed = await pool.run(parse_feed, FEED, "http://127.0.0.1/feed", {}, timeout=30)
    assert parsed.title == "Pools"
    assert pool.size == 1


async def test_exception_comes_back_as_itself(pool: WorkerPool) -> None:
    """A task's exception is raised in the caller, its class and message kept."""
    with pytest.raises(ParseError, match="not a feed: empty body") as info:
        await pool.run(parse_feed, b"", "http://127.0.0.1/feed", {}, timeout=30)
    assert info.value.url == "http://127.0.0.1/feed"


async def test_over_the_time_limit_is_a_worker_timeout(pool: WorkerPool) -> None:
    """A task still running at its time limit is WorkerTimeout, and the pool runs the next. (The
    in-process pool's thread sleeps on to the end: the event loop waits for it as it closes.)"""
    with pytest.raises(WorkerTimeout, match=r"timed out after 0\.1s"):
        await pool.run(time.sleep, 0.5, timeout=0.1)
    parsed = await pool.run(parse_feed, FEED, "http://127.0.0.1/feed", {}, timeout=30)
    assert parsed.title == "Pools"


linux_pipes = pytest.mark.skipif(
    not sys.platform.startswith("linux")
    or int(Path("/proc/sys/fs/pipe-max-size").read_text()) < PIPE_BYTES,
    reason="pipe sizes are set on Linux, up to /proc/sys/fs/pipe-max-size",
)


@linux_pipes
async def test_a_worker_reads_its_documents_from_a_wide_pipe(workers: Workers) -> None:
    """The pipes between the main process and a worker (its documents one way, its results
    the other) hold PIPE_BYTES, so several pages wait whole in them."""
    sizes = await workers.run(pipe_sizes, timeout=30)
    assert sizes.count(PIPE_BYTES) >= 2, sizes


@linux_pipes
def test_widen_sets_a_pipes_size_and_leaves_what_it_cannot() -> None:
    read, write = os.pipe()
    try:
        widen(write, 1 << 18)
        assert fcntl.fcntl(read, fcntl.F_GETPIPE_SZ) == 1 << 18
        os.close(read)
        widen(read)  # closed: nothing to widen, and no error
        assert fcntl.fcntl(write, fcntl.F_GETPIPE_SZ) == 1 << 18
    finally:
        os.close(write)


def _fork_server_pid() -> int:
    pid = multiprocessing.forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
    assert isinstance(pid, int)
    return pid


async def test_a_pool_whose_fork_server_is_gone_is_made_again() -> None:
    """The fork server killed (the kernel's OOM killer picks it), then a worker (out of memory
    too, or retired after its tasks): pebble can start no worker and gives the pool up. A new
    pool is made, with a new fork server (`worker_pool_restarted`), and the next tasks run
    (was: every task failed for as long as the process ran, `RuntimeError: Unexpected error
    within the Pool`, each page stored from its feed's text, `internal error: RuntimeError`,
    each feed failing to parse, /healthz 200 all along)."""
    workers = Workers(1)
    try:
        first = await workers.run(os.getpid, timeout=30)
        os.kill(_fork_server_pid(), signal.SIGKILL)
        os.kill(first, signal.SIGKILL)
        await asyncio.sleep(1)  # pebble finds the worker gone and cannot start another
        with capture_logs() as logs:
            again = [await workers.run(os.getpid, timeout=30) for _ in range(3)]
    finally:
        workers.close()
    assert first not in again
    assert [line["event"] for line in logs] == ["worker_pool_restarted"]
