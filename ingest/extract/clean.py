"""Removes the furniture CMS templates put inside or beside an article (ad slots and their
labels, sign-up cards, "most read" and related boxes, share bars, comment sections, cookie and
paywall prompts, author bios, captions, navigation, tag lists) before trafilatura sees the page.
Pure: it edits the lxml tree it is given and decides only from structure (tags, ARIA roles,
class/id/data vocabulary, links marked as tags, link density), never from the words of the text,
so it works in any language.

Safety net: an element is never removed if it holds the page's <h1>, the marked article body,
or half or more of the page's paragraph text; whatever looks like furniture inside the article
is removed, but never the article itself. A hidden copy of text the page shows elsewhere (the
article again, for print or AMP) is no article: it goes whatever it holds; nor are the next
stories an infinite scroll appends, unless one holds half of the page and the story's heading
is not the page's title.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import NamedTuple

from lxml import etree
from lxml.etree import _Element

from ingest.coverage import Reference, headline_within
from ingest.extract.vocabulary import (
    AD_TOKENS,
    CONTENT_COMPOUNDS,
    DROP_COMPOUNDS,
    DROP_ROLES,
    DROP_TAGS,
    DROP_TOKENS,
)

_NEVER_DROP = frozenset({"html", "body", "head", "main", "article", "h1"})
_TOKEN_SPLIT = re.compile(r"[^a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_HOLDERS = frozenset({"div", "section", "figure", "picture"})
_BLOCKS = frozenset({"div", "section", "ul", "ol", "table", "td", "tr", "tbody", "p", "dl"})


def tokens(value: str) -> list[str]:
    """`adSlot__label dcr-4f2a` -> ["ad", "slot", "label", "dcr", "4f2a"]."""
    return [t for t in _TOKEN_SPLIT.split(_CAMEL.sub(" ", value).lower()) if t]


def _vocabulary(el: _Element) -> tuple[str, ...]:
    """The values of the attributes that name what an element is: class, id, data-*. Utility
    classes are left out of the class list: a name with a variant prefix or an arbitrary value
    (Tailwind's `print:max-w-container-small`, `dark:text-white`, `w-[42rem]`) says how the
    element looks in some state, not what it is."""
    values = []
    for name, value in el.items():
        if name == "class":
            if ":" in value or "[" in value:
                value = " ".join(c for c in value.split() if ":" not in c and "[" not in c)
            values.append(value)
        elif name == "id" or (
            name.startswith("data-") and name not in ("data-src", "data-href", "data-url")
        ):
            values.append(value)
    return tuple(values)


def _judge(vocabulary: tuple[str, ...]) -> tuple[bool, bool]:
    """(furniture, advertising) for a class/id/data-* vocabulary."""
    words = [t for value in vocabulary for t in tokens(value)]
    furniture = not DROP_TOKENS.isdisjoint(words)
    # Runs of 2, 3 and 4 words joined ("sign up box" -> "signup", "signupbox", ...), each
    # length built from the one before.
    joined = words
    for n in (2, 3, 4):
        if furniture or len(words) < n:
            break
        joined = [a + b for a, b in zip(joined, words[n - 1 :], strict=False)]
        furniture = not DROP_COMPOUNDS.isdisjoint(joined)
    return furniture, not AD_TOKENS.isdisjoint(words)


def _names_content(name: str) -> bool:
    """One class name (or id) that names the article's content: it starts with a content
    compound ("article-body", "story__content", "entry-content") and says nothing of
    furniture after it ("article-body__ad" and "article-body__newsletter" are widgets inside
    the body, "related-post-content" is another story)."""
    words = tokens(name)
    for n in (2, 3):
        if "".join(words[:n]) in CONTENT_COMPOUNDS:
            rest = words[n:]
            joined = ("".join(rest[i : i + k]) for k in (2, 3) for i in range(len(rest) - k + 1))
            return not any(w in DROP_TOKENS for w in rest) and not any(
                j in DROP_COMPOUNDS for j in joined
            )
    return False


_judge_cached = functools.lru_cache(maxsize=8192)(_judge)
_CACHED_LENGTH = 256
"""Templates repeat the same class names all over a page and across a site's pages, so each
vocabulary is split and matched once. Longer ones (JSON in a data-* attribute, often different
on every page) are judged afresh, so that the cache never holds large strings."""


def _verdict(vocabulary: tuple[str, ...]) -> tuple[bool, bool]:
    if sum(map(len, vocabulary)) > _CACHED_LENGTH:
        return _judge(vocabulary)
    return _judge_cached(vocabulary)


def looks_like_furniture(el: _Element) -> bool:
    """What the element's own tag, role, state and class/id/data vocabulary say about it."""
    tag = el.tag
    if tag in DROP_TAGS:
        return True
    role = el.get("role")
    if role is not None and role.strip().lower() in DROP_ROLES:
        return True
    if _hidden_by_attribute(el):
        return True
    vocabulary = _vocabulary(el)
    return bool(vocabulary) and _verdict(vocabulary)[0]


def _hidden_by_attribute(el: _Element) -> bool:
    """`hidden` or `aria-hidden="true"`: furniture, unless it holds the article. (An element
    hidden by its inline style is left to trafilatura, which drops it inside the article: an
    accordion's or a tab's content, hidden until the reader opens it, is most often the
    article's own.)"""
    return el.get("hidden") is not None or (el.get("aria-hidden") or "").strip().lower() == "true"


_HIDING_STYLES = frozenset({"display:none", "visibility:hidden"})


def hidden(el: _Element) -> bool:
    """Whether the element says it is not shown: `hidden`, `aria-hidden="true"`, or an inline
    style of `display: none` or `visibility: hidden` (in any case and spacing, `!important`
    or not)."""
    if _hidden_by_attribute(el):
        return True
    style = el.get("style")
    if not style or ("none" not in style.lower() and "hidden" not in style.lower()):
        return False
    declarations = "".join(style.split()).lower().replace("!important", "").split(";")
    return not _HIDING_STYLES.isdisjoint(declarations)


_CODE = frozenset({"script", "style", "template"})
_TEXT, _PARAGRAPH = 0, 3
_Stats = tuple[int, int, int, int]
"""Text measures of an element's subtree: characters of text (runs of text stripped), of
link text, number of links, characters of paragraph text."""


def _measure(root: _Element) -> dict[_Element, _Stats]:
    """The measures of every element, computed bottom-up in one pass (no per-element subtree
    walks: pages with 100,000 nested elements stay linear)."""
    stats: dict[_Element, _Stats] = {}
    get = stats.get
    # Document order reversed: every element comes after all of its descendants.
    for el in reversed(list(root.iter(etree.Element))):
        text = el.text
        tag = el.tag
        # A script's or a style sheet's source is not text of the page (some pages carry
        # megabytes of it, which would make no element ever hold "half of the page").
        total = len(text.strip()) if text and tag not in _CODE else 0
        link_text = links = paragraph = 0
        for child in el:  # comments too: their tails are text of this element
            tail = child.tail
            if tail:
                total += len(tail.strip())
            cs = get(child)
            if cs is not None:
                child_text, child_link_text, child_links, child_paragraph = cs
                total += child_text
                link_text += child_link_text
                links += child_links
                paragraph += child_paragraph
        if tag == "a":
            stats[el] = (total, total, links + 1, paragraph)
        elif tag == "p":
            stats[el] = (total, link_text, links, total)
        else:
            stats[el] = (total, link_text, links, paragraph)
    return stats


def _is_link_list(st: _Stats) -> bool:
    """A block that is mostly links: a list of related stories, a tag cloud, a menu."""
    text, link_text, links, _ = st
    return links >= 3 and text < 600 and link_text >= 0.6 * max(text, 1)


def _tag_links(body: _Element) -> dict[_Element, int]:
    """How many links marked as tags (`rel="tag"`, the microformat blog templates put on a
    post's tag and category links) each element holds, for the elements that hold any,
    counting only those followed by nothing but separators: a tag linked inside a sentence is
    followed by its words ("<a rel=tag>Apple</a> and <a rel=tag>Samsung</a> settle"). Summed
    bottom-up in one pass, as `_measure` does (a walk up from each link would cost links times
    depth)."""
    direct: dict[_Element, int] = {}
    for a in body.iter("a"):
        if "tag" in (a.get("rel") or "").lower().split() and not _WORD.search(a.tail or ""):
            parent = a.getparent()
            if parent is not None:
                direct[parent] = direct.get(parent, 0) + 1
    if not direct:
        return {}
    counts: dict[_Element, int] = {}
    for el in reversed(list(body.iter(etree.Element))):
        n = direct.get(el, 0) + sum(counts.get(c, 0) for c in el)
        if n:
            counts[el] = n
    return counts


_WORD = re.compile(r"\w")


def _is_tag_list(el: _Element, st: _Stats, tag_links: dict[_Element, int]) -> bool:
    """A post's tags: an element, inline ones too, of two links or more, every one of them
    marked as a tag, that make most of its text (a "Tags:" label may go with them)."""
    _, link_text, links, _ = st
    return links >= 2 and tag_links.get(el, 0) == links and link_text >= 0.6 * st[_TEXT]


def _is_label_and_link(el: _Element, stats: dict[_Element, _Stats]) -> bool:
    """`<p><strong>Label:</strong> <a>Other story</a></p>`: a cross-link dressed as a
    paragraph. The paragraph's only text outside its single link is a short bold label."""
    text, link_text, links, _ = stats[el]
    if el.tag != "p" or links != 1 or link_text == 0:
        return False
    emphasis = sum(
        stats[c][_TEXT] for c in el if c.tag in ("strong", "b", "em", "i") and c in stats
    )
    if emphasis == 0 or text - link_text - emphasis > 3:
        return False
    # Either the link is most of it, or the rest is a short label ("READ ALSO:", "Lesen Sie
    # auch:"). A paragraph set in bold around a short link is a standfirst, not a cross-link.
    return link_text >= 0.5 * text or emphasis <= _LABEL_LENGTH


_LABEL_LENGTH = 40
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})


