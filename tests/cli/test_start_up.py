"""What `ingest run` does before its first request, kept light (issue 16: under 0.4 s from the
command to the first feed request; bench/startup_bench.py measures it): the imports it skips
and the TLS context it loads in a thread."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from ingest import preload
from ingest.config import LONGEST_TEMPORARY_DIRECTORY, temporary_directory_too_long
from tests.support.paths import ROOT

_PROBE = """
import sys
from ingest import launcher
launcher._lighten_imports()
import ingest.cli, ingest.pipeline, httpx, structlog.dev
print(sorted(m for m in ("rich", "click", "pygments") if m in sys.modules))
print(structlog.dev.rich is None, callable(httpx.main))
import rich.progress
print("rich importable")
"""


def test_start_up_leaves_out_rich_click_and_pygments() -> None:
    """The CLI and pipeline are imported without rich, pygments (under structlog) and click
    (under httpx); rich is still there for whoever asks for it (the backfill's progress)."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "True True", "rich importable"]


def test_tls_context_is_loaded_once_and_verifies() -> None:
    """One client context per process, certifi's CA bundle loaded, hostnames checked."""
    preload.start()
    context = preload.ssl_context()
    assert preload.ssl_context() is context
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 100


def _env(**settings: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("INGEST_") and k not in ("DATABASE_URL", "XDG_DATA_HOME")
    }
    env["DATABASE_URL"] = "postgresql://postgres@127.0.0.1:1/never_reached"
    return env | settings


@pytest.mark.parametrize("once", [[], ["--once"]], ids=["service", "once"])
def test_a_bad_setting_stops_run_before_its_fork_server_and_pipeline(once: list[str]) -> None:
    """`ingest run` with a value it refuses says so (one line, exit 1) before anything slow:
    its fork server is not spawned, neither the CLI's stack nor the pipeline's imported (was:
    all of them, then the refusal, 1 to 2.6 s after the command on a busy machine)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ingest", "run", *once],
        cwd=ROOT,
        env=_env(INGEST_HOST_DELAY="abc"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    timings = [ln for ln in done.stderr.splitlines() if ln.startswith("import time:")]
    said = [ln for ln in done.stderr.splitlines() if not ln.startswith("import time:")]
    assert done.returncode == 1, done.stderr
    assert said == [
        "ingest: invalid configuration: INGEST_HOST_DELAY: 'abc' is not a number of seconds"
    ]
    imported = {ln.rsplit("|", 1)[1].strip() for ln in timings}
    assert "ingest.config" in imported
    assert not {"ingest.cli", "ingest.workers.forkserver", "ingest.pipeline"} & imported


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--bogus"], "ingest: error: unrecognized arguments: --bogus"),
        (["--all"], "ingest run: error: --all only makes sense with --once"),
        (
            ["--once", "--once=1"],
            "ingest run: error: argument --once: ignored explicit argument '1'",
        ),
    ],
    ids=["unknown-option", "all-without-once", "value-to-a-flag"],
)
def test_a_usage_error_of_run_is_one_whatever_its_settings(args: list[str], error: str) -> None:
    """`ingest run` given options it cannot take is a usage error (exit 2, the usage and the
    reason), as every command's, with settings it would refuse too: the settings are checked
    early for a command line that runs (was: `ingest: invalid configuration`, exit 1, and a
    port in use for `run --all`, which only makes sense with `--once`)."""
    done = subprocess.run(
        [sys.executable, "-m", "ingest", "run", *args],
        cwd=ROOT,
        env=_env(INGEST_HOST_DELAY="abc"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("usage: ingest"), done.stderr
    assert done.stderr.splitlines()[-1] == error


@pytest.mark.integration
@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("192.0.2.1", "Cannot assign requested address"),  # TEST-NET-1: no machine's own
        ("no-such-host.invalid", ""),  # never resolves (RFC 6761)
    ],
    ids=["not-this-machine", "unresolvable"],
)
def test_a_service_that_cannot_listen_says_so_before_anything_slow(
    empty_database_url: str, host: str, reason: str
) -> None:
    """`ingest run` whose INGEST_HTTP_HOST is not an address of this machine (or a name that
    does not resolve) says it cannot listen there, in one line, exit 1, before migrating the
    database, spawning its fork server or importing the pipeline (was: after all of them,
    when its endpoints came to listen)."""
    env = _env(INGEST_HTTP_HOST=host, INGEST_HTTP_PORT="8080")
    env["DATABASE_URL"] = empty_database_url
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ingest", "run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    timings = [ln for ln in done.stderr.splitlines() if ln.startswith("import time:")]
    said = [ln for ln in done.stderr.splitlines() if not ln.startswith("import time:")]
    assert done.returncode == 1, done.stderr
    assert len(said) == 1, said
    assert said[0].startswith(
        f"ingest: cannot listen on {host}:8080 (INGEST_HTTP_PORT, INGEST_HTTP_HOST): {reason}"
    )
    imported = {ln.rsplit("|", 1)[1].strip() for ln in timings}
    assert not {"ingest.workers.forkserver", "ingest.pipeline"} & imported
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute("SELECT to_regclass('ingest.schema_migrations')").fetchone() == (None,)


@pytest.mark.integration
def test_run_once_does_not_listen_and_takes_any_address(database_url: str) -> None:
    """`ingest run --once` serves no endpoint: an INGEST_HTTP_HOST of another machine (the
    service's settings shared with a cron job elsewhere) does not stop it."""
    env = _env(INGEST_HTTP_HOST="192.0.2.1", INGEST_LOG_FORMAT="json")
    env["DATABASE_URL"] = database_url
    done = subprocess.run(
        [sys.executable, "-m", "ingest", "run", "--onc"],  # argparse takes an abbreviation
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("feeds: 0 ")


def _user_namespaces() -> bool:
    """Whether this machine lets the tests mount in a namespace of their own (`unshare -rm`)."""
    if shutil.which("unshare") is None:
        return False
    done = subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=30)
    return done.returncode == 0


def _on_a_read_only_root(command: list[str], writable: list[Path]) -> list[str]:
    """`command` run with the root filesystem read-only but for the directories `writable` (a
    container run with `--read-only` and its volumes), in a mount namespace of its own."""
    binds = "".join(f"mount --bind {d} {d}; " for d in writable)
    script = f'set -e; {binds}mount -o remount,bind,ro /; exec "$@"'
    return ["unshare", "-rm", "sh", "-c", script, "sh", *command]


@pytest.mark.integration
@pytest.mark.skipif(not _user_namespaces(), reason="needs unshare -rm (user namespaces)")
def test_a_read_only_root_without_a_writable_tmp_is_one_line(tmp_path: Path) -> None:
    """`ingest run` on a read-only root filesystem with no writable temporary directory (a
    container run with `--read-only` and no tmpfs on /tmp) says so in one line, with the way
    out, exit 1 (was: a traceback from the fork server's start, which has its socket there)."""
    env = _env(INGEST_DATA_DIR=str(tmp_path), PYTHONDONTWRITEBYTECODE="1")
    env.pop("TMPDIR", None)
    done = subprocess.run(
        _on_a_read_only_root([sys.executable, "-m", "ingest", "run"], [tmp_path]),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("ingest: no writable temporary directory"), done.stderr
    assert "--tmpfs /tmp" in done.stderr
    assert len(done.stderr.splitlines()) == 1


@pytest.mark.integration
def test_a_temporary_directory_too_long_for_the_pool_s_socket_is_one_line(tmp_path: Path) -> None:
    """`ingest run --once` with a TMPDIR whose path the fork server's socket outgrows (a Unix
    socket's address holds 107 bytes) says so in one line, with the way out, exit 1 (was: a
    traceback from the fork server's start, `OSError: AF_UNIX path too long`)."""
    long = tmp_path / ("t" * (LONGEST_TEMPORARY_DIRECTORY - len(str(tmp_path))))
    long.mkdir()
    assert len(str(long)) == LONGEST_TEMPORARY_DIRECTORY + 1
    env = _env(INGEST_DATA_DIR=str(tmp_path), TMPDIR=str(long), PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run(
        [sys.executable, "-m", "ingest", "run", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr == f"ingest: {temporary_directory_too_long(str(long))}\n"


@pytest.mark.integration
@pytest.mark.skipif(not _user_namespaces(), reason="needs unshare -rm (user namespaces)")
def test_a_read_only_root_with_a_writable_tmp_runs(database_url: str, tmp_path: Path) -> None:
    """With the root filesystem read-only but for a temporary directory and the data directory
    (`docker run --read-only --tmpfs /tmp -v data:/data`), a pass of `ingest run` works. The
    temporary directory is a short path of its own: the fork server's socket in it must fit the
    108 bytes of a Unix socket's address, which pytest's numbered directories can outgrow."""
    data = tmp_path / "data"
    data.mkdir()
    tmp = Path(tempfile.mkdtemp(prefix="ingest-ro-", dir="/tmp"))
    env = _env(INGEST_DATA_DIR=str(data), TMPDIR=str(tmp), PYTHONDONTWRITEBYTECODE="1")
    env["DATABASE_URL"] = database_url
    try:
        done = subprocess.run(
            _on_a_read_only_root([sys.executable, "-m", "ingest", "run", "--once"], [data, tmp]),
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("feeds: 0 ")


@pytest.mark.parametrize("argv", [["ingest", "run"], ["ingest", "feeds", "list"]])
def test_sigterm_is_handled_before_the_first_import(
    monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    """The command's SIGTERM (and SIGHUP) handler is in place before anything is imported or
    spawned: a container's PID 1, which the kernel spares every signal it has no handler for,
    stopped (`docker stop`) while it imports its stack (a second on a busy machine) exits 143
    (was: the signal ignored, the service started and ran on until Docker's SIGKILL, its feeds
    leased)."""
    import signal

    from ingest import launcher

    seen: list[tuple[object, object]] = []

    def handlers() -> tuple[object, object]:
        return signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)

    def first_thing(*, serving: bool) -> str:
        seen.append(handlers())
        raise SystemExit(0)

    def first_import() -> None:
        seen.append(handlers())
        raise SystemExit(0)

    previous = handlers()
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(launcher, "_refused_settings", first_thing)
    monkeypatch.setattr(launcher, "_lighten_imports", first_import)
    try:
        with pytest.raises(SystemExit):
            launcher.main()
    finally:
        signal.signal(signal.SIGTERM, previous[0])  # type: ignore[arg-type]
        signal.signal(signal.SIGHUP, previous[1])  # type: ignore[arg-type]
    assert seen
    # SIGHUP (a terminal hung up while the command starts) ends it as SIGTERM does, exit 129
    # (was: the signal's default action, killed on the spot, nothing cleaned up).
    for sig, code, handler in zip((signal.SIGTERM, signal.SIGHUP), (143, 129), seen[0]):
        assert callable(handler)
        with pytest.raises(SystemExit) as ended:
            handler(sig, None)
        assert ended.value.code == code


def test_sigterm_while_the_event_loop_is_made_leaves_no_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGTERM just as a command makes its event loop (the signal is handled at once, between
    two steps of that making) ends the command, exit 143, without the traceback of a loop
    half made (`Exception ignored in BaseEventLoop.__del__`, `'_UnixSelectorEventLoop' object
    has no attribute '_ssock'`) nor the warning of a coroutine never awaited, both text lines
    among the JSON ones."""
    import gc
    import selectors
    import signal

    from ingest import cli
    from ingest.config import Settings
    from ingest.launcher import terminated

    made = selectors.DefaultSelector

    def interrupted() -> selectors.BaseSelector:
        os.kill(os.getpid(), signal.SIGTERM)
        return made()

    async def command(dsn: str) -> int:
        return 0

    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    monkeypatch.setattr(selectors, "DefaultSelector", interrupted)
    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        with pytest.raises(SystemExit) as ended:
            cli._run(command, Settings(database_url="postgresql://127.0.0.1:1/never"))
        gc.collect()  # what a loop half made, or a coroutine never run, says as it goes
    finally:
        signal.signal(signal.SIGTERM, previous)
        monkeypatch.undo()
    assert ended.value.code == 143
    assert unraisable == []
