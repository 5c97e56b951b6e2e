"""ingest.extract.clean on small pages: what its class/id/data-* vocabulary decides, and that the
cache of those decisions holds no large strings."""

from __future__ import annotations

import json

from lxml import html

from ingest.extract import clean as pc

SENTENCE = "The council met on Tuesday and agreed the plan for the river bank. "
ARTICLE = f"<p>{SENTENCE * 10}</p>"


def _body_after(markup: str) -> str:
    tree = html.fromstring(f"<html><body><h1>Plan</h1>{ARTICLE}{markup}</body></html>")
    pc.preclean(tree)
    return html.tostring(tree, encoding="unicode")


def test_compound_name_split_over_class_and_id_is_furniture() -> None:
    """ "most" in the class and "read" in the id make the compound "mostread", as "most-read"
    in one attribute does."""
    page = _body_after('<div class="most" id="read"><a href="/a">Other story</a></div>')
    assert "Other story" not in page
    assert "agreed the plan" in page


def test_long_data_attribute_is_judged_but_not_cached() -> None:
    """A widget whose data-* attribute carries a large JSON blob (different on every page) is
    judged from all its words like any other, without the blob staying in the cache."""
    blob = json.dumps({"items": [{"id": i, "title": f"Story {i}"} for i in range(400)]})
    widget = f"<div data-component=\"related-stories\" data-props='{blob}'><a>Story 1</a></div>"
    pc._judge_cached.cache_clear()
    page = _body_after(widget)
    assert "Story 1" not in page
    assert "agreed the plan" in page
    # The other elements of the page have no class, id or data-* attribute: nothing cached.
    assert pc._judge_cached.cache_info().currsize == 0
    assert pc._verdict(("related-stories", blob)) == (True, False)
    assert pc._judge_cached.cache_info().currsize == 0
    assert pc._verdict(("related-stories",)) == (True, False)
    assert pc._judge_cached.cache_info().currsize == 1


def test_utility_classes_with_a_variant_prefix_are_not_vocabulary() -> None:
    """Tailwind's `print:max-w-container-small` says how an element prints, not that it is
    print furniture: the article body wearing it stays (Rheinische Post's template)."""
    story = SENTENCE * 3
    page = _body_after(
        f'<div class="group dark:text-white-solid print:max-w-container-small"><p>{story}</p></div>'
    )
    assert story.strip() in page


def test_element_marking_itself_as_the_article_content_stays() -> None:
    """`data-article-content` or an `article-content` name protects the element, even when
    other words of its vocabulary name furniture."""
    story = "Residents of the valley gathered at dawn to watch the bridge reopen. " * 3
    for wrapper in (
        f'<div data-cy="article-content" data-article-content class="sidebar">{story}</div>',
        f'<section class="widget article-content">{story}</section>',
        f'<div id="story-body" class="share">{story}</div>',
    ):
        assert story.strip() in _body_after(wrapper), wrapper


def test_bold_standfirst_around_a_short_link_stays() -> None:
    """A paragraph set in bold that holds a short link is a standfirst, not a cross-link."""
    lead = (
        "<p><strong>The island was once promised a bright future. Now mismanagement and "
        'corruption threaten it, as the <a href="/earlier">earlier report</a> described in '
        "detail last spring.</strong></p>"
    )
    assert "promised a bright future" in _body_after(lead)


def test_bold_cross_link_goes() -> None:
    """`<p><strong><a>OTHER STORY</a></strong></p>` and a short label before a link are
    cross-links dressed as paragraphs."""
    page = _body_after(
        '<p><strong><a href="/x">CO-FOUNDER PROUD OF EMPLOYEES LIVING THEIR DREAM</a>'
        '</strong></p><p><strong>READ ALSO:</strong> <a href="/y">The other story</a></p>'
    )
    assert "CO-FOUNDER" not in page
    assert "The other story" not in page


def test_a_list_of_links_marked_as_tags_goes_even_inline() -> None:
    """A post's tags (`rel="tag"`) set in a bold run after the article, with their label; a
    sentence that links one tag, or a run that mixes tags with other links, stays."""
    tags = "".join(f'<a href="/tag/t{n}" rel="tag">river bank {n}</a>, ' for n in range(4))
    page = _body_after(
        f"<div><p>{SENTENCE}</p><strong>Tags<br>{tags}</strong>"
        '<p>The <a href="/tag/council" rel="tag">council</a> meets again in May.</p>'
        f'<em>{tags}<a href="/story">The next story</a></em></div>'
    )
    assert "Tags" not in page
    assert page.count("river bank 0") == 1
    assert "council</a> meets again" in page
    assert "The next story" in page


