"""`ingest` processes: commands run to completion, `run --once` and services in their own
process group (SIGKILL to what is left of the group at the end), and a sampler of the CPU and
memory of every process working for a measurement."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from lib import ROOT
from lib.db import dbname
from lib.logs import Log, read_log
from lib.web import cpu_of, free_port

MB = 1024 * 1024
ROLES = ("main", "forkserver", "worker", "tracker", "profiler", "pg", "pg_aux", "site")
PG_AUX = {
    "walwriter", "checkpointer", "background writer", "autovacuum launcher", "autovacuum worker",
    "logical replication launcher", "archiver", "walsender",
}  # fmt: skip


def on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C: databases are dropped, sites and services stopped."""

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)


def ingest_command(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "ingest"
    return [*([str(script)] if script.exists() else [sys.executable, "-m", "ingest"]), *args]


_COMPILED: set[str] = set()
"""The import paths (PYTHONPATH) whose `ingest` and `jobs` were compiled (`ingest_env`)."""
_COMPILE = (
    "import compileall, pathlib, ingest, jobs;"
    " [compileall.compile_dir(pathlib.Path(m.__file__).parent, quiet=1) for m in (ingest, jobs)]"
)


def ingest_env(dsn: str, **settings: object) -> dict[str, str]:
    """This environment without its INGEST_* settings, plus the database, loopback hosts
    allowed, JSON logs, no metrics port, and `settings` (`workers=2`: INGEST_WORKERS=2).

    `ingest` imports its modules from bytecode, as in the image (pip compiles what it
    installs) and on any machine after the first run: the tree it imports from (this checkout,
    or an older one first on PYTHONPATH) is compiled once, and PYTHONDONTWRITEBYTECODE is left
    out, under which an editable checkout would compile the project on every start."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("INGEST_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    if (path := env.get("PYTHONPATH", "")) not in _COMPILED:
        subprocess.run([sys.executable, "-c", _COMPILE], env=env, cwd="/", check=True)
        _COMPILED.add(path)
    env |= {"DATABASE_URL": dsn, "INGEST_ALLOW_PRIVATE_NETWORKS": "true", "INGEST_HTTP_PORT": "0"}
    env |= {"INGEST_LOG_FORMAT": "json"}
    for k, v in settings.items():
        env[f"INGEST_{k.upper()}"] = f"{v:g}" if isinstance(v, float) else str(v)
    return env


def run_ingest(env: dict[str, str], *args: str, timeout: float = 900) -> str:
    """One `ingest` command to completion: its stdout, or an error with its stderr."""
    cmd = ingest_command(*args)
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        what = f"`ingest {' '.join(args[:2])}` exited {done.returncode}"
        raise RuntimeError(f"{what}:\n{done.stderr.strip()}")
    return done.stdout


def import_feeds(env: dict[str, str], urls: Sequence[str]) -> str:
    """`ingest migrate`, then `ingest feeds import` of a URL-a-line file: its last line."""
    run_ingest(env, "migrate")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="bench_feeds_") as f:
        f.write("\n".join(urls) + "\n")
        f.flush()
        return run_ingest(env, "feeds", "import", f.name).strip().splitlines()[-1]


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int | None, str, float]:
    """GET http://127.0.0.1:port/path: (status or None when unreachable, body, seconds)."""
    started = time.perf_counter()
    try:
        with httpx.Client(trust_env=False, timeout=timeout) as client:
            r = client.get(f"http://127.0.0.1:{port}{path}")
        return r.status_code, r.text, time.perf_counter() - started
    except httpx.HTTPError as e:
        return None, f"{type(e).__name__}: {e}", time.perf_counter() - started


def group(pgid: int) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
    return found


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def reap_group(pgid: int, wait: float) -> list[str]:
    """After a group leader exited: its group's processes still alive after `wait` seconds
    (described), then killed."""
    deadline = time.monotonic() + wait
    while (left := group(pgid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    described = []
    for p in left:
        with contextlib.suppress(psutil.Error):
            described.append(f"pid {p.pid} ({' '.join(p.cmdline())[:80]})")
    kill_group(pgid)
    return described


@dataclass
class Service:
    """One `ingest run` in its own process group (a Ctrl-C of the bench does not reach it, and
    its worker processes can be found and killed if it dies), logging to `log_path`."""

    name: str
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes]
    started: float
    exit_code: int | None = None
    exit_seconds: float | None = None
    """Seconds from SIGTERM to exit."""
    left_behind: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @classmethod
    def start(cls, env: dict[str, str], name: str, logs: Path) -> Service:
        port, log_path = free_port(), logs / f"{name}.jsonl"
        env = env | {"INGEST_HTTP_PORT": str(port), "INGEST_HTTP_HOST": "127.0.0.1"}
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                ingest_command("run"), env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        return cls(name, port, log_path, proc, time.monotonic())


def stop_services(services: Sequence[Service], grace: float = 30.0) -> None:
    """SIGTERM every live service at once; wait for each up to `grace` (its own grace period)
    plus 10 s; kill what is left of its group."""
    sent = time.monotonic()
    live = [s for s in services if s.proc.poll() is None]
    for s in live:
        s.proc.send_signal(signal.SIGTERM)
    for s in services:
        with contextlib.suppress(subprocess.TimeoutExpired):
            s.exit_code = s.proc.wait(timeout=max(sent + grace + 10 - time.monotonic(), 0.1))
            s.exit_seconds = time.monotonic() - sent if s in live else None
        if s.exit_code is not None:
            s.left_behind = reap_group(s.pid, wait=5.0)


def kill_services(services: Sequence[Service]) -> None:
    """Last resort (errors, Ctrl-C, services that did not exit): SIGKILL their groups."""
    for s in services:
        if s.proc.poll() is None or group(s.pid):
            kill_group(s.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                s.proc.wait(5)


def role_of(proc: psutil.Process, names: dict[int, str]) -> str:
    """main / forkserver / worker / tracker / profiler, for a process of an `ingest` tree."""
    try:
        cmd, parent = " ".join(proc.cmdline()), int(proc.ppid())
        roles = {"py-spy": "profiler", "resource_tracker": "tracker", "forkserver": "forkserver"}
        role = next((r for marker, r in roles.items() if marker in cmd), "main")
        if role != "forkserver" or names.get(parent) == "forkserver":
            return "worker" if role == "forkserver" else role
        return "worker" if "forkserver" in " ".join(psutil.Process(parent).cmdline()) else role
    except psutil.Error:
        return "gone"


class Sampler:
    """Every `interval` seconds, in a thread: CPU time by role (ROLES) of the tree of `tree`, of
    `pids` (role -> pids), of the PostgreSQL backends of `dsn`'s database and auxiliary processes
    (the tree and the backends from zero, the others from the first sample), as (epoch seconds,
    CPU by role) in `series`; the peak of the summed RSS of the tree and of `pids` but the site."""

    def __init__(self, *, tree: int | None = None, pids: dict[str, Sequence[int]] | None = None,
                 dsn: str | None = None, interval: float = 0.05) -> None:  # fmt: skip
        self.tree, self.pids, self.dsn, self.interval = tree, pids or {}, dsn, interval
        self.names: dict[int, str] = {}  # a "main" may be a child seen between fork and exec
        self.cpu: dict[int, float] = {}
        self.base: dict[int, float] = {}
        self.series: list[tuple[float, dict[str, float]]] = []
        self.peak_rss = 0
        self.stop, self.thread = threading.Event(), threading.Thread(target=self.loop, daemon=True)
        self.conn: psycopg.Connection[Any] | None = None

    def note(self, role: str, pid: int, value: float | None, born: bool) -> None:
        if value is not None:
            self.base.setdefault(pid, 0.0 if born else value)
            self.cpu[pid], self.names[pid] = value, role

    def sample(self) -> None:
        now, rss = time.time(), 0
        procs = [(p, role, False) for role, pids in self.pids.items() for p in pids]
        with contextlib.suppress(psutil.Error, ValueError):
            root = psutil.Process(self.tree or -1)
            procs += [(p.pid, "", True) for p in (root, *root.children(recursive=True))]
        for pid, role, born in procs:
            try:
                p = psutil.Process(pid)
                with p.oneshot():
                    times, mem = p.cpu_times(), int(p.memory_info().rss)
                if not role:
                    role = self.names.get(pid, "")
                    if not role or (role == "main" and pid != self.tree):
                        role = role_of(p, self.names)
            except psutil.Error:
                continue
            if role == "gone":  # exited between the listing and the look
                continue
            self.note(role, pid, float(times.user + times.system), born)
            rss += 0 if role == "site" else mem
        self.peak_rss = max(self.peak_rss, rss)
        with contextlib.suppress(psycopg.Error, AttributeError):
            query = "SELECT pid, backend_type, datname FROM pg_stat_activity"
            for pid, kind, db in self.conn.execute(query).fetchall():  # type: ignore[union-attr]
                if pid == self.conn.info.backend_pid:  # type: ignore[union-attr]
                    continue
                if db == dbname(self.dsn or ""):
                    self.note("pg", pid, cpu_of(pid), True)
                elif kind in PG_AUX:
                    self.note("pg_aux", pid, cpu_of(pid), False)
        totals = dict.fromkeys(ROLES, 0.0)
        for pid, value in self.cpu.items():
            totals[self.names[pid]] += value - self.base[pid]
        self.series.append((now, totals))

    def __enter__(self) -> Sampler:
        if self.dsn:
            self.conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=10)
        self.sample()
        self.thread.start()
        return self

    def loop(self) -> None:
        while not self.stop.wait(self.interval):
            self.sample()

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.sample()
        if self.conn is not None:
            self.conn.close()

    @property
    def seen(self) -> Counter[str]:
        """Processes seen, by role."""
        return Counter(self.names.values())

    @property
    def total(self) -> dict[str, float]:
        return dict(self.series[-1][1])

    def at(self, when: float) -> dict[str, float]:
        """CPU seconds by role at epoch time `when`, interpolated between samples."""
        for (t0, v0), (t1, v1) in zip(self.series, self.series[1:], strict=False):
            if t0 <= when <= t1:
                w = (when - t0) / (t1 - t0) if t1 > t0 else 1.0
                return {k: v0[k] + w * (v1[k] - v0[k]) for k in ROLES}
        return dict(self.series[0 if when <= self.series[0][0] else -1][1])

    def between(self, start: float, end: float) -> dict[str, float]:
        a, b = self.at(start), self.at(end)
        return {k: round(b[k] - a[k], 3) for k in ROLES}


@dataclass
class Once:
    """A finished `ingest run --once` and what was sampled while it ran."""

    seconds: float
    started: float
    ended: float
    out: str
    err: str
    log: Log
    sampler: Sampler

    def window(self) -> dict[str, float]:
        return self.log.window(self.started, self.ended)


def run_once(env: dict[str, str], cmd: list[str], *, site: Sequence[int] = (), timeout: float = 900,
             interval: float = 0.05) -> Once:  # fmt: skip
    """`cmd` (an `ingest run --once`, maybe profiled or instrumented) run to completion in its
    own process group, sampled with its PostgreSQL backends and the `site` processes."""
    started, t0 = time.time(), time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    dsn = env["DATABASE_URL"]
    sampler = Sampler(tree=proc.pid, pids={"site": site}, dsn=dsn, interval=interval)
    try:
        with sampler:
            out, err = proc.communicate(timeout=timeout)
    finally:
        kill_group(proc.pid)
        proc.wait()
    if proc.returncode != 0:
        tail = "\n".join(err.strip().splitlines()[-5:])
        raise RuntimeError(f"`{' '.join(cmd[-3:])}` exited {proc.returncode}:\n{tail}")
    seconds, log = time.perf_counter() - t0, read_log(err, 2000)
    return Once(seconds, started, time.time(), out, err, log, sampler)
