"""The worker pool (`ingest.workers.pool.Workers`) with tasks waiting for a worker: the main
process writes tasks into one pipe that every worker reads, up to PIPE_BYTES of them before any
worker takes one (`ingest.workers.forkserver`), and the results come back through another.
Payloads larger than the pipe, hundreds of tasks at once, a worker killed at its time limit,
callers cancelled while their tasks wait, and the pool closed under queued tasks: every caller
gets its own answer or an error, none waits for ever.

Each test has a pool of its own (`own_pool`), closed at its end: some kill or stall workers,
which the session's shared pool must not see."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ingest.errors import WorkerError, WorkerTimeout
from ingest.workers.forkserver import PIPE_BYTES
from ingest.workers.pool import Workers
from tests.support.pool_tasks import mirror, nap, payload, slow_to_unpickle, tagged, take

pytestmark = pytest.mark.anyio

PAGE = 300_000
"""A large page, as the pipeline sends them to the workers: a few fit whole in a wide pipe."""


@contextmanager
def own_pool(size: int) -> Iterator[Workers]:
    pool = Workers(size)
    try:
        yield pool
    finally:
        pool.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ran(log: Path) -> list[int]:
    """The tags of the tasks that ran to their end, in the order they did."""
    return [int(line) for line in log.read_text().split()] if log.exists() else []


async def test_payloads_larger_than_the_pipe_come_back_whole_twenty_at_a_time() -> None:
    """Twenty callers at once each send 3 MiB, three times the pipe, and get back their own
    3 MiB: every argument reaches a worker whole, every result comes back whole, and none is
    another caller's."""
    size = 3 << 20
    with own_pool(2) as pool:
        async with asyncio.timeout(60):
            results = await asyncio.gather(
                *(pool.run(mirror, i, payload(i, size), timeout=30) for i in range(20))
            )
    for i, (tag, received, back) in enumerate(results):
        sent = payload(i, size)
        assert tag == i
        assert received == sha(sent), f"task {i}: the worker got other bytes than were sent"
        assert (len(back), sha(back[::-1])) == (size, sha(sent)), f"task {i}: result differs"


async def test_payloads_around_the_pipe_sizes_come_back_whole() -> None:
    """Arguments and results of every size about the kernel's default pipe and the wide one
    (a byte under, at and over each), sent all at once."""
    sizes = [0, 1, 65535, 65536, 65537, PIPE_BYTES - 1, PIPE_BYTES, PIPE_BYTES + 1, 2 * PIPE_BYTES]
    with own_pool(2) as pool:
        async with asyncio.timeout(60):
            results = await asyncio.gather(
                *(pool.run(mirror, i, payload(i, n), timeout=30) for i, n in enumerate(sizes))
            )
    for i, ((tag, received, back), n) in enumerate(zip(results, sizes, strict=True)):
        sent = payload(i, n)
        assert (tag, received, len(back), sha(back[::-1])) == (i, sha(sent), n, sha(sent)), n


async def test_hundreds_of_small_tasks_queued_at_once_each_answer_their_own_caller() -> None:
    """500 tasks scheduled in one go, far more than the workers take at a time: each caller
    gets the answer to its own task."""
    with own_pool(2) as pool:
        async with asyncio.timeout(60):
            results = await asyncio.gather(*(pool.run(tagged, i, timeout=30) for i in range(500)))
    assert [tag for tag, _ in results] == list(range(500))