def _is_ad(el: _Element) -> bool:
    return _verdict(_vocabulary(el))[1]


def _wrapper(el: _Element, stats: dict[_Element, _Stats], protected: set[_Element]) -> _Element:
    """An ad slot often sits in wrappers whose only other content is its label ("Advertisement",
    "Skip advertisement"): the outermost such wrapper, i.e. the highest ancestor whose text
    beyond the slot's is a short label and that holds no heading."""
    best = el
    parent = el.getparent()
    while parent is not None and parent not in protected and parent.tag not in _NEVER_DROP:
        ps = stats.get(parent)
        if ps is None or ps[_TEXT] - stats[el][_TEXT] > 40 or ps[_PARAGRAPH] > 80:
            break
        if any(d.tag in _HEADINGS for d in parent.iter()):
            break
        best, parent = parent, parent.getparent()
    return best


def _marks_article(el: _Element) -> bool:
    """Whether the element's own names say it is the article's content."""
    if el.get("data-article-content") is not None or el.get("data-article-body") is not None:
        return True
    if el.get("itemprop") == "articleBody":
        return True
    # Asked only of elements about to be removed: a few per page.
    return any(_names_content(name) for value in _vocabulary(el) for name in value.split())


def _protected(tree: _Element) -> set[_Element]:
    """The elements whose removal would take the headline with it: the first <h1> and its
    ancestors. (An element that names itself the article's content is kept: `_marks_article`.)"""
    keep: set[_Element] = set()
    marks = [next(tree.iter("h1"), None)]
    for mark in marks:
        el = mark
        while el is not None:
            keep.add(el)
            el = el.getparent()
    return keep


