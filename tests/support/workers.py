"""A worker pool without processes, for pipeline tests that are not about processes."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Callable
from typing import Any, TypeVar

from ingest.errors import WorkerTimeout

T = TypeVar("T")


def _call(payload: bytes) -> tuple[bool, bytes]:
    fn, args = pickle.loads(payload)
    try:
        return True, pickle.dumps(fn(*args))
    except Exception as e:
        return False, pickle.dumps(e)


class InlineWorkers:
    """`ingest.ports.WorkerPool` in this process: each task runs in a thread, `size` at a time,
    its function, arguments, result and exception going through pickle as they do to and from
    a worker process. A task over its time limit raises `WorkerTimeout` like the real pool's,
    but nothing kills its thread: tests of hung, killed or crashing workers use the real pool
    (`Workers`). `tasks` counts the tasks run."""

    def __init__(self, size: int = 1) -> None:
        self.size = size
        self.tasks = 0
        self._slots = asyncio.Semaphore(size)

    async def run(self, fn: Callable[..., T], *args: Any, timeout: float) -> T:
        payload = pickle.dumps((fn, args))
        async with self._slots:
            self.tasks += 1
            try:
                ok, answer = await asyncio.wait_for(asyncio.to_thread(_call, payload), timeout)
            except TimeoutError as e:
                raise WorkerTimeout(f"timed out after {timeout:g}s") from e
        outcome = pickle.loads(answer)
        if not ok:
            raise outcome
        result: T = outcome
        return result
