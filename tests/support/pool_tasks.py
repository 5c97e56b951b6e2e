"""Functions the worker pool's tests run in worker processes (`ingest.workers.pool.Workers`):
a worker unpickles a task's function by reference, so they live in a module it can import, not
in a test file."""

from __future__ import annotations

import fcntl
import hashlib
import os
import stat
import time


def payload(tag: int, size: int) -> bytes:
    """`size` bytes that tell `tag` apart from every other tag's, at every offset: a payload
    cut short, spliced with another's or handed to the wrong caller does not match."""
    block = hashlib.sha256(tag.to_bytes(8, "big", signed=True)).digest()
    return (block * (size // len(block) + 1))[:size]


def mirror(tag: int, data: bytes) -> tuple[int, str, bytes]:
    """The tag, the digest of `data` as the worker received it, and `data` reversed: a result
    as large as the argument."""
    return tag, hashlib.sha256(data).hexdigest(), data[::-1]


def tagged(tag: int) -> tuple[int, int]:
    """The tag and the worker's pid."""
    return tag, os.getpid()


def nap(seconds: float, tag: int, log: str | None = None) -> tuple[int, int]:
    """Sleeps, then writes the tag as a line of the file `log` (if given: a task that runs to
    its end leaves its line, one killed before does not) and answers the tag and the worker's
    pid."""
    time.sleep(seconds)
    if log is not None:
        _append(log, tag)
    return tag, os.getpid()


def take(tag: int, data: bytes, log: str) -> tuple[int, int, str]:
    """Writes the tag as a line of the file `log` and answers the tag, the worker's pid and
    the digest of `data` as the worker received it."""
    _append(log, tag)
    return tag, os.getpid(), hashlib.sha256(data).hexdigest()


def _append(log: str, tag: int) -> None:
    # One write of one short line to a file opened O_APPEND: lines of several workers do not mix.
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{tag}\n".encode())
    finally:
        os.close(fd)


class SlowToUnpickle:
    """A result that takes `seconds` to unpickle, in the process that receives it: it holds up
    the pool's thread that reads the workers' messages in the main process, as a main process
    busy elsewhere (its event loop holding the GIL) does for a shorter while."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __reduce__(self) -> tuple[object, tuple[float]]:
        return _unpickle_slowly, (self.seconds,)


def _unpickle_slowly(seconds: float) -> SlowToUnpickle:
    time.sleep(seconds)
    return SlowToUnpickle(seconds)


def slow_to_unpickle(seconds: float) -> SlowToUnpickle:
    """Answers at once, with a result that takes `seconds` to unpickle."""
    return SlowToUnpickle(seconds)


def pipe_sizes() -> list[int]:
    """The kernel buffer size of every pipe this process holds an end of, in bytes."""
    sizes = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                sizes.append(fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ))
        except OSError:  # the listing's own descriptor, closed by now
            continue
    return sizes


def warn(message: str) -> int:
    """Raises `message` as a Python warning (`warnings.warn`, a UserWarning) in the worker, as
    a library would, and answers the worker's pid."""
    import warnings

    warnings.warn(message, UserWarning, stacklevel=1)
    return os.getpid()
