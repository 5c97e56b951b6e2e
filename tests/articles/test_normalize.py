"""ingest.normalize: canonical URLs, rel=canonical choice, clean text, UTC datetimes, content
hash and language detection. Expectations come from the README ("How an entry becomes an
article", step 5) and the functions' docstrings."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ingest.normalize
from ingest.normalize import (
    canonical_url,
    choose_url,
    clean_inline,
    clean_text,
    colon_time,
    content_hash,
    detect_language,
    full_year,
    host_key,
    rfc2822_date,
    same_site,
    site_of,
    spelled_date,
    to_utc,
    unix_time,
    w3c_date,
    without_controls,
    written_date,
    year_first_date,
    year_last_date,
)
from tests.support.secret_urls import REDACTED_TEXTS, REDACTED_URLS

# --- canonical_url ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("HTTP://Example.COM/a", "http://example.com/a", id="scheme-host-lowercased"),
        pytest.param(
            "https://example.com/CaseSensitive/Path",
            "https://example.com/CaseSensitive/Path",
            id="path-case-kept",
        ),
        pytest.param("http://example.com:80/a", "http://example.com/a", id="http-default-port"),
        pytest.param("https://example.com:443/a", "https://example.com/a", id="https-default-port"),
        pytest.param(
            "https://example.com:8443/a", "https://example.com:8443/a", id="other-port-kept"
        ),
        pytest.param(
            "https://example.com:80/a", "https://example.com:80/a", id="80-is-not-https-default"
        ),
        pytest.param("https://example.com", "https://example.com/", id="empty-path-is-root"),
        pytest.param(
            "https://example.com/a#comments", "https://example.com/a", id="fragment-dropped"
        ),
        pytest.param(
            "https://example.com/a?utm_source=rss&utm_medium=feed&utm_campaign=x",
            "https://example.com/a",
            id="utm-dropped",
        ),
        pytest.param(
            "https://example.com/a?fbclid=abc", "https://example.com/a", id="fbclid-dropped"
        ),
        pytest.param(
            "https://example.com/a?gclid=abc", "https://example.com/a", id="gclid-dropped"
        ),
        pytest.param(
            "https://example.com/a?UTM_SOURCE=x",
            "https://example.com/a",
            id="tracking-name-case-insensitive",
        ),
        pytest.param(
            "https://example.com/story?id=5", "https://example.com/story?id=5", id="query-kept"
        ),
        pytest.param(
            "https://example.com/story?id=5&utm_source=rss&p=2#top",
            "https://example.com/story?id=5&p=2",
            id="query-kept-trackers-and-fragment-dropped",
        ),
        pytest.param(
            "https://example.com/s?z=1&a=2", "https://example.com/s?a=2&z=1", id="query-sorted"
        ),
        pytest.param("  https://example.com/a  ", "https://example.com/a", id="surrounding-space"),
        pytest.param(
            "https://example.com/#!/story/1234?utm_source=rss",
            "https://example.com/#!/story/1234?utm_source=rss",
            id="hashbang-kept",
        ),
        pytest.param(
            "https://example.com/app#!/stories/caf%c3%a9%7e",
            "https://example.com/app#!/stories/caf%C3%A9~",
            id="hashbang-escapes-normal",
        ),
        pytest.param(
            "https://example.com/app#!/stories/café 1",
            "https://example.com/app#!/stories/caf%C3%A9%201",
            id="hashbang-non-ascii-encoded",
        ),
        pytest.param("https://example.com/app#!/", "https://example.com/app", id="hashbang-root"),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    """Scheme/host lower-cased, default port and fragment dropped, tracking parameters removed,
    every other query parameter kept."""
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    ("spellings", "expected"),
    [
        pytest.param(
            [
                "https://xn--mnchen-3ya.de/a",
                "https://XN--MNCHEN-3YA.DE/a",
                "https://MÜNCHEN.de/a",
                "https://mu\u0308nchen.de/a",  # NFD: u and a combining diaeresis
                "https://münchen\uff0ede/a",  # fullwidth full stop
                "https://münchen\u3002de/a",  # ideographic full stop
                "https://xn--mnchen-3ya.de:443/a",
            ],
            "https://münchen.de/a",
            id="punycode-case-nfd-and-dots",
        ),
        pytest.param(
            ["https://xn--strae-oqa.de/a", "https://straße.de/a", "https://STRAßE.DE/a"],
            "https://straße.de/a",
            id="idna-2008-sharp-s",
        ),
        pytest.param(
            ["https://\uff4e\uff45\uff57\uff53.example/a", "https://NEWS.example/a"],
            "https://news.example/a",
            id="fullwidth-letters",
        ),
        pytest.param(
            ["http://xn--bcher-kva.example:8080/a", "http://bücher.example:8080/a"],
            "http://bücher.example:8080/a",
            id="port-kept",
        ),
    ],
)
def test_an_internationalized_host_has_one_canonical_spelling(
    spellings: list[str], expected: str
) -> None:
    """A host written in punycode (`xn--…`, IDNA 2008: `xn--strae-oqa` is `straße`, as httpx
    sends it), in Unicode, in capitals, decomposed (NFD) or with fullwidth letters or dots
    (UTS 46 mapping, as a browser reads them): one canonical URL, the host in its Unicode
    form, so that the same article under each spelling is one article."""
    assert {canonical_url(url) for url in spellings} == {expected}


@pytest.mark.parametrize(
    ("spellings", "expected"),
    [
        pytest.param(
            [
                "http://example.com./feed",
                "http://EXAMPLE.com./feed",
                "http://example.com.:80/feed",
                "http://example.com:/feed",
                "http://example.com/feed",
            ],
            "http://example.com/feed",
            id="root-dot-and-empty-port",
        ),
        pytest.param(
            ["https://xn--strae-oqa.de./a", "https://straße.de/a"],
            "https://straße.de/a",
            id="idn-root-dot",
        ),
        pytest.param(
            ["https://straße.de\u3002/a", "https://xn--strae-oqa.de\uff0e/a"],
            "https://straße.de/a",
            id="idn-root-dot-as-an-ideographic-or-fullwidth-stop",
        ),
        pytest.param(
            ["https://Example.COM\u3002/a", "https://example.com\uff0e/a"],
            "https://example.com/a",
            id="root-dot-as-an-ideographic-or-fullwidth-stop",
        ),
        pytest.param(
            ["http://u@example.com.:8080/a", "http://u@example.com:8080/a"],
            "http://u@example.com:8080/a",
            id="user-and-port-kept",
        ),
        pytest.param(
            ["http://[::1]:8080/a", "http://[0:0::1]:8080/a", "http://[0000::0001]:8080/a"],
            "http://[::1]:8080/a",
            id="ipv6-literal",
        ),
        pytest.param(
            ["https://[2001:DB8::A]/a", "https://[2001:db8:0:0:0:0:0:a]/a"],
            "https://[2001:db8::a]/a",
            id="ipv6-capitals-and-zeros",
        ),
        pytest.param(
            ["https://[::FFFF:7f00:1]/a", "https://[::ffff:127.0.0.1]/a"],
            "https://[::ffff:127.0.0.1]/a",
            id="ipv6-mapped-ipv4",
        ),
    ],
)
def test_a_fully_qualified_host_is_its_plain_spelling(spellings: list[str], expected: str) -> None:
    """A host name with the root's dot (`example.com.`) is the same host for DNS, an IPv6
    address has one text form (RFC 5952: lower case, zeros compressed), and an empty port is the
    scheme's default (RFC 3986 §6.2.3): one canonical URL, so that the same article reached
    under each spelling is one article."""
    assert {canonical_url(url) for url in spellings} == {expected}


def test_one_host_spelling_rule() -> None:
    """`host_key` is what every per-host table keys by: capitals and the root's one dot go."""
    assert host_key("News.Example.COM.") == "news.example.com"
    assert host_key("::1") == "::1"
    assert host_key("0:0::1") == "::1"
    assert host_key("2001:DB8:0:0::A") == "2001:db8::a"
    assert host_key("fe80::1%eth0") == "fe80::1%eth0"
    assert same_site("http://www.example.com./a", "http://example.com/b")
    assert site_of("http://www.Example.com./a") == "example.com"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/a",
        "mailto:news@example.com",
        "javascript:void(0)",
        "file:///etc/passwd",
        "data:text/html,<p>x</p>",
        "//example.com/protocol-relative",
        "/relative/path",
        "",
        "https://",
    ],
)
def test_canonical_url_rejects_non_http(url: str) -> None:
    """Anything that is not an absolute http(s) URL with a host raises ValueError."""
    with pytest.raises(ValueError, match="not an http"):
        canonical_url(url)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://AbC123@Example.com/feed", "https://AbC123@example.com/feed"),
        (
            "HTTPS://Reader:S3cr%2Ft@NEWS.example:443/f?Token=X",
            "https://Reader:S3cr%2Ft@news.example/f?Token=X",
        ),
        ("http://Tok:P@ss@xn--mnchen-3ya.de:8080/a", "http://Tok:P@ss@münchen.de:8080/a"),
    ],
)
def test_canonical_url_keeps_the_user_info_as_written(url: str, expected: str) -> None:
    """A URL's user-info is a credential the server compares as written (`https://TOKEN@host/`
    is sent as Basic authentication): the host is lower-cased, the user and password are not."""
    assert canonical_url(url) == expected


