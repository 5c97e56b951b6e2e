"""What the first request of a process needs and costs start-up time, begun early in a thread:
the TLS trust store (certifi's CA bundle, httpx's default without the SSL_CERT_* environment:
30-40 ms of OpenSSL work, which runs without the GIL). `ingest run` calls `start()` first
thing (`ingest.launcher`); `ssl_context()` waits for the context (or makes it, if nothing
started it). Light on purpose, and outside `ingest.fetch`, whose import brings httpx. The
thread imports nothing: a thread importing while the main thread imports too can deadlock on
the import locks when a Ctrl-C interrupts the main thread mid-import."""

from __future__ import annotations

import ssl
import threading
from concurrent.futures import Future

import certifi

_lock = threading.Lock()
_context: Future[ssl.SSLContext] | None = None
_thread: threading.Thread | None = None


def start() -> None:
    """Begin loading in a daemon thread, once per process."""
    global _context, _thread
    with _lock:
        if _context is not None:
            return
        _context = Future()
        _thread = threading.Thread(
            target=_load, args=(_context,), name="ingest-preload", daemon=True
        )
    _thread.start()


def wait(timeout: float = 5.0) -> None:
    """Let the thread finish before the interpreter shuts down (a Ctrl-C during start-up)."""
    if _thread is not None and _thread.is_alive():
        _thread.join(timeout)


def ssl_context() -> ssl.SSLContext:
    """The process's shared client TLS context (a context is safe to share between
    connections and event loops)."""
    start()
    assert _context is not None
    return _context.result()


def _load(context: Future[ssl.SSLContext]) -> None:
    try:
        context.set_result(ssl.create_default_context(cafile=certifi.where()))
    except BaseException as e:  # the waiter re-raises it
        context.set_exception(e)
