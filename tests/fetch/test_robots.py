"""robots.txt parsing and the robots.txt URL of a page (ingest.robots, pure)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.fetch.robots import ROBOTS_AGENT, Robots, _normalize, parse_robots, robots_url

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


# A robots.txt as Windows Notepad saves it with "Unicode" chosen (UTF-16 little-endian, its
# byte order mark first, CRLF line ends), or as a tool writes UTF-16 without the mark.
WINDOWS_ROBOTS = "User-agent: *\r\nDisallow: /admin/\r\nCrawl-delay: 5\r\n"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(WINDOWS_ROBOTS.encode("utf-16"), id="le-with-bom"),
        pytest.param(b"\xfe\xff" + WINDOWS_ROBOTS.encode("utf-16-be"), id="be-with-bom"),
        pytest.param(WINDOWS_ROBOTS.encode("utf-16-le"), id="le-without-bom"),
        pytest.param(WINDOWS_ROBOTS.encode("utf-16-be"), id="be-without-bom"),
    ],
)
def test_a_utf_16_robots_txt_is_obeyed(body: bytes) -> None:
    """A robots.txt in UTF-16, with its byte order mark or without one (the NULs of its first
    characters say so), is read as the text it is (`normalize.wide_as_utf8`): its rules and
    its Crawl-delay obeyed (read one byte a character, every line was a field name with a NUL
    in it, no group at all: the site's Disallow allowed everything)."""
    robots = parse_robots(body)
    assert robots.allowed("http://a.example/admin/users", ROBOTS_AGENT) is False
    assert robots.allowed("http://a.example/news/", ROBOTS_AGENT) is True
    assert robots.crawl_delay() == 5.0


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
        ("5s", 5.0),
        ("5 s", 5.0),
        ("5S", 5.0),
        ("10sec", 10.0),
        ("10 secs", 10.0),
        ("1 second", 1.0),
        ("20 Seconds", 20.0),
        ("1.5s", 2.0),
        ("0.5 sec", 1.0),
        ("5 ms", None),
        ("5 minutes", None),
        ("s", None),
        ("5ss", None),
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
    """Whole seconds kept, fractions rounded up, a unit of seconds after the number read (was:
    `5s` ignored, the site's delay not kept), junk and other units ignored, huge values
    clamped."""
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
    """An unusable Crawl-delay line still ends the run of User-agent lines of its group."""
    robots = parse_robots(
        b"User-agent: news-ingest\nCrawl-delay: \xc2\xb2\nUser-agent: *\nDisallow: /\n"
    )
    assert robots.allowed("http://a.example/x", ROBOTS_AGENT) is True
    assert robots.allowed("http://a.example/x", "otherbot") is False
    assert robots.crawl_delay() is None


@pytest.mark.parametrize(
    ("body", "path", "allowed"),
    [
        # RFC 9309 §2.2.2: the longest matching rule wins, wherever it is in the group.
        (b"Disallow: /\nAllow: /public", "/public/story", True),
        (b"Allow: /public\nDisallow: /public/drafts", "/public/drafts/1", False),
        # ... and Allow wins a tie between equally long rules.
        (b"Disallow: /page\nAllow: /page", "/page", True),
        (b"Allow: /page\nDisallow: /page", "/page", True),
        # `*` matches any run of characters, `$` the end of the path.
        (b"Disallow: /*.pdf$", "/files/report.pdf", False),
        (b"Disallow: /*.pdf$", "/files/report.pdf?x=1", True),
        (b"Disallow: /*.pdf$", "/files/report.pdfa", True),
        (b"Disallow: /a*b", "/axxb/c", False),
        (b"Disallow: /a*b", "/axxc", True),
        (b"Disallow: /*?*sessionid=", "/story?a=1&sessionid=2", False),
        (b"Disallow: /$", "/", False),
        (b"Disallow: /$", "/story", True),
        (b"Disallow: /\nAllow: /$", "/", True),
        (b"Disallow: /\nAllow: /$", "/story", False),
        # The query is part of what is matched.
        (b"Disallow: /search?q=", "/search?q=x", False),
        # Percent-encoded unreserved characters match their plain spelling, and a non-ASCII
        # pattern matches its UTF-8 percent-encoding (§2.2.2).
        (b"Disallow: /%62%61%7A", "/baz", False),
        ("Disallow: /caf\u00e9".encode(), "/caf%C3%A9/menu", False),
        (b"Disallow: /caf%c3%a9", "/caf%C3%A9", False),
        # Blank lines inside a group do not end it (§2.2: a group's rules may follow them).
        (b"\nDisallow: /x", "/x", False),
        # /robots.txt itself is always allowed (§2.2.2).
        (b"Disallow: /", "/robots.txt", True),
    ],
)
def test_rules_match_as_rfc_9309_says(body: bytes, path: str, allowed: bool) -> None:
    """Longest match, Allow winning ties, `*` and `$` patterns, percent-encoding (RFC 9309)."""
    robots = parse_robots(b"User-agent: *\n" + body + b"\n")
    assert robots.allowed("https://news.example" + path, ROBOTS_AGENT) is allowed


def test_groups_for_our_agent_are_merged() -> None:
    """Two groups naming our product token are one group (RFC 9309 §2.2.1)."""
    robots = parse_robots(
        b"User-agent: news-ingest\nDisallow: /a\n\n"
        b"User-agent: *\nDisallow: /\n\n"
        b"User-agent: news-ingest\nDisallow: /b\n"
    )
    assert robots.allowed("http://a.example/a", ROBOTS_AGENT) is False
    assert robots.allowed("http://a.example/b", ROBOTS_AGENT) is False
    assert robots.allowed("http://a.example/c", ROBOTS_AGENT) is True


def test_catch_all_groups_are_merged() -> None:
    """Two `User-agent: *` groups are one group as well."""
    robots = parse_robots(b"User-agent: *\nDisallow: /a\n\nUser-agent: *\nDisallow: /b\n")
    assert robots.allowed("http://a.example/a", ROBOTS_AGENT) is False
    assert robots.allowed("http://a.example/b", ROBOTS_AGENT) is False


@pytest.mark.parametrize("agent", ["news", "ingest", "news-ingest-bot", "news-in"])
def test_only_our_product_token_selects_a_group(agent: str) -> None:
    """A group for another product token that merely shares letters with ours is not ours: the
    catch-all group applies (RFC 9309 §2.2.1 matches the whole product token)."""
    robots = parse_robots(
        f"User-agent: {agent}\nDisallow: /\n\nUser-agent: *\nDisallow: /x\n".encode()
    )
    assert robots.allowed("http://a.example/story", ROBOTS_AGENT) is True
    assert robots.allowed("http://a.example/x", ROBOTS_AGENT) is False


def test_a_group_can_name_several_agents_and_a_version() -> None:
    """Consecutive User-agent lines open one group; `News-Ingest/2.0` names our product token."""
    robots = parse_robots(
        b"User-agent: otherbot\nUser-agent: News-Ingest/2.0\nDisallow: /x\nCrawl-delay: 4\n"
    )
    assert robots.allowed("http://a.example/x", ROBOTS_AGENT) is False
    assert robots.crawl_delay(ROBOTS_AGENT) == 4.0


def test_wildcard_rules_stay_fast_on_hostile_patterns() -> None:
    """A pattern of thousands of `*` runs is matched without backtracking (a regular expression
    built from it would not finish on these paths)."""
    pattern = "/" + "*a" * 5000 + "b"
    robots = parse_robots(f"User-agent: *\nDisallow: {pattern}\n".encode())
    assert robots.allowed("http://a.example/" + "a" * 6000, ROBOTS_AGENT) is True
    assert robots.allowed("http://a.example/" + "a" * 6000 + "b", ROBOTS_AGENT) is False


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ("Request-rate: 1/10", 10.0),
        ("Request-rate: 1/10s", 10.0),
        ("Request-rate: 1/5m", 300.0),
        ("Request-rate: 6/1M", 10.0),
        ("Request-rate: 1/1h", 3600.0),
        ("Request-rate: 2/1s", 0.5),
        ("Request-rate: 1/10s 0600-0845", 10.0),
        ("Request-rate: 1 / 10s # slow", 10.0),
        ("Crawl-delay: 4\nRequest-rate: 1/10", 10.0),
        ("Request-rate: 1/10\nCrawl-delay: 20", 20.0),
        ("Request-rate: 1/10\nRequest-rate: 1/99", 10.0),
        ("Request-rate: 0/10", None),
        ("Request-rate: 1/0", None),
        ("Request-rate: soon", None),
        ("Request-rate: 1/10d", None),
        ("Request-rate: -1/10", None),
        pytest.param("Request-rate: 1/" + "9" * 5000, 999_999_999.0, id="5000-digits"),
        pytest.param("Request-rate: 1/999999999h", 999_999_999.0, id="clamped-hours"),
    ],
)
def test_request_rate_gives_the_delay_between_requests(lines: str, expected: float | None) -> None:
    """`Request-rate: n/p[smh]` (p seconds, minutes or hours, an optional time window after it)
    asks for at most n requests every p: one every p/n; the longer of it and Crawl-delay is the
    delay asked for; junk, a zero and unknown units are ignored, huge values clamped."""
    robots = parse_robots(f"User-agent: *\n{lines}\nDisallow: /x\n".encode())
    assert robots.crawl_delay() == expected
    assert robots.allowed("http://a.example/x", ROBOTS_AGENT) is False


