"""The header every bench prints (command, machine, project revision), number helpers, and
the steps of a bench that go on after one fails."""

import argparse
import contextlib
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, is_dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import psutil

from lib import ROOT
from lib.db import ADMIN_DSN, server_settings

T = TypeVar("T")


def revision() -> str:
    """The commit of this checkout, with `+dirty` when the product (ingest/, jobs/, sql/,
    pyproject.toml) differs from it: others may commit while a bench runs."""
    git = ["git", "-C", str(ROOT)]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        product = ["--", "ingest", "jobs", "sql", "pyproject.toml"]
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "-uno", *product], capture_output=True, text=True
        )
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    return "unknown"


def header(prog: str, admin_dsn: str | None = None, *, subprocesses: bool = True) -> dict[str, Any]:
    """Print the command, the machine, the project's revision (and where `ingest` processes
    import it from: PYTHONPATH may point them at another checkout), the PostgreSQL server's
    version and settings; the same facts as a dict, for --json."""
    model = ""
    with contextlib.suppress(OSError):
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
        model = next(
            (x.split(":", 1)[1].strip() for x in cpuinfo if x.startswith("model name")), ""
        )
    info = {
        "command": shlex.join(sys.orig_argv), "cpus": os.cpu_count(),
        "usable": len(os.sched_getaffinity(0)), "cpu_model": model,
        "load": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "postgresql": server_settings(admin_dsn, prog) if admin_dsn else {},
        **{name: metadata.version(name) for name in ("trafilatura", "httpx", "psycopg")},
        "project": revision(),
    }  # fmt: skip
    if subprocesses:
        # Where `ingest` and its SQL come from: the editable install maps `ingest.sql` to this
        # checkout's sql/ even for code imported from another tree (bench/README.md).
        code = (
            "import ingest, ingest.sql, pathlib;"
            " print(pathlib.Path(ingest.__file__).parent.parent);"
            " print(pathlib.Path(ingest.sql.__file__).resolve().parent.parent)"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
        probe = subprocess.run(
            [sys.executable, "-c", code], env=env, cwd="/", capture_output=True, text=True
        )
        lines = probe.stdout.split()
        source = lines[0] if lines else probe.stderr.strip()[-200:]
        info["project"] += (
            f" ({source})" if Path(source).resolve() == ROOT else f"; `ingest` from {source}"
        )
        if len(lines) > 1 and Path(lines[1]) != Path(source).resolve():
            info["project"] += f"; its SQL from {lines[1]}/sql"
    print(
        f"command: {info['command']}\nmachine: {info['cpus']} cpus ({info['usable']} usable,"
        f" {model}), load {info['load']}, {info['memory_gb']} GB; Python {info['python']}"
        f" ({info['platform']}); trafilatura {info['trafilatura']}, httpx {info['httpx']},"
        f" psycopg {info['psycopg']}; project at {info['project']}",
    )
    if pg := info["postgresql"]:
        print("postgresql: " + ", ".join(f"{k}={v}" for k, v in pg.items()), flush=True)
    return info


def med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt_range(values: Sequence[float], digits: int = 0) -> str:
    """The median (min-max)."""
    lo, hi = (min(values), max(values)) if values else (0.0, 0.0)
    return f"{med(values):.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})" if values else "-"


def pct(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1), linear interpolation between order statistics."""
    s, pos = sorted(values), q * (len(values) - 1)
    lo, hi = (s[int(pos)], s[min(int(pos) + 1, len(s) - 1)]) if s else (float("nan"),) * 2
    return lo + (hi - lo) * (pos - int(pos))


def table(rows: Sequence[Sequence[Any]], left: int = 1) -> list[str]:
    """Rows of cells (the header rows first) as aligned lines: the first `left` columns
    left-aligned, the others right-aligned."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(max(map(len, cells)))]
    pad = [[c.ljust(widths[i]) if i < left else c.rjust(widths[i]) for i, c in enumerate(r)]
           for r in cells]  # fmt: skip
    return ["  ".join(r).rstrip() for r in pad]


def write_json(path: str | None, payload: Any) -> None:
    def plain(o: Any) -> Any:
        return asdict(o) if is_dataclass(o) and not isinstance(o, type) else str(o)

    if path:
        Path(path).write_text(json.dumps(payload, indent=2, default=plain) + "\n")
        print(f"figures written to {path}")


class Steps:
    """Runs the steps of a bench: a step that raises is reported (traceback on stderr) and
    recorded in `failures`, and the bench goes on; a result with a `line()` is printed."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def __call__(self, name: str, fn: Callable[..., T], *args: Any, **kw: Any) -> T | None:
        t0 = time.perf_counter()
        try:
            result = fn(*args, **kw)
        except Exception as e:
            self.failures.append(f"{name}: {type(e).__name__}: {e}")
            print(f"  {name}: FAILED ({type(e).__name__}: {e})", file=sys.stderr, flush=True)
            traceback.print_exc()
            return None
        line = (
            result.line()
            if hasattr(result, "line")
            else f"done in {time.perf_counter() - t0:.1f} s"
        )
        print(f"  {name:<26} {line}", flush=True)
        return result


SHARED = {
    "feeds": "RSS feeds",
    "hosts": "loopback hosts (at most 10,000)",
    "entries": "items per feed",
}
SHARED |= {"workers": "INGEST_WORKERS", "repeat": "runs of each"}


def parser(prog: str, doc: str | None, **defaults: Any) -> argparse.ArgumentParser:
    """A parser with the options the benches share, at these defaults (`feeds=1000`: --feeds,
    1000 unless given), --admin-url and --json; `check` it after parsing."""
    p = argparse.ArgumentParser(prog=prog, description=doc)
    for name, default in defaults.items():
        p.add_argument(
            f"--{name}", type=int, default=default, help=f"{SHARED[name]} (default {default})"
        )
    p.add_argument("--admin-url", default=ADMIN_DSN, help="PostgreSQL admin DSN")
    p.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    return p


def check(p: argparse.ArgumentParser, args: argparse.Namespace, *names: str) -> None:
    """Exit with a usage error unless these options are positive and --hosts at most 10,000."""
    if (
        min(getattr(args, n.replace("-", "_")) for n in names) <= 0
        or getattr(args, "hosts", 1) > 10_000
    ):
        p.error(f"--{', --'.join(names)} must be positive, --hosts at most 10,000")
