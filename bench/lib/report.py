"""The header every bench prints (command, machine, project revision) and number helpers."""

from __future__ import annotations

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
from lib.db import server_version

T = TypeVar("T")

PRODUCT = ("ingest", "jobs", "sql", "pyproject.toml")


def revision() -> str:
    """The commit of this checkout, with `+dirty` when the product (ingest/, jobs/, sql/,
    pyproject.toml) differs from it: others may commit while a bench runs."""
    git = ["git", "-C", str(ROOT)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no", "--", *PRODUCT],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def project_source() -> str:
    """Where `ingest` processes import the project from (PYTHONPATH may point them at another
    checkout), with the revision when it is this one."""
    code = "import ingest, pathlib; print(pathlib.Path(ingest.__file__).parent.parent)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    probe = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd="/", capture_output=True, text=True, timeout=60
    )
    if probe.returncode != 0:
        return f"unknown ({probe.stderr.strip().splitlines()[-1:]})"
    source = probe.stdout.strip()
    return (
        f"{revision()} ({source})"
        if Path(source).resolve() == ROOT
        else f"{source} (not this checkout)"
    )


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **{name: metadata.version(name) for name in ("trafilatura", "httpx", "psycopg")},
    }


def header(prog: str, admin_dsn: str | None = None, *, subprocesses: bool = True) -> dict[str, Any]:
    """Print the command and the machine (and the PostgreSQL server, and where `ingest`
    processes import the project from); the same facts as a dict, for --json."""
    info = {"command": shlex.join(sys.orig_argv), **machine()}
    if admin_dsn:
        info["postgresql"] = server_version(admin_dsn, prog)
    info["project"] = project_source() if subprocesses else revision()
    print(f"command: {info['command']}")
    print(
        f"machine: {info['cpu_count']} cpus ({info['cpus_usable']} usable, {info['cpu_model']}),"
        f" load {info['load_average']}, {info['memory_gb']} GB; Python {info['python']}"
        f" ({info['platform']}); PostgreSQL {info.get('postgresql', '-')}; trafilatura"
        f" {info['trafilatura']}, httpx {info['httpx']}, psycopg {info['psycopg']};"
        f" project at {info['project']}",
        flush=True,
    )
    return info


def med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt_range(values: Sequence[float], digits: int = 0) -> str:
    """The median (min-max)."""
    if not values:
        return "-"
    return f"{med(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def pct(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1), linear interpolation between order statistics."""
    if not values:
        return float("nan")
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = int(pos)
    return s[lo] + (s[min(lo + 1, len(s) - 1)] - s[lo]) * (pos - lo)


def spread(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": med(values),
        "p95": pct(values, 0.95),
        "min": min(values),
        "max": max(values),
    }


def write_json(path: str | None, payload: Any) -> None:
    if path:

        def plain(o: Any) -> Any:
            return asdict(o) if is_dataclass(o) and not isinstance(o, type) else str(o)

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
        line = getattr(result, "line", None)
        print(
            f"  {name:<26} {line() if line else f'done in {time.perf_counter() - t0:.1f} s'}",
            flush=True,
        )
        return result
