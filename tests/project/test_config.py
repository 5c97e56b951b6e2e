"""ingest.config: the README's configuration table (defaults and variable names), environment
overrides, the DATABASE_URL alias, and one clear ConfigError for a bad value."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from ingest.config import Settings, load_settings, unknown_variables, usable_cpus
from ingest.errors import ConfigError

# The README's table: variable -> (Settings field, default).
DOCUMENTED_DEFAULTS = {
    "INGEST_ALLOW_PRIVATE_NETWORKS": ("allow_private_networks", False),
    "INGEST_MAX_FEED_BYTES": ("max_feed_bytes", 10485760),
    "INGEST_MAX_PAGE_BYTES": ("max_page_bytes", 5242880),
    "INGEST_CONNECT_TIMEOUT": ("connect_timeout", 10),
    "INGEST_READ_TIMEOUT": ("read_timeout", 20),
    "INGEST_REQUEST_DEADLINE": ("request_deadline", 60),
    "INGEST_MAX_REDIRECTS": ("max_redirects", 5),
    "INGEST_MAX_CONNECTIONS": ("max_connections", 32),
    "INGEST_PER_HOST_CONNECTIONS": ("per_host_connections", 2),
    "INGEST_ROBOTS_CACHE_SECONDS": ("robots_cache_seconds", 3600),
    "INGEST_EXTRACT_TIMEOUT": ("extract_timeout", 30),
    "INGEST_PARSE_TIMEOUT": ("parse_timeout", 30),
    "INGEST_FEEDS_PER_TICK": ("feeds_per_tick", 50),
    "INGEST_CONCURRENT_FEEDS": ("concurrent_feeds", 1024),
    "INGEST_MAX_ENTRIES_PER_FEED": ("max_entries_per_feed", 200),
    "INGEST_TICK_SECONDS": ("tick_seconds", 30),
    "INGEST_POLL_INTERVAL": ("poll_interval", 1800),
    "INGEST_LEASE_SECONDS": ("lease_seconds", 600),
    "INGEST_CHANGE_RETENTION_DAYS": ("change_retention_days", 30),
    "INGEST_HTTP_PORT": ("http_port", 8080),
    "INGEST_LOG_FORMAT": ("log_format", "auto"),
    "INGEST_LOG_LEVEL": ("log_level", "info"),
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No INGEST_*/DATABASE_URL/XDG_DATA_HOME in the environment; HOME is a temp directory."""
    for name in list(os.environ):
        if name.startswith("INGEST_") or name in ("DATABASE_URL", "XDG_DATA_HOME"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(("variable", "field_default"), list(DOCUMENTED_DEFAULTS.items()))
def test_documented_defaults(clean_env: Path, variable: str, field_default: tuple) -> None:
    """With nothing set, each setting has the default the README documents."""
    field, default = field_default
    assert getattr(load_settings(), field) == default


def test_unset_database_url_means_embedded(clean_env: Path) -> None:
    """DATABASE_URL unset: no URL (the embedded server is used)."""
    assert load_settings().database_url is None


def test_default_data_dir(clean_env: Path) -> None:
    """INGEST_DATA_DIR defaults to ~/.local/share/news-ingest."""
    assert load_settings().data_dir == clean_env / ".local" / "share" / "news-ingest"


def test_workers_default_to_cores(clean_env: Path) -> None:
    """INGEST_WORKERS defaults to the number of cores."""
    assert load_settings().workers == (os.cpu_count() or 1)


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("INGEST_DATA_DIR", "/srv/ingest", "data_dir", Path("/srv/ingest")),
        ("INGEST_ALLOW_PRIVATE_NETWORKS", "true", "allow_private_networks", True),
        ("INGEST_ALLOW_PRIVATE_NETWORKS", "0", "allow_private_networks", False),
        ("INGEST_MAX_FEED_BYTES", "1024", "max_feed_bytes", 1024),
        ("INGEST_MAX_PAGE_BYTES", "2048", "max_page_bytes", 2048),
        ("INGEST_CONNECT_TIMEOUT", "2.5", "connect_timeout", 2.5),
        ("INGEST_REQUEST_DEADLINE", "5", "request_deadline", 5.0),
        ("INGEST_MAX_REDIRECTS", "0", "max_redirects", 0),
        ("INGEST_WORKERS", "3", "workers", 3),
        ("INGEST_POLL_INTERVAL", "60", "poll_interval", 60.0),
        ("INGEST_LEASE_SECONDS", "90", "lease_seconds", 90.0),
        ("INGEST_HTTP_PORT", "0", "http_port", 0),
        ("INGEST_LOG_FORMAT", "json", "log_format", "json"),
        ("INGEST_LOG_LEVEL", "debug", "log_level", "debug"),
    ],
)
def test_env_overrides(
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    field: str,
    expected: object,
) -> None:
    """Each INGEST_* variable overrides its setting, parsed to the setting's type."""
    monkeypatch.setenv(variable, value)
    assert getattr(load_settings(), field) == expected