def test_canonical_url_is_idempotent() -> None:
    """A canonical URL is its own canonical form (the dedup key must be stable)."""
    url = "HTTPS://WWW.Example.com:443/News/a?b=2&a=1&utm_source=x#frag"
    once = canonical_url(url)
    assert canonical_url(once) == once


@pytest.mark.parametrize(
    "query",
    [
        "game_id=5",
        "gallery=3",
        "galleryId=7",
        "reference=AB12",
        "sourceId=4",
        "glossary=term",
        "affair=12",
    ],
)
def test_parameters_that_merely_begin_like_a_tracker_are_kept(query: str) -> None:
    """A parameter whose name starts with a tracker's word (`ga`, `ref`, `source`, `aff`…)
    without being that tracker selects the article: dropping it would store the articles of
    `game.php?game_id=5` and `?game_id=6` as one."""
    url = f"https://example.com/story?{query}"
    assert canonical_url(url) == url
    assert canonical_url(url + "&utm_source=rss") == url


@pytest.mark.parametrize(
    "query",
    [
        "_ga=2.1",
        "_gl=1*abc",
        "ref=rss",
        "ref_src=twsrc",
        "referrer=x",
        "source=rss",
        "campaign=spring",
        "affiliate=4",
        "aff_id=3",
        "cid=rss",
        "mc_eid=9",
        "sessionid=3",
        "xtor=RSS-1",
        "utm_source=rss",
    ],
)
def test_tracking_parameters_are_still_dropped(query: str) -> None:
    """The trackers themselves, alone or as the first word of a longer name, still go."""
    assert canonical_url(f"https://example.com/story?id=1&{query}") == (
        "https://example.com/story?id=1"
    )


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("https://example.com/story;jsessionid=0A1B2C3D?id=5", "https://example.com/story?id=5"),
        ("https://example.com/story;JSESSIONID=0A1B.node1", "https://example.com/story"),
        ("https://example.com/a;jsessionid=9/b", "https://example.com/a/b"),
        ("https://example.com/story?id=5&jsessionid=0A1B", "https://example.com/story?id=5"),
        (
            "https://example.com/story.php?PHPSESSID=ab12cd&id=5",
            "https://example.com/story.php?id=5",
        ),
        (
            "https://example.com/story.asp?ASPSESSIONIDQSTRDBSA=KJH&id=5",
            "https://example.com/story.asp?id=5",
        ),
        (
            "https://example.com/story.cfm?id=5&CFID=123&CFTOKEN=456",
            "https://example.com/story.cfm?id=5",
        ),
        # Other path parameters and parameters that merely contain the words stay.
        ("https://example.com/story;version=2", "https://example.com/story;version=2"),
        ("https://example.com/story?sid=5", "https://example.com/story?sid=5"),
        ("https://example.com/story?cfidx=5", "https://example.com/story?cfidx=5"),
    ],
)
def test_session_ids_are_no_part_of_the_canonical_url(url: str, canonical: str) -> None:
    """A session id a server writes into every link it serves (Java's `;jsessionid=`, PHP's
    `PHPSESSID`, classic ASP's `ASPSESSIONID…`, ColdFusion's `CFID`/`CFTOKEN`) names the
    reader's visit, not the article: a feed served with a new one at every poll would have
    every page fetched again and stored again as a new article."""
    assert canonical_url(url) == canonical


def test_canonical_url_keeps_valueless_query() -> None:
    """A bare query such as `?12345` identifies the article and must survive."""
    assert canonical_url("https://example.com/news.php?12345") != canonical_url(
        "https://example.com/news.php?12346"
    )


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://example.com/a;v=1/b", id="semicolon"),
        pytest.param("https://example.com/@user/post", id="at-sign"),
        pytest.param("https://example.com/news/2024,03,item", id="comma"),
        pytest.param("https://example.com/wiki/Talk:Main_Page", id="colon"),
        pytest.param("https://example.com/a=b+c!d$e&f'g(h)i*j~k", id="every-sub-delim"),
        pytest.param("https://example.com/a&copy=1&lt=2", id="ampersand-not-a-reference"),
    ],
)
def test_canonical_url_keeps_reserved_characters_of_the_path(url: str) -> None:
    """RFC 3986 allows the sub-delimiters and `:` `@` unencoded in a path, and a server may
    answer `/a;v=1` and `/a%3Bv=1`, or `/@user` and `/%40user`, as two
    resources: the canonical URL keeps them as written. `&copy` in a path is not `©`."""
    assert canonical_url(url) == url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            "https://example.com/a%3Bb/%40c", "https://example.com/a%3Bb/%40c", id="encoded-kept"
        ),
        pytest.param(
            "https://example.com/a b/über", "https://example.com/a%20b/%C3%BCber", id="space-utf8"
        ),
        pytest.param(
            'https://example.com/a"b<c>[d]{e}|f^g`h\\i',
            "https://example.com/a%22b%3Cc%3E%5Bd%5D%7Be%7D%7Cf%5Eg%60h%5Ci",
            id="not-allowed-in-a-path",
        ),
        pytest.param("https://example.com//a///b", "https://example.com/a/b", id="slashes"),
        pytest.param(
            "https://example.com/a/./b/../c", "https://example.com/a/c", id="dot-segments"
        ),
        pytest.param("https://example.com/a/b/..", "https://example.com/a/", id="ends-in-dots"),
        pytest.param("https://example.com/../../a/.", "https://example.com/a/", id="above-root"),
        pytest.param(
            "https://example.com/a/.b/..c/...", "https://example.com/a/.b/..c/...", id="not-dots"
        ),
        pytest.param(
            "https://example.com/%7Euser/a%2db%5F",
            "https://example.com/~user/a-b_",
            id="unreserved",
        ),
        pytest.param(
            "https://example.com/a%3b/caf%c3%a9/%2f",
            "https://example.com/a%3B/caf%C3%A9/%2F",
            id="hex-case",
        ),
        pytest.param("https://example.com/a/%2E%2e/b", "https://example.com/b", id="escaped-dots"),
    ],
)
def test_canonical_url_encodes_what_a_path_may_not_hold(url: str, expected: str) -> None:
    """A percent-encoded reserved character stays encoded (it is not the character itself);
    whitespace, non-ASCII (as UTF-8) and the characters a path may not hold are encoded;
    repeated slashes are one."""
    assert canonical_url(url) == expected
    assert canonical_url(expected) == expected


