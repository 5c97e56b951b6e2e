"""What the first request of a process needs and costs start-up time, begun early in a thread:
the TLS trust store (certifi's CA bundle, httpx's default without the SSL_CERT_* environment:
30-40 ms of OpenSSL work, which runs without the GIL) and anyio's asyncio backend (imported
by httpcore at its first lock, about 15 ms, overlapping the waits on the database).
`ingest run` calls `start()` first thing (`ingest.launcher`); `ssl_context()` waits for the
context (or makes it, if nothing started it). Light on purpose, and outside `ingest.fetch`,
whose import brings httpx."""

from __future__ import annotations

import contextlib
import importlib
import ssl
import threading
from concurrent.futures import Future

_lock = threading.Lock()
_context: Future[ssl.SSLContext] | None = None


def start() -> None:
    """Begin loading in a daemon thread, once per process."""
    global _context
    with _lock:
        if _context is not None:
            return
        _context = Future()
    threading.Thread(target=_load, args=(_context,), name="ingest-preload", daemon=True).start()


def ssl_context() -> ssl.SSLContext:
    """The process's shared client TLS context (a context is safe to share between
    connections and event loops)."""
    start()
    assert _context is not None
    return _context.result()


def _load(context: Future[ssl.SSLContext]) -> None:
    try:
        import certifi

        context.set_result(ssl.create_default_context(cafile=certifi.where()))
    except BaseException as e:  # the waiter re-raises it
        context.set_exception(e)
        return
    # Without it httpcore imports it later; nothing is lost but time.
    with contextlib.suppress(ImportError):
        importlib.import_module("anyio._backends._asyncio")