def test_xdg_data_home_moves_default_data_dir(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without INGEST_DATA_DIR, the data directory follows XDG_DATA_HOME."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert load_settings().data_dir == tmp_path / "xdg" / "news-ingest"


@pytest.mark.parametrize("variable", ["DATABASE_URL", "INGEST_DATABASE_URL"])
def test_database_url_alias(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """The database URL is read from DATABASE_URL (or INGEST_DATABASE_URL)."""
    dsn = "postgresql://user:secret@db.example:5432/news"
    monkeypatch.setenv(variable, dsn)
    assert load_settings().database_url == dsn


def test_database_url_wins_over_prefixed_alias(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When both are set, the documented DATABASE_URL is the one used."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://a/documented")
    monkeypatch.setenv("INGEST_DATABASE_URL", "postgresql://b/prefixed")
    assert load_settings().database_url == "postgresql://a/documented"


@pytest.mark.parametrize("blank", ["", " ", "\n"])
def test_blank_database_url_leaves_the_prefixed_alias_in_force(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, blank: str
) -> None:
    """A DATABASE_URL that is empty or blank is unset (a template's `DATABASE_URL=${DB}` with
    nothing in DB), so INGEST_DATABASE_URL, read when it is unset, names the database: not the
    embedded server, which the service would fill while the named database stays empty."""
    monkeypatch.setenv("DATABASE_URL", blank)
    monkeypatch.setenv("INGEST_DATABASE_URL", "postgresql://b/prefixed")
    assert load_settings().database_url == "postgresql://b/prefixed"


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("DATABASE_URL", "postgresql://db/news\n", "database_url", "postgresql://db/news"),
        ("DATABASE_URL", " host=db dbname=news ", "database_url", "host=db dbname=news"),
        ("DATABASE_URL", " \n", "database_url", None),
        ("INGEST_DATABASE_URL", "\t", "database_url", None),
        ("INGEST_DATA_DIR", "/srv/ingest\n", "data_dir", Path("/srv/ingest")),
        ("INGEST_HTTP_HOST", " 127.0.0.1\r\n", "http_host", "127.0.0.1"),
    ],
)
def test_text_values_are_read_without_surrounding_whitespace(
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    field: str,
    expected: object,
) -> None:
    """A text setting is read without the whitespace around it (the newline a secret file or
    a template leaves at its end), as the numbers are; a DATABASE_URL of whitespace alone is
    unset, as an empty one is: the embedded server, never libpq's default database."""
    monkeypatch.setenv(variable, value)
    assert getattr(load_settings(), field) == expected


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("INGEST_WORKERS", "0"),
        ("INGEST_WORKERS", "many"),
        ("INGEST_MAX_FEED_BYTES", "0"),
        ("INGEST_MAX_PAGE_BYTES", "-1"),
        ("INGEST_CONNECT_TIMEOUT", "0"),
        ("INGEST_MAX_REDIRECTS", "21"),
        ("INGEST_HTTP_PORT", "65536"),
        ("INGEST_POLL_INTERVAL", "-5"),
        ("INGEST_ALLOW_PRIVATE_NETWORKS", "perhaps"),
        ("INGEST_LOG_FORMAT", "xml"),
        ("INGEST_LOG_LEVEL", "verbose"),
        ("INGEST_MAX_INTERVAL", "1e15"),
        ("INGEST_POLL_INTERVAL", "1e15"),
        ("INGEST_LEASE_SECONDS", "1e13"),
        ("INGEST_TICK_SECONDS", "2e9"),
        ("INGEST_CHANGE_RETENTION_DAYS", "1000000000"),
        ("INGEST_CHANGE_RETENTION_DAYS", "3000000"),
        ("INGEST_PER_HOST_CONNECTIONS", "3000000000"),
        ("INGEST_MAX_CONNECTIONS", "3000000000"),
        ("INGEST_MAX_FEED_BYTES", "10000000000000"),
        ("INGEST_MAX_PAGE_BYTES", "10000000000000"),
        ("INGEST_WORKERS", "100000"),
        ("INGEST_FEEDS_PER_TICK", "3000000000"),
        ("INGEST_CONCURRENT_FEEDS", "3000000000"),
        ("INGEST_WORKER_BACKLOG_BYTES", "10000000000000000"),
        ("INGEST_MAX_ENTRIES_PER_FEED", "3000000000"),
        ("INGEST_PAGE_ATTEMPTS", "40000"),
        ("INGEST_DEACTIVATE_AFTER_FAILURES", "3000000000"),
        ("INGEST_REDIRECT_AFTER_FETCHES", "3000000000"),
        ("INGEST_DATA_DIR", ""),
        ("INGEST_HTTP_HOST", " "),
        ("INGEST_HTTP_HOST", "not a host"),
        ("INGEST_HTTP_HOST", "0.0.0.0:8080"),
        ("INGEST_HTTP_HOST", "http://0.0.0.0"),
        ("INGEST_HTTP_HOST", "[::]"),
        ("INGEST_HTTP_HOST", "-ingest"),
        ("INGEST_HTTP_HOST", "999.1.1.1"),
    ],
)
def test_invalid_value_is_config_error_naming_variable(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """A bad value makes load_settings raise one ConfigError, on one line, naming the variable."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert variable in message
    assert "\n" not in message


def test_the_largest_durations_are_accepted(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A seconds setting up to 10**9 (31 years) and a retention of up to 365,000 days are
    valid: beyond them the service failed at start or at every claim or trim (a timedelta or
    a database timestamp out of range)."""
    monkeypatch.setenv("INGEST_MAX_INTERVAL", "1000000000")
    monkeypatch.setenv("INGEST_LEASE_SECONDS", "1e9")
    monkeypatch.setenv("INGEST_CHANGE_RETENTION_DAYS", "365000")
    settings = load_settings()
    assert (settings.max_interval, settings.lease_seconds) == (1e9, 1e9)
    assert settings.change_retention_days == 365_000
    assert settings.policy().max_interval.days == 11574


def test_the_largest_counts_and_sizes_are_accepted(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each whole-number setting is valid up to its documented maximum: connections to 65,535
    in all and 1,000 per host, 8,192 workers, documents of 1 GiB, a backlog of 1 TiB; beyond
    them a value failed at run time (a claim's integer parameter out of range) or asked for
    more than one machine has."""
    largest = {
        "INGEST_MAX_FEED_BYTES": 2**30,
        "INGEST_MAX_PAGE_BYTES": 2**30,
        "INGEST_MAX_CONNECTIONS": 65_535,
        "INGEST_PER_HOST_CONNECTIONS": 1_000,
        "INGEST_WORKERS": 8_192,
        "INGEST_FEEDS_PER_TICK": 100_000,
        "INGEST_CONCURRENT_FEEDS": 1_000_000,
        "INGEST_WORKER_BACKLOG_BYTES": 2**40,
        "INGEST_MAX_ENTRIES_PER_FEED": 100_000,
        "INGEST_PAGE_ATTEMPTS": 1_000,
        "INGEST_DEACTIVATE_AFTER_FAILURES": 1_000_000,
        "INGEST_REDIRECT_AFTER_FETCHES": 1_000_000,
    }
    for variable, value in largest.items():
        monkeypatch.setenv(variable, str(value))
    settings = load_settings()
    for variable, value in largest.items():
        assert getattr(settings, variable.removeprefix("INGEST_").lower()) == value
    for variable, value in largest.items():
        monkeypatch.setenv(variable, str(value + 1))
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert all(variable in str(info.value) for variable in largest)


def test_every_problem_reported_at_once(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several bad values are all named in the one error."""
    monkeypatch.setenv("INGEST_WORKERS", "0")
    monkeypatch.setenv("INGEST_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "INGEST_WORKERS" in str(info.value)
    assert "INGEST_LOG_FORMAT" in str(info.value)


def test_unknown_variables_ignored(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An INGEST_* variable the service does not know is not an error."""
    monkeypatch.setenv("INGEST_SOMETHING_ELSE", "x")
    assert isinstance(load_settings(), Settings)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"INGEST_HOST_DELAYS": "2"}, [("INGEST_HOST_DELAYS", "INGEST_HOST_DELAY")]),
        ({"INGEST_MAX_INTERVALL": "3600"}, [("INGEST_MAX_INTERVALL", "INGEST_MAX_INTERVAL")]),
        ({"ingest_tick_second": "5"}, [("INGEST_TICK_SECOND", "INGEST_TICK_SECONDS")]),
        ({"INGEST_PORT": "9000"}, [("INGEST_PORT", "INGEST_HTTP_PORT")]),
        ({"INGEST_SOMETHING_ELSE": "x"}, [("INGEST_SOMETHING_ELSE", None)]),
        ({"INGEST_HOST_DELAY": "2", "INGEST_DATABASE_URL": "postgresql://db/news"}, []),
        ({"DATABASE_URL": "postgresql://db/news", "HOSTNAME": "x", "PATH": "/bin"}, []),
        # The project's tests and benchmarks read their own.
        ({"INGEST_TEST_ADMIN_URL": "x", "INGEST_BENCH_ADMIN_URL": "x"}, []),
        ({"INGEST_TEST_MARK": "x", "INGEST_HYPOTHESIS_PROFILE": "explore"}, []),
        # Kubernetes' links to a Service named "ingest", in every pod of its namespace.
        (
            {
                "INGEST_SERVICE_HOST": "10.0.0.7",
                "INGEST_SERVICE_PORT": "8080",
                "INGEST_SERVICE_PORT_HTTP": "8080",
                "INGEST_PORT": "tcp://10.0.0.7:8080",
                "INGEST_PORT_8080_TCP": "tcp://10.0.0.7:8080",
                "INGEST_PORT_8080_TCP_PROTO": "tcp",
                "INGEST_PORT_8080_TCP_PORT": "8080",
                "INGEST_PORT_8080_TCP_ADDR": "10.0.0.7",
            },
            [],
        ),
    ],
)
def test_unknown_variables_are_named_with_the_setting_they_likely_mean(
    environ: dict[str, str], expected: list[tuple[str, str | None]]
) -> None:
    """An INGEST_* variable that is no setting (a typo: INGEST_HOST_DELAYS) is named, with the
    setting whose name is closest, for the warning at start-up; the alias INGEST_DATABASE_URL,
    the tests' and benchmarks' own variables and Kubernetes' service links are not."""
    assert unknown_variables(environ) == expected


def test_settings_are_frozen(clean_env: Path) -> None:
    """Settings are validated once and cannot be changed afterwards."""
    settings = load_settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.workers = 99  # type: ignore[misc]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_number_must_be_finite(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """A seconds setting of nan or infinity is refused, naming its variable."""
    monkeypatch.setenv("INGEST_HOST_DELAY", value)
    with pytest.raises(ConfigError, match="INGEST_HOST_DELAY"):
        load_settings()


def test_variable_names_in_any_case(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Variable names are matched whatever their case; choice values too."""
    monkeypatch.setenv("ingest_workers", "3")
    monkeypatch.setenv("INGEST_LOG_LEVEL", "WARNING")
    settings = load_settings()
    assert (settings.workers, settings.log_level) == (3, "warning")


def test_settings_made_in_code_are_validated_too() -> None:
    """Settings made with arguments keep the same bounds as from the environment, and a whole
    number for a seconds setting is a float."""
    with pytest.raises(ConfigError, match="INGEST_MAX_CONNECTIONS"):
        Settings(max_connections=0)
    with pytest.raises(ConfigError, match="INGEST_MIN_INTERVAL"):
        Settings(min_interval=10, max_interval=5)
    assert Settings(host_delay=0).host_delay == 0.0
    assert isinstance(Settings(host_delay=0).host_delay, float)


def test_repr_leaves_the_database_url_out() -> None:
    """The database URL may hold a password: a printed or logged Settings does not show it."""
    settings = Settings(database_url="postgresql://user:secret@db.example/news")
    assert "secret" not in repr(settings)


@pytest.mark.parametrize("value", ["0.001", "0", "-30", "86400", "1e6"])
def test_a_tick_out_of_its_range_is_refused_naming_the_range(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """INGEST_TICK_SECONDS runs from 0.1 s (ten claims a second per process) to an hour: a
    tick of a millisecond had every process query the database a thousand times a second, one
    of a day left feeds due meanwhile waiting for it. Refused on one line naming the variable
    and its range."""
    monkeypatch.setenv("INGEST_TICK_SECONDS", value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "INGEST_TICK_SECONDS" in message
    assert "0.1 to 3600 seconds" in message
    assert "\n" not in message


def test_the_ends_of_the_tick_range_are_accepted(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0.1 s and 3600 s are ticks the service runs with."""
    for value in (0.1, 3600):
        monkeypatch.setenv("INGEST_TICK_SECONDS", str(value))
        assert load_settings().tick_seconds == value


@pytest.mark.parametrize(
    ("variable", "value", "range_"),
    [
        ("INGEST_POLL_INTERVAL", "-5", "greater than 0, at most 1000000000 seconds"),
        ("INGEST_HOST_DELAY", "5000000000", "0 to 1000000000 seconds"),
        ("INGEST_MAX_REDIRECTS", "21", "0 to 20"),
        ("INGEST_WORKERS", "0", "1 to 8192"),
    ],
)
def test_an_out_of_range_value_is_refused_naming_its_range(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, range_: str
) -> None:
    """Whatever end a value passes, the one line names the setting's whole range."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert f"{variable}: {value} is out of range ({range_})" in str(info.value)


@pytest.mark.parametrize(
    ("environ", "said"),
    [
        (
            {"INGEST_POLL_INTERVAL": "30m"},
            "INGEST_POLL_INTERVAL: '30m' is not a number of seconds (30m is 1800)",
        ),
        ({"INGEST_MAX_INTERVAL": "1d"}, "INGEST_MAX_INTERVAL: '1d' is not a number of seconds"),
        ({"INGEST_HOST_DELAY": "500ms"}, "INGEST_HOST_DELAY: '500ms' is not a number of seconds"),
        (
            {"INGEST_MAX_FEED_BYTES": "10MB"},
            "INGEST_MAX_FEED_BYTES: '10MB' is not a whole number of bytes",
        ),
        ({"INGEST_CHANGE_RETENTION_DAYS": "30d"}, "'30d' is not a whole number of days"),
        ({"INGEST_WORKERS": "four"}, "INGEST_WORKERS: 'four' is not a whole number"),
        (
            {"INGEST_MAX_INTERVAL": "120"},
            "INGEST_MIN_INTERVAL (300 seconds) must not exceed INGEST_MAX_INTERVAL (120 seconds)",
        ),
    ],
)
def test_a_refused_value_is_told_in_the_form_it_must_take(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], said: str
) -> None:
    """A value in another form than the setting's (a unit after a number of seconds: `30m`,
    `500ms`; `10MB` for a number of bytes) is refused with the unit the setting is counted in,
    and where a duration reads as one (`30m`), the number to write; two bounds at odds say
    both values, also that of the one left at its default."""
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert said in str(info.value)


@pytest.mark.parametrize(
    "host",
    [
        *["0.0.0.0", "::", "127.0.0.1", "::1", "fe80::1%lo"],
        *["localhost", "ingest-0.ingest.svc.", "news_ingest_1"],
    ],
)
def test_an_address_or_a_host_name_is_a_listening_host(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    """INGEST_HTTP_HOST is an IP address (IPv6 with its zone) or a host name; anything else
    (`not a host`, `0.0.0.0:8080`, a URL) is refused with the other settings, by every command
    (was: taken, and refused only when `ingest run` came to listen, after its migrations and
    its worker pool)."""
    monkeypatch.setenv("INGEST_HTTP_HOST", host)
    assert load_settings().http_host == host


def test_a_host_name_refused_says_what_is_taken(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INGEST_HTTP_HOST", "0.0.0.0:8080")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == (
        "invalid configuration: INGEST_HTTP_HOST: '0.0.0.0:8080' is not an IP address or a host"
        " name (the port is INGEST_HTTP_PORT's)"
    )


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, 64),
        ({"cpu.max": "max 100000\n"}, 64),
        ({"cpu.max": "200000 100000\n"}, 2),
        ({"cpu.max": "150000 100000\n"}, 2),
        ({"cpu.max": "50000 100000\n"}, 1),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, 64),
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2),
        (
            {
                "cpu,cpuacct/cpu.cfs_quota_us": "300000\n",
                "cpu,cpuacct/cpu.cfs_period_us": "100000\n",
            },
            3,
        ),
        ({"cpu.max": "garbage\n"}, 64),
    ],
    ids=[
        "none",
        "v2-unlimited",
        "v2",
        "v2-fraction",
        "v2-half",
        "v1-unlimited",
        "v1",
        "v1-joined",
        "bad",
    ],
)
def test_usable_cpus_follows_the_cgroup_quota_v1_or_v2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], expected: int
) -> None:
    """The default INGEST_WORKERS: the CPUs of the process's affinity mask, further limited by
    a CPU quota of its cgroup, whichever version the host mounts (`docker run --cpus=2` on a
    cgroup v1 host, where the quota is in cpu.cfs_quota_us: was 64 workers on a 64-CPU host)."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert usable_cpus(tmp_path) == expected
