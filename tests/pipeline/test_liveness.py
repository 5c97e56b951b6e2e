"""The service's liveness (/healthz) on loopback, with the service object and its HTTP server:
a run stuck on a claim that never returns is reported, and recovers once it moves again."""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import subprocess
import sys
from typing import get_args

import httpx
import psycopg
import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from ingest.types import FetchKind, PollStatus
from jobs.http import HealthServer
from jobs.service import DRAIN_STUCK_SECONDS, STALL_MARGIN, STALLED_TICKS, Service
from jobs.tasks import refresh_schedule_lag
from tests.support.paths import ROOT
from tests.support.pipelines import local_settings, pipeline_for
from tests.support.workers import InlineWorkers

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def _wait_for(client: httpx.AsyncClient, url: str, status: int) -> httpx.Response:
    """The first answer of `url` with `status`, asked every 0.1 s for up to a minute."""
    response = await client.get(url)
    for _ in range(600):
        if response.status_code == status:
            break
        await asyncio.sleep(0.1)
        response = await client.get(url)
    return response


async def test_a_run_stuck_on_a_claim_makes_the_service_unhealthy_until_it_moves(
    database_url: str, inline_workers: InlineWorkers
) -> None:
    """The claim waits on a table lock another session holds (no timeout: it would wait
    forever): once the service's stall limit passes (2 s here) without a claim answered,
    /healthz is 503 naming the stall; the lock released, the run goes on and /healthz is 200
    again."""
    settings = local_settings(database_url, tick_seconds=0.1, lease_seconds=1)
    blocker = await psycopg.AsyncConnection.connect(database_url)
    try:
        await blocker.execute("LOCK TABLE ingest.feeds IN ACCESS EXCLUSIVE MODE")
        async with pipeline_for(settings, inline_workers) as pipeline:
            service = Service(pipeline, tick_seconds=settings.tick_seconds)
            assert service.stalled_after == STALLED_TICKS * 0.1 + 1 + STALL_MARGIN
            service.stalled_after = 2.0  # not the minute of the margin
            http = HealthServer("127.0.0.1", 0, healthy=service.healthy, ready=service.ready)
            await http.start()
            running = asyncio.create_task(service.run())
            url = f"http://127.0.0.1:{http.port}/healthz"
            try:
                async with httpx.AsyncClient(timeout=10) as client:
                    stuck = await _wait_for(client, url, 503)
                    await blocker.rollback()
                    moving = await _wait_for(client, url, 200)
            finally:
                await blocker.rollback()
                service.stop()
                await running
                await http.close()
    finally:
        await blocker.close()
    assert (stuck.status_code, stuck.text.split(":")[0]) == (503, "run stalled")
    assert (moving.status_code, moving.text) == (200, "ok\n")