@pytest.mark.parametrize(
    "spelling",
    [
        pytest.param("https://example.com/s?q=caf%C3%A9&tag=~news", id="normal"),
        pytest.param("https://example.com/s?q=caf%c3%a9&tag=%7enews", id="hex-case-unreserved"),
        pytest.param("https://example.com/s?tag=%7Enews&q=café", id="iri"),
    ],
)
def test_equivalent_spellings_of_a_query_share_one_canonical_url(spelling: str) -> None:
    """A query's escapes in RFC 3986's normal form, as a path's are: an unreserved character's
    escape decoded, other escapes in capitals, non-ASCII as UTF-8 escapes (what a browser
    sends): a feed's `?q=café` and a page's `?q=caf%c3%a9` are one article."""
    assert canonical_url(spelling) == "https://example.com/s?q=caf%C3%A9&tag=~news"


def test_reserved_characters_of_a_query_are_kept_as_written() -> None:
    """An escaped delimiter is not the delimiter (`%26` is no parameter break, `%2B` no
    space), and `+` is a space to a form's server: each stays as written."""
    url = "https://example.com/s?q=a%2Fb%26c%3Dd%2Be+f&r=x/y"
    assert canonical_url(url) == url


# --- choose_url ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("page", "canonical", "expected"),
    [
        pytest.param(
            "https://example.com/a?utm_source=rss",
            "https://example.com/news/a",
            "https://example.com/news/a",
            id="same-host",
        ),
        pytest.param(
            "https://example.com/a",
            "https://www.example.com/a",
            "https://www.example.com/a",
            id="www-variant",
        ),
        pytest.param(
            "https://m.example.com/a",
            "https://www.example.com/a",
            "https://www.example.com/a",
            id="mobile-variant",
        ),
        pytest.param(
            "https://amp.example.com/a",
            "https://example.com/a",
            "https://example.com/a",
            id="amp-variant",
        ),
        pytest.param(
            "https://example.com/a",
            "HTTPS://EXAMPLE.com/b?utm_campaign=x#c",
            "https://example.com/b",
            id="canonical-is-canonicalized",
        ),
        pytest.param(
            "https://example.com/2025/08/11/council-approves-budget",
            "http://example.com/2025/08/11/council-approves-budget",
            "https://example.com/2025/08/11/council-approves-budget",
            id="http-canonical-of-an-https-page",
        ),
        pytest.param(
            "https://example.com/2025/08/council-budget-vote",
            "http://example.com/2025/08/council-approves-budget-after-vote",
            "https://example.com/2025/08/council-approves-budget-after-vote",
            id="http-canonical-with-a-reworded-slug",
        ),
        pytest.param(
            "http://example.com/2025/08/11/council-approves-budget",
            "https://example.com/2025/08/11/council-approves-budget",
            "https://example.com/2025/08/11/council-approves-budget",
            id="https-canonical-of-an-http-page",
        ),
    ],
)
def test_choose_url_uses_same_site_canonical(page: str, canonical: str, expected: str) -> None:
    """A rel=canonical on the same site (www./m./amp. variants included) is the article URL,
    over https where the page was served over https by its host."""
    assert choose_url(page, canonical) == expected


# Pairs of a page's address and the canonical it names, as real sites write them (most from the
# pages of trafilatura's evaluation set): the same story under another address.
SAME_STORY = [
    pytest.param(
        "http://example.com/2025/08/11/council-approves-budget",
        "https://example.com/2025/08/11/council-approves-budget/",
        id="https-and-slash",
    ),
    pytest.param(
        "https://www.popsugar.co.uk/smart-living/Cheap-Halloween-Costumes-42432483/amp",
        "https://www.popsugar.co.uk/smart-living/Cheap-Halloween-Costumes-42432483",
        id="amp-suffix",
    ),
    pytest.param(
        "https://example.com/amp/2025/08/council-approves-budget",
        "https://example.com/2025/08/council-approves-budget",
        id="amp-prefix",
    ),
    pytest.param(
        "https://example.com/news/council-approves-budget.amp.html",
        "https://example.com/news/council-approves-budget.html",
        id="amp-extension",
    ),
    pytest.param(
        "https://www.rtl.de/cms/bericht-bund-und-laender-wollen-lockdown-verlaengern-4723862.html",
        "https://www.rtl.de/cms/medienbericht-corona-lockdown-steht-vor-verlaengerung-4723862.html",
        id="headline-rewritten-same-id",
    ),
    pytest.param(
        "https://www.handelsblatt.com/politik/grenzschliessungen-report-der-partner/25776812.html",
        "https://www.handelsblatt.com/politik/grenzschliessungen-deutschland-frankreich/25776812.html",
        id="id-segment",
    ),
    pytest.param(
        "https://forsal.pl/gospodarka/pkb/artykuly/8150873,ile-jest-warta-godzina-pracy.html",
        "https://forsal.pl/praca/aktualnosci/artykuly/8150872,ile-jest-warta-godzina-pracy.html",
        id="section-and-id-changed-same-slug",
    ),
    pytest.param(
        "https://www.reuters.com/article/us-global-markets/"
        "asian-shares-soft-as-trade-doubts-creep-back-in-idUSKBN1XT00W",
        "https://www.reuters.com/article/us-global-markets-idUSKBN1XT00W",
        id="slug-replaced-same-letters-and-digits-id",
    ),
    pytest.param(
        "https://example.com/news/2025/08/council-budget-vote",
        "https://example.com/news/2025/08/council-approves-budget-after-vote",
        id="slug-reworded",
    ),
    pytest.param(
        "https://www.arbeit-und-arbeitsrecht.de/news/verjaehrung-von-urlaubsanspruechen.html",
        "https://www.arbeit-und-arbeitsrecht.de/node/8996",
        id="slug-to-node-id",
    ),
    pytest.param(
        "https://example.com/?p=123",
        "https://example.com/2025/08/council-approves-budget/",
        id="short-link-to-slug",
    ),
    pytest.param(
        "https://example.com/story/1234567",
        "https://example.com/story/1234567/council-approves-budget",
        id="id-to-id-and-slug",
    ),
    pytest.param(
        "https://example.com/2025/06/council-approves-budget?cmpid=12345",
        "https://example.com/2025/06/council-approves-budget",
        id="story-without-a-parameter-of-digits",
    ),
    pytest.param(
        "https://example.com/article/4511?share=12345",
        "https://example.com/article/4511",
        id="id-path-without-a-parameter-of-digits",
    ),
    pytest.param(
        "https://example.com/2025/06/council-approves-budget?page=1",
        "https://example.com/2025/06/council-approves-budget",
        id="first-page-to-story",
    ),
    pytest.param(
        "https://example.com/2025/06/council-approves-budget?page=2",
        "https://example.com/2025/06/council-approves-budget?page=2",
        id="later-page-naming-itself",
    ),
]


@pytest.mark.parametrize(("page", "canonical"), SAME_STORY)
def test_choose_url_follows_a_canonical_naming_the_same_story(page: str, canonical: str) -> None:
    """A canonical whose address names the page's story (its slug, or an id they share; the
    AMP, http and trailing-slash forms; a page address naming nothing, as `?p=123`) is the
    article's URL."""
    assert choose_url(page, canonical) == canonical_url(canonical)


