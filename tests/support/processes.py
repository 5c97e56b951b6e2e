"""`ingest` as a real process: its command line, an environment of the test's own, waiting for
something to happen, and a free port to give it."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable


def ingest_env(database_url: str, **extra: str) -> dict[str, str]:
    """This process's environment without any INGEST_* setting, plus a database, loopback
    allowed, JSON logs, one worker, no politeness delay and any free port for HTTP."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("INGEST_") and k not in ("DATABASE_URL", "XDG_DATA_HOME")
    }
    env.update(
        {
            "DATABASE_URL": database_url,
            "INGEST_ALLOW_PRIVATE_NETWORKS": "true",
            "INGEST_LOG_FORMAT": "json",
            "INGEST_WORKERS": "1",
            "INGEST_HOST_DELAY": "0",
            "INGEST_HTTP_PORT": "0",
        }
    )
    env.update(extra)
    return env


def ingest_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "ingest.cli", *args]


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll `predicate` until it holds (True) or `timeout` seconds have passed (its last
    answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
