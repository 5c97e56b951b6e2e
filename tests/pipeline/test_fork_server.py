"""The worker pool's fork server starts with SIGINT blocked and then ignores it, so that a Ctrl-C
in a terminal is the command's to handle; a Ctrl-C that comes while it is spawned still reaches
the command. Run in a process of its own: the fork server and the signal set-up are the
process's."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.support.paths import ROOT

SCRIPT = textwrap.dedent(
    """
    import multiprocessing.forkserver
    import multiprocessing.util
    import os
    import signal
    import time

    from ingest.workers import forkserver

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