@pytest.mark.parametrize(
    ("page", "canonical"),
    [
        pytest.param(
            "https://example.com/2025/08/12/mayor-resigns-over-harbour-deal",
            "https://example.com/2025/08/11/council-approves-budget",
            id="latest-story",
        ),
        pytest.param(
            "https://example.com/politics/mayor-resigns-over-harbour-deal-1234999",
            "https://example.com/sport/cup-final-ends-in-a-draw-1234567",
            id="latest-story-with-ids",
        ),
        pytest.param(
            "https://example.com/2025/08/12/mayor-resigns-over-harbour-deal",
            "https://example.com/politics/",
            id="section-front-elsewhere",
        ),
        pytest.param(
            "https://example.com/news/2025/06/02/politics-council-vote-budget",
            "https://example.com/politics/",
            id="section-front-word-in-slug",
        ),
        pytest.param(
            "https://example.com/politics/2025/06/02/council-vote-budget",
            "https://example.com/topics/budget/",
            id="topic-page-word-in-slug",
        ),
        pytest.param(
            "https://example.com/politics/2025/06/02/council-vote-budget-after-long-debate",
            "https://example.com/local-politics/council-budget/",
            id="two-word-topic-page-in-slug",
        ),
        pytest.param(
            "https://example.com/2025/06/02/council-vote-budget",
            "https://example.com/index.html",
            id="home-page-index-file",
        ),
        pytest.param(
            "https://example.com/2025/06/02/council-vote-budget",
            "https://example.com/?lang=en",
            id="home-page-with-a-language",
        ),
        pytest.param(
            "https://example.com/news/council-vote-budget-4511234",
            "https://example.com/en/",
            id="language-front",
        ),
        pytest.param(
            "https://example.com/node/8997", "https://example.com/node/8996", id="other-node"
        ),
        pytest.param("https://example.com/?p=12346", "https://example.com/?p=12345", id="other-p"),
        pytest.param(
            "https://example.com/article.php?id=4512",
            "https://example.com/article.php?id=4511",
            id="other-id-parameter",
        ),
        pytest.param(
            "https://example.com/2025/06/council-approves-budget?page=2",
            "https://example.com/2025/06/council-approves-budget",
            id="later-page-to-first",
        ),
        pytest.param(
            "https://example.com/news.php?id=4511",
            "https://example.com/news.php",
            id="script-without-its-query",
        ),
        pytest.param(
            "https://example.com/cms/show_news.asp?lang=de&nid=4511",
            "https://example.com/cms/show_news.asp",
            id="two-word-script-without-its-query",
        ),
        pytest.param(
            "https://example.com/2025/06/council-approves-budget/?Paged=3",
            "https://example.com/2025/06/council-approves-budget/?paged=2",
            id="later-page-to-another",
        ),
        pytest.param(
            "https://example.com/index.php?option=com_content&id=4511&limitstart=1",
            "https://example.com/index.php?option=com_content&id=4511",
            id="joomla-later-page-to-first",
        ),
        pytest.param("https://example.com/?p=123", "https://example.com/", id="short-id-to-home"),
        pytest.param(
            "https://example.com/?p=123",
            "https://example.com/index.php",
            id="short-id-to-home-page-index-file",
        ),
        pytest.param(
            "https://example.com/?page_id=42",
            "https://example.com/?lang=en",
            id="short-id-to-home-page-with-a-language",
        ),
        pytest.param(
            "https://example.com/news.php?id=45",
            "https://example.com/news.php",
            id="script-without-its-short-id",
        ),
        pytest.param(
            "https://example.com/index.php?option=com_content&view=article&id=12",
            "https://example.com/index.php",
            id="joomla-script-without-its-short-id",
        ),
    ],
)
def test_choose_url_ignores_a_canonical_naming_another_story(page: str, canonical: str) -> None:
    """A canonical of the same site that names another story (every story of a CMS naming its
    section front or its latest story) is not the article's URL: its own is kept, so that the
    story is neither stored under the other's address nor taken for it."""
    assert choose_url(page, canonical) == canonical_url(page)


@pytest.mark.parametrize(
    "canonical",
    [
        pytest.param("https://example.com/", id="the-app-s-root"),
        pytest.param("/app/", id="the-app-s-address"),
        pytest.param("https://example.com/#!/stories/5678", id="another-route"),
    ],
)
def test_choose_url_keeps_the_hashbang_address_of_a_page(canonical: str) -> None:
    """A page whose address is a hashbang route (`/#!/stories/1234`) keeps that address
    whatever its canonical says: its server never saw the route, so its canonical names the
    app, whose every route it serves the same."""
    page = "https://example.com/app/#!/stories/1234"
    assert choose_url(page, canonical) == canonical_url(page)


@pytest.mark.parametrize(
    "canonical",
    [
        pytest.param("https://syndication.example.org/a", id="cross-site"),
        pytest.param("https://notexample.com/a", id="suffix-lookalike"),
        pytest.param("https://example.com.evil.net/a", id="prefix-lookalike"),
        pytest.param("javascript:void(0)", id="javascript"),
        pytest.param("not a url", id="junk"),
        pytest.param("ftp://example.com/a", id="non-http"),
        pytest.param("", id="empty"),
        pytest.param(None, id="none"),
    ],
)
def test_choose_url_ignores_foreign_or_junk_canonical(canonical: str | None) -> None:
    """A canonical on another site, or one that is not an http(s) URL, leaves the page URL."""
    page = "https://www.example.com/a?utm_source=x#frag"
    assert choose_url(page, canonical) == canonical_url(page)


# --- clean_text / clean_inline ---------------------------------------------------------------

DECOMPOSED = "Cafe\u0301"  # "Café" as e + COMBINING ACUTE ACCENT
COMPOSED = "Caf\u00e9"


# Unicode's noncharacters (U+FDD0..U+FDEF and the last two code points of every plane): no text.
NONCHARACTERS = "a\ufffeb\uffffc\ufdd0d\ufdefe\U0001fffef\U0010ffffg"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(DECOMPOSED, COMPOSED, id="nfc"),
        pytest.param("a\x00b", "ab", id="nul"),
        pytest.param("a\x01b\x08c\x0bd\x0ce\x1ff\x7fg", "abcdefg", id="c0-and-del"),
        pytest.param("a\x80b\x85c\x9fd", "abcd", id="c1"),
        pytest.param("a\u200bb\u200cc\u200dd\u2060e\ufefff", "abcdef", id="zero-width"),
        pytest.param(NONCHARACTERS, "abcdefg", id="noncharacters"),
        pytest.param("a  b\t\tc \u00a0 d", "a b c d", id="spaces-collapsed"),
        pytest.param("  padded  ", "padded", id="stripped"),
        pytest.param("one\n\n\n\n\ntwo", "one\n\ntwo", id="many-blank-lines"),
        pytest.param("one\ntwo", "one\n\ntwo", id="single-newline-is-a-break"),
        pytest.param("one\r\ntwo\rthree", "one\n\ntwo\n\nthree", id="crlf-and-cr"),
        pytest.param("one\n  \t \ntwo", "one\n\ntwo", id="whitespace-only-line"),
        pytest.param("\n\n one \n\n", "one", id="leading-trailing-blank-lines"),
        pytest.param("", "", id="empty"),
    ],
)
def test_clean_text(raw: str, expected: str) -> None:
    """Body text: NFC, controls and zero-width characters removed, whitespace collapsed inside
    paragraphs, paragraphs separated by exactly one blank line."""
    assert clean_text(raw) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", id="persian-zwnj"),
        pytest.param("\u0915\u094d\u200d\u0937", id="devanagari-zwj"),
        pytest.param("\U0001f469\u200d\U0001f4bb", id="emoji-zwj-sequence"),
    ],
)
def test_a_joiner_between_letters_it_joins_is_kept(text: str) -> None:
    """Zero-width (non-)joiners are spelling between letters of scripts that join or form
    conjuncts, and make one emoji of two: removed, the Persian word is misspelt, the
    profession emoji is two pictures."""
    assert clean_text(text) == text
    assert clean_inline(text) == text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("\u200cword\u200d", "word", id="at-the-ends"),
        pytest.param("wo\u200drd \u200c\u0645", "word \u0645", id="beside-ascii-or-a-space"),
        pytest.param("\u0645\u200c \u0645", "\u0645 \u0645", id="before-a-space"),
    ],
)
def test_a_joiner_that_joins_nothing_is_removed(raw: str, expected: str) -> None:
    """Beside ASCII, a space or an end a joiner changes nothing anyone reads."""
    assert clean_text(raw) == expected
    assert clean_inline(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            "Council \u202eapproves\u202c budget", "Council approves\u202c budget", id="rlo"
        ),
        pytest.param("\u202dJane Doe", "Jane Doe", id="lro"),
        pytest.param(
            "\u05d7\u05d3\u05e9\u05d5\u05ea \u2066AP\u2069\u200f",
            "\u05d7\u05d3\u05e9\u05d5\u05ea \u2066AP\u2069\u200f",
            id="isolates-and-marks-kept",
        ),
    ],
)
def test_a_bidi_override_is_removed(raw: str, expected: str) -> None:
    """A bidi override (U+202D, U+202E) shows the characters after it in an order other than
    the one stored: `Council \u202etegdub` reads "Council budget" and is not found by a search
    for it, and left open it reverses what a list shows after the title. No text needs one (the
    bidi algorithm orders letters by their script): it is removed from every text field. The
    isolates and marks that order mixed-direction text stay."""
    assert clean_inline(raw) == expected
    assert clean_text(raw) == expected