async def test_a_draining_service_is_alive_until_its_drain_is_stuck(
    database_url: str, inline_workers: InlineWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From SIGTERM on the service drains: /healthz stays 200 (a liveness probe failing then
    would have the container killed mid-drain, its feeds left leased; was: 503 "stopping"),
    and turns 503 only when the drain goes on longer than its grace and the margin
    (`DRAIN_STUCK_SECONDS`): a hand-back that never ends. /readyz is 503 all along."""
    settings = local_settings(database_url, tick_seconds=0.1, lease_seconds=1)
    clock = [1000.0]
    monkeypatch.setattr("jobs.service.time.monotonic", lambda: clock[0])
    async with pipeline_for(settings, inline_workers) as pipeline:
        service = Service(pipeline, tick_seconds=settings.tick_seconds)
        scheduler = AsyncIOScheduler()
        scheduler.start(paused=True)
        service._scheduler = scheduler
        try:
            assert await service.healthy() is None
            service.stop()
            draining = await service.healthy(), await service.ready()
            clock[0] += DRAIN_STUCK_SECONDS - 1
            late = await service.healthy()
            clock[0] += 2
            stuck = await service.healthy()
        finally:
            scheduler.shutdown(wait=False)
    assert draining == (None, "stopping")
    assert late is None
    assert (stuck or "").startswith("stopping: still draining")


async def _exchange(port: int, request: bytes) -> tuple[bytes, bytes]:
    """The head and the body of the server's answer to `request`, read until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


async def test_a_head_request_is_answered_without_a_body() -> None:
    """HEAD /healthz, /readyz, /metrics (a load balancer's or an operator's `curl -I` check):
    the status and headers GET would have, Content-Length included, and no body (RFC 9110
    9.3.2; was: the body too, which a client reusing the connection reads as the start of
    the next response)."""

    async def fine() -> str | None:
        return None

    async def down() -> str | None:
        return "database unreachable: OperationalError"

    http = HealthServer("127.0.0.1", 0, healthy=fine, ready=down)
    await http.start()
    try:
        for path, status in (("/healthz", b" 200 "), ("/readyz", b" 503 "), ("/metrics", b" 200 ")):
            got_head, got_body = await _exchange(
                http.port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            )
            head, body = await _exchange(
                http.port, f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            )
            assert status in head.split(b"\r\n")[0]
            assert body == b"", path
            assert got_body
            length = [h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")]
            assert length, path
            if path != "/metrics":  # the metrics change between two scrapes
                assert head == got_head
    finally:
        await http.close()


async def test_idle_connections_beyond_the_limit_close_the_oldest_and_probes_are_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Connections opened and left idle (a port scanner, a slowloris client), more of them
    than `MAX_WAITING`: each one more closes the one that has waited longest, so that the
    server never holds more than that many file descriptors for them, and a probe that sends
    its request is answered among them (was: every idle connection was held until its
    request's time ran out, as many as were opened, the descriptors the service's own
    requests and database connections need with them). The time for a request is an hour
    here, so that none is closed for want of one."""
    monkeypatch.setattr("jobs.http.REQUEST_SECONDS", 3600.0, raising=False)
    monkeypatch.setattr("jobs.http.MAX_WAITING", 8, raising=False)
    http = HealthServer("127.0.0.1", 0, healthy=_fine, ready=_fine)
    await http.start()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        for _ in range(8 + 5):
            idle.append(await asyncio.open_connection("127.0.0.1", http.port))
        head, body = await _exchange(http.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (head.split(b"\r\n")[0], body) == (b"HTTP/1.1 200 OK", b"ok\n")
        # The probe took a place too: the six that waited longest were closed, in order; the
        # next one still waits for its request, and is answered.
        for reader, _ in idle[:6]:
            assert await asyncio.wait_for(reader.read(), 30) == b""
        reader, writer = idle[6]
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 30)
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        for _, writer in idle:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        await http.close()


async def test_requests_that_come_during_a_check_share_its_answer() -> None:
    """Twenty /readyz requests at once (probes of several checkers, a flood): the readiness
    check, which reads the database through the service's own pool of 8 connections, runs once
    and each request gets its answer (was: once a request, each holding a connection of the
    pool the feeds' writes need, as many at once as requests came)."""
    calls = 0
    release = asyncio.Event()

    async def ready() -> str | None:
        nonlocal calls
        calls += 1
        await release.wait()
        return "database unreachable: OperationalError"

    http = HealthServer("127.0.0.1", 0, healthy=_fine, ready=ready)
    read = 0  # requests read, and being answered
    respond = http._respond

    async def counted(request_line: list[str]) -> tuple[int, str, bytes]:
        nonlocal read
        read += 1
        return await respond(request_line)

    http._respond = counted  # type: ignore[method-assign]
    await http.start()
    try:
        request = b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"
        asked = [asyncio.ensure_future(_exchange(http.port, request)) for _ in range(20)]
        for _ in range(600):
            if read == 20:
                break
            await asyncio.sleep(0.05)
        release.set()
        answers = await asyncio.wait_for(asyncio.gather(*asked), 30)
        assert calls == 1
        assert {(head.split(b"\r\n")[0], body) for head, body in answers} == {
            (b"HTTP/1.1 503 Service Unavailable", b"database unreachable: OperationalError\n")
        }
        release.clear()
        again = asyncio.ensure_future(_exchange(http.port, request))
        for _ in range(300):
            if calls == 2:
                break
            await asyncio.sleep(0.1)
        release.set()
        await asyncio.wait_for(again, 30)
        assert calls == 2  # a request after the answer checks anew
    finally:
        await http.close()


def _scraped(text: str, name: str) -> float:
    """The value of the unlabelled metric `name` in a Prometheus text exposition."""
    (line,) = [ln for ln in text.splitlines() if ln.split(" ")[0] == name]
    return float(line.split(" ")[1])


async def test_the_schedule_gauges_tell_a_database_that_does_not_answer_from_a_healthy_one(
    database_url: str, pg_admin: str, inline_workers: InlineWorkers
) -> None:
    """`ingest_feeds_overdue` and `ingest_overdue_lag_seconds` read from the database (3 feeds
    an hour late); while it does not answer (connections refused), they are NaN, not the last
    values read, and `ingest_database_up` is 0 where it was 1; once it answers, the values come
    back (was: the last values stayed, and a dashboard showed a healthy schedule through the
    outage)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ingest.feeds (url, next_fetch_at)"
            " SELECT 'https://late.example/' || n, now() - interval '1 hour'"
            " FROM generate_series(1, 3) AS n"
        )
    name = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
    http = HealthServer("127.0.0.1", 0, healthy=_fine, ready=_fine)
    await http.start()
    url = f"http://127.0.0.1:{http.port}/metrics"
    try:
        async with (
            pipeline_for(local_settings(database_url), inline_workers) as pipeline,
            httpx.AsyncClient(timeout=10) as client,
        ):
            pipeline.store.pool.timeout = 2.0  # the wait for a connection, not 30 s
            await refresh_schedule_lag(pipeline)
            before = (await client.get(url)).text
            with psycopg.connect(pg_admin, autocommit=True) as admin:
                admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (name,),
                )
                try:
                    await refresh_schedule_lag(pipeline)
                    during = (await client.get(url)).text
                finally:
                    admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
            pipeline.store.pool.timeout = 30.0  # while the pool connects again
            await refresh_schedule_lag(pipeline)
            after = (await client.get(url)).text
    finally:
        await http.close()
    for scrape in (before, after):
        assert _scraped(scrape, "ingest_feeds_overdue") == 3
        assert _scraped(scrape, "ingest_overdue_lag_seconds") >= 3600 - 60
        assert _scraped(scrape, "ingest_database_up") == 1
    assert math.isnan(_scraped(during, "ingest_feeds_overdue"))
    assert math.isnan(_scraped(during, "ingest_overdue_lag_seconds"))
    assert _scraped(during, "ingest_database_up") == 0


async def _fine() -> str | None:
    return None


def test_every_series_known_in_advance_is_exported_from_the_start() -> None:
    """A service that has polled nothing yet exports `ingest_feeds_polled_total` for each status,
    `ingest_errors_total` for each kind known in advance and `ingest_fetch_duration_seconds`
    for each kind of request, at 0, as Prometheus asks of series known in advance: `increase()`
    and `rate()` then see the first error after a start, and an alert on a series has one to
    read (was: each series appeared at its first event, whose count no `increase()` sees)."""
    scrape = subprocess.run(
        [sys.executable, "-c", "import jobs.service, prometheus_client as p;"
         " print(p.generate_latest().decode())"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout  # fmt: skip
    errors = ("tick", "trim", "FetchError", "BlockedError", "ParseError", "StoreError")
    errors += ("WorkerTimeout", "WorkerCrashed")
    for series in (
        *(f'ingest_feeds_polled_total{{status="{s}"}} 0.0' for s in get_args(PollStatus)),
        *(f'ingest_fetch_duration_seconds_count{{kind="{k}"}} 0.0' for k in get_args(FetchKind)),
        *(f'ingest_errors_total{{kind="{k}"}} 0.0' for k in errors),
    ):
        assert series in scrape.splitlines(), series


def test_the_readme_names_every_metric_with_its_labels_and_nothing_else() -> None:
    """The metrics the README lists (its paragraph after the endpoints) are those the service
    exports, each with the labels it names (`name{label}`), no more and no fewer: a metric
    added, renamed or given a label shows here until the README says so."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = readme.split("\nMetrics: ", 1)[1].split("\n\n", 1)[0]
    named = {
        name: tuple(labels.split(",")) if labels else ()
        for name, labels in re.findall(r"`(ingest_[a-z_]+)(?:\{([a-z_,]+)\})?`", paragraph)
    }
    scrape = subprocess.run(
        [sys.executable, "-c", "import jobs.service, prometheus_client as p;"
         " print(p.generate_latest().decode())"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout  # fmt: skip
    labelled: dict[str, set[str]] = {}  # by the name of its TYPE line (a counter's `_total`)
    for line in scrape.splitlines():
        if line.startswith("# TYPE "):
            name = line.split()[2]
            if not name.endswith("_created"):  # prometheus_client's start time of each series
                labelled[name] = set()
        elif line and not line.startswith("#"):
            name, _, labels = line.split(" ")[0].partition("{")
            if name.endswith("_created"):
                continue
            base = next(n for n in labelled if name == n or name.startswith(n + "_"))
            labelled[base] |= {kv.split("=")[0] for kv in labels.rstrip("}").split(",") if kv}
            labelled[base].discard("le")  # a histogram's buckets
    exported = {name: labels for name, labels in labelled.items() if name.startswith("ingest_")}
    assert sorted(named) == sorted(exported)
    for name, labels in exported.items():
        assert set(named[name]) == labels, name