async def test_a_timed_out_tasks_worker_is_replaced_and_the_tasks_queued_behind_it_complete(
    tmp_path: Path,
) -> None:
    """A task over its time limit while twenty others wait in the pipe (and in the pool's own
    queue behind it: small ones, pages and pages larger than the pipe): its worker is killed,
    its caller gets WorkerTimeout, and a new worker runs every waiting task once, each
    caller getting its own task's answer."""
    log = tmp_path / "ran"
    sizes = [10, PAGE, 3 * PIPE_BYTES // 2]
    with own_pool(1) as pool:
        async with asyncio.timeout(30):
            _, first = await pool.run(tagged, 0, timeout=30)
            slow = asyncio.ensure_future(pool.run(nap, 5.0, -1, str(log), timeout=0.1))
            waiting = [
                asyncio.ensure_future(
                    pool.run(take, i, payload(i, sizes[i % 3]), str(log), timeout=30)
                )
                for i in range(20)
            ]
            with pytest.raises(WorkerTimeout, match=r"timed out after 0\.1s"):
                await slow
            results = await asyncio.gather(*waiting)
            assert (await pool.run(tagged, 99, timeout=30))[0] == 99
    assert [(tag, digest) for tag, _, digest in results] == [
        (i, sha(payload(i, sizes[i % 3]))) for i in range(20)
    ]
    # The one worker was busy with the slow task until it was killed: a new one ran the rest.
    assert first not in {pid for _, pid, _ in results}
    assert sorted(ran(log)) == list(range(20)), "a waiting task was lost or ran twice"


async def test_a_worker_retired_after_its_tasks_leaves_the_tasks_queued_behind_it_to_the_next(
    tmp_path: Path,
) -> None:
    """A worker that has run its `max_tasks` exits and another takes its place: the tasks
    waiting in the pipe behind it (pages among them) are each run once, by the workers after
    it, each caller getting its own task's answer."""
    log = tmp_path / "ran"
    pool = Workers(1, max_tasks=3)
    try:
        async with asyncio.timeout(30):
            results = await asyncio.gather(
                *(
                    pool.run(take, i, payload(i, PAGE if i % 2 else 10), str(log), timeout=30)
                    for i in range(20)
                )
            )
    finally:
        pool.close()
    assert [(tag, digest) for tag, _, digest in results] == [
        (i, sha(payload(i, PAGE if i % 2 else 10))) for i in range(20)
    ]
    assert len({pid for _, pid, _ in results}) == 7  # three tasks each, two for the last
    assert sorted(ran(log)) == list(range(20))


async def test_cancelled_callers_tasks_run_to_their_end_and_no_worker_is_killed(
    tmp_path: Path,
) -> None:
    """Ten tasks wait in the pipe behind a busy worker; five of their callers are cancelled.
    Their tasks are not cancelled in pebble, which would kill the worker that takes each of
    them (and, in a race, another caller's task with it): they run to their end (at most
    their time limit), and the other five callers get their own answers from the same
    worker."""
    log = tmp_path / "ran"
    with own_pool(1) as pool:
        _, first = await pool.run(tagged, 0, timeout=30)
        busy = asyncio.ensure_future(pool.run(nap, 0.5, -1, str(log), timeout=30))
        # Even tags, whose callers are cancelled: 0.1 s each; odd tags: at once.
        waiting = [
            asyncio.ensure_future(pool.run(nap, 0.0 if i % 2 else 0.1, i, str(log), timeout=30))
            for i in range(10)
        ]
        await asyncio.sleep(0.2)  # all ten in the pipe by now, the worker still busy
        for task in waiting[::2]:
            task.cancel()
        async with asyncio.timeout(15):
            assert await busy == (-1, first)
            kept = await asyncio.gather(*waiting[1::2])
            # Behind every task before it: the cancelled ones have run by then.
            assert await pool.run(tagged, 99, timeout=30) == (99, first)
        await asyncio.gather(*waiting[::2], return_exceptions=True)
    assert all(task.cancelled() for task in waiting[::2])
    assert kept == [(i, first) for i in (1, 3, 5, 7, 9)]
    assert sorted(ran(log)) == [-1, *range(10)]


async def test_the_worker_of_a_cancelled_task_is_not_killed_under_the_next_callers_task() -> None:
    """A task whose caller was cancelled while it waited in the pipe: a worker takes it, runs
    it to its end and goes on to the next task, another caller's, before the main process has
    read the first one's answer. That next caller must still get its answer. Were the task
    cancelled in pebble (5.2), pebble would kill the worker it was last seen on as soon as it
    saw it started and not yet answered, whatever the worker runs by then (pebble issue 153),
    and the next caller would get WorkerTimeout at its time limit instead. Here the answer is
    slow to unpickle, which holds that state for half a second; a main process busy elsewhere
    (the GIL) holds it for less, and the worker was then killed under the next task in 10 of
    30 tries."""
    with own_pool(1) as pool:
        await pool.run(tagged, 0, timeout=30)  # the worker is up: no task waits for its start
        busy = asyncio.ensure_future(pool.run(nap, 0.5, -1, timeout=30))
        cancelled = asyncio.ensure_future(pool.run(slow_to_unpickle, 0.5, timeout=30))
        following = asyncio.ensure_future(pool.run(nap, 0.3, 1, timeout=2))
        await asyncio.sleep(0.2)  # both in the pipe, the worker busy
        cancelled.cancel()
        async with asyncio.timeout(10):
            await busy
            try:
                answer = await following
            except WorkerTimeout:
                pytest.fail("the next caller's task died with the cancelled task's worker")
        await asyncio.gather(cancelled, return_exceptions=True)
    assert answer[0] == 1


async def _close_with_tasks_waiting(pool: Workers) -> tuple[list[BaseException], int]:
    """Close `pool` while its one worker sleeps and tasks wait for it: small ones and pages, in
    the pipe and in the pool's own queue behind it. The errors of the waiting callers that
    finished within 3 s of it, and how many did not (cancelled then)."""
    await pool.run(tagged, 0, timeout=30)
    waiting = [asyncio.ensure_future(pool.run(nap, 5.0, -1, timeout=30))] + [
        asyncio.ensure_future(pool.run(mirror, i, payload(i, PAGE if i % 2 else 10), timeout=30))
        for i in range(12)
    ]
    await asyncio.sleep(0.3)  # the pipe is full: the rest waits in pebble's queue
    await asyncio.wait_for(asyncio.to_thread(pool.close), 20)  # a close that hangs fails here
    done, pending = await asyncio.wait(waiting, timeout=3)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    errors = [e for task in waiting if task in done and (e := task.exception()) is not None]
    assert len(errors) == len(done), "a caller got an answer from a pool closed under it"
    return errors, len(pending)


async def test_closing_the_pool_with_tasks_waiting_ends_every_waiting_caller() -> None:
    """No caller waits for ever on a closed pool: each gets an error within seconds."""
    with own_pool(1) as pool:
        errors, still_waiting = await _close_with_tasks_waiting(pool)
    assert still_waiting == 0, f"{still_waiting} of {len(errors) + still_waiting} callers wait"


async def test_closing_the_pool_with_tasks_waiting_fails_callers_with_a_worker_error() -> None:
    """The callers that a close ends get the pool's own error (WorkerError, which
    `parse_in_worker` makes a ParseError), not one of pebble's internals."""
    with own_pool(1) as pool:
        errors, _ = await _close_with_tasks_waiting(pool)
    assert errors
    assert all(isinstance(e, WorkerError) for e in errors), [repr(e) for e in errors]
