"""Settings: the only place that reads the environment. Validated once at start-up; every other
module receives a `Settings` (or the few values it needs) as an argument."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from ingest.errors import ConfigError

if TYPE_CHECKING:
    from ingest.schedule import Policy


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "news-ingest"


def usable_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may really use: its affinity mask, further limited by a CPU quota of
    its cgroup (a container capped at 2 CPUs on a 64-core host gets 2 workers, not 64), from
    cgroup v2's `cpu.max` or, on a host that mounts cgroup v1, `cpu.cfs_quota_us` over
    `cpu.cfs_period_us` (`cgroup` is where the hierarchy is mounted)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    count = cpus or 1
    quota = _cpu_quota(cgroup)
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return count


def _cpu_quota(cgroup: Path) -> float | None:
    """The CPUs the cgroup's quota allows (1.5 for 150 ms every 100 ms), None without one."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        pass
    for controller in ("cpu", "cpu,cpuacct"):
        try:
            quota = (cgroup / controller / "cpu.cfs_quota_us").read_text().strip()
            period = (cgroup / controller / "cpu.cfs_period_us").read_text().strip()
            return None if int(quota) < 0 else int(quota) / int(period)
        except (OSError, ValueError, ZeroDivisionError):
            continue
    return None


LogFormat = Literal["auto", "json", "console"]
LogLevel = Literal["debug", "info", "warning", "error"]
_LOG_FORMATS: tuple[str, ...] = get_args(LogFormat)
_LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)

MAX_SECONDS = 1e9
"""The largest value of a setting in seconds (about 31 years): each becomes a timedelta, an
APScheduler interval or a database interval added to now, whose ranges end near 1e13 s; a
value beyond them made the service fail at start, or at every claim."""

MAX_DOCUMENT_BYTES = 2**30
"""The largest cap on a feed or page body (1 GiB): a body is held whole in memory and sent to a
worker process; no feed or article page comes near it."""

_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


def _setting(
    default: Any = MISSING,
    *,
    factory: Callable[[], Any] | None = None,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    unit: str | None = None,
) -> Any:
    """A setting's default (or the function making it), the bounds its value must keep, and
    what a whole number of it counts (`bytes`; a float setting counts seconds)."""
    meta = {"gt": gt, "ge": ge, "le": le, "unit": unit}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


_KINDS: dict[str, type] = {
    "bool": bool,
    "int": int,
    "float": float,
    "str": str,
    "str | None": str,
    "Path": Path,
    "LogFormat": str,
    "LogLevel": str,
}


def _kind(f: Field[Any]) -> type:
    """The type of a setting's value, from its annotation."""
    return _KINDS[f.type if isinstance(f.type, str) else f.type.__name__]


def _parse(f: Field[Any], raw: str) -> object:
    """An environment variable's text as the setting's type; ValueError says what is wrong."""
    kind = _kind(f)
    text = raw.strip()
    if kind is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(f"{raw!r} is not a boolean (true or false)")
    if kind is int:
        try:
            return int(text)
        except ValueError:
            unit = f" of {f.metadata['unit']}" if f.metadata.get("unit") else ""
            raise ValueError(f"{raw!r} is not a whole number{unit}") from None
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{raw!r} is not a number of seconds{_in_seconds(text)}") from None
    # Text is read without the whitespace around it, as numbers are: the newline a secret file
    # ends in made DATABASE_URL name a database "news\n", and a DATABASE_URL of blanks alone
    # was given to libpq, which connected to its default database and migrated that.
    if not text and f.name == "database_url":  # empty: unset, the embedded server
        return None
    if not text:
        # An empty INGEST_DATA_DIR is the current directory, an empty INGEST_HTTP_HOST every
        # interface: neither is what an operator means by leaving it empty.
        raise ValueError("must not be empty")
    if kind is Path:
        return Path(text)
    return text.lower() if f.metadata.get("choices") else text


