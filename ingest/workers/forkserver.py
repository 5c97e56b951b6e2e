"""The fork server of the worker pool (see `ingest.workers.pool`). It imports and warms the
extraction stack once (`ingest.workers.warm`, about half a second of CPU), and every worker
process is forked from it, warm. `start()` spawns it at once; this module imports nothing
heavy, so that the `ingest run` command can start it before its own imports (see
`ingest.launcher`)."""

from __future__ import annotations

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
from types import TracebackType

PRELOAD = ["ingest.workers.warm"]


def context() -> multiprocessing.context.ForkServerContext:
    """The multiprocessing context of the worker pool: forkserver, so that workers are never
    forked from a process that runs an event loop and threads."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    _skip_main_in_children()
    return ctx


def start() -> None:
    """Spawn the fork server now, unless it runs already; it preloads while the caller goes on.
    It exits once this process has exited and its preload is done. It is spawned with SIGINT
    blocked, which it inherits, and its preload (`ingest.workers.warm`) ignores SIGINT before
    unblocking it (multiprocessing makes it ignore SIGINT only once preloaded; pebble's workers
    ignore it too): a Ctrl-C in a terminal reaches the whole process group, and it is this
    process's to handle, not a traceback from the fork server. Here a Ctrl-C during the spawn
    waits, and arrives (KeyboardInterrupt) once the spawn is done; in any other thread it
    arrives as usual. multiprocessing's resource tracker is started first: its own start
    unblocks SIGINT when it is done."""
    context()
    resource_tracker.ensure_running()
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