def test_clean_text_paragraph_layout() -> None:
    """Whatever the input layout, paragraphs come out separated by exactly one blank line and
    none has leading, trailing or doubled spaces."""
    raw = "  First   paragraph\u200b here. \n\n\n\tSecond\x00 one.\r\n\r\n\r\nThird.  "
    out = clean_text(raw)
    paragraphs = out.split("\n\n")
    assert paragraphs == ["First paragraph here.", "Second one.", "Third."]
    assert "\n\n\n" not in out


@pytest.mark.parametrize("removed", ["\u200b", "\x00"])
def test_clean_output_is_nfc_after_removals(removed: str) -> None:
    """The output is NFC even when a removed character separated a letter from its accent."""
    raw = "Cafe" + removed + "\u0301"
    assert unicodedata.is_normalized("NFC", clean_text(raw))
    assert unicodedata.is_normalized("NFC", clean_inline(raw) or "")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(DECOMPOSED, COMPOSED, id="nfc"),
        pytest.param("  A\n title \t with\r\nbreaks  ", "A title with breaks", id="one-line"),
        pytest.param("Na\x00me\u200b", "Name", id="controls-and-zero-width"),
        pytest.param(NONCHARACTERS, "abcdefg", id="noncharacters"),
        pytest.param("   ", None, id="blank-is-none"),
        pytest.param("", None, id="empty-is-none"),
        pytest.param(None, None, id="none"),
    ],
)
def test_clean_inline(raw: str | None, expected: str | None) -> None:
    """One-line fields: NFC, controls removed, all whitespace collapsed to single spaces, empty
    becomes None."""
    assert clean_inline(raw) == expected


@pytest.mark.parametrize("hinted", ["Bundes\u00adtags\u00adwahl", "Bundes&shy;tags&shy;wahl"])
def test_soft_hyphens_are_no_part_of_a_word(hinted: str) -> None:
    """A soft hyphen (U+00AD, `&shy;`) is a hint where a word may break, shown only at the end
    of a line: `Bundes&shy;tags&shy;wahl` is the word `Bundestagswahl`, which a text search
    must find in the title and the text (PostgreSQL's parser takes the hint for a space), and
    whose copy without the hints is the same text, with the same content hash."""
    assert clean_inline(f"Die {hinted} beginnt") == "Die Bundestagswahl beginnt"
    text = clean_text(f"Die {hinted.replace('&shy;', chr(0xAD))} beginnt.")
    assert text == "Die Bundestagswahl beginnt."
    assert content_hash(text) == content_hash(clean_text("Die Bundestagswahl beginnt."))


def test_clean_inline_truncates_to_max_length() -> None:
    """A one-line field is cut at max_length characters."""
    assert clean_inline("x" * 50, max_length=10) == "x" * 10


# --- to_utc ----------------------------------------------------------------------------------

EDT = timezone(timedelta(hours=-4))
IST = timezone(timedelta(hours=5, minutes=30))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            datetime(2025, 8, 11, 9, 14, 27, tzinfo=EDT),
            datetime(2025, 8, 11, 13, 14, 27, tzinfo=UTC),
            id="negative-offset",
        ),
        pytest.param(
            datetime(2025, 1, 1, 2, 0, tzinfo=IST),
            datetime(2024, 12, 31, 20, 30, tzinfo=UTC),
            id="positive-offset-crosses-midnight",
        ),
        pytest.param(
            datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
            datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
            id="already-utc",
        ),
        pytest.param(
            datetime(2025, 3, 1, 12, 0),
            datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
            id="naive-assumed-utc",
        ),
    ],
)
def test_to_utc(value: datetime, expected: datetime) -> None:
    """Aware datetimes are converted to UTC; a naive one is taken as UTC wall time."""
    result = to_utc(value)
    assert result == expected
    assert result.utcoffset() == timedelta(0)
    assert (result.hour, result.minute) == (expected.hour, expected.minute)


# --- content_hash ----------------------------------------------------------------------------

BODY = "The Council met on Monday.\n\nIt adjourned at noon."


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param("the council met on monday. it adjourned at noon.", id="lower-one-line"),
        pytest.param("  THE COUNCIL   MET ON MONDAY.\tIT ADJOURNED AT NOON.\n", id="upper-spaced"),
        pytest.param("The Council met on Monday.\nIt adjourned\n\n\nat noon.", id="rewrapped"),
    ],
)
def test_content_hash_folds_case_and_whitespace(variant: str) -> None:
    """Copies of one text that differ only in case or layout hash the same."""
    assert content_hash(variant) == content_hash(BODY)


@pytest.mark.parametrize(
    "other",
    [
        pytest.param("The Council met on Tuesday.\n\nIt adjourned at noon.", id="one-word"),
        pytest.param("The Council met on Monday.\n\nIt adjourned at noon!", id="punctuation"),
        pytest.param("TheCouncil met on Monday.\n\nIt adjourned at noon.", id="word-boundary"),
        pytest.param("", id="empty"),
    ],
)
def test_content_hash_differs_for_different_text(other: str) -> None:
    """A different text hashes differently."""
    assert content_hash(other) != content_hash(BODY)


def test_content_hash_is_sha256_digest() -> None:
    """The hash is a 32-byte SHA-256 digest (stored as bytea, shown hex in news.articles)."""
    assert len(content_hash(BODY)) == 32