def _in_seconds(text: str) -> str:
    """` (30m is 1800)` for a duration written with a unit (`ingest prune`'s form), else ""."""
    from ingest.retention import parse_duration  # only for a value refused

    try:
        return f" ({text} is {int(parse_duration(text).total_seconds())})"
    except ValueError:
        return ""


def _field_problems(settings: Settings) -> list[str]:
    """Each value of the wrong type or out of its bounds, named by its variable."""
    problems = []
    for f in fields(settings):
        value, kind, meta = getattr(settings, f.name), _kind(f), f.metadata
        name = variable(f.name)
        if f.name == "database_url" and value is None:
            continue
        if type(value) is not kind and not (kind is Path and isinstance(value, Path)):
            problems.append(f"{name}: {value!r} is not a {kind.__name__}")
            continue
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{name}: must be a finite number")
        elif meta.get("choices") and value not in meta["choices"]:
            problems.append(f"{name}: must be one of {', '.join(meta['choices'])}")
        elif isinstance(value, int | float) and not _in_range(value, meta):
            problems.append(f"{name}: {_shown(value)} is out of range ({_range(value, meta)})")
        elif f.name == "http_host" and not _is_host(str(value)):
            problems.append(
                f"{name}: {value!r} is not an IP address or a host name"
                f" (the port is {variable('http_port')}'s)"
            )
    return problems


# Labels of letters, digits, hyphens (not at either end) and underscores (a container's name),
# the last one not all digits (`999.1.1.1` is a mistyped address, not a name).
_HOST_NAME = re.compile(
    r"(?=.{1,253}\.?$)(?:(?!-)[\w-]{1,63}(?<!-)\.)*(?!-)(?![0-9]+\.?$)[\w-]{1,63}(?<!-)\.?",
    re.ASCII,
)


def _is_host(text: str) -> bool:
    """An IP address (IPv6 with its zone: `fe80::1%eth0`) or a host name (RFC 1123 labels)."""
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return _HOST_NAME.fullmatch(text) is not None
    return True


def _in_range(value: float, meta: Mapping[str, Any]) -> bool:
    """Within the setting's bounds (a seconds setting at most `MAX_SECONDS` whatever they say)."""
    gt, ge, le = meta.get("gt"), meta.get("ge"), meta.get("le")
    if isinstance(value, float) and le is None:
        le = MAX_SECONDS
    return (
        (gt is None or value > gt) and (ge is None or value >= ge) and (le is None or value <= le)
    )


def _range(value: float, meta: Mapping[str, Any]) -> str:
    """A setting's range as the operator reads it: `0.1 to 3600 seconds`, `1 to 8192`,
    `greater than 0, at most 1000000000 seconds`."""
    gt, ge, le = meta.get("gt"), meta.get("ge"), meta.get("le")
    unit = " seconds" if isinstance(value, float) else ""
    if le is None and not unit:
        return f"greater than {_shown(gt)}" if gt is not None else f"at least {_shown(ge or 0)}"
    high = _shown(le if le is not None else MAX_SECONDS)
    if gt is not None:
        return f"greater than {_shown(gt)}, at most {high}{unit}"
    return f"{_shown(ge if ge is not None else 0)} to {high}{unit}"


