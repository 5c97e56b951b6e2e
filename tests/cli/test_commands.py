"""The `ingest` command line as a subprocess against a fresh database: feeds add/list/remove/
import, migrate, the reserved backfill, configuration errors and exit codes (README, "Command
line": 0 success, 1 the command cannot work with one line on stderr, 2 usage)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import psycopg
import pytest

from ingest import __version__
from tests.support.paths import ROOT
from tests.support.processes import wait_until
from tests.support.relay import SilentRelay

pytestmark = pytest.mark.integration

F1 = "https://one.example/feed/"
F2 = "https://two.example/rss.xml"
F3 = "http://three.example/atom"
# Nothing listens on port 1 of loopback: commands that must not need the database get this.
NOWHERE = "postgresql://postgres@127.0.0.1:1/nothing"


def _env(dsn: str, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("INGEST_") and k not in ("DATABASE_URL", "XDG_DATA_HOME")
    }
    env["DATABASE_URL"] = dsn  # never unset: that would start the embedded server
    env["INGEST_LOG_FORMAT"] = "json"
    env.update(extra)
    return env


def ingest(
    dsn: str, *args: str, stdin: str | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingest.cli", *args],
        input=stdin,
        env=_env(dsn, **extra),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _feed_urls(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT url FROM news.feeds ORDER BY id").fetchall()]


def _error_lines(stderr: str) -> list[str]:
    """stderr lines that are not JSON log events."""
    return [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("{")]


# --- feeds -----------------------------------------------------------------------------------


def test_feeds_add_list_remove(database_url: str) -> None:
    """add registers (present when already there), list shows every feed, remove deletes one."""
    added = ingest(database_url, "feeds", "add", F1, F2)
    assert added.returncode == 0, added.stderr
    assert f"added   {F1}" in added.stdout
    assert f"added   {F2}" in added.stdout

    again = ingest(database_url, "feeds", "add", F1)
    assert again.returncode == 0, again.stderr
    assert f"present {F1}" in again.stdout
    assert _feed_urls(database_url) == [F1, F2]

    listed = ingest(database_url, "feeds", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 2
    assert F1 in lines[0]
    assert "never fetched" in lines[0]
    assert F2 in lines[1]

    removed = ingest(database_url, "feeds", "remove", F1)
    assert removed.returncode == 0, removed.stderr
    assert _feed_urls(database_url) == [F2]


def test_feeds_add_of_a_url_in_the_feed_scheme_registers_its_http_url(database_url: str) -> None:
    """A URL in the `feed:` URI scheme given to `feeds add` (`feed://host/rss`,
    `feed:https://host/rss`, copied from a page's feed link or a browser's address bar) is
    the http(s) URL it stands for, as in a page or an OPML file
    (`normalize.without_feed_scheme`); `feeds remove` names it so too (it was a usage error,
    "not an http(s) URL", exit 2)."""
    added = ingest(
        database_url, "feeds", "add", "--no-discover", "feed://one.example/feed/", f"feed:{F2}"
    )
    assert added.returncode == 0, added.stderr
    assert _feed_urls(database_url) == ["http://one.example/feed/", F2]
    removed = ingest(database_url, "feeds", "remove", f"FEED:{F2}")
    assert removed.returncode == 0, removed.stderr
    assert _feed_urls(database_url) == ["http://one.example/feed/"]


def test_feeds_add_non_http_is_one_line_error(database_url: str) -> None:
    """A non-http(s) URL is a usage error (exit 2) naming it on one line after the usage;
    nothing is added, not even the valid URLs given with it."""
    proc = ingest(database_url, "feeds", "add", F1, "ftp://files.example/feed")
    assert proc.returncode == 2
    errors = _error_lines(proc.stderr)
    assert len(errors) == 2
    assert errors[0].startswith("usage: ingest feeds add")
    assert "ftp://files.example/feed" in errors[1]
    assert _feed_urls(database_url) == []


def test_feeds_remove_unknown(database_url: str) -> None:
    """Removing a feed that is not registered exits 1 with one line on stderr."""
    proc = ingest(database_url, "feeds", "remove", "https://unknown.example/feed")
    assert proc.returncode == 1
    errors = _error_lines(proc.stderr)
    assert len(errors) == 1
    assert "https://unknown.example/feed" in errors[0]


def test_feeds_import_opml_lines_and_stdin(database_url: str, tmp_path: Path) -> None:
    """import reads an OPML file, a URL-a-line file, and `-` for stdin; feeds already present
    are reported, not duplicated."""
    opml = tmp_path / "subscriptions.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><body><outline text="News">'
        f'<outline xmlUrl="{F1}"/><outline xmlUrl="{F2}"/></outline></body></opml>',
        encoding="utf-8",
    )
    listing = tmp_path / "feeds.txt"
    listing.write_text(f"# mine\n{F2}\n\n{F3}\n", encoding="utf-8")

    proc = ingest(database_url, "feeds", "import", str(opml))
    assert proc.returncode == 0, proc.stderr
    assert "2 added, 0 already present" in proc.stdout

    proc = ingest(database_url, "feeds", "import", str(listing))
    assert proc.returncode == 0, proc.stderr
    assert f"present {F2}" in proc.stdout
    assert "1 added, 1 already present" in proc.stdout

    proc = ingest(database_url, "feeds", "import", "-", stdin=f"{F1}\n{F3}\n")
    assert proc.returncode == 0, proc.stderr
    assert "0 added, 2 already present" in proc.stdout
    assert _feed_urls(database_url) == [F1, F2, F3]


def test_feeds_import_keeps_the_valid_lines_and_names_the_bad_ones(
    database_url: str, tmp_path: Path
) -> None:
    """One bad line does not reject the file: the valid URLs are registered, each rejected
    line is named with its number on stderr, and the exit status is 1."""
    listing = tmp_path / "feeds.txt"
    listing.write_text(f"{F1}\n# a comment\nftp://files.example/feed\n{F2}\n", encoding="utf-8")
    proc = ingest(database_url, "feeds", "import", str(listing))
    assert proc.returncode == 1
    assert "2 added, 0 already present" in proc.stdout
    errors = _error_lines(proc.stderr)
    assert len(errors) == 1
    assert f"{listing}:3: not an http(s) URL" in errors[0]
    assert _feed_urls(database_url) == [F1, F2]


def test_feeds_import_invalid_opml(database_url: str, tmp_path: Path) -> None:
    """A broken OPML file is refused with exit 1 and one line on stderr."""
    bad = tmp_path / "broken.opml"
    bad.write_bytes(b'<?xml version="1.0"?><opml><body><outline xmlUrl="x">')
    proc = ingest(database_url, "feeds", "import", str(bad))
    assert proc.returncode == 1
    assert len(_error_lines(proc.stderr)) == 1
    assert _feed_urls(database_url) == []


def test_feeds_import_missing_file(tmp_path: Path) -> None:
    """A file that does not exist is a one-line error with exit 1, not a traceback."""
    proc = ingest(NOWHERE, "feeds", "import", str(tmp_path / "nope.opml"))
    assert proc.returncode == 1
    errors = _error_lines(proc.stderr)
    assert len(errors) == 1
    assert "nope.opml" in errors[0]


# --- other commands --------------------------------------------------------------------------


def test_migrate_on_migrated_database(database_url: str) -> None:
    """migrate on an up-to-date database applies nothing and says so."""
    proc = ingest(database_url, "migrate")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "applied 0 migration(s)"


def test_a_database_url_ending_in_a_newline_is_the_database_it_names(database_url: str) -> None:
    """A DATABASE_URL with the newline a secret file ends in (a Kubernetes secret made from a
    file) names the same database: `migrate` finds it migrated."""
    part = psycopg.conninfo.conninfo_to_dict(database_url)
    url = f"postgresql://{part.get('user', 'postgres')}@{part['host']}:{part.get('port', 5432)}"
    proc = ingest(f"{url}/{part['dbname']}\n", "migrate")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "applied 0 migration(s)"


def test_backfill_without_target_is_a_usage_error() -> None:
    """backfill with neither a TARGET nor --urls exits 2 with its usage and the reason on
    stderr, before touching the database."""
    proc = ingest(NOWHERE, "backfill")
    assert proc.returncode == 2
    errors = _error_lines(proc.stderr)
    assert errors[0].startswith("usage: ingest backfill ")
    assert errors[-1].startswith("ingest backfill: error: give a TARGET")


def test_bad_config_value() -> None:
    """An invalid setting exits 1 with one line on stderr naming the variable."""
    proc = ingest(NOWHERE, "feeds", "list", INGEST_WORKERS="0")
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "INGEST_WORKERS" in lines[0]


def test_a_mistyped_variable_is_named_at_start_up(database_url: str) -> None:
    """A mistyped variable (INGEST_HOST_DELAYS for INGEST_HOST_DELAY) is no setting, and the
    command does its work without it; a warning at start-up names it and the setting it
    likely means, so that the operator learns that the value is not in force."""
    proc = ingest(database_url, "migrate", INGEST_HOST_DELAYS="5")
    assert proc.returncode == 0, proc.stderr
    warnings = [
        json.loads(line) for line in proc.stderr.splitlines() if '"config_unknown_variable"' in line
    ]
    assert len(warnings) == 1, proc.stderr
    assert warnings[0]["level"] == "warning"
    assert warnings[0]["variable"] == "INGEST_HOST_DELAYS"
    assert warnings[0]["did_you_mean"] == "INGEST_HOST_DELAY"


def test_database_unreachable() -> None:
    """A database nobody answers for is a one-line error with exit 1."""
    proc = ingest(NOWHERE, "feeds", "list")
    assert proc.returncode == 1
    lines = _error_lines(proc.stderr)
    assert len(lines) == 1
    assert "unreachable" in lines[0]


def test_http_port_in_use_is_one_line(database_url: str) -> None:
    """`ingest run` whose INGEST_HTTP_PORT is taken says so in one line and exits 1 (no
    traceback), as every start-up failure does."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        proc = ingest(database_url, "run", INGEST_HTTP_PORT=port, INGEST_HTTP_HOST="127.0.0.1")
    assert proc.returncode == 1
    lines = _error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in lines[0]
    assert "Traceback" not in proc.stderr


