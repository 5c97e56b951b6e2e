"""The worker pool's fork server is spawned with SIGINT ignored, so that a Ctrl-C in a terminal
is the command's to handle; a Ctrl-C that comes while it is spawned still reaches the command."""

from __future__ import annotations

import multiprocessing.forkserver
import signal
import threading
from collections.abc import Iterator

import pytest

from ingest.workers import forkserver


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """Python's own SIGINT handler (KeyboardInterrupt), whatever the test runner installed."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_ctrl_c_while_the_fork_server_is_spawned_is_not_lost(
    monkeypatch: pytest.MonkeyPatch, ctrl_c_raises: None
) -> None:
    seen: list[object] = []

    def spawn_interrupted() -> None:
        seen.append(signal.getsignal(signal.SIGINT))  # what the fork server inherits
        # To this thread: `ingest run` spawns the fork server before it starts any other, so
        # a Ctrl-C then is this thread's (the test runner may have threads of its own).
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)

    monkeypatch.setattr(multiprocessing.forkserver, "ensure_running", spawn_interrupted)
    with pytest.raises(KeyboardInterrupt):
        forkserver.start()
    assert seen == [signal.SIG_IGN]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, set())


def test_without_a_ctrl_c_the_spawn_leaves_the_signal_as_it_was(
    monkeypatch: pytest.MonkeyPatch, ctrl_c_raises: None
) -> None:
    monkeypatch.setattr(multiprocessing.forkserver, "ensure_running", lambda: None)
    forkserver.start()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, set())
