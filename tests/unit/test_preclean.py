"""ingest.preclean on small pages: what its class/id/data-* vocabulary decides, and that the
cache of those decisions holds no large strings."""

from __future__ import annotations

import json

from lxml import html

from ingest import preclean as pc

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