def test_version() -> None:
    """--version prints the package version and exits 0."""
    proc = ingest(NOWHERE, "--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"news-ingest {__version__}"


def test_usage_error_exits_2() -> None:
    """A usage error (feeds add without a URL) exits 2 before touching the database."""
    proc = ingest(NOWHERE, "feeds", "add")
    assert proc.returncode == 2
    assert "usage:" in proc.stderr


@pytest.mark.parametrize("limit", ["0", "-5", "9223372036854775808", "1" + "0" * 30])
def test_articles_limit_below_one_is_a_usage_error(limit: str) -> None:
    """`articles --limit` below 1, or beyond PostgreSQL's bigint, exits 2 with usage, as
    `backfill --limit` does and as the README's exit statuses say of usage errors (it exited 1;
    a huge one with the database's "bigint out of range")."""
    proc = ingest(NOWHERE, "articles", "--limit", limit)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr
    assert "--limit" in proc.stderr


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        pytest.param(["feeds", "text-mode", F1, "always"], "invalid choice", id="text-mode"),
        pytest.param(["feeds", "set", F1, "bad=1"], "unknown setting", id="set-key"),
        pytest.param(["feeds", "set", F1, "min_interval=soon"], "min_interval", id="set-value"),
        pytest.param(
            ["feeds", "set", F1, "min_interval=2h", "max_interval=1h"], "below", id="set-bounds"
        ),
        pytest.param(["feeds", "set", F1, "pages=sometimes"], "always, never", id="set-pages"),
        pytest.param(["feeds", "set", "ftp://f.example/x", "tags=a"], "http(s)", id="set-url"),
        pytest.param(["feeds", "add", F1, "ftp://f.example/x"], "http(s)", id="add"),
        pytest.param(["feeds", "show", "feed.example/rss"], "http(s)", id="show"),
        pytest.param(["feeds", "enable", "ftp://f.example/x"], "http(s)", id="enable"),
        pytest.param(["feeds", "disable", ""], "http(s)", id="disable"),
        pytest.param(["feeds", "remove", "mailto:a@b.example"], "http(s)", id="remove"),
        pytest.param(["articles", "--feed", ""], "http(s)", id="articles-feed"),
        pytest.param(["feeds", "show", "0"], "an id is at least 1", id="id-0"),
        pytest.param(["feeds", "remove", "9" * 20], "an id is at most", id="id-huge"),
        pytest.param(["articles", "--feed", "0"], "an id is at least 1", id="articles-id-0"),
        pytest.param(["articles", "--since", "yesterday-ish"], "not a time", id="since"),
        pytest.param(["articles", "--since", ""], "not a time", id="since-empty"),
        pytest.param(["articles", "--since", "99999999w"], "before year 1", id="since-far"),
        pytest.param(["articles", "--site", ""], "no site", id="site-empty"),
        pytest.param(["articles", "--site", "  "], "no site", id="site-blank"),
    ],
)
def test_a_bad_argument_is_a_usage_error_whatever_the_command(args: list[str], reason: str) -> None:
    """A value the command line cannot take (an unknown `feeds set` key or a bad value, a feed
    URL that is not http(s), `articles --since` that is no time) exits 2 with the usage and the
    reason, before touching the database, as argparse does for `feeds text-mode URL always` and
    as the README's exit statuses say of usage errors (was: exit 1, as a database outage is,
    for `feeds set` and `articles`; for a URL, only once the database answered)."""
    proc = ingest(NOWHERE, *args)
    assert (proc.returncode, proc.stdout) == (2, ""), proc.stderr
    assert "usage: ingest" in proc.stderr
    assert reason in proc.stderr
    assert "unreachable" not in proc.stderr