def test_request_rate_ends_the_run_of_user_agent_lines() -> None:
    """A Request-rate line belongs to its group: the next User-agent opens another one."""
    robots = parse_robots(
        b"User-agent: news-ingest\nRequest-rate: 1/8\nUser-agent: *\nDisallow: /\n"
    )
    assert robots.crawl_delay(ROBOTS_AGENT) == 8.0
    assert robots.allowed("http://a.example/x", ROBOTS_AGENT) is True
    assert robots.crawl_delay("otherbot") is None


def _reference_matches(pattern: str, path: str) -> bool:
    """`_matches` as every rule was compared with before rules were indexed: the reference."""
    anchored = pattern.endswith("$")
    pieces = (pattern[:-1] if anchored else pattern).split("*")
    first, *middle = pieces
    if not path.startswith(first):
        return False
    if not middle:
        return not anchored or len(path) == len(first)
    *middle, last = middle
    position = len(first)
    for piece in middle:
        found = path.find(piece, position)
        if found < 0:
            return False
        position = found + len(piece)
    if anchored:
        return path.endswith(last) and len(path) - len(last) >= position
    return path.find(last, position) >= 0


def _reference_allowed(robots: Robots, url: str, user_agent: str) -> bool:
    """`Robots.allowed` comparing the path with every rule of the agent's groups in turn."""
    parts = urlsplit(url)
    path = _normalize(parts.path or "/")
    if parts.query:
        path += "?" + _normalize(parts.query)
    if path == "/robots.txt":
        return True
    best = (-1, True)
    for group in robots._groups_for(user_agent):
        for rule in group.rules:
            decides = (len(rule.pattern), rule.allow)
            if decides > best and _reference_matches(rule.pattern, path):
                best = decides
    return best[1]


