"""py-spy profiles: a command run under `py-spy record` (every process of its tree, raw
collapsed stacks), and a summary of such a file by process (bench/profile_summary.py)."""

import re
import shutil
import sys
from collections import Counter, defaultdict
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
LIBRARIES = {
    "trafilatura", "feedparser", "httpx", "httpcore", "psycopg", "lxml", "pycld2", "ftfy",
    "courlan", "htmldate", "structlog", "pebble", "numpy", "justext",
}  # fmt: skip
"""Besides the project's own, the packages whose functions the inclusive list names."""


def frame_key(frame: str) -> tuple[str, str]:
    """(function, file relative to site-packages or to the repository)."""
    m = FRAME.match(frame)
    if not m:
        return frame, ""
    short = m.group("file").split("site-packages/")[-1].split("/work/")[-1]
    for marker in ("/ingest/", "/jobs/"):
        short = short[short.index(marker) + 1 :] if marker in short else short
    return m.group("func"), short


def process_label(frame: str) -> str:
    cmd = frame[len("process ") :].partition(":")[2].strip('"')
    roles = {"forkserver": "forkserver and its workers", "resource_tracker": "resource tracker"}
    role = next(
        (label for key, label in (*roles.items(), ("py-spy", "py-spy")) if key in cmd), "main"
    )
    return f"{role} ({cmd[:60]})"


def summarize(path: Path, top: int) -> str:
    """For each process: its samples and busy samples (innermost frame not idle), the functions
    with the most busy samples including their callees, and the innermost frames with the most."""
    total, busy = Counter[str](), Counter[str]()
    inclusive: dict[str, Counter[str]] = defaultdict(Counter)
    innermost: dict[str, Counter[str]] = defaultdict(Counter)
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n, proc, code = int(count), "?", []
        for f in stack.split(";"):
            proc, code = (process_label(f), []) if f.startswith("process ") else (proc, [*code, f])
        total[proc] += n
        func = frame_key(code[-1])[0] if code else ""
        if not code or IDLE.match(func) or IDLE.match(func.rsplit(".", 1)[-1]):
            continue
        busy[proc] += n
        keys = dict.fromkeys(f"{func}  [{file}]" for func, file in map(frame_key, code))
        for key in keys:
            file = key.rpartition("[")[2][:-1]
            if file.startswith(("ingest/", "jobs/")) or file.split("/")[0] in LIBRARIES:
                inclusive[proc][key] += n
        innermost[proc]["{}  [{}]".format(*frame_key(code[-1]))] += n
    out = [f"profile {path}: {sum(total.values())} samples"]
    for proc, n in total.most_common():
        b = busy[proc]
        out += ["", f"== {proc}: {n} samples, {b} busy ({b / n:.0%})"]
        if b:
            out.append("   inclusive (share of busy samples)")
            out += [f"   {v / b:6.1%}  {key}" for key, v in inclusive[proc].most_common(top)]
            out.append("   innermost")
            out += [f"   {v / b:6.1%}  {key}" for key, v in innermost[proc].most_common(top)]
    return "\n".join(out)


def profiled(cmd: list[str], profile: Path | None) -> list[str]:
    """`cmd` under `py-spy record` (all processes, raw collapsed stacks into `profile`), or as
    is when `profile` is None."""
    if profile is None:
        return cmd
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise RuntimeError("profiling needs py-spy (pip install py-spy)")
    args = [
        "--subprocesses",
        "--idle",
        "--rate",
        "250",
        "--format",
        "raw",
        "--output",
        str(profile),
    ]
    return [spy, "record", *args, "--", *cmd]
