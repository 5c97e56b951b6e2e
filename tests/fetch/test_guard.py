"""The fetcher's pure guards: address check, content codings, bounded decoding, host limiter."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import pytest

from ingest.config import Settings
from ingest.errors import BlockedError, FetchError
from ingest.fetch import (
    BlockedAddressError,
    BodyDecoder,
    BodyTooLargeError,
    Fetcher,
    HostLimiter,
    check_address,
    content_coding,
)

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "2001:4860:4860::8888",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]

NON_PUBLIC = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("10.0.0.5", "private"),
    ("10.255.255.255", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("169.254.169.254", "link-local"),
    ("0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("198.18.0.1", "private"),
    ("240.0.0.1", "private"),
    ("255.255.255.255", "private"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "127.0.0.1"),
    ("::ffff:10.0.0.1", "10.0.0.1"),
    ("::ffff:169.254.169.254", "169.254.169.254"),
    ("64:ff9b::7f00:1", "127.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
    ("64:ff9b:1::1", "reserved"),
    ("2002:7f00:1::", "127.0.0.1"),
    ("2002:a00:1::", "10.0.0.1"),
    ("::7f00:1", "reserved"),
    ("2001:db8::1", "private"),
]


def _refusal(ip: str, *, allow_private: bool) -> str | None:
    """Why check_address refuses `ip`, or None when it lets it through."""
    try:
        check_address(ip, allow_private=allow_private)
    except BlockedAddressError as e:
        return str(e)
    return None


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses_pass(ip: str) -> None:
    """Globally routable unicast addresses, including translated forms of them, are allowed."""
    assert _refusal(ip, allow_private=False) is None


@pytest.mark.parametrize(("ip", "why"), NON_PUBLIC)
def test_non_public_addresses_are_refused(ip: str, why: str) -> None:
    """Loopback, private, CGNAT, link-local, multicast, reserved and wrapped forms are refused."""
    with pytest.raises(BlockedAddressError, match=why):
        check_address(ip, allow_private=False)


@pytest.mark.parametrize(("ip", "_why"), NON_PUBLIC)
def test_allow_private_lets_everything_through(ip: str, _why: str) -> None:
    """allow_private_networks turns the address check off (tests, intranet deployments)."""
    assert _refusal(ip, allow_private=True) is None


@pytest.mark.parametrize("text", ["localhost", "", "2130706433", "127.1", "1.2.3.4.5"])
def test_check_address_wants_a_canonical_ip(text: str) -> None:
    """Only resolved addresses are checked; anything that is not an IP string is refused."""
    with pytest.raises(BlockedAddressError):
        check_address(text, allow_private=True)


def test_blocked_address_error_is_a_value_error() -> None:
    """Callers outside the fetcher can treat a refused address as a plain ValueError."""
    assert issubclass(BlockedAddressError, ValueError)


@pytest.mark.parametrize(
    ("header", "coding"),
    [
        (None, "identity"),
        ("", "identity"),
        ("identity", "identity"),
        ("gzip", "gzip"),
        ("GZIP", "gzip"),
        ("x-gzip", "gzip"),
        (" gzip ", "gzip"),
        ("deflate", "deflate"),
        ("identity, gzip", "gzip"),
    ],
)
def test_content_coding_accepts_one_known_coding(header: str | None, coding: str) -> None:
    """identity, gzip (x-gzip) and deflate are the codings we can decode with a cap."""
    assert content_coding(header) == coding


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("gzip, gzip", "stacked"),
        ("deflate, gzip", "stacked"),
        ("br", "unsupported content encoding: br"),
        ("zstd", "unsupported"),
        ("compress", "unsupported"),
    ],
)
def test_content_coding_refuses_stacked_and_unknown(header: str, message: str) -> None:
    """Stacked codings and ones we never asked for (br, zstd) are refused, not guessed at."""
    with pytest.raises(ValueError, match=message):
        content_coding(header)


def _decode(coding: str, data: bytes, cap: int, chunk: int = 1000, truncate: bool = False) -> bytes:
    decoder = BodyDecoder(coding, cap, truncate=truncate)
    for i in range(0, len(data), chunk):
        decoder.feed(data[i : i + chunk])
    return decoder.finish()


TEXT = b"<rss><channel><title>news</title></channel></rss>\n" * 200


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


@pytest.mark.parametrize(
    ("coding", "encoded"),
    [
        ("identity", TEXT),
        ("gzip", gzip.compress(TEXT)),
        ("deflate", zlib.compress(TEXT)),
        ("deflate", _raw_deflate(TEXT)),
        ("gzip", gzip.compress(TEXT[:5000]) + gzip.compress(TEXT[5000:])),
        ("gzip", gzip.compress(TEXT) + b"\0\0\0\0"),
    ],
    ids=["identity", "gzip", "zlib-deflate", "raw-deflate", "gzip-members", "gzip-padding"],
)
@pytest.mark.parametrize("chunk", [1, 7, 1000, 1 << 20])
def test_decoder_round_trips(coding: str, encoded: bytes, chunk: int) -> None:
    """Each supported coding decodes to the original bytes whatever the chunking."""
    assert _decode(coding, encoded, cap=1 << 20, chunk=chunk) == TEXT


def test_decoder_stops_a_gzip_bomb_at_the_cap() -> None:
    """50 MB of zeros gzipped is refused once 1 MB is decoded, never inflated in full."""
    bomb = gzip.compress(b"\0" * (50 * 1024 * 1024), compresslevel=9)
    decoder = BodyDecoder("gzip", 1024 * 1024)
    with pytest.raises(BodyTooLargeError, match="body exceeds 1048576 bytes"):
        decoder.feed(bomb)
    assert sum(map(len, decoder._out)) == 1024 * 1024


def test_decoder_allows_exactly_the_cap() -> None:
    """A body of exactly `cap` decoded bytes is accepted; one more byte is not."""
    assert _decode("gzip", gzip.compress(b"a" * 4096), cap=4096) == b"a" * 4096
    with pytest.raises(BodyTooLargeError):
        _decode("gzip", gzip.compress(b"a" * 4097), cap=4096)
    with pytest.raises(BodyTooLargeError):
        _decode("identity", b"a" * 4097, cap=4096)


def test_decoder_truncates_when_asked() -> None:
    """In truncate mode (robots.txt) the first `cap` bytes are kept and the rest ignored."""
    decoder = BodyDecoder("gzip", 100, truncate=True)
    decoder.feed(gzip.compress(b"x" * 10_000))
    assert decoder.done
    decoder.feed(b"more")
    assert decoder.finish() == b"x" * 100


def test_decoder_bounds_compressed_input_that_inflates_to_nothing() -> None:
    """Endless empty deflate blocks cannot be streamed for ever: raw input is capped too."""
    decoder = BodyDecoder("deflate", 1000)
    empty_blocks = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    empty_blocks.compress(b"")
    block = empty_blocks.flush(zlib.Z_FULL_FLUSH)
    chunk = block * 100

    def stream_for_ever() -> None:
        for _ in range(100_000):
            decoder.feed(chunk)

    with pytest.raises(BodyTooLargeError, match="compressed body exceeds"):
        stream_for_ever()


def test_decoder_rejects_corrupt_gzip() -> None:
    """Bytes that are not gzip at all are a zlib error, which fetch() reports as FetchError."""
    with pytest.raises(zlib.error):
        _decode("gzip", b"this is not gzip" * 10, cap=1000)


@pytest.mark.anyio
async def test_host_limiter_caps_concurrency_and_forgets_idle_hosts() -> None:
    """At most per_host holders of one key at a time; idle keys do not accumulate."""
    limiter = HostLimiter(2)
    inside = 0
    peak = 0

    async def worker(key: str) -> None:
        nonlocal inside, peak
        async with limiter.slot(key):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(worker("http://a:80") for _ in range(6)))
    assert peak == 2
    assert len(limiter) == 0


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/feed.xml",
        "gopher://example.com/1",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "data:text/plain,hello",
        "//example.com/no-scheme",
    ],
)
async def test_non_http_schemes_are_blocked_before_connecting(url: str) -> None:
    """Only http and https are fetched; anything else is BlockedError with no resolution."""
    looked_up: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        looked_up.append(host)
        return ["93.184.216.34"]

    async with Fetcher(Settings(), resolver=resolver) as fetcher:
        with pytest.raises(BlockedError, match="scheme"):
            await fetcher.fetch(url, "feed")
        with pytest.raises(BlockedError):
            await fetcher.robots_allowed(url)
    assert looked_up == []


@pytest.mark.anyio
async def test_unresolvable_host_is_a_fetch_error() -> None:
    """A resolver failure is a FetchError naming the host, never a raw OSError."""

    async def resolver(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    async with Fetcher(Settings(), resolver=resolver) as fetcher:
        with pytest.raises(FetchError, match=r"could not resolve host nowhere\.test") as info:
            await fetcher.fetch("http://nowhere.test/feed", "feed")
    assert not isinstance(info.value, BlockedError)


@pytest.mark.anyio
@pytest.mark.parametrize("url", ["http://", "http://exa mple.com/", "https://[::1/", "not a url"])
async def test_malformed_urls_are_fetch_errors(url: str) -> None:
    """Unparseable or host-less URLs are FetchError (BlockedError without a scheme), no crash."""
    async with Fetcher(Settings()) as fetcher:
        with pytest.raises(FetchError):
            await fetcher.fetch(url, "feed")
