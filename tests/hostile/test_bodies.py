"""Hostile response bodies and framing against the real Fetcher and loopback servers:
compression bombs and lying encodings (peak memory measured in a process of their own), silent
and dribbling servers, oversized headers, lying Content-Length, long redirect chains. Each ends
in one clear FetchError (or a bounded result) within the deadline."""

from __future__ import annotations

import functools
import gzip
import json
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator

import pytest

from ingest.errors import FetchError
from ingest.fetch import Fetcher
from tests.support.httpserver import LocalServer, RawServer, Response, read_request, static
from tests.support.network import Tripwire
from tests.support.paths import ROOT
from tests.support.pipelines import local_settings

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

MIB = 1024 * 1024
PAGE_CAP = 5 * MIB  # the defaults: INGEST_MAX_PAGE_BYTES
FEED_CAP = 10 * MIB
RSS_LIMIT = 300 * MIB


def _zero_blocks(mib: int) -> bytes:
    """Raw deflate data for `mib` MiB of zeros, built in milliseconds: a fully flushed block of
    1 MiB of zeros is byte-aligned and identical every time, so it can be repeated."""
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = c.compress(b"\0" * MIB) + c.flush(zlib.Z_FULL_FLUSH)
    return block * mib + c.flush()


@functools.cache
def _zero_checksums(mib: int) -> tuple[int, int]:
    """(CRC-32, Adler-32) of `mib` MiB of zeros, so that the bombs are valid streams."""
    crc, adler, chunk = 0, 1, b"\0" * MIB
    for _ in range(mib):
        crc, adler = zlib.crc32(chunk, crc), zlib.adler32(chunk, adler)
    return crc, adler


def gzip_bomb(mib: int) -> bytes:
    """A valid gzip member inflating to `mib` MiB (~1 KiB per MiB)."""
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", _zero_checksums(mib)[0], (mib * MIB) & 0xFFFFFFFF)
    return header + _zero_blocks(mib) + trailer


def zlib_bomb(mib: int) -> bytes:
    """A valid zlib stream ("deflate" as RFC 9110 means it) inflating to `mib` MiB."""
    return b"\x78\xda" + _zero_blocks(mib) + struct.pack(">I", _zero_checksums(mib)[1])


def _empty_blocks() -> Iterator[bytes]:
    """Compressed data that inflates to nothing, for ever (bounded here to stay finite)."""
    c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    c.compress(b"")
    block = c.flush(zlib.Z_FULL_FLUSH) * 10_000
    for _ in range(10_000):
        yield block


# (name, kind, response, what the outcome must say)
def bomb_cases() -> list[tuple[str, str, Response, str]]:
    gib = gzip_bomb(1024)
    return [
        ("gzip 1 GiB", "page", Response(200, gib, {"Content-Encoding": "gzip"}), "exceeds"),
        ("gzip 1 GiB feed", "feed", Response(200, gib, {"Content-Encoding": "gzip"}), ""),
        ("x-gzip 1 GiB", "page", Response(200, gib, {"Content-Encoding": "x-gzip"}), ""),
        (
            "gzip members 64 x 64 MiB",
            "page",
            Response(200, gzip_bomb(64) * 64, {"Content-Encoding": "gzip"}),
            "exceeds",
        ),
        (
            "gzip, gzip",
            "page",
            Response(200, gzip.compress(gib), {"Content-Encoding": "gzip, gzip"}),
            "stacked content encodings",
        ),
        (
            "gzip then chunked bomb",
            "page",
            Response(
                200,
                iter([gib[i : i + 65536] for i in range(0, len(gib), 65536)]),
                {"Content-Encoding": "gzip"},
            ),
            "exceeds",
        ),
        ("br", "page", Response(200, gib, {"Content-Encoding": "br"}), "unsupported"),
        ("zstd", "page", Response(200, gib, {"Content-Encoding": "zstd"}), "unsupported"),
        (
            "deflate (zlib) 1 GiB",
            "page",
            Response(200, zlib_bomb(1024), {"Content-Encoding": "deflate"}),
            "exceeds",
        ),
        (
            "deflate (raw) 1 GiB",
            "page",
            Response(200, _zero_blocks(1024), {"Content-Encoding": "deflate"}),
            "exceeds",
        ),
        (
            "deflate of nothing, endless",
            "page",
            Response(200, _empty_blocks(), {"Content-Encoding": "deflate"}),
            "compressed body exceeds",
        ),
        (
            "lie: gzip header, plain body",
            "page",
            Response(200, b"<html>" + b"x" * 100_000, {"Content-Encoding": "gzip"}),
            "invalid gzip body",
        ),
        (
            "lie: deflate header, gzip body",
            "page",
            Response(200, gib, {"Content-Encoding": "deflate"}),
            "invalid deflate body",
        ),
        (
            "lie: no encoding, gzip bytes",
            "page",
            Response(200, gib, {"Content-Type": "text/html"}),
            "ok",
        ),
        (
            "Transfer-Encoding: gzip",
            "page",
            Response(200, iter([gib]), {"Transfer-Encoding": "gzip, chunked"}),
            "protocol error",
        ),
        ("robots.txt gzip 1 GiB", "robots", Response(200, gib, {"Content-Encoding": "gzip"}), "ok"),
    ]