# --- detect_language -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "The city council voted on Tuesday to approve the new budget, which includes "
            "more money for schools, parks and public transport.",
            "en",
            id="english",
        ),
        pytest.param(
            "Le conseil municipal a voté mardi le nouveau budget, qui prévoit davantage "
            "d'argent pour les écoles, les parcs et les transports publics.",
            "fr",
            id="french",
        ),
        pytest.param(
            "Der Stadtrat hat am Dienstag den neuen Haushalt beschlossen, der mehr Geld für "
            "Schulen, Parks und den öffentlichen Nahverkehr vorsieht.",
            "de",
            id="german",
        ),
        pytest.param(
            "מועצת העיר אישרה ביום שלישי את התקציב החדש, הכולל יותר כסף לבתי ספר, לפארקים "
            "ולתחבורה ציבורית.",
            "he",
            id="hebrew-not-legacy-iw",
        ),
        pytest.param(
            "Городской совет во вторник утвердил новый бюджет, который предусматривает больше "
            "денег на школы, парки и общественный транспорт.",
            "ru",
            id="russian",
        ),
        pytest.param(
            "市議会は火曜日、学校や公園、公共交通機関への予算を増やす新しい予算案を承認した。"
            "市長は記者会見で、来年度から段階的に実施すると述べた。",
            "ja",
            id="japanese",
        ),
        pytest.param(
            "市议会周二批准了新的预算，其中包括为学校、公园和公共交通提供更多资金。市长在新闻"
            "发布会上表示，这些措施将从明年开始逐步实施。",
            "zh",
            id="chinese",
        ),
    ],
)
def test_detect_language_from_text(text: str, expected: str) -> None:
    """A sentence is enough to tell the language, whatever the hint says."""
    assert detect_language(text) == expected
    assert detect_language(text, hint="ja") == expected


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        pytest.param("en-US", "en", id="region-dropped"),
        pytest.param("pt_BR", "pt", id="underscore-region"),
        pytest.param(" FR ", "fr", id="case-and-space"),
        pytest.param(None, None, id="no-hint"),
        pytest.param("", None, id="empty-hint"),
        pytest.param("english", None, id="not-a-code"),
        pytest.param("eng", "en", id="iso-639-2"),
        pytest.param("ger", "de", id="iso-639-2-bibliographic"),
        pytest.param("deu-CH", "de", id="iso-639-2-region"),
        pytest.param("haw", "haw", id="no-639-1-code"),
        pytest.param("sco", "sco", id="unknown-to-cldr-kept"),
        pytest.param("und", None, id="undetermined"),
        pytest.param("mul", None, id="multiple-languages"),
        pytest.param("zxx", None, id="no-linguistic-content"),
        pytest.param("mis", None, id="uncoded-language"),
        pytest.param("x-default", None, id="hreflang-default"),
    ],
)
def test_detect_language_short_text_uses_hint(hint: str | None, expected: str | None) -> None:
    """Text too short to classify falls back to the page/feed language hint, else None."""
    assert detect_language("Short.", hint=hint) == expected


def test_detect_language_text_without_language_uses_hint() -> None:
    """Long text in no language (figures, symbols) falls back to the hint, else None."""
    table = "12.5 | 13.7 | 14.2 | 9.8 | 11.1 | 10.4 | 15.0 | 16.3 | 12.9 | 8.7 " * 4
    assert detect_language(table, hint="de-AT") == "de"
    assert detect_language(table) is None
    assert detect_language("\ud800 lone surrogate " * 10, hint="fr") in ("fr", "en")


@pytest.mark.parametrize(
    ("broken", "fixed"),
    [
        pytest.param("The BÃ¼rgermeister said", "The Bürgermeister said", id="utf8-as-latin1"),
        pytest.param("â€œQuotedâ€\x9d text", "“Quoted” text", id="utf8-as-cp1252"),
        pytest.param("Ð¿Ñ€Ð¸Ð²ÐµÑ‚ Ð¼Ð¸Ñ€", "привет мир", id="cyrillic"),
        pytest.param("Red\x1b[31m text", "Red text", id="terminal-escape"),
    ],
)
def test_mojibake_is_repaired(broken: str, fixed: str) -> None:
    """UTF-8 decoded with the wrong codec is repaired in body text and one-line fields."""
    assert clean_text(broken) == fixed
    assert clean_inline(broken) == fixed


@pytest.mark.parametrize(
    "text",
    [
        "Netanyahu’s “all or nothing” strategy",
        "Straße, naïve café, déjà vu, Ångström",
        "全角：ＡＢＣ　と　半角",
        "Voilà — à la carte",
    ],
)
def test_correct_text_is_left_alone(text: str) -> None:
    """Curly quotes, accents, full-width forms and dashes are not mojibake and stay as they are."""
    assert clean_inline(text) == " ".join(text.split())


# Every character `without_controls` removes, in one class: C0 and C1 controls but tab, line
# feed and carriage return, the surrogates, U+FDD0..U+FDEF and the last two code points of
# every plane.
EVERY_CONTROL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(chr(plane << 16 | last) for plane in range(17) for last in (0xFFFE, 0xFFFF))
    + "]"
)
_CONTROLS_AND_NEIGHBOURS = [
    *"\x00\x08\t\n\x0b\r\x1f\x7f\x9f\xa0\ud7ff\ud800\udfff\ue000\ufdcf\ufdd0\ufdef\ufdf0",
    *(chr(plane << 16 | last) for plane in range(17) for last in (0xFFFD, 0xFFFE, 0xFFFF)),
    *"a\u00e9\u4e2d\U00010000\U0001f600\U00020000",
]


@given(st.text(alphabet=st.sampled_from(_CONTROLS_AND_NEIGHBOURS)))
def test_without_controls_removes_the_characters_of_its_one_class(text: str) -> None:
    """The noncharacters beyond U+FFFF are looked for apart, in a text that has a character
    beyond U+FFFF (one class holding them costs a comparison with each of them per character):
    what is removed is still every character of the one class, and only those."""
    assert without_controls(text) == EVERY_CONTROL.sub("", text)