def _shown(number: float) -> str:
    """A number as written in the README: 1000000000, 0.5, -5."""
    if isinstance(number, float) and number.is_integer() and abs(number) < 1e16:
        return str(int(number))
    return str(number)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting, its environment variable (INGEST_ and the name in capitals; the database
    URL's is DATABASE_URL) and its default. See the README's table. Validated when made: a bad
    value raises one `ConfigError` naming every problem."""

    database_url: str | None = field(default=None, repr=False)  # it may hold a password
    data_dir: Path = field(default_factory=_default_data_dir)
    allow_private_networks: bool = False

    # fetching
    max_feed_bytes: int = _setting(10 * 1024 * 1024, gt=0, le=MAX_DOCUMENT_BYTES, unit="bytes")
    max_page_bytes: int = _setting(5 * 1024 * 1024, gt=0, le=MAX_DOCUMENT_BYTES, unit="bytes")
    connect_timeout: float = _setting(10.0, gt=0)
    read_timeout: float = _setting(20.0, gt=0)
    request_deadline: float = _setting(60.0, gt=0)
    max_redirects: int = _setting(5, ge=0, le=20)
    max_connections: int = _setting(32, ge=1, le=65_535)
    """At most 65,535: each connection holds a file descriptor and a local port, and one
    address has no more ports than that."""
    per_host_connections: int = _setting(2, ge=1, le=1_000)
    """At most 1,000: a polite crawler opens a handful to one host; twice this value is also a
    claim's per-host limit, a PostgreSQL integer (a value of 2**30 or more failed every claim)."""
    host_delay: float = _setting(0.5, ge=0)
    max_crawl_delay: float = _setting(30.0, ge=0)
    max_retry_after: float = _setting(3600.0, gt=0)
    """The longest a Retry-After holds a host and its feeds (`schedule.retry_after_wait`), at
    most INGEST_MAX_INTERVAL."""
    robots_cache_seconds: float = _setting(3600.0, ge=0)

    # work
    workers: int = _setting(factory=usable_cpus, ge=1, le=8_192)
    """At most 8,192, Linux's largest CPU count (NR_CPUS) on common distributions: one
    process per CPU, never more."""
    extract_timeout: float = _setting(30.0, gt=0)
    parse_timeout: float = _setting(30.0, gt=0)
    feeds_per_tick: int = _setting(50, ge=1, le=100_000)
    """At most 100,000 feeds leased by one claim (one query, one transaction)."""
    concurrent_feeds: int = _setting(1024, ge=1, le=1_000_000)
    """At most 1,000,000 feeds in flight in one process, each an asyncio task and a lease."""
    worker_backlog_bytes: int = _setting(64 * 1024 * 1024, ge=1, le=2**40, unit="bytes")
    """New fetches wait while this many bytes of fetched feeds and pages wait for (or are in)
    a worker (`ingest.workers.backlog`). At most 1 TiB: memory, of one machine."""
    max_entries_per_feed: int = _setting(200, ge=1, le=100_000)
    """At most 100,000: no news feed lists more, and each entry considered is looked up in
    the database at every poll."""
    page_attempts: int = _setting(3, ge=1, le=1_000)
    """At most 1,000 polls: the tries are counted in a smallint column (32,767 at most)."""

    # scheduling
    tick_seconds: float = _setting(30.0, ge=0.1, le=3600)
    """From 0.1 s (ten claims a second per process, each a query) to an hour (feeds due
    meanwhile wait for the next tick)."""
    poll_interval: float = _setting(1800.0, gt=0)
    min_interval: float = _setting(300.0, gt=0)
    max_interval: float = _setting(86400.0, gt=0)
    deactivate_after_failures: int = _setting(10, ge=1, le=1_000_000)
    """At most 1,000,000 failures in a row (a feed failing every minute reaches that in two
    years); counted in an integer column, which a larger value would never reach."""
    deactivate_after: float = _setting(172800.0, ge=0)
    redirect_after_fetches: int = _setting(3, ge=1, le=1_000_000)
    """At most 1,000,000 fetches, counted in an integer column as the failures are."""
    redirect_after: float = _setting(86400.0, ge=0)
    lease_seconds: float = _setting(600.0, gt=0)

    # retention
    change_retention_days: int = _setting(30, ge=0, le=365_000, unit="days")
    """news.article_changes and news.article_history rows older than this are trimmed once a
    day by the service; 0 keeps them forever."""

    # service
    http_port: int = _setting(8080, ge=0, le=65535)
    http_host: str = "0.0.0.0"  # noqa: S104 - the container's health check and scraper reach it

    # logging
    log_format: LogFormat = field(default="auto", metadata={"choices": _LOG_FORMATS})
    log_level: LogLevel = field(default="info", metadata={"choices": _LOG_LEVELS})

    def __post_init__(self) -> None:
        # A whole number given for a seconds setting is taken as such, stored as a float.
        for f in fields(self):
            if _kind(f) is float and type(value := getattr(self, f.name)) is int:
                object.__setattr__(self, f.name, float(value))
        problems = [*_field_problems(self), *_cross_problems(self)]
        if problems:
            raise ConfigError(f"invalid configuration: {'; '.join(problems)}")

    def policy(self) -> Policy:
        """The scheduling policy these settings describe."""
        # Imported here: the settings are read first thing by `ingest run` (`ingest.launcher`),
        # before the scheduling stack.
        from ingest.schedule import Policy

        return Policy(
            min_interval=timedelta(seconds=self.min_interval),
            max_interval=timedelta(seconds=self.max_interval),
            default_interval=timedelta(seconds=self.poll_interval),
            deactivate_after_failures=self.deactivate_after_failures,
            deactivate_after=timedelta(seconds=self.deactivate_after),
            redirect_after_fetches=self.redirect_after_fetches,
            redirect_after=timedelta(seconds=self.redirect_after),
            max_retry_after=timedelta(seconds=self.max_retry_after),
        )


def _cross_problems(settings: Settings) -> list[str]:
    """What makes values that are each valid wrong together."""
    if settings.min_interval > settings.max_interval:
        # Both values: one of them may be the default, which the operator never wrote.
        return [
            f"INGEST_MIN_INTERVAL ({_shown(settings.min_interval)} seconds) must not exceed"
            f" INGEST_MAX_INTERVAL ({_shown(settings.max_interval)} seconds)"
        ]
    return []


def variable(name: str) -> str:
    """The environment variable of a setting."""
    return "DATABASE_URL" if name == "database_url" else f"INGEST_{name.upper()}"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the environment (names in any case; variables the service does not
    know are ignored here, and named by `unknown_variables`); every bad value is named in one
    `ConfigError`."""
    env = {k.upper(): v for k, v in (os.environ if environ is None else environ).items()}
    values: dict[str, object] = {}
    problems: list[str] = []
    for f in fields(Settings):
        raw = env.get(variable(f.name))
        if f.name == "database_url" and (raw is None or not raw.strip()):
            # An empty or blank DATABASE_URL is unset (see `_parse`): the alias is read then too.
            raw = env.get("INGEST_DATABASE_URL", raw)
        if raw is None:
            continue
        try:
            values[f.name] = _parse(f, raw)
        except ValueError as e:
            problems.append(f"{variable(f.name)}: {e}")
    try:
        settings = Settings(**values)  # type: ignore[arg-type]
    except ConfigError as e:
        problems.extend(str(e).removeprefix("invalid configuration: ").split("; "))
    if problems:
        raise ConfigError(f"invalid configuration: {'; '.join(problems)}")
    return settings


_OTHERS_PREFIXES = ("INGEST_TEST_", "INGEST_BENCH_", "INGEST_HYPOTHESIS_")
"""Variables of the project's tests and benchmarks, which they read themselves."""

# Kubernetes gives every pod the address of each Service of its namespace: a Service named
# "ingest" makes INGEST_SERVICE_HOST, INGEST_SERVICE_PORT[_NAME], INGEST_PORT (tcp://ADDR:PORT)
# and INGEST_PORT_8080_TCP[_PROTO|_PORT|_ADDR].
_SERVICE_LINK = re.compile(
    r"INGEST_SERVICE_(?:HOST|PORT)(?:_\w+)?|INGEST_PORT_\d+_(?:TCP|UDP|SCTP)\w*"
)
_SERVICE_LINK_URL = re.compile(r"(?:tcp|udp|sctp)://", re.IGNORECASE)


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """Each INGEST_* variable (names in any case) that is no setting, in capitals, with the
    setting whose name is closest (None when none is close): a typo, whose value is not in
    force, for a warning at start-up. The alias INGEST_DATABASE_URL, the tests' and benchmarks'
    variables and Kubernetes' service links are left out."""
    env = {k.upper(): v for k, v in (os.environ if environ is None else environ).items()}
    known = [variable(f.name) for f in fields(Settings)]
    found = []
    for name in sorted(env):
        if (
            not name.startswith("INGEST_")
            or name in known
            or name == "INGEST_DATABASE_URL"
            or name.startswith(_OTHERS_PREFIXES)
            or _SERVICE_LINK.fullmatch(name)
            or (name == "INGEST_PORT" and _SERVICE_LINK_URL.match(env[name].strip()))
        ):
            continue
        import difflib  # only where a variable is unknown: not on every start

        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        found.append((name, close[0] if close else None))
    return found


def cannot_listen(host: str, port: int, reason: str) -> str:
    """The refusal of an address the service's endpoints cannot listen on."""
    return f"cannot listen on {host}:{port} (INGEST_HTTP_PORT, INGEST_HTTP_HOST): {reason}"


NO_TEMPORARY_DIRECTORY = (
    "no writable temporary directory (TMPDIR, /tmp, /var/tmp) for the worker pool's socket:"
    " on a read-only root filesystem, mount a tmpfs on /tmp (docker run --read-only --tmpfs"
    " /tmp; Kubernetes: an emptyDir volume)"
)


def run_problem(settings: Settings, *, serving: bool) -> str | None:
    """Why `ingest run` cannot start on this machine with these settings, found before anything
    slow; None when it can. Its worker pool needs a temporary directory (the fork server's
    socket is there), which a container run with a read-only root filesystem lacks without a
    tmpfs on /tmp; the service (`serving`; not `run --once`) must be able to listen on
    INGEST_HTTP_HOST and INGEST_HTTP_PORT."""
    import os
    import tempfile

    try:
        directory = tempfile.gettempdir()  # what multiprocessing's fork server uses
    except FileNotFoundError:
        return NO_TEMPORARY_DIRECTORY
    if len(os.fsencode(directory)) > LONGEST_TEMPORARY_DIRECTORY:
        return temporary_directory_too_long(directory)
    return _listen_problem(settings) if serving else None


LONGEST_TEMPORARY_DIRECTORY = 107 - len("/pymp-12345678/listener-12345678")
"""Bytes of the longest temporary directory the fork server's socket fits in: multiprocessing
makes it `<directory>/pymp-XXXXXXXX/listener-XXXXXXXX`, and a Unix socket's address holds 107
bytes and a NUL."""


def temporary_directory_too_long(directory: str) -> str:
    """The refusal of a temporary directory whose path the fork server's socket outgrows."""
    return (
        f"the temporary directory {directory} (TMPDIR) is too long a path for the worker pool's"
        f" socket: at most {LONGEST_TEMPORARY_DIRECTORY} bytes, as a Unix socket's address is"
        " short; set TMPDIR to a shorter one"
    )


def _listen_problem(settings: Settings) -> str | None:
    """Why the service could not listen on INGEST_HTTP_HOST and INGEST_HTTP_PORT (an address
    that is not this machine's, a name that does not resolve, a port another process listens
    on), found as the endpoints' server would find it (each address the host resolves to
    bound, as asyncio binds them), but before `ingest run` does anything slow; None when it
    can, or when the endpoints are off (port 0). Only the service asks: the other commands
    listen on nothing, and may run on another machine with its settings."""
    if not settings.http_port:
        return None
    import socket

    host, port = settings.http_host, settings.http_port
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as e:
        return cannot_listen(host, port, e.strerror or str(e))
    for family, kind, proto, _, address in dict.fromkeys(found):
        try:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                probe.bind(address)
        except OSError as e:
            return cannot_listen(host, port, e.strerror or str(e))
    return None
