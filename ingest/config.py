"""Settings: the only place that reads the environment. Validated once at start-up; every other
module receives a `Settings` (or the few values it needs) as an argument."""

from __future__ import annotations

import math
import os
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.errors import ConfigError
from ingest.schedule import Policy


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "news-ingest"


def usable_cpus(cgroup_cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """CPUs this process may really use: its affinity mask, further limited by a cgroup v2 CPU
    quota (a container capped at 2 CPUs on a 64-core host gets 2 workers, not 64)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    count = cpus or 1
    try:
        quota, period = cgroup_cpu_max.read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return count


class Settings(BaseSettings):
    """Every setting, its environment variable and its default. See the README's table."""

    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore", frozen=True)

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "INGEST_DATABASE_URL")
    )
    data_dir: Path = Field(default_factory=_default_data_dir)
    allow_private_networks: bool = False

    # fetching
    max_feed_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    max_page_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=20.0, gt=0)
    request_deadline: float = Field(default=60.0, gt=0)
    max_redirects: int = Field(default=5, ge=0, le=20)
    max_connections: int = Field(default=32, ge=1)
    per_host_connections: int = Field(default=2, ge=1)
    host_delay: float = Field(default=0.5, ge=0)
    max_crawl_delay: float = Field(default=30.0, ge=0)
    robots_cache_seconds: float = Field(default=3600.0, ge=0)

    # work
    workers: int = Field(default_factory=lambda: usable_cpus(), ge=1)
    extract_timeout: float = Field(default=30.0, gt=0)
    parse_timeout: float = Field(default=30.0, gt=0)
    feeds_per_tick: int = Field(default=50, ge=1)
    concurrent_feeds: int = Field(default=1024, ge=1)
    worker_backlog_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    """New fetches wait while this many bytes of fetched feeds and pages wait for (or are in)
    a worker (`ingest.workers.backlog`)."""
    max_entries_per_feed: int = Field(default=200, ge=1)
    page_attempts: int = Field(default=3, ge=1)

    # scheduling
    tick_seconds: float = Field(default=30.0, gt=0)
    poll_interval: float = Field(default=1800.0, gt=0)
    min_interval: float = Field(default=300.0, gt=0)
    max_interval: float = Field(default=86400.0, gt=0)
    deactivate_after_failures: int = Field(default=10, ge=1)
    deactivate_after: float = Field(default=172800.0, ge=0)
    redirect_after_fetches: int = Field(default=3, ge=1)
    redirect_after: float = Field(default=86400.0, ge=0)
    lease_seconds: float = Field(default=600.0, gt=0)

    # retention
    change_retention_days: int = Field(default=30, ge=0)
    """news.article_changes and news.article_history rows older than this are trimmed once a
    day by the service; 0 keeps them forever."""

    # service
    http_port: int = Field(default=8080, ge=0, le=65535)
    http_host: str = "0.0.0.0"  # noqa: S104 - the container's health check and scraper reach it

    # logging
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    def policy(self) -> Policy:
        """The scheduling policy these settings describe."""
        return Policy(
            min_interval=timedelta(seconds=self.min_interval),
            max_interval=timedelta(seconds=self.max_interval),
            default_interval=timedelta(seconds=self.poll_interval),
            deactivate_after_failures=self.deactivate_after_failures,
            deactivate_after=timedelta(seconds=self.deactivate_after),
            redirect_after_fetches=self.redirect_after_fetches,
            redirect_after=timedelta(seconds=self.redirect_after),
        )

    @model_validator(mode="after")
    def _bounds(self) -> Settings:
        if self.min_interval > self.max_interval:
            raise ValueError("INGEST_MIN_INTERVAL must not exceed INGEST_MAX_INTERVAL")
        return self


def load_settings() -> Settings:
    """Read and validate the environment; a bad value becomes one clear `ConfigError`."""
    try:
        return Settings()
    except ValidationError as e:
        problems = "; ".join(
            f"INGEST_{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            if err["loc"]
            else str(err["msg"]).removeprefix("Value error, ")
            for err in e.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from e