def test_compression_bombs_stay_within_memory(tripwire: Tripwire) -> None:
    """Every bomb and lying encoding ends in its FetchError (or, where the body is merely not
    what it claims, a result no larger than the cap); each case allocates little more than the
    cap (decoded bytes are capped while streaming, in 64 KiB steps) and the fetching process
    stays under 300 MiB of RSS."""
    cases = bomb_cases()
    with LocalServer() as srv:
        srv.routes["/warm"] = static("<html><body>warm</body></html>")
        plan: list[dict[str, str]] = [{"warmup": srv.url("/warm")}]
        for n, (name, kind, response, _) in enumerate(cases):
            srv.routes[f"/bomb/{n}"] = (
                response if isinstance(response.body, bytes) else _fresh(response)
            )
            plan.append({"name": name, "url": srv.url(f"/bomb/{n}"), "kind": kind})
        proc = subprocess.run(
            [sys.executable, "-m", "tests.hostile.fetch_probe"],
            input=json.dumps(plan),
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    baseline = records[0]["peak_kib"] * 1024
    print(f"\nbaseline peak RSS {baseline / MIB:.1f} MiB")
    for (name, kind, _, expected), record in zip(cases, records[1:], strict=True):
        outcome = record["outcome"]
        detail = record.get("message") or f"{record.get('body_bytes')} bytes"
        allocated = record["allocated_peak_kib"] / 1024
        print(
            f"{name:<32} {outcome:<10} RSS {record['peak_kib'] / 1024:6.1f} MiB"
            f"  allocated {allocated:5.1f} MiB  {detail}"
        )
        # What the case itself allocated: the decoded bytes up to the cap, and little else
        # (it was three times the cap while zlib was asked for everything at once).
        cap = {"page": PAGE_CAP, "feed": FEED_CAP, "robots": 512 * 1024}[kind]
        assert allocated * MIB < 1.25 * cap + 4 * MIB, record
        if expected == "ok":
            assert outcome == "ok", record
            cap = 512 * 1024 if kind == "robots" else PAGE_CAP
            assert record["body_bytes"] <= cap
        else:
            assert outcome == "FetchError", record
            assert expected in record["message"], record
    peak = max(r["peak_kib"] for r in records) * 1024
    print(f"peak RSS over all bomb cases {peak / MIB:.1f} MiB (baseline {baseline / MIB:.1f})")
    assert peak < RSS_LIMIT


def _fresh(response: Response):  # type: ignore[no-untyped-def]
    """A route serving a streamed body: iterators are single-use, so the chunks are kept."""
    chunks = list(response.body)  # type: ignore[arg-type]

    def handle(req: object) -> Response:
        return Response(response.status, iter(chunks), dict(response.headers))

    return handle


# --- silence and dribbling ------------------------------------------------------------------------


def _silent(conn: socket.socket) -> None:
    read_request(conn)
    time.sleep(30)


async def test_accepted_but_silent_connection_times_out() -> None:
    """A server that accepts, reads the request and never answers: FetchError after the read
    timeout, not a hang."""
    settings = local_settings(read_timeout=1, request_deadline=10)
    with RawServer(_silent) as raw:
        async with Fetcher(settings) as fetcher:
            with pytest.raises(FetchError, match=r"read timed out: no data for 1s"):
                await fetcher.fetch(raw.url("/feed"), "feed")


async def test_connection_never_accepted_times_out() -> None:
    """A listener that never calls accept() (the kernel still completes the handshake): the
    request cannot be answered and ends on the read timeout."""
    settings = local_settings(read_timeout=1, request_deadline=10)
    with RawServer(_silent, accept=False) as raw:
        async with Fetcher(settings) as fetcher:
            with pytest.raises(FetchError, match="timed out"):
                await fetcher.fetch(raw.url("/feed"), "feed")


DRIBBLED_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Slow: " + b"a" * 1000


async def test_headers_one_byte_at_a_time_hit_the_deadline() -> None:
    """Response headers trickling in a byte every 0.2 s never trip the per-chunk read timeout,
    but the overall deadline ends the request, long before the headers would have ended."""
    sent = []

    def dribble_headers(conn: socket.socket) -> None:
        read_request(conn)
        for byte in DRIBBLED_HEAD:
            conn.sendall(bytes([byte]))
            sent.append(byte)
            time.sleep(0.2)

    settings = local_settings(read_timeout=1, request_deadline=2)
    with RawServer(dribble_headers) as raw:
        async with Fetcher(settings) as fetcher:
            with pytest.raises(FetchError, match="timed out after 2s"):
                await fetcher.fetch(raw.url("/page"), "page")
    assert len(sent) < len(DRIBBLED_HEAD)


def _huge_header(conn: socket.socket) -> None:
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Big: ")
    for _ in range(32):
        conn.sendall(b"a" * 65536)
    conn.sendall(b"\r\n\r\nok")


async def test_two_megabyte_header_is_refused() -> None:
    """A 2 MB response header is a protocol error (h11 stops at 100 KiB), not 2 MB in memory."""
    with RawServer(_huge_header) as raw:
        async with Fetcher(local_settings()) as fetcher:
            with pytest.raises(FetchError, match="protocol error"):
                await fetcher.fetch(raw.url("/page"), "page")


def _short_body(conn: socket.socket) -> None:
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10)
    conn.close()