def test_tags_linked_inside_the_articles_sentences_stay() -> None:
    """Tag plugins link tag names inside the post's own text: a sentence, a heading or a quote
    made mostly of such links is the article, for words follow its links."""
    prose = (
        '<p>Shares of <a href="/tag/a" rel="tag">Apple Computer Inc</a> and '
        '<a href="/tag/s" rel="tag">Samsung Electronics Co</a> fell.</p>'
        '<h3><a href="/tag/b" rel="tag">Brexit</a>: what '
        '<a href="/tag/m" rel="tag">Theresa May</a> said</h3>'
    )
    page = _body_after(prose)
    assert "Samsung Electronics Co</a> fell." in page
    assert "Theresa May</a> said" in page


def test_widgets_named_after_the_body_still_go() -> None:
    """`article-body__ad` and `related-post-content` are furniture inside or beside the body,
    not the body."""
    page = _body_after(
        '<div class="article-body__ad"><a href="/x">Buy now</a> Advertisement</div>'
        '<div class="related-post-content"><a href="/a">One</a><a href="/b">Two</a>'
        '<a href="/c">Three</a></div>'
    )
    assert "Buy now" not in page
    assert "Three" not in page


def test_only_the_marked_element_is_spared_not_its_furniture_children() -> None:
    """A body that names itself stays although its vocabulary also names furniture; its
    furniture children still go."""
    story = "Residents of the valley gathered at dawn to watch the bridge reopen. " * 3
    page = _body_after(
        f'<div class="article-body sidebar"><p>{story}</p>'
        '<div class="share-bar"><a href="/s">Share this</a></div></div>'
    )
    assert story.strip() in page
    assert "Share this" not in page


def _page(markup: str) -> str:
    tree = html.fromstring(f"<html><body><h1>Match</h1>{markup}</body></html>")
    pc.preclean(tree)
    return html.tostring(tree, encoding="unicode")


def test_entries_named_comment_that_together_are_the_article_stay() -> None:
    """A live ticker whose entries are classed `live-match-comment` (sports.fr's template):
    none of them holds half of the page, together they are the article."""
    entries = "".join(
        f'<div class="live-match-comment slider-ele {side}" data-time="{minute}">'
        f"<p>Minute {minute}: the visitors win a corner, nothing comes of it. {SENTENCE}</p></div>"
        for minute, side in zip(range(1, 11), ["left", "right"] * 5, strict=True)
    )
    page = _page(f'<div class="live-match">{entries}</div><div class="footer">Imprint</div>')
    assert page.count("nothing comes of it") == 10
    assert "Imprint" not in page


def test_a_comment_list_beside_a_longer_article_still_goes() -> None:
    """Comments in a container that is not named furniture: each one is furniture, and
    together they are less than the article."""
    comments = "".join(
        f'<div class="comment"><p>Reader {n} says the bridge should stay closed.</p></div>'
        for n in range(4)
    )
    page = _page(f'<div class="story"><p>{SENTENCE * 8}</p><div>{comments}</div></div>')
    assert "should stay closed" not in page
    assert "agreed the plan" in page


def test_a_single_furniture_element_is_not_spared_as_a_kind() -> None:
    """The rule is about several elements of one kind: a share box holding half of the
    article's block, but not half of the page, still goes."""
    story = "The council agreed the plan for the river bank at last. " * 2  # 112 characters
    share = '<div class="share-bar"><p>' + "Share this story. " * 7 + "</p></div>"  # 125
    other = "<div><p>" + "Elsewhere in the city the market opened early. " * 5 + "</p></div>"
    page = _page(f"{other}<div><p>{story}</p>{share}</div>")
    assert "Share this story" not in page
    assert "agreed the plan" in page


def test_script_source_is_not_page_text() -> None:
    """A page carrying a large script must not make every element look small: the related
    box is judged against the text readers see."""
    script = "<script>" + "var x = 1;" * 20000 + "</script>"
    stats = pc._measure(html.fromstring(f"<div>{script}<p>{SENTENCE}</p></div>"))
    assert max(s[0] for s in stats.values()) == len(SENTENCE.strip())
