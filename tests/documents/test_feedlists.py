"""ingest.documents.feedlists.parse_feed_list, behind `ingest feeds import`: OPML at any depth
or one URL a line, duplicates dropped, and an untrusted OPML never expands entities or reads
files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.documents.feedlists import FeedListError, parse_feed_list, read_feed_list

F1 = "https://one.example/feed/"
F2 = "https://two.example/rss.xml"
F3 = "http://three.example/atom"
F4 = "https://four.example/index.xml"

NESTED_OPML = f"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>My subscriptions</title></head>
  <body>
    <outline text="News" title="News">
      <outline type="rss" text="One" xmlUrl="{F1}" htmlUrl="https://one.example/"/>
      <outline text="World">
        <outline type="rss" text="Two" xmlUrl="{F2}"/>
        <outline text="Deeper"><outline type="rss" text="Three" xmlUrl="{F3}"/></outline>
      </outline>
    </outline>
    <outline text="A folder with no feeds"/>
    <outline type="rss" text="Four" xmlurl="{F4}"/>
  </body>
</opml>
"""


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(NESTED_OPML.encode(), [F1, F2, F3, F4], id="opml-nested"),
        pytest.param(b"\xef\xbb\xbf" + NESTED_OPML.encode(), [F1, F2, F3, F4], id="opml-with-bom"),
        pytest.param(
            b"\xef\xbb\xbf"
            + NESTED_OPML.replace(
                "?>", "?>\n<!-- " + "exported by a reader; " * 30 + "-->", 1
            ).encode(),
            [F1, F2, F3, F4],
            id="opml-with-bom-and-long-comment",
        ),
        pytest.param(
            f'<opml version="1.0"><body><outline xmlUrl=" {F1} "/></body></opml>'.encode(),
            [F1],
            id="opml-no-declaration-url-stripped",
        ),
        pytest.param(
            f'<opml><body><outline xmlUrl="{F1}"/><outline xmlUrl="{F2}"/>'
            f'<outline text="x"><outline xmlUrl="{F1}"/></outline></body></opml>'.encode(),
            [F1, F2],
            id="opml-duplicates",
        ),
        pytest.param(
            b'<?xml version="1.0"?><opml version="2.0"><body/></opml>', [], id="opml-empty"
        ),
        pytest.param(
            NESTED_OPML.replace('"UTF-8"', '"UTF-16"').encode("utf-16"),
            [F1, F2, F3, F4],
            id="opml-utf-16",
        ),
        pytest.param(
            b'<?xml version="1.0"?><opml version="2.0"><body>'
            b'<outline text="Tom & Jerry" xmlUrl="https://one.example/rss?cat=1&lang=en"/>'
            b'<outline text="Two &amp; more" xmlUrl="https://two.example/feed?a=1&amp;b=2"/>'
            b"</body></opml>",
            ["https://one.example/rss?cat=1&lang=en", "https://two.example/feed?a=1&b=2"],
            id="opml-bare-ampersands",
        ),
        pytest.param(
            f'<?xml version="1.0"?><opml version="2.0"><body>'
            f'<outline text="Caf&eacute;&nbsp;News &mdash; Daily" xmlUrl="{F1}"/>'
            f'<outline text="Two" xmlUrl="{F2}"/></body></opml>'.encode(),
            [F1, F2],
            id="opml-html-entities",
        ),
        pytest.param(
            f'<opml version="2.0"><body><outline text="One" xmlURL="{F1}"/>'
            f'<outline text="Two" XMLURL="{F2}"/></body></opml>'.encode(),
            [F1, F2],
            id="opml-attribute-capitals",
        ),
        pytest.param(
            f'<opml xmlns="http://opml.org/spec2" version="2.0"><body>'
            f'<outline text="One" xmlUrl="{F1}"/></body></opml>'.encode(),
            [F1],
            id="opml-namespace",
        ),
        pytest.param(
            b'<opml version="2.0"><body><outline xmlUrl="feed://one.example/feed/"/>'
            b'<outline xmlUrl="feed:https://two.example/rss.xml"/></body></opml>\n',
            ["http://one.example/feed/", F2],
            id="opml-feed-scheme",
        ),
        pytest.param(
            b"feed://one.example/feed/\nFEED:https://two.example/rss.xml\n",
            ["http://one.example/feed/", F2],
            id="lines-feed-scheme",
        ),
        pytest.param(f"{F1}\n{F2}\n{F3}\n".encode(), [F1, F2, F3], id="lines"),
        pytest.param(f"{F1}\n{F2}\n".encode("utf-16"), [F1, F2], id="lines-utf-16"),
        pytest.param(
            f"# my feeds\n\n{F1}\n   \n  {F2}  \n# {F4}\n\n{F3}".encode(),
            [F1, F2, F3],
            id="lines-comments-blanks-spaces",
        ),
        pytest.param(
            f"{F1}  # the first\n{F2}\tTwo: world news\n{F3} Three\n".encode(),
            [F1, F2, F3],
            id="lines-with-notes",
        ),
        pytest.param(f"{F1}\r\n{F2}\r\n".encode(), [F1, F2], id="lines-crlf"),
        pytest.param(b"\xef\xbb\xbf" + f"{F1}\n{F2}\n".encode(), [F1, F2], id="lines-bom"),
        pytest.param(f"{F2}\n{F1}\n{F2}\n{F1}\n".encode(), [F2, F1], id="lines-duplicates"),
        pytest.param(b"", [], id="empty-file"),
        pytest.param(b"\n# nothing here\n\n", [], id="only-comments"),
    ],
)
def test_parse_feed_list(data: bytes, expected: list[str]) -> None:
    """Feed URLs in file order, each once, from OPML outlines at any depth or from lines. An
    OPML file as exporters write them is read: a `&` left unescaped in a URL or a title (the
    classic), HTML's entities in a title (`&eacute;`, `&nbsp;`, which XML does not define),
    `xmlUrl` spelled with other capitals, an OPML namespace. Each of these refused the whole
    import ("not a valid OPML file"), or imported nothing without a word. A line of a list
    is its first word: what follows it after a space or a tab (a title, a `# comment`) is a
    note (it was part of the URL: `https://one.example/feed/%20%20`, a feed that does not
    exist registered). A URL in the `feed:` URI scheme (`feed://host/rss`, `feed:https://…`,
    as old readers exported them) is the http(s) URL it stands for, as a home page's feed
    link so written is (it was refused: "not an http(s) URL")."""
    assert parse_feed_list(data) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            b"https://one.example/caf\xe9/feed\nhttps://two.example/rss\n",
            ["https://one.example/caf%E9/feed", "https://two.example/rss"],
            id="latin-1-byte",
        ),
        pytest.param(
            "https://one.example/a\u2028b/feed\n".encode(),
            ["https://one.example/a\u2028b/feed"],
            id="line-separator-inside",
        ),
        pytest.param(
            b"https://one.example/feed\rhttps://two.example/rss\r",
            ["https://one.example/feed", "https://two.example/rss"],
            id="cr-line-ends",
        ),
    ],
)
def test_a_url_list_s_lines_are_read_as_a_text_sitemap_s(data: bytes, expected: list[str]) -> None:
    """A line of a URL list given to `feeds import` is read as a text sitemap's line and a
    `backfill --urls` line are (`normalize.url_line`): a byte that is not UTF-8 is the URL's
    own, percent-escaped (a Latin-1 `é` is `%E9`, the path its server knows), and a line ends
    at LF, CR or CRLF only (it was U+FFFD, a feed that does not exist registered, and
    U+2028 inside a URL cut it in two: a wrong feed and a line that is none)."""
    assert parse_feed_list(data) == expected