async def test_body_shorter_than_content_length_is_an_error() -> None:
    """A server that promises 100 kB and hangs up after 10 bytes: FetchError, no partial body
    taken for the whole."""
    with RawServer(_short_body) as raw:
        async with Fetcher(local_settings()) as fetcher:
            with pytest.raises(FetchError, match="protocol error"):
                await fetcher.fetch(raw.url("/page"), "page")


async def test_content_length_over_the_cap_is_refused_before_reading(server: LocalServer) -> None:
    """An identity body declaring more than the cap is refused on its Content-Length."""
    server.routes["/big"] = Response(200, b"x" * (FEED_CAP + 1), {"Content-Type": "text/xml"})
    async with Fetcher(local_settings()) as fetcher:
        with pytest.raises(FetchError, match=r"Content-Length 10485761"):
            await fetcher.fetch(server.url("/big"), "feed")


# --- redirects ------------------------------------------------------------------------------------


async def test_ten_hop_redirect_chain_stops_after_max_redirects(server: LocalServer) -> None:
    """A chain of ten redirects is followed for INGEST_MAX_REDIRECTS (5) hops, then FetchError:
    six requests, never eleven."""
    for hop in range(10):
        server.routes[f"/hop/{hop}"] = Response(302, b"", {"Location": f"/hop/{hop + 1}"})
    server.routes["/hop/10"] = static("<rss/>", "application/rss+xml")
    async with Fetcher(local_settings()) as fetcher:
        with pytest.raises(FetchError, match=r"too many redirects \(more than 5\)") as info:
            await fetcher.fetch(server.url("/hop/0"), "feed")
    assert info.value.status == 302
    assert len([r for r in server.requests if r.path.startswith("/hop/")]) == 6