_PIECES = ["/", "a", "b", "ab", "ba", "x/", ".pdf", "?", "=", "%61", "%2F", "\u00e9", "$", "*"]
_PIECES += ["abcdefghijklmnopq", "abcdefghijklmnopqr", "0123456789abcdefghij"]
_PATTERNS = st.builds(
    "".join,
    st.lists(st.sampled_from([*_PIECES, "*", "*", "/"]), min_size=1, max_size=8),
).map(lambda p: p if p.startswith(("/", "*")) else "/" + p)
_VARIANTS = {
    "as is": lambda p: p,
    "anchored": lambda p: p + "$",
    "starred": lambda p: p + "*",
    "starred, anchored": lambda p: p + "*$",
    "longer": lambda p: p + "a",
    "last character a star": lambda p: p[:-1] + "*" if len(p) > 1 else p,
    "last character anchored": lambda p: p[:-1] + "$" if len(p) > 1 else p,
}
"""A rule's pattern made from a base pattern: rules of one file are alike, of equal lengths."""
_RULES = st.lists(_PATTERNS, min_size=1, max_size=8).flatmap(
    lambda bases: st.lists(
        st.tuples(
            st.sampled_from(["Allow", "Disallow"]),
            st.tuples(st.sampled_from(bases), st.sampled_from(list(_VARIANTS))).map(
                lambda t: _VARIANTS[t[1]](t[0])
            ),
            st.booleans(),
        ),
        max_size=60,
    )
)
_PATHS = st.builds("".join, st.lists(st.sampled_from([*_PIECES, "a", "b", "/"]), max_size=12))


@settings(
    max_examples=600,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    rules=_RULES,
    agents=st.lists(st.sampled_from(["*", "news-ingest", "otherbot"]), min_size=1, max_size=3),
    data=st.data(),
)
def test_indexed_rules_decide_as_comparing_every_rule(
    rules: list[tuple[str, str, bool]], agents: list[str], data: st.DataObject
) -> None:
    """Whatever the rules (plain, `*`, final `$`, repeated, Allow and Disallow of one pattern or
    of patterns alike, percent-encoded) and the paths (random, or spelled as a rule with its `*`
    filled in), `allowed()` answers as comparing the path with every rule of the agent's groups
    does: the longest match, Allow winning a tie."""
    lines = []
    for i, (field, pattern, new_group) in enumerate(rules):
        if i == 0 or new_group:
            lines.append(f"User-agent: {agents[i % len(agents)]}")
        lines.append(f"{field}: {pattern}")
    robots = parse_robots("\n".join(lines).encode())
    spelled = [
        st.tuples(st.just(pattern.removesuffix("$")), _PATHS, _PATHS).map(
            lambda t: t[0].replace("*", t[1], 1).replace("*", t[2]) + t[1][:1]
        )
        for _, pattern, _ in rules
    ]
    spelled += [st.just(pattern.removesuffix("$").replace("*", "")) for _, pattern, _ in rules]
    paths = data.draw(st.lists(st.one_of(_PATHS, *spelled), min_size=1, max_size=12))
    for path in paths:
        url = "https://news.example/" + path.lstrip("/")
        for agent in (ROBOTS_AGENT, "otherbot"):
            expected = _reference_allowed(robots, url, agent)
            assert robots.allowed(url, agent) is expected, (url, agent)


@pytest.mark.parametrize(
    ("path", "allowed"),
    [("/a/k7x", False), ("/k7x", False), ("/k7x/more", False), ("/k7", True), ("/k7y", True)],
)
def test_many_wildcard_rules_find_the_one_a_path_ends_with(path: str, allowed: bool) -> None:
    """With more wildcard rules than a path has pieces, a rule whose piece ends the path (or
    is all of it after the first `/`) still decides."""
    body = "User-agent: *\n" + "".join(f"Disallow: /*k{i}x\n" for i in range(300))
    robots = parse_robots(body.encode())
    url = "https://news.example" + path
    assert robots.allowed(url, ROBOTS_AGENT) is allowed
    assert _reference_allowed(robots, url, ROBOTS_AGENT) is allowed