@given(
    st.text(
        alphabet=st.sampled_from(
            [*" \t\n\r\xa0\u1680\u2000\u2003\u2028\u2029\u202f\u205f\u3000", *"aB中"]
        )
    )
)
def test_clean_text_collapses_every_unicode_space_within_a_paragraph(text: str) -> None:
    r"""Within a paragraph (a line), every run of Unicode whitespace is one space and its ends
    are stripped, as `re.sub(r"[^\S\n]+", " ", line).strip()` has it, line separators and
    no-break spaces included; empty paragraphs go."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    paragraphs = (re.sub(r"[^\S\n]+", " ", line).strip() for line in lines)
    assert clean_text(text) == "\n\n".join(p for p in paragraphs if p)


@given(st.text(alphabet=st.sampled_from([*" \t\n\r\x0b\x0c\x1c\x85\xa0\u2003\u3000", *"aBç"])))
def test_content_hash_folds_every_unicode_space(text: str) -> None:
    """The hash is of the text with case folded and every run of Unicode whitespace made one
    space (stored hashes must not change with the implementation)."""
    folded = re.sub(r"\s+", " ", text.casefold()).strip()
    assert content_hash(text) == hashlib.sha256(folded.encode()).digest()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Wer wird zerst&ouml;ren?", "Wer wird zerstören?"),
        ("&amp;quot;Nicht mehr viel&amp;quot;", '"Nicht mehr viel"'),
        ("Taylor Swift&#8216;s tour", "Taylor Swift‘s tour"),
        ("Türkiye&#039;de", "Türkiye'de"),
        ("AT&T and R&D", "AT&T and R&D"),
    ],
)
def test_clean_inline_decodes_character_references(value: str, expected: str) -> None:
    """Entities are decoded in one-line fields, also when escaped once more than needed."""
    assert clean_inline(value) == expected


def test_clean_inline_leaves_incomplete_references() -> None:
    """`&copy` without its `;` in a URL's query is a parameter, not ©, even beside a real
    reference."""
    value = "Tipps &amp; Tricks ?lang=de&region=eu&copy=1"
    assert clean_inline(value) == "Tipps & Tricks ?lang=de&region=eu&copy=1"


# --- RFC 2822 years --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mon, 05 Dec 94 10:00:00 GMT", "Mon, 05 Dec 1994 10:00:00 GMT"),
        ("05 Dec 00 10:00 +0000", "05 Dec 2000 10:00 +0000"),
        ("Sun, 05 Dec 49 10:00:00 GMT", "Sun, 05 Dec 2049 10:00:00 GMT"),
        ("Mon, 05 Dec 50 10:00:00 GMT", "Mon, 05 Dec 1950 10:00:00 GMT"),
        ("Thu, 5 December 124 10:00:00 GMT", "Thu, 5 December 2024 10:00:00 GMT"),
        ("05-Dec-24", "05-Dec-2024"),
        ("Thu, 05 Dec 2024 10:00:00 GMT", "Thu, 05 Dec 2024 10:00:00 GMT"),
        ("Dec 12 10:00", "Dec 12 10:00"),  # no year: nothing made up
        ("2024-12-05T10:00:00Z", "2024-12-05T10:00:00Z"),
        ("the 12 dec 24 hours", "the 12 dec 24 hours"),
    ],
)
def test_full_year(text: str, expected: str) -> None:
    """RFC 2822 section 4.3: 00-49 are 2000-2049, 50-99 are 1950-1999, three digits + 1900."""
    assert full_year(text) == expected


_EDT = timezone(timedelta(hours=-4))
_PLUS_2 = timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("June 2, 2025", datetime(2025, 6, 2)),
        ("2nd June 2025", datetime(2025, 6, 2)),
        ("Mon., Jun. 2, 2025", datetime(2025, 6, 2)),
        ("Sept 2, 2025, 12:05 a.m.", datetime(2025, 9, 2, 0, 5)),
        ("June 2, 2025 at 12:30 PM", datetime(2025, 6, 2, 12, 30)),
        ("June 2, 2025 - 8:15:30 PM EDT", datetime(2025, 6, 2, 20, 15, 30, tzinfo=_EDT)),
        ("2 June 2025 08:15 +02:00", datetime(2025, 6, 2, 8, 15, tzinfo=_PLUS_2)),
        ("2 June 2025 08:15 -0400", datetime(2025, 6, 2, 8, 15, tzinfo=_EDT)),
        ("2 June 2025 08:15 Z", datetime(2025, 6, 2, 8, 15, tzinfo=UTC)),
        ("Mon Jun  2 08:15:00 CEST 2025", datetime(2025, 6, 2, 8, 15, tzinfo=_PLUS_2)),
        ("Mon Jun 02 08:15:00 2025", datetime(2025, 6, 2, 8, 15)),
        (
            "Mon Jun 02 2025 08:15:00 GMT+0200 (Central European Summer Time)",
            datetime(2025, 6, 2, 8, 15, tzinfo=_PLUS_2),
        ),
        ("Mon Jun 02 2025 08:15:00 (Central European Summer Time)", None),
        ("Mon Jun 02 08:15:00 IST 2025", None),
        ("June 2, 2025 13:15 PM", None),  # no hour of a 12-hour clock
        ("June 2, 2025 08:75", None),
        ("2 June 2025 08:15 +2400", None),
        ("2 June 2025 08:15 IST", None),  # a name of zones hours apart
        ("June 31, 2025", None),
        ("Jun 2, 25", None),  # a short year is RFC 2822's (`full_year`)
        ("2025-06-02", None),
        ("Ju 2, 2025", None),
    ],
)
def test_spelled_date(text: str, expected: datetime | None) -> None:
    """A date written with its month's name: naive without a zone, aware with one the table
    knows or an offset; none for a day, an hour or a zone that is not one."""
    assert spelled_date(text) == expected


def test_rfc2822_date() -> None:
    """Aware with a zone, naive without; a four-digit year as written, not one under 100 read
    as two digits."""
    aware = rfc2822_date("Mon, 05 Dec 94 10:00:00 +0100")
    assert aware is not None
    assert aware.astimezone(UTC) == datetime(1994, 12, 5, 9, tzinfo=UTC)
    assert rfc2822_date("Mon, 05 Dec 94 10:00:00") == datetime(1994, 12, 5, 10)
    assert rfc2822_date("Mon, 01 Jan 0001 00:00:00 GMT") is None
    assert rfc2822_date("yesterday") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sunday, 06-Nov-94 08:49:37 GMT", datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)),
        ("Thu, 05-Dec-2024 10:00:00 CET", datetime(2024, 12, 5, 9, tzinfo=UTC)),
        ("05-Dec-24 10:00:00 +0100", datetime(2024, 12, 5, 9, tzinfo=UTC)),
    ],
)
def test_rfc2822_date_reads_an_rfc_850_date(text: str, expected: datetime) -> None:
    """RFC 850's dashed day (HTTP's obsolete date) is read as the RFC 2822 date it spells, its
    zone's name applied: a page's or a sitemap's date so written was none."""
    when = rfc2822_date(text)
    assert when is not None
    assert when.astimezone(UTC) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sun, 06 Nov 2022 08:49:37 A", datetime(2022, 11, 6, 8, 49, 37)),
        ("Sun, 06 Nov 2022 08:49:37 M", datetime(2022, 11, 6, 8, 49, 37)),
        ("Sun, 06 Nov 2022 08:49:37 N", datetime(2022, 11, 6, 8, 49, 37)),
        ("06 Nov 2022 08:49 Y", datetime(2022, 11, 6, 8, 49)),
        ("06 Nov 2022 08:49 p", None),  # a 12-hour clock's, as likely
        ("Sun, 06 Nov 2022 08:49:37 Z", datetime(2022, 11, 6, 8, 49, 37, tzinfo=UTC)),
        ("Sun, 06 Nov 2022 08:49:37 J", None),  # no zone: RFC 822 leaves J out
    ],
)
def test_rfc2822_date_reads_a_military_zone_as_minus_0000(
    text: str, expected: datetime | None
) -> None:
    """RFC 822's one-letter military zones had their signs written inverted by the software
    that used them: RFC 5322 (section 4.3) reads each as `-0000`, the time in UTC with its
    local zone unknown, as this does, a page's, a sitemap's and a feed's date alike (`Z`,
    UTC's own letter, stays UTC)."""
    assert rfc2822_date(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sun, 06 Nov 2022 08:49:37 Europe/Berlin", datetime(2022, 11, 6, 7, 49, 37, tzinfo=UTC)),
        ("Mon, 06 Jun 2022 08:49:37 Europe/Berlin", datetime(2022, 6, 6, 6, 49, 37, tzinfo=UTC)),
        ("Sun, 06 Nov 2022 08:49:37 Asia/Kolkata", datetime(2022, 11, 6, 3, 19, 37, tzinfo=UTC)),
        ("Sun, 06 Nov 2022 08:49:37 Europe/Nowhere", None),
    ],
)
def test_rfc2822_date_reads_an_iana_time_zone(text: str, expected: datetime | None) -> None:
    """A zone written as the tz database names it (`Europe/Berlin`) is that zone, summer
    time included, in a page's and a sitemap's date as in a feed's; a name it does not have
    is no date. The email parser left such a date naive, read as UTC or in the page's own
    offset."""
    when = rfc2822_date(text)
    assert (when and when.astimezone(UTC)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Di, 08 Okt 2024 08:49:37 +0200", datetime(2024, 10, 8, 6, 49, 37, tzinfo=UTC)),
        ("jeu., 05 déc. 2024 10:00:00 +0100", datetime(2024, 12, 5, 9, tzinfo=UTC)),
        ("sáb, 07 dic 24 10:00:00 GMT", datetime(2024, 12, 7, 10, tzinfo=UTC)),
        ("08 Mai 2024 10:00:00 CEST", datetime(2024, 5, 8, 8, tzinfo=UTC)),
    ],
)
def test_rfc2822_date_reads_a_day_and_month_in_another_language(
    text: str, expected: datetime
) -> None:
    """A day and a month abbreviated in German, French, Spanish, Italian, Dutch or
    Portuguese (a server's locale) are read as the English ones they stand for, in a page's
    and a sitemap's date as in a feed's: the email parser read none of them."""
    when = rfc2822_date(text)
    assert when is not None
    assert when.astimezone(UTC) == expected


# --- redact_url ------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "shown"), REDACTED_URLS)
def test_redact_url_hides_user_info_and_secret_query_parameters(url: str, shown: str) -> None:
    """What the logs show of a feed URL: no user-info, and the value of each query parameter
    whose name says it is a credential (token, key, secret, signature, password, auth...)
    replaced by `***`; the rest as it was."""
    from ingest.normalize import redact_url

    assert redact_url(url) == shown