# An OPML file declared UTF-8 that was edited and saved as "ANSI" (Windows-1252) in Notepad:
# its titles' accents and quotes, and a feed's path, are one byte each.
ANSI_OPML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\r\n<opml version="2.0"><head>'
    b"<title>Mes abonnements \x96 \x93presse\x94</title></head><body>\r\n"
    b'<outline text="Caf\xe9 du commerce" xmlUrl="https://one.example/caf\xe9/feed"/>\r\n'
    b'<outline text="L\x92\xc9quipe" xmlUrl="https://two.example/rss.xml"/>\r\n'
    b"</body></opml>\r\n"
)


def test_an_opml_file_declared_utf_8_with_windows_1252_bytes_is_imported() -> None:
    """An OPML file declared (or presumed) UTF-8 with bytes that are not UTF-8 (saved as
    "ANSI" after an edit) is read as a feed or a sitemap so made is: in a URL attribute the
    bytes are the URL's own, percent-escaped (`normalize.url_line`), elsewhere Windows-1252
    (`normalize.utf8_with_windows_1252`): every feed imported. The whole file was refused,
    "not a valid OPML file: Invalid bytes in character encoding"."""
    entries = read_feed_list(ANSI_OPML)
    assert [e.url for e in entries] == ["https://one.example/caf%E9/feed", F2]
    assert entries[0].attributes["text"] == "Café du commerce"
    assert entries[1].attributes["text"] == "L’Équipe"


