"""The fork server of the worker pool (see `ingest.workers.pool`). It imports and warms the
extraction stack once (`ingest.workers.warm`, about half a second of CPU), and every worker
process is forked from it, warm. `start()` spawns it at once; this module imports nothing
heavy, so that the `ingest run` command can start it before its own imports (see
`ingest.launcher`)."""

from __future__ import annotations

import fcntl
import importlib.machinery
import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver
import os
import signal
import sys
import traceback
from collections.abc import Callable
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection
from types import TracebackType

PRELOAD = ["ingest.workers.warm"]

TRACKER_WARNINGS = "ignore::UserWarning:multiprocessing.resource_tracker"
"""A `-W` option of multiprocessing's resource tracker, a process of its own that multiprocessing
starts with this interpreter's options: once a process using the pool is killed (SIGKILL: the
OOM killer, an orchestrator's grace over), the tracker removes the semaphores it left and says
so, `UserWarning: resource_tracker: There appear to be 2 leaked semaphore objects to clean up
at shutdown`, as text on the stderr it shares with the command, whose every other line is JSON
(`INGEST_LOG_FORMAT`). What it does is done all the same; it is not said."""

TRACKER_SIGNALS = {signal.SIGHUP}
"""Blocked in multiprocessing's resource tracker for its whole life (it ignores SIGINT and
SIGTERM itself): it shares the command's process group, and a terminal that hangs up (an SSH
session closed) sends SIGHUP to that whole group. Killed by it, the tracker was relaunched by
the worker pool's stop with a warning (`resource_tracker: process died unexpectedly,
relaunching.  Some resources might leak.`), and the new one, told to forget semaphores it had
never been told of, printed a `KeyError` traceback as text for each, among the JSON lines;
the semaphores of a process killed after it were never cleaned up. The tracker exits when the
last process holding its pipe does, as before."""

PIPE_BYTES = 1 << 20
"""The kernel buffer of the pool's one-way pipes (Linux's default is 64 KiB): the documents the
main process sends to the workers, and their results back. A page of a few hundred kilobytes
otherwise waits half in the pipe, half in the thread of the main process that writes it, which
the kernel must wake several times, each time behind the busy processes, before a worker has
the whole page: a worker that finishes then waits for its next document while others queue.
With the wider pipe several documents wait whole in it (docs/performance.md, section
"Twenty-third session")."""


class _PoolContext(multiprocessing.context.ForkServerContext):
    """The forkserver context, with one-way pipes widened to PIPE_BYTES where the kernel
    allows it (Linux's F_SETPIPE_SZ, up to /proc/sys/fs/pipe-max-size); elsewhere, or refused,
    they keep the kernel's size."""

    def Pipe(self, duplex: bool = True) -> tuple[Connection, Connection]:
        ends = super().Pipe(duplex)
        if not duplex:
            widen(ends[1].fileno())
        return ends


def widen(fd: int, size: int = PIPE_BYTES) -> None:
    """Sets the buffer of the pipe `fd` to `size` bytes, or leaves it as it is where that is
    refused (a limit lower than `size`) or not supported."""
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsize is None:
        return
    try:
        fcntl.fcntl(fd, setsize, size)
    except OSError:
        return


_CONTEXT = _PoolContext()


def context() -> multiprocessing.context.ForkServerContext:
    """The multiprocessing context of the worker pool: forkserver, so that workers are never
    forked from a process that runs an event loop and threads, with wide pipes (PIPE_BYTES)."""
    _CONTEXT.set_forkserver_preload(PRELOAD)
    _skip_main_in_children()
    return _CONTEXT


def start() -> None:
    """Spawn the fork server now, unless it runs already; it preloads while the caller goes on.
    It exits once this process has exited and its preload is done. It is spawned with SIGINT
    blocked, which it inherits, and its preload (`ingest.workers.warm`) ignores SIGINT before
    unblocking it (multiprocessing makes it ignore SIGINT only once preloaded; pebble's workers
    ignore it too): a Ctrl-C in a terminal reaches the whole process group, and it is this
    process's to handle, not a traceback from the fork server. Here a Ctrl-C during the spawn
    waits, and arrives (KeyboardInterrupt) once the spawn is done; in any other thread it
    arrives as usual. multiprocessing's resource tracker is started first: its own start
    unblocks SIGINT when it is done. It is spawned with SIGHUP blocked, which it inherits and
    keeps (`TRACKER_SIGNALS`)."""
    context()
    if TRACKER_WARNINGS not in sys.warnoptions:
        sys.warnoptions.append(TRACKER_WARNINGS)
    held = signal.pthread_sigmask(signal.SIG_BLOCK, TRACKER_SIGNALS)
    try:
        resource_tracker.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _skip_main_in_children() -> None:
    """Workers run functions of this package only. Left alone, multiprocessing would run the
    entry script again in every new worker (for the `ingest` command: import the whole CLI,
    HTTP and database stack), which costs each worker start-up time and memory; a main module
    with a spec named "__main__" is left alone in children."""
    main = sys.modules.get("__main__")
    if main is not None and getattr(main, "__spec__", None) is None:
        main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)


ExceptHook = Callable[[type[BaseException], BaseException, TracebackType | None], object]


def quiet_when_pool_gone(hook: ExceptHook) -> ExceptHook:
    """`sys.excepthook` for the fork server, whose children print what their start raises
    through it: a worker whose pool was stopped while the worker was being started (a service
    stopped during its start-up) finds the pool's semaphores gone as it unpickles them
    (FileNotFoundError in `multiprocessing.synchronize`) and exits without that traceback, which
    would land on the service's stderr. Anything else goes to `hook`."""

    def excepthook(
        exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> object:
        if issubclass(exc_type, FileNotFoundError) and _in_semaphore_rebuild(tb):
            return None
        return hook(exc_type, exc, tb)

    return excepthook


_SYNCHRONIZE = os.path.join("multiprocessing", "synchronize.py")


def _in_semaphore_rebuild(tb: TracebackType | None) -> bool:
    return any(
        frame.f_code.co_name == "__setstate__" and frame.f_code.co_filename.endswith(_SYNCHRONIZE)
        for frame, _ in traceback.walk_tb(tb)
    )