@pytest.mark.parametrize(("text", "shown"), REDACTED_TEXTS)
def test_redact_text_shows_each_url_in_an_error_as_redact_url_does(text: str, shown: str) -> None:
    """An error text (a feed's last error, an article's extraction error) quoting URLs keeps
    none of their user-info nor credential parameters' values, by redact_url's rule."""
    from ingest.normalize import redact_text

    assert redact_text(text) == shown
    assert redact_text(shown) == shown


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-08-11 12.30", "2025-08-11 12:30"),
        ("2025-08-11T12.30.45+02:00", "2025-08-11T12:30:45+02:00"),
        ("Mon, 11 Aug 2025 9.05 GMT", "Mon, 11 Aug 2025 9:05 GMT"),
        ("11.08.2025 12.30", "11.08.2025 12:30"),
        ("12:30 11.08.2025", "12:30 11.08.2025"),
        ("2025-08-11 12:30:45.123", "2025-08-11 12:30:45.123"),
        ("2025-08-11 24.30", "2025-08-11 24.30"),
        ("Version 2.30", "Version 2.30"),
    ],
)
def test_colon_time(text: str, expected: str) -> None:
    """A time of day written with dots after a date is written with colons; a dotted date,
    an hour or a minute out of range, and a number after no date are left as they are."""
    assert colon_time(text) == expected


_BERLIN = timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025", (datetime(2025, 1, 1), "year")),
        ("2025-08", (datetime(2025, 8, 1), "month")),
        ("2025-08-11", (datetime(2025, 8, 11), "day")),
        ("2025-08-11T14:00:00.5+02:00", (datetime(2025, 8, 11, 14, 0, 0, 500000, _BERLIN), "day")),
        ("2025-08-11 14:00:00 GMT+02:00", (datetime(2025, 8, 11, 14, tzinfo=_BERLIN), "day")),
        ("2025-08-11 14:00 CEST", (datetime(2025, 8, 11, 14, tzinfo=_BERLIN), "day")),
        (
            "2025-08-11T14:00:00+02:00[Europe/Berlin]",
            (datetime(2025, 8, 11, 14, tzinfo=_BERLIN), "day"),
        ),
        ("2025-08-11 14.00", (datetime(2025, 8, 11, 14), "day")),
        ("2016-12-31T23:59:60Z", (datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC), "day")),
        ("2025-08-11 14:00 IST", None),
        ("2025-02-30", None),
        ("2025/08/11", None),
    ],
)
def test_w3c_date(text: str, expected: tuple[datetime, str] | None) -> None:
    """A W3C Datetime with its liberties, naive where it states no zone, and what it names:
    a year, a month or a day; a zone's name none reads and a day that does not exist none."""
    assert w3c_date(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1754915400", datetime(2025, 8, 11, 12, 30, tzinfo=UTC)),
        (" 1754915400.75 ", datetime(2025, 8, 11, 12, 30, tzinfo=UTC)),
        ("1754915400000", datetime(2025, 8, 11, 12, 30, tzinfo=UTC)),
        ("20250811", None),
        ("175491540", None),
        ("17549154000", None),
    ],
)
def test_unix_time(text: str, expected: datetime | None) -> None:
    """Ten digits are seconds since 1970, thirteen milliseconds; other digits no Unix time."""
    assert unix_time(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025/08/11", datetime(2025, 8, 11)),
        ("2025.8.11 14:00:00", datetime(2025, 8, 11, 14)),
        ("2025年8月11日 2:30 PM", datetime(2025, 8, 11, 14, 30)),
        ("2025/08/11 14.30 +0200", datetime(2025, 8, 11, 14, 30, tzinfo=_BERLIN)),
        (
            "2025/08/11 14:30 Europe/Berlin",
            datetime(2025, 8, 11, 14, 30, tzinfo=ZoneInfo("Europe/Berlin")),
        ),
        ("2025/08/11 14:30 IST", None),
        ("2025/08/11 13:30 PM", None),
        ("2025/13/11", None),
        ("2025-08-11", None),
    ],
)
def test_year_first_date(text: str, expected: datetime | None) -> None:
    """Year, month, day with slashes, dots or CJK, a time (on the 12-hour clock too) and a
    zone: naive without one; a zone's name none reads, a 13 PM, a month 13 are none."""
    assert year_first_date(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("11.08.2025, 12 Uhr", datetime(2025, 8, 11, 12)),
        ("11.08.2025 um 9 uhr", datetime(2025, 8, 11, 9)),
        ("11.08.2025 um 9 Uhr MESZ", datetime(2025, 8, 11, 9, tzinfo=_BERLIN)),
        ("11.08.2025 12:30 Uhr", datetime(2025, 8, 11, 12, 30)),
        ("11.08.2025 12", None),
        ("11.08.2025 12 PM", None),
        ("11.08.2025, 25 Uhr", None),
    ],
)
def test_year_last_date_reads_an_hour_alone_before_uhr(
    text: str, expected: datetime | None
) -> None:
    """German's `12 Uhr`, the hour alone before "o'clock", is that hour; an hour alone without
    `Uhr` is no time (nor a 12-hour clock's `12 PM` so written)."""
    assert year_last_date(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1754915400", datetime(2025, 8, 11, 12, 30, tzinfo=UTC)),
        ("11.08.2025, 12:30 Uhr", datetime(2025, 8, 11, 12, 30)),
        ("08/25/2025", datetime(2025, 8, 25)),
        ("08/11/2025", None),
        (
            "2025-08-11 14:00:00 -0400 EDT",
            datetime(2025, 8, 11, 14, tzinfo=timezone(timedelta(hours=-4))),
        ),
        ("2025-08-11T14:00:00+02:00[Europe/Berlin]", datetime(2025, 8, 11, 14, tzinfo=_BERLIN)),
        ("2025-08-11", datetime(2025, 8, 11)),
        ("2025-08", None),
        ("2025", None),
        ("2025/08/11 14:00", datetime(2025, 8, 11, 14)),
        ("Mon Aug 11 2025 14:00:00 GMT+0200 (CEST)", datetime(2025, 8, 11, 14, tzinfo=_BERLIN)),
        ("Mon, 11 Aug 2025 14.00 +0200 CEST", datetime(2025, 8, 11, 14, tzinfo=_BERLIN)),
        ("Mon, 11 Aug 2025 14:00:00 IST", None),
        ("yesterday", None),
        ("", None),
    ],
)
def test_written_date(text: str, expected: datetime | None) -> None:
    """Every form feeds and sitemaps are read in, beside ISO 8601, by one rule: naive where it
    states no zone; a year or a month alone, an ambiguous day and an unknown zone none."""
    assert written_date(text) == expected


def test_a_url_is_made_canonical_once_for_its_article_s_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An article's link is made canonical as its entry is planned, as the article is built and
    as its page's canonical link is weighed: the answer is kept, the same each time, and a URL
    that is none still raises each time. A URL too long to keep is made canonical each time."""
    normalized: list[str] = []
    courlan = ingest.normalize._courlan()

    def counted(url: str) -> str:
        normalized.append(url)
        return courlan(url)

    monkeypatch.setattr(ingest.normalize, "_courlan", lambda: counted)
    url = "https://Kept.Example/news/story?utm_source=rss&id=7"
    assert {canonical_url(url) for _ in range(5)} == {"https://kept.example/news/story?id=7"}
    assert len(normalized) == 1
    for _ in range(2):
        with pytest.raises(ValueError, match="not an http"):
            canonical_url("ftp://kept.example/file")
    long = "https://kept.example/" + "a" * 3000
    assert {canonical_url(long) for _ in range(3)} == {long}
    assert len(normalized) == 4