class Precleaned(NamedTuple):
    removed: int
    """How many elements were removed (with their subtrees)."""
    not_the_article: tuple[str, ...]
    """Where the elements sat (lxml's `getpath` in the page as parsed) that were removed as
    none of the article whatever they hold, which a second opinion must not read either: the
    hidden copies of the page's text that the safety net would have kept (`_shown_elsewhere`),
    and the next stories of an infinite scroll (`_other_stories`)."""


def preclean(tree: _Element, titles: Sequence[str] = ()) -> Precleaned:
    """Remove furniture from the page in place. `titles` are the page's own titles of its
    story (`ingest.extract.metadata.page_titles`), which tell it from the next stories an
    infinite scroll appends (`_other_stories`)."""
    body = next(tree.iter("body"), tree)
    protected = _protected(tree)
    stats = _measure(body)
    tag_links = _tag_links(body)
    # What "half of the article" is measured in: paragraph text, or all text on pages that
    # do not use <p> for their body (old table layouts with <br> between paragraphs).
    use_paragraphs = stats[body][_PARAGRAPH] >= 200

    def holds_the_article(st: _Stats) -> bool:
        if use_paragraphs:
            return st[_PARAGRAPH] >= 0.5 * stats[body][_PARAGRAPH]
        return st[_TEXT] >= 0.5 * stats[body][_TEXT]

    measure = _PARAGRAPH if use_paragraphs else _TEXT
    parts: tuple[int, dict[tuple[str, str], int]] | None = None

    def holds_the_article_together(el: _Element) -> bool:
        """Whether several elements of this one's kind (tag and first class name) hold half
        of the article together: the entries of a live ticker or the items of a gallery, named
        "comment" by their template, are the article."""
        nonlocal parts
        kind = _kind(el)
        if kind is None:
            return False
        if parts is None:
            parts = _parts(body, stats, measure)
        size, kinds = parts
        return stats[el][measure] > 0 and kinds.get(kind, 0) >= 0.5 * size

    others, titled = _other_stories(body, protected, titles)
    doomed: list[_Element] = []
    left_out: list[str] = []
    stack = [body]
    while stack:
        el = stack.pop()
        st = stats.get(el)
        if st is None:
            continue
        if others and el in others and (titled or not holds_the_article(st)):
            doomed.append(el)
            continue
        if el.tag not in _NEVER_DROP and el not in protected:
            furniture = (
                looks_like_furniture(el)
                or (el.tag in _BLOCKS and (_is_link_list(st) or _is_label_and_link(el, stats)))
                or (el in tag_links and _is_tag_list(el, st, tag_links))
            )
            if furniture and (
                not holds_the_article(st)
                and not _marks_article(el)
                and not holds_the_article_together(el)
            ):
                doomed.append(_wrapper(el, stats, protected) if _is_ad(el) else el)
                continue  # its subtree goes with it
            # What holds the article, unless it is a hidden copy of what the page shows.
            if holds_the_article(st) and hidden(el) and _shown_elsewhere(body, el, doomed):
                doomed.append(el)
                left_out.append(el.getroottree().getpath(el))
                continue
        stack.extend(reversed([c for c in el if isinstance(c.tag, str)]))
    # The next stories go, here or with the furniture around them: none of them is the
    # page's text for a second opinion either.
    left_out.extend(
        el.getroottree().getpath(el)
        for el in body.iter("article")
        if el in others and (titled or not holds_the_article(stats[el]))
    )
    emptied = {el.getparent() for el in doomed}
    for el in doomed:
        _remove_keeping_tail(el)
    # An element with no text left (an image box whose photo and caption were furniture, a
    # spacer) but with text after it: trafilatura drops such an element with its tail, which
    # on some templates is the article's lead. It goes, and its tail stays.
    for el in (*emptied, *(el for el, st in stats.items() if not st[_TEXT])):
        if (
            el is not None
            and el.tag in _HOLDERS
            and el not in protected
            and el.tail
            and el.tail.strip()
            and not any(t.strip() for t in el.itertext())
        ):
            _remove_keeping_tail(el)
    _name_the_article(body, stats, holds_the_article)
    return Precleaned(len(doomed), tuple(left_out))


