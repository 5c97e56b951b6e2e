"""The fork server of the worker pool (see `ingest.workers`). It imports and warms the
extraction stack once (`ingest._warm`, about half a second of CPU), and every worker process is
forked from it, warm. `start()` spawns it at once; this module imports nothing heavy, so that
the `ingest run` command can start it before its own imports (see `ingest.entry`)."""

from __future__ import annotations

import importlib.machinery
import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver
import sys

PRELOAD = ["ingest._warm"]


def context() -> multiprocessing.context.ForkServerContext:
    """The multiprocessing context of the worker pool: forkserver, so that workers are never
    forked from a process that runs an event loop and threads."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    _skip_main_in_children()
    return ctx


def start() -> None:
    """Spawn the fork server now; it preloads while the caller goes on. A later `context()`
    user (the worker pool) finds it running. The fork server exits with this process."""
    context()
    multiprocessing.forkserver.ensure_running()


def _skip_main_in_children() -> None:
    """Workers run functions of this package only. Left alone, multiprocessing would run the
    entry script again in every new worker (for the `ingest` command: import the whole CLI,
    HTTP and database stack), which costs each worker start-up time and memory; a main module
    with a spec named "__main__" is left alone in children."""
    main = sys.modules.get("__main__")
    if main is not None and getattr(main, "__spec__", None) is None:
        main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)
