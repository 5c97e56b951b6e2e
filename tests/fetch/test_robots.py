"""robots.txt parsing and the robots.txt URL of a page (ingest.robots, pure)."""

from __future__ import annotations

import pytest

from ingest.fetch.robots import ROBOTS_AGENT, Robots, parse_robots, robots_url

ROBOTS = b"""\
# comments and blank lines are ignored

User-agent: news-ingest
Disallow: /private/
Allow: /private/press/
Crawl-delay: 3

User-agent: *
Disallow: /
"""


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/", True),
        ("/2024/01/article.html", True),
        ("/private/secret.html", False),
        ("/private/", False),
        ("/privately-owned", True),
    ],
)
def test_rules_for_our_agent(path: str, allowed: bool) -> None:
    """Our own User-agent group applies, not the catch-all one."""
    robots = parse_robots(ROBOTS)
    assert robots.allowed("https://news.example" + path, ROBOTS_AGENT) is allowed


def test_other_agents_get_the_catch_all_group() -> None:
    """Another agent falls into `User-agent: *`."""
    assert parse_robots(ROBOTS).allowed("https://news.example/", "otherbot") is False


def test_agent_matching_ignores_case_and_version() -> None:
    """`User-agent: News-Ingest` matches our product token with or without a version."""
    robots = parse_robots(b"User-agent: News-Ingest\nDisallow: /x\n")
    assert robots.allowed("http://a.example/x", "news-ingest/0.1.0") is False
    assert robots.allowed("http://a.example/x", "NEWS-INGEST") is False


def test_crawl_delay() -> None:
    """Crawl-delay is read for our agent and absent for files that do not set it."""
    assert parse_robots(ROBOTS).crawl_delay() == 3.0
    assert parse_robots(b"User-agent: *\nDisallow:\n").crawl_delay() is None


@pytest.mark.parametrize(
    "body",
    [b"", b"\xef\xbb\xbf", b"User-agent: *\nDisallow:\n", b"\xff\xfe garbage \x00\n"],
)
def test_empty_or_permissive_files_allow_everything(body: bytes) -> None:
    """An empty, BOM-only, empty-Disallow or unreadable file allows everything."""
    assert parse_robots(body).allowed("http://a.example/any", ROBOTS_AGENT) is True


def test_bom_does_not_hide_the_first_line() -> None:
    """A UTF-8 byte-order mark before `User-agent` does not break the first group."""
    robots = parse_robots(b"\xef\xbb\xbfUser-agent: *\nDisallow: /\n")
    assert robots.allowed("http://a.example/x", ROBOTS_AGENT) is False


def test_crlf_line_endings() -> None:
    """Windows line endings parse like Unix ones."""
    robots = parse_robots(b"User-agent: *\r\nDisallow: /tmp\r\n")
    assert robots.allowed("http://a.example/tmp/x", ROBOTS_AGENT) is False
    assert robots.allowed("http://a.example/ok", ROBOTS_AGENT) is True


def test_allow_all_and_disallow_all() -> None:
    """The two fixed policies used for 4xx and 5xx robots.txt answers."""
    assert Robots.allow_all().allowed("http://a.example/x", ROBOTS_AGENT) is True
    assert Robots.disallow_all().allowed("http://a.example/x", ROBOTS_AGENT) is False
    assert Robots.disallow_all().allowed("http://a.example/", ROBOTS_AGENT) is False


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("https://news.example/a/b?c=d#e", "https://news.example/robots.txt"),
        ("http://News.Example:8080/x", "http://news.example:8080/robots.txt"),
        ("https://user:pw@news.example/x", "https://news.example/robots.txt"),
        ("http://[2001:db8::1]:81/x", "http://[2001:db8::1]:81/robots.txt"),
        ("HTTP://news.example", "http://news.example/robots.txt"),
    ],
)
def test_robots_url(page: str, expected: str) -> None:
    """Same scheme, host and port as the page; path /robots.txt; no query or credentials."""
    assert robots_url(page) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10", 10.0),
        ("%32", 2.0),
        ("7 # seconds", 7.0),
        ("1.5", 2.0),
        ("0.5", 1.0),
        (".25", 1.0),
        ("2.0", 2.0),
        ("0", 0.0),
        ("", None),
        ("-1", None),
        ("1e3", None),
        ("soon", None),
        pytest.param("9" * 400, 999_999_999.0, id="400-digits"),
        pytest.param("9" * 5000, 999_999_999.0, id="5000-digits"),
        pytest.param("0" * 20 + "4", 4.0, id="leading-zeros"),
    ],
)
def test_crawl_delay_values(value: str, expected: float | None) -> None:
    """Whole seconds kept, fractions rounded up, junk ignored, huge values clamped."""
    robots = parse_robots(f"User-agent: *\nCrawl-delay: {value}\n".encode())
    assert robots.crawl_delay() == expected


@pytest.mark.parametrize(
    "line",
    ["Crawl-delay: ²", "Crawl-delay: %C2%B2", "Request-rate: ²/1", "Request-rate: 1/" + "9" * 5000],
    ids=["superscript", "encoded-superscript", "rate-superscript", "rate-5000-digits"],
)
def test_hostile_numbers_do_not_break_parsing(line: str) -> None:
    """Digits int() refuses (superscripts, 5000 of them) do not break parsing."""
    robots = parse_robots(f"User-agent: *\n{line}\nDisallow: /x\n".encode())
    assert robots.allowed("http://a.example/x", ROBOTS_AGENT) is False
    assert robots.allowed("http://a.example/y", ROBOTS_AGENT) is True


def test_ignored_crawl_delay_still_ends_the_group() -> None:
    """An unusable Crawl-delay line still ends the group, as RobotFileParser reads it."""
    robots = parse_robots(
        b"User-agent: news-ingest\nCrawl-delay: \xc2\xb2\nUser-agent: *\nDisallow: /\n"
    )
    assert robots.allowed("http://a.example/x", ROBOTS_AGENT) is True
    assert robots.allowed("http://a.example/x", "otherbot") is False
    assert robots.crawl_delay() is None
