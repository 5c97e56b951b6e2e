"""Imported by the worker pool's fork server (see `ingest.workers`): imports what every worker
needs and runs one extraction and one feed parse, so that the libraries' lazy set-up (compiled
patterns, stop lists, caches) is done once, before the workers are forked, and shared by them."""

import contextlib
import gc

from ingest.extract import extract_page
from ingest.normalize import repair
from ingest.parse import parse_feed

_SENTENCE = (
    "The council approved the budget on Tuesday after a long debate about schools, parks and "
    "public transport, and the mayor said work would start in the spring. "
)
_PAGE = f"""<!doctype html><html lang="en"><head><title>Budget approved | Example</title>
<meta property="og:title" content="Budget approved">
<script type="application/ld+json">{{"@type": "NewsArticle", "headline": "Budget approved",
"datePublished": "2025-03-04T10:00:00Z", "author": {{"@type": "Person", "name": "A. Writer"}}}}
</script></head><body><nav><a href="/">Home</a></nav><article><h1>Budget approved</h1>
<p class="byline">By A. Writer</p><time datetime="2025-03-04T10:00:00Z">4 March</time>
{"".join(f"<p>{_SENTENCE * 3}</p>" for _ in range(6))}</article>
<aside class="related"><h2>Popular Posts</h2><ul><li><a href="/a">A</a></li></ul></aside>
<div id="comments"><h3>Leave a Reply</h3></div><footer>Example</footer></body></html>
""".encode()
_FEED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Example</title>
<link>https://example.com/</link><item><title>Budget approved</title>
<link>https://example.com/budget</link><guid>https://example.com/budget</guid>
<pubDate>Tue, 04 Mar 2025 10:00:00 GMT</pubDate><description>&lt;p&gt;Budget&lt;/p&gt;</description>
</item></channel></rss>"""

extract_page(_PAGE, "https://example.com/budget")
repair("CafÃ© \x1b[1mbold\x1b[0m")  # ftfy loads on the first text that needs it
parse_feed(_FEED, "https://example.com/feed", {"content-type": "application/rss+xml"})

# trafilatura's justext fallback gathers every language's stop list on its first use (~0.1 s),
# which the sample page above does not reach.
with contextlib.suppress(ImportError, AttributeError):
    from trafilatura import external

    if external.JT_STOPLIST is None:
        external.jt_stoplist_init()

# Everything loaded so far lives as long as the process: out of the collector's sight, the
# workers forked from here neither scan it in their collections nor write to its pages
# (copy-on-write keeps it shared), and the fork server exits without collecting it.
gc.collect()
gc.freeze()
