"""The worker pool's fork server starts with SIGINT blocked and then ignores it, so that a Ctrl-C
in a terminal is the command's to handle; a Ctrl-C that comes while it is spawned still reaches
the command. Run in a process of its own: the fork server and the signal set-up are the
process's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from types import TracebackType
from typing import Any

from tests.support.paths import ROOT

SCRIPT = textwrap.dedent(
    """
    import multiprocessing.forkserver
    import multiprocessing.util
    import os
    import signal
    import time

    from ingest.workers import forkserver

    # As from a terminal, where a command handles Ctrl-C: started with SIGINT ignored (the
    # suite run as a background job of a script, or under nohup), it would never see one.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    spawn = multiprocessing.util.spawnv_passfds

    def spawn_interrupted(path, args, passfds):
        if "multiprocessing.forkserver import main" in args[-1]:
            os.kill(os.getpid(), signal.SIGINT)  # a Ctrl-C while the fork server is spawned
        return spawn(path, args, passfds)

    multiprocessing.util.spawnv_passfds = spawn_interrupted
    try:
        forkserver.start()
        time.sleep(0.2)
        print("not interrupted")
    except KeyboardInterrupt:
        print("interrupted")

    def sigint(pid, field):
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(field + ":"):
                return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
        raise LookupError(field)

    server = multiprocessing.forkserver._forkserver._forkserver_pid
    deadline = time.monotonic() + 60
    while sigint(server, "SigBlk") and time.monotonic() < deadline:  # its preload under way
        time.sleep(0.05)
    print("fork server: blocked", sigint(server, "SigBlk"), "ignored", sigint(server, "SigIgn"))
    print("here: blocked", sigint(os.getpid(), "SigBlk"), "ignored", sigint(os.getpid(), "SigIgn"))
    """
)


def test_a_ctrl_c_while_the_fork_server_is_spawned_reaches_the_command() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "interrupted",
        "fork server: blocked False ignored True",
        "here: blocked False ignored False",
    ], proc.stderr
    assert "Traceback" not in proc.stderr


def _raised(fn: Any) -> tuple[type[BaseException], BaseException, TracebackType | None]:
    try:
        fn()
    except BaseException as e:
        return type(e), e, e.__traceback__
    raise AssertionError("nothing raised")


def test_a_worker_whose_pool_is_gone_starts_quietly_and_nothing_else_does() -> None:
    """What a worker of a pool stopped during its start meets: the pool's semaphore, unpickled,
    names one that is gone (FileNotFoundError in `multiprocessing.synchronize`). The fork
    server's hook drops that traceback; every other error reaches the hook it wraps."""
    import multiprocessing.synchronize

    from ingest.workers.forkserver import quiet_when_pool_gone

    seen: list[type[BaseException]] = []
    hook = quiet_when_pool_gone(lambda t, e, tb: seen.append(t))
    lock = object.__new__(multiprocessing.synchronize.Lock)
    gone = _raised(lambda: lock.__setstate__((0, 1, 1, "/ingest-test-no-such-semaphore")))
    assert gone[0] is FileNotFoundError
    hook(*gone)
    assert seen == []
    other = _raised(lambda: open("/nonexistent/ingest-test"))  # noqa: SIM115
    hook(*other)
    hook(*_raised(lambda: 1 / 0))
    assert seen == [FileNotFoundError, ZeroDivisionError]


WARNING_IN_A_WORKER = textwrap.dedent(
    """
    import asyncio
    import os
    import sys

    from ingest import logs
    from ingest.workers.pool import Workers
    from tests.support.pool_tasks import warn

    logs.configure("json", "info", stream=sys.stderr)

    async def main():
        workers = Workers(1)
        try:
            pid = await workers.run(warn, "the old way, see https://u:SECRET@h.test/x", timeout=60)
        finally:
            workers.close()
        print(pid != os.getpid())

    asyncio.run(main())
    """
)


def test_a_warning_raised_in_a_worker_is_a_json_log_line() -> None:
    """A Python warning (`warnings.warn`) raised in a worker process, as a library would raise
    it while a page is extracted, is a line of the service's JSON log (logger `py.warnings`,
    level warning, a URL's user-info redacted), as in the main process: every line on stderr
    parses (was: the warnings module's two lines of text, the URL whole, among the JSON)."""
    proc = subprocess.run(
        [sys.executable, "-c", WARNING_IN_A_WORKER],
        cwd=ROOT,
        env={**os.environ, "INGEST_LOG_FORMAT": "json", "INGEST_LOG_LEVEL": "info"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "True\n"
    assert "SECRET" not in proc.stderr
    try:
        lines = [json.loads(line) for line in proc.stderr.splitlines()]
    except json.JSONDecodeError:
        raise AssertionError(f"a line of stderr is no JSON: {proc.stderr!r}") from None
    warned = [line for line in lines if "the old way" in str(line["event"])]
    assert [(w["logger"], w["level"]) for w in warned] == [("py.warnings", "warning")], lines
