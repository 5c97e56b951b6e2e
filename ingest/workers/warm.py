"""Imported by the worker pool's fork server (see `ingest.workers.pool`): imports what every worker
needs and runs one extraction and one feed parse, so that the libraries' lazy set-up (compiled
patterns, stop lists, caches) is done once, before the workers are forked, and shared by them."""

import gc
import os
import signal

# The fork server is spawned with SIGINT blocked (`ingest.workers.forkserver.start`): a Ctrl-C is
# the command's to handle. Ignored from here on, in the fork server and in the workers forked
# from it (one that came meanwhile is dropped), it need not stay blocked. This module is the
# fork server's preload, imported nowhere else.
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

# A process group of their own, the fork server's and its workers': a SIGTERM sent to the
# command's whole process group (dumb-init as a container's PID 1, `tini -g`, `kill -TERM --
# -PGID`) is the command's to act on, as a Ctrl-C is; it stops them itself (`Workers.close`),
# once its drain is over, rather than have them die under the pages the drain still extracts.
# A background group writing to a terminal set `tostop` would be stopped: SIGTTOU is ignored.
os.setpgid(0, 0)
signal.signal(signal.SIGTTOU, signal.SIG_IGN)

import sys  # noqa: E402

from ingest.launcher import _lighten_imports  # noqa: E402

# The workers log as the command does (a warning raised in one is a line of the log): set
# before the imports below, whose warnings are lines of it too; structlog imported without
# rich, as the command imports it (about 120 modules the workers never use).
_lighten_imports()

from ingest import logs  # noqa: E402

logs.configure_worker()

from ingest.documents.feeds import parse_feed  # noqa: E402
from ingest.extract import extract_page  # noqa: E402
from ingest.extract.stoplists import all_stop_words  # noqa: E402
from ingest.workers.forkserver import quiet_when_pool_gone  # noqa: E402

# A worker whose pool stopped while it was being started exits without a traceback.
sys.excepthook = quiet_when_pool_gone(sys.excepthook)

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
parse_feed(_FEED, "https://example.com/feed", {"content-type": "application/rss+xml"})
# jusText's stop words, which the warm-up page does not need (its extraction takes no fallback)
# but one page in a dozen does: read here once (0.07 s, 25 MB), instead of by every worker, a
# recycled one too, the first time one of its pages takes the fallback, each holding a copy.
all_stop_words()

# Everything loaded so far lives as long as the process. Frozen, it is out of the collector's
# sight: the workers forked from here do not walk it in their full collections (which would
# also dirty its pages, shared copy-on-write), and the fork server exits without collecting it.
# No collection first: the holes it would leave get filled by the workers, which copies pages.
gc.freeze()