def remove_paths(tree: _Element, paths: tuple[str, ...]) -> None:
    """Remove the elements at `paths` (lxml's `getpath`, as `Precleaned.not_the_article` gives
    them of another parse of the same page) from `tree`, keeping the text after each."""
    found = [el for path in paths for el in tree.getroottree().xpath(path)]
    for el in found:
        if isinstance(el, etree._Element):
            _remove_keeping_tail(el)


def _other_stories(
    body: _Element, protected: set[_Element], titles: Sequence[str]
) -> tuple[set[_Element], bool]:
    """The <article>s with an <h1> of their own beside the <article> holding the page's first
    <h1> (the story): the site's next stories that an infinite scroll appends after it, a
    teaser dressed as a story. And whether that first <h1> is the page's headline, one of its
    `titles` (`headline_within`): then each of them goes, whatever it holds (a next story
    longer than the story is none of it). Otherwise each goes unless it holds half of the page
    (then it is the story, and the first <h1> a teaser's). Neither its name (the story's
    template names them all alike) nor its kind (several of them hold half of the page
    together) protects it."""
    first = next(body.iter("h1"), None)
    story = next(first.iterancestors("article"), None) if first is not None else None
    if first is None or story is None:
        return set(), False
    others = {
        article
        for article in body.iter("article")
        if article not in protected
        and article.find(".//h1") is not None
        and not any(a is story for a in article.iterancestors("article"))
    }
    heading = " ".join(first.itertext())
    return others, bool(others) and any(headline_within(heading, title) for title in titles)