@pytest.mark.parametrize(
    ("dsn", "secret"),
    [
        pytest.param(
            "postgresql://postgres:pa%ss-w0rd@127.0.0.1:1/x", "pa%ss-w0rd", id="bad-escape"
        ),
        pytest.param("postgresql://postgres:s3cr@tPW@127.0.0.1:1/x", "s3cr", id="unescaped-at"),
        pytest.param("postgresql:/postgres:hunter2@127.0.0.1/x", "hunter2", id="malformed"),
    ],
)
def test_bad_database_url_never_shows_the_password(dsn: str, secret: str) -> None:
    """A DATABASE_URL that does not parse, or whose password leaks into libpq's message, gives
    one line on stderr with exit 1 and no trace of the password anywhere."""
    proc = ingest(dsn, "run", "--once")
    assert proc.returncode == 1
    assert len(_error_lines(proc.stderr)) == 1
    assert secret not in proc.stderr
    assert secret not in proc.stdout


def test_all_without_once_is_a_usage_error() -> None:
    """`run --all` without `--once` exits 2 with usage help."""
    proc = ingest(NOWHERE, "run", "--all")
    assert proc.returncode == 2
    errors = _error_lines(proc.stderr)
    assert errors[0].startswith("usage: ingest run ")
    assert errors[-1] == "ingest run: error: --all only makes sense with --once"


