"""The embedded PostgreSQL that `ingest` starts when `DATABASE_URL` is unset, end to end with
real processes: every command stops the server it started on the way out (normal exit,
SIGTERM to the service), a server orphaned by a `kill -9` is adopted by the next command and
stopped when that one exits, and none of them prints a warning (README, "Database")."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.paths import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    # Whatever a failed test left running goes with it.
    pid = _postmaster(tmp_path)
    if pid is not None and _alive(pid):
        os.kill(pid, signal.SIGQUIT)


def _env(data_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("INGEST_", "XDG_")) and k != "DATABASE_URL"
    }
    env.update(INGEST_DATA_DIR=str(data_dir), INGEST_LOG_FORMAT="json", INGEST_HTTP_PORT="0")
    return env


def _ingest(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingest", *args],
        env=_env(data_dir),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _postmaster(data_dir: Path) -> int | None:
    """The pid the server's postmaster.pid names, None when there is none."""
    try:
        return int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _stopped(data_dir: Path, server: int | None = None, timeout: float = 30.0) -> bool:
    """The server of `data_dir` (and the process `server`, if given) is gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = _postmaster(data_dir)
        if (pid is None or not _alive(pid)) and (server is None or not _alive(server)):
            return True
        time.sleep(0.1)
    return False


def _warnings(stderr: str) -> list[str]:
    """Lines that are not the service's JSON events, and JSON events at warning or above."""
    found = []
    for line in stderr.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            if line.strip():
                found.append(line)
            continue
        if event.get("level") in ("warning", "error", "critical"):
            found.append(line)
    return found


def _start_service(data_dir: Path) -> subprocess.Popen[str]:
    """`ingest run`, returned once it has started its embedded server and its scheduler."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest", "run"],
        env=_env(data_dir),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if '"service_started"' in line:
            return proc
    proc.kill()
    pytest.fail("ingest run did not start:\n" + "".join(seen))


def test_a_command_stops_the_server_it_started_and_warns_of_nothing(data_dir: Path) -> None:
    first = _ingest(data_dir, "feeds", "list")
    assert first.returncode == 0, first.stderr
    assert _warnings(first.stderr) == []
    assert _stopped(data_dir)
    # Again on the existing cluster: started, used and stopped the same way.
    again = _ingest(data_dir, "migrate")
    assert again.returncode == 0, again.stderr
    assert _warnings(again.stderr) == []
    assert _stopped(data_dir)


def test_the_service_stops_its_server_on_sigterm(data_dir: Path) -> None:
    service = _start_service(data_dir)
    server = _postmaster(data_dir)
    assert server is not None
    assert _alive(server)
    service.send_signal(signal.SIGTERM)
    _, stderr = service.communicate(timeout=60)
    assert service.returncode == 0, stderr
    assert _warnings(stderr) == []
    assert _stopped(data_dir, server)


def test_a_server_orphaned_by_kill_9_is_adopted_and_stopped_by_the_next_command(
    data_dir: Path,
) -> None:
    service = _start_service(data_dir)
    server = _postmaster(data_dir)
    assert server is not None
    service.kill()
    service.communicate(timeout=30)
    # Nothing could stop it: the server outlives the service.
    assert _alive(server)
    assert _postmaster(data_dir) == server

    listed = _ingest(data_dir, "feeds", "list")
    assert listed.returncode == 0, listed.stderr
    assert _warnings(listed.stderr) == []
    adopted = [json.loads(ln) for ln in listed.stderr.splitlines() if "adopted" in ln]
    assert [e["event"] for e in adopted] == ["embedded_postgres_adopted"]
    # The next command used the orphan and, as its last holder, stopped it.
    assert _stopped(data_dir, server)
