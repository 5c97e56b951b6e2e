"""py-spy profiles: a command run under `py-spy record` (every process of its tree, collapsed
stacks), and a summary of such a file by process (bench/profile_summary.py prints it)."""

from __future__ import annotations

import re
import shutil
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

IDLE = re.compile(
    r"^(select|poll|epoll|EpollSelector\.select|unix_poll|.*_make_poll_method.*|wait|"
    r"Condition\.wait|Event\.wait|_wait_for_tstate_lock|read_signed|_recv|_recv_bytes|recv|"
    r"accept|main|pool_manager_loop|sleep|_poll|select\.select|_worker|get|readinto|_send|"
    r"BaseSelectorEventLoop\.select)$"
)
"""Innermost frames that mean the process was waiting, not computing. py-spy's `--idle` keeps
them so that the shares below are of wall time; they are left out of the busy figures."""

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


def frame_key(frame: str) -> tuple[str, str]:
    m = FRAME.match(frame)
    if not m:
        return frame, ""
    path = m.group("file")
    short = path.split("site-packages/")[-1] if "site-packages/" in path else path
    short = short.split("/work/")[-1]
    for marker in ("/ingest/", "/jobs/"):
        if marker in short:
            short = short[short.index(marker) + 1 :]
    return m.group("func"), short


def process_label(frame: str) -> str | None:
    if not frame.startswith("process "):
        return None
    _pid, _, cmd = frame[len("process ") :].partition(":")
    cmd = cmd.strip('"')
    if "forkserver" in cmd:
        role = "forkserver and its workers"
    elif "resource_tracker" in cmd:
        role = "resource tracker"
    elif "py-spy" in cmd:
        role = "py-spy"
    else:
        role = "main"
    return f"{role} ({cmd[:60]})"


def summarize(path: Path, top: int, focus: Sequence[str]) -> str:
    total: Counter[str] = Counter()
    busy: Counter[str] = Counter()
    inclusive: dict[str, Counter[str]] = defaultdict(Counter)
    innermost: dict[str, Counter[str]] = defaultdict(Counter)
    focused: dict[str, Counter[str]] = defaultdict(Counter)
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        proc = "?"
        code: list[str] = []
        for f in frames:
            label = process_label(f)
            if label is not None:
                proc = label
                code = []
            else:
                code.append(f)
        total[proc] += n
        if not code:
            continue
        func, _ = frame_key(code[-1])
        if IDLE.match(func) or IDLE.match(func.rsplit(".", 1)[-1]):
            continue
        busy[proc] += n
        seen: set[str] = set()
        for f in code:
            func, file = frame_key(f)
            key = f"{func}  [{file}]"
            if key in seen:
                continue
            seen.add(key)
            if file.startswith(("ingest/", "jobs/")) or file.split("/")[0] in {
                "trafilatura",
                "feedparser",
                "httpx",
                "httpcore",
                "psycopg",
                "lxml",
                "pycld2",
                "ftfy",
                "courlan",
                "htmldate",
                "structlog",
                "pebble",
                "numpy",
                "justext",
            }:
                inclusive[proc][key] += n
            for sub in focus:
                if sub in key:
                    focused[proc][sub] += n
        func, file = frame_key(code[-1])
        innermost[proc][f"{func}  [{file}]"] += n
    out = [f"profile {path}: {sum(total.values())} samples"]
    for proc, n in total.most_common():
        b = busy[proc]
        out.append("")
        out.append(f"== {proc}: {n} samples, {b} busy ({b / n:.0%})")
        if not b:
            continue
        out.append("   inclusive (share of busy samples)")
        for key, v in inclusive[proc].most_common(top):
            out.append(f"   {v / b:6.1%}  {key}")
        out.append("   innermost")
        for key, v in innermost[proc].most_common(top):
            out.append(f"   {v / b:6.1%}  {key}")
        for sub in focus:
            out.append(f"   focus {sub!r}: {focused[proc][sub] / b:.1%} of busy")
    return "\n".join(out)


def profiled(cmd: list[str], profile: Path | None) -> list[str]:
    """`cmd` under `py-spy record` (all processes, raw collapsed stacks into `profile`), or as
    is when `profile` is None."""
    if profile is None:
        return cmd
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise RuntimeError("profiling needs py-spy (pip install py-spy)")
    return [
        spy, "record", "--subprocesses", "--idle", "--rate", "250", "--format", "raw",
        "--output", str(profile), "--", *cmd,
    ]  # fmt: skip