# --- the `ingest` command's entry point ----------------------------------------------------------

ENTRY = "import sys; from ingest.launcher import main; sys.exit(main())"


def _processes_marked(mark: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("INGEST_TEST_MARK") == mark:
                found.append(proc)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def _entry(dsn: str, *args: str) -> tuple[subprocess.CompletedProcess[str], list[psutil.Process]]:
    """`ingest ARGS` through the console script's entry point; and the processes it started
    that are still alive 5 s after it exited (they inherit a mark in their environment)."""
    mark = uuid.uuid4().hex
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY, *args],
        env=_env(dsn, INGEST_TEST_MARK=mark),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    deadline = time.monotonic() + 5
    while (left := _processes_marked(mark)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return proc, left


def test_entry_run_once_leaves_no_process_behind(database_url: str) -> None:
    """`ingest run` spawns the worker pool's fork server before its own imports (ingest.launcher);
    the pass works with it, and the fork server and its workers exit with the command."""
    proc, left = _entry(database_url, "run", "--once")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("feeds: 0 (0 ok")
    assert left == []


def test_entry_run_with_database_unreachable_leaves_no_process_behind() -> None:
    """The fork server is already running when the database check fails: the command still
    fails with its one line, and takes the fork server with it."""
    proc, left = _entry(NOWHERE, "run", "--once")
    assert proc.returncode == 1
    lines = _error_lines(proc.stderr)
    assert len(lines) == 1
    assert "unreachable" in lines[0]
    assert left == []


def test_entry_passes_other_commands_to_the_cli() -> None:
    proc, left = _entry(NOWHERE, "--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"news-ingest {__version__}"
    assert left == []


def test_entry_ctrl_c_during_start_up_is_one_quiet_exit(database_url: str) -> None:
    """Ctrl-C (SIGINT to the whole process group) while `ingest run` is still importing and
    the fork server still preloading: the command exits 130 without a traceback, the fork
    server prints none either, and nothing is left running."""
    mark = uuid.uuid4().hex
    proc = subprocess.Popen(
        [sys.executable, "-c", ENTRY, "run", "--once"],
        env=_env(database_url, INGEST_TEST_MARK=mark),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    # The fork server spawned (the entry point's first act): the imports are under way. A
    # fixed pause could land, on a loaded machine, before the interpreter ran a line of the
    # entry point, where no program can handle the signal yet.
    deadline = time.monotonic() + 30
    while len(_processes_marked(mark)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    deadline = time.monotonic() + 5
    while _processes_marked(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_marked(mark) == []


# --- output ----------------------------------------------------------------------------------


def _many_feeds(dsn: str, n: int) -> None:
    """`n` feeds with long URLs: a listing of them is larger than a pipe's buffer."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ingest.feeds (url) SELECT 'https://host-' || k || '.example/'"
            " || repeat('long-path/', 8) || 'feed.xml' FROM generate_series(1, %s) AS k",
            (n,),
        )


def test_a_reader_that_stops_early_ends_the_listing_quietly(database_url: str) -> None:
    """`ingest feeds list | head -1`: the reader closes the pipe after one line; the command
    stops writing and exits as a program killed by SIGPIPE would (141), without a traceback."""
    _many_feeds(database_url, 3000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "feeds", "list"],
        env=_env(database_url),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline()
    proc.stdout.close()
    _, stderr = proc.communicate(timeout=60)
    assert _error_lines(stderr.decode()) == []
    assert proc.returncode == 141


def _as_pid_1() -> list[str]:
    """A prefix running a command as PID 1 of a new PID namespace, as a container's entry
    point runs (none where this machine does not allow one: the command runs as it is)."""
    unshare = shutil.which("unshare")
    prefix = [unshare, "--pid", "--fork", "--mount-proc"] if unshare else []
    if os.geteuid() != 0 and prefix:
        prefix[1:1] = ["--user", "--map-root-user"]
    if prefix and subprocess.run([*prefix, "true"], capture_output=True).returncode != 0:
        return []
    return prefix


def _catches(pid: int, signum: int) -> bool:
    """Whether the process has a handler for the signal (Linux: SigCgt in /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) >> (signum - 1) & 1)


def test_sigterm_ends_any_command_as_pid_1(database_url: str) -> None:
    """`docker stop` of `docker run IMAGE feeds import -` (or `migrate`, `articles`...): the
    command is its container's PID 1, which the kernel spares every signal it has no handler
    for. It exits 143 at once, without a traceback (was: SIGTERM ignored, killed 10 s later)."""
    command = [sys.executable, "-m", "ingest.cli", "feeds", "import", "-"]
    prefix = _as_pid_1()
    with subprocess.Popen(
        [*prefix, *command],
        env=_env(database_url),
        cwd=ROOT,
        stdin=subprocess.PIPE,  # left open: the command waits on it
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        ingest_process = psutil.Process(proc.pid)
        try:
            deadline = time.monotonic() + 30
            while prefix and ingest_process.pid == proc.pid:  # the command is unshare's child
                assert time.monotonic() < deadline, "the command did not start"
                children = psutil.Process(proc.pid).children()
                ingest_process = children[0] if children else ingest_process
                time.sleep(0.05)
            while not _catches(ingest_process.pid, signal.SIGTERM):
                assert time.monotonic() < deadline, "SIGTERM has no handler: PID 1 ignores it"
                time.sleep(0.05)
            ingest_process.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)  # stdin still open: only the signal can end the command
            except subprocess.TimeoutExpired:
                pytest.fail("SIGTERM ignored")
        finally:
            for process in (ingest_process, proc):
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.kill()
            proc.wait()
        assert proc.stderr is not None
        stderr = proc.stderr.read()
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr


def test_output_to_a_full_device_is_one_line_and_exit_1(database_url: str) -> None:
    """stdout on a device that takes nothing (/dev/full): one line, exit 1, no traceback."""
    _many_feeds(database_url, 10)
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "ingest.cli", "feeds", "export"],
            env=_env(database_url),
            cwd=ROOT,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert _error_lines(done.stderr) == ["ingest: cannot write the output: No space left on device"]
    assert done.returncode == 1


@pytest.mark.parametrize("port", ["bad", "70000"])
@pytest.mark.parametrize("command", [["feeds", "add"], ["backfill"]])
def test_a_url_with_a_port_no_connection_can_have_is_a_usage_error(
    database_url: str, command: list[str], port: str
) -> None:
    """A URL argument whose port is no number or over 65535 is refused as any URL that is no
    http(s) URL is (exit 2, one line naming it), not registered to fail at every poll, nor
    fetched."""
    proc = ingest(database_url, *command, f"https://example.com:{port}/feed.xml")
    assert proc.returncode == 2, proc.stderr
    assert f"example.com:{port}" in _error_lines(proc.stderr)[-1]
    assert _feed_urls(database_url) == []


def test_an_error_quoting_a_private_url_shows_no_credential(database_url: str) -> None:
    """A command that fails on a URL given with a user-info (`backfill` of a host name no
    request can be made to) names it without the credential on stderr, as the stored errors
    and the log lines do."""
    proc = ingest(database_url, "backfill", "https://reader:S3cret@ex\u2488ample.com/sitemap.xml")
    assert proc.returncode == 1, proc.stderr
    assert "ex\u2488ample.com" in _error_lines(proc.stderr)[-1]
    assert "S3cret" not in proc.stderr


WATCHED_COMMAND = """
import sys
from ingest.store import db
db.MIGRATION_PROBE_SECONDS = 0.2  # the watch's pace, as the migrations' test sets it
db.MIGRATION_SILENCE_SECONDS = 2.0
from ingest.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_command_whose_database_goes_silent_ends_with_one_line(database_url: str) -> None:
    """The database's network drops every packet (no reset: a partition, a firewall rule, a
    server stopped without being killed) while `feeds disable` waits on it: once it has
    answered nothing for the silence allowed (60 s, 2 s here), the command ends with one
    line saying so, exit 1 (was: it waited for ever, its query on a connection that nothing
    answered any more)."""
    url = "https://silent.example/feed.xml"
    assert ingest(database_url, "feeds", "add", "--no-discover", url).returncode == 0
    info = psycopg.conninfo.conninfo_to_dict(database_url)
    relay = SilentRelay((str(info.get("host", "127.0.0.1")), int(str(info.get("port", 5432)))))
    dsn = psycopg.conninfo.make_conninfo(database_url, host="127.0.0.1", port=str(relay.port))
    proc = None
    try:
        with psycopg.connect(database_url) as holder:
            # The feed's row locked: the command's update waits on it, the server answering.
            holder.execute("SELECT 1 FROM ingest.feeds FOR UPDATE")
            proc = subprocess.Popen(
                [sys.executable, "-c", WATCHED_COMMAND, "feeds", "disable", url],
                env=_env(dsn),
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            blocked = wait_until(lambda: _blocked_by(database_url, holder.info.backend_pid), 60)
            relay.silence()
            try:
                _, stderr = proc.communicate(timeout=60)
            finally:
                holder.rollback()
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.communicate()
        relay.close()
    assert blocked
    assert proc.returncode == 1, stderr
    lines = _error_lines(stderr)
    assert len(lines) == 1, stderr
    assert lines[0].startswith("ingest: the database answered nothing for 2 s"), lines


def _blocked_by(dsn: str, pid: int) -> bool:
    """Whether a session waits on a lock the session `pid` holds."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY (pg_blocking_pids(pid))",
            (pid,),
        ).fetchone()
    return bool(row and row[0])


def test_a_read_only_database_refuses_the_commands_that_write_with_one_line(
    database_url: str,
) -> None:
    """A database that takes no writes (a hot standby replica, or default_transaction_read_only
    set for it): the commands that only read work; those that write end with one line saying
    the database is read-only, exit 1, no traceback (was: psycopg's class name and message
    alone, `ReadOnlySqlTransaction: cannot execute INSERT in a read-only transaction`)."""
    assert ingest(database_url, "feeds", "add", "--no-discover", F1).returncode == 0
    dbname = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{dbname}" SET default_transaction_read_only = on')
    for reading in (["migrate"], ["feeds", "list"], ["articles"]):
        done = ingest(database_url, *reading)
        assert done.returncode == 0, (reading, done.stderr)
    for writing in (
        ["feeds", "add", "--no-discover", F2],
        ["feeds", "disable", "1"],
        ["run", "--once"],
    ):
        done = ingest(database_url, *writing)
        lines = _error_lines(done.stderr)
        assert done.returncode == 1, (writing, done.stderr)
        assert len(lines) == 1, (writing, done.stderr)
        assert lines[0].startswith("ingest: the database is read-only"), (writing, lines)
    assert _feed_urls(database_url) == [F1]