# An OPML file as a Windows tool saves it in "Unicode" (UTF-16, little-endian as Notepad and
# PowerShell's `-Encoding Unicode` write it; big-endian from older Mac tools), its XML
# declaration naming UTF-16, a title outside ASCII and a URL whose `&` is unescaped.
UTF_16_OPML = f"""<?xml version="1.0" encoding="UTF-16"?>
<opml version="1.0">
  <head><title>Abonnements – Zeitungen</title></head>
  <body>
    <outline text="Süddeutsche" type="rss" xmlUrl="{F1}"/>
    <outline text="Tom & Jerry" type="rss" xmlUrl="{F2}?cat=1&lang=de"/>
  </body>
</opml>
"""


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(UTF_16_OPML.encode("utf-16-le"), id="opml-le-without-bom"),
        pytest.param(UTF_16_OPML.encode("utf-16-be"), id="opml-be-without-bom"),
        pytest.param(UTF_16_OPML.encode("utf-16"), id="opml-with-bom"),
        pytest.param(b"\xfe\xff" + UTF_16_OPML.encode("utf-16-be"), id="opml-be-with-bom"),
        pytest.param(f"{F1}\n{F2}?cat=1&lang=de\n".encode("utf-16-le"), id="lines-without-bom"),
    ],
)
def test_a_utf_16_feed_list_is_read_with_its_byte_order_mark_or_without(data: bytes) -> None:
    """A feed list in UTF-16, with its byte order mark or without one (its markup's NULs say
    so, as they say it of a feed), is read as the UTF-8 it stands for, its `&` left unescaped
    repaired as in UTF-8 (one without its mark was read as UTF-8: its lines were URLs with a
    NUL after every letter; the `&` refused a marked one, "not a valid OPML file")."""
    assert parse_feed_list(data) == [F1, f"{F2}?cat=1&lang=de"]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'<?xml version="1.0"?><opml><body><outline xmlUrl="x">', id="truncated"),
        pytest.param(b"<opml><body><outline></body></opml>", id="mismatched-tags"),
        pytest.param(b'<?xml version="1.0"?>\n', id="declaration-only"),
        pytest.param(b'<opml><body><outline xmlUrl="a" xmlUrl="b"/></body></opml>', id="dup-attr"),
    ],
)
def test_invalid_opml_raises(data: bytes) -> None:
    """A file that looks like OPML but is not well-formed XML is a FeedListError."""
    with pytest.raises(FeedListError, match="not a valid OPML file"):
        parse_feed_list(data)


# --- hostile OPML ----------------------------------------------------------------------------

SECRET = "TOP-SECRET-7f3a9c"


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET, encoding="utf-8")
    return path


def test_external_entity_in_text_is_not_read(secret_file: Path) -> None:
    """An external entity used in element text is neither fetched nor expanded: the feeds are
    listed and the file's content appears nowhere."""
    data = f"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY xxe SYSTEM "{secret_file.as_uri()}">]>
<opml version="2.0"><head><title>&xxe;</title></head><body>
<outline text="One" xmlUrl="{F1}">&xxe;</outline>
<outline text="Two" xmlUrl="{F2}"/>
</body></opml>""".encode()
    urls = parse_feed_list(data)
    assert urls == [F1, F2]
    assert not any(SECRET in u for u in urls)


def test_external_entity_in_url_is_refused(secret_file: Path) -> None:
    """An external entity inside an attribute (the URL itself) is not well-formed XML: refused,
    never read."""
    data = f"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY xxe SYSTEM "{secret_file.as_uri()}">]>
<opml version="2.0"><body><outline xmlUrl="https://evil.example/?q=&xxe;"/></body></opml>
""".encode()
    with pytest.raises(FeedListError) as info:
        parse_feed_list(data)
    assert SECRET not in str(info.value)


def _billion_laughs(where: str) -> bytes:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    ]
    title = "&lol9;" if where == "text" else "t"
    url = f"{F1}?x=&lol9;" if where == "attribute" else F1
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE opml [\n'
        + "\n".join(entities)
        + f'\n]>\n<opml version="2.0"><head><title>{title}</title></head>'
        f'<body><outline xmlUrl="{url}"/><outline xmlUrl="{F2}"/></body></opml>'
    ).encode()


@pytest.mark.parametrize("where", ["text", "attribute"])
def test_billion_laughs_not_expanded(where: str) -> None:
    """Nested entities (10**9 "lol"s when expanded) are refused (one short FeedListError) or
    left unexpanded: nothing explodes in size."""
    outcome: list[str] | str
    try:
        outcome = parse_feed_list(_billion_laughs(where))
    except FeedListError as e:
        outcome = str(e)
    if isinstance(outcome, str):
        assert outcome.startswith("not a valid OPML file")
        assert len(outcome) < 1000
    else:
        assert all(len(u) < 1000 for u in outcome)
        assert F2 in outcome