SHOWN_COPY = 0.8
"""Share of a hidden element's word 4-grams the rest of the page must show for the element to
be a copy of what the reader sees (`_shown_elsewhere`)."""


def _shown_elsewhere(body: _Element, el: _Element, doomed: list[_Element]) -> bool:
    """Whether a hidden element's text is a copy of text the page shows outside it (and
    outside the elements already to be removed): a copy of the article for print, AMP or a
    script, which the safety net would otherwise keep beside the article as holding half of
    the page. Asked only of hidden elements that hold the article (on 7 of the 1,301 pages of
    the real-page corpora, none of them a copy)."""
    copy = Reference(" ".join(_texts(el)))
    if not copy.words:
        return True
    left_out = {el, *doomed}
    inside = {d for root in left_out for d in root.iter()}
    shown: list[str] = []
    for node in body.iter():
        if node in inside:
            if node in left_out and node.tail:
                shown.append(node.tail)
            continue
        if node.text and isinstance(node.tag, str) and node.tag not in _CODE:
            shown.append(node.text)
        if node is not body and node.tail:
            shown.append(node.tail)
    return copy.held_by(" ".join(shown)) >= SHOWN_COPY


def _texts(el: _Element) -> list[str]:
    """The text of an element's subtree, script and style sources left out."""
    out = [el.text] if el.text and el.tag not in _CODE else []
    for node in el.iterdescendants():
        if node.text and isinstance(node.tag, str) and node.tag not in _CODE:
            out.append(node.text)
        if node.tail:
            out.append(node.tail)
    return out


def _name_the_article(
    body: _Element, stats: dict[_Element, _Stats], holds: Callable[[_Stats], bool]
) -> None:
    """The innermost element that holds half of the article and names itself its content
    (`id="article_content"`) gets `itemprop="articleBody"`, the name trafilatura looks for
    first, unless some element has it already: trafilatura's own list of content names is
    English-leaning, and a page it finds no body in falls back to every paragraph of the page,
    teasers included, without headings or lists."""
    if body.find(".//*[@itemprop='articleBody']") is not None:
        return
    best: _Element | None = None
    depth = -1
    for el, st in stats.items():
        if el.tag in _BLOCKS and holds(st) and _marks_article(el):
            d = sum(1 for _ in el.iterancestors())
            if d > depth:
                best, depth = el, d
    if best is not None:
        best.set("itemprop", "articleBody")


def _remove_keeping_tail(el: _Element) -> None:
    """Remove the element and its subtree, keeping the text that follows it inside its parent
    (lxml stores it on the element as .tail)."""
    parent = el.getparent()
    if parent is None:
        return
    if el.tail and el.tail.strip():
        previous = el.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + el.tail
        else:
            parent.text = (parent.text or "") + el.tail
    parent.remove(el)


def _kind(el: _Element) -> tuple[str, str] | None:
    names = el.get("class")
    first = names.split(maxsplit=1) if names else None
    return (el.tag, first[0]) if first else None


def _parts(
    body: _Element, stats: dict[_Element, _Stats], measure: int
) -> tuple[int, dict[tuple[str, str], int]]:
    """Where the article is, the innermost element holding half of the page's text (or
    paragraph text): its size, and the text per kind of element inside it that occurs there
    at least twice (an element inside another of its kind is counted with the outer one)."""
    half = 0.5 * stats[body][measure]
    area = body
    while True:
        inner = next((c for c in area if c in stats and stats[c][measure] >= half), None)
        if inner is None:
            break
        area = inner
    totals: dict[tuple[str, str], int] = {}
    counts: dict[tuple[str, str], int] = {}
    for el in area.iterdescendants(etree.Element):
        kind = _kind(el)
        if kind is None:
            continue
        parent = el.getparent()
        if parent is not None and parent is not area and _kind(parent) == kind:
            continue
        totals[kind] = totals.get(kind, 0) + stats[el][measure]
        counts[kind] = counts.get(kind, 0) + 1
    return stats[area][measure], {k: v for k, v in totals.items() if counts[k] > 1}
