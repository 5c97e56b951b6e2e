"""Feed URLs carrying a credential, and how they are shown (in logs and in schema `news`): the
cases `ingest.normalize.redact_url` and the SQL function `ingest.redacted_url` are held to."""

from __future__ import annotations

SECRET = "S3cr3tV4lue"

REDACTED_URLS = [
    (f"https://example.com/feed.xml?token={SECRET}", "https://example.com/feed.xml?token=***"),
    (
        f"https://example.com/rss?format=xml&api_key={SECRET}&page=2",
        "https://example.com/rss?format=xml&api_key=***&page=2",
    ),
    (
        f"https://example.com/rss?access_token={SECRET}#top",
        "https://example.com/rss?access_token=***#top",
    ),
    (f"https://example.com/rss?Key={SECRET}", "https://example.com/rss?Key=***"),
    (f"https://example.com/rss?apiKey={SECRET}", "https://example.com/rss?apiKey=***"),
    (
        f"https://b.example/f.xml?X-Amz-Credential={SECRET}&X-Amz-Signature={SECRET}",
        "https://b.example/f.xml?X-Amz-Credential=***&X-Amz-Signature=***",
    ),
    (
        f"https://example.com/rss?sig={SECRET};secret={SECRET}",
        "https://example.com/rss?sig=***;secret=***",
    ),
    (
        f"https://example.com/rss?password={SECRET}&auth={SECRET}&session_id=1",
        "https://example.com/rss?password=***&auth=***&session_id=1",
    ),
    (f"https://reader:pw@example.com/rss?token={SECRET}", "https://example.com/rss?token=***"),
    (
        f"https://example.com/rss?token={SECRET}&token={SECRET}",
        "https://example.com/rss?token=***&token=***",
    ),
    ("https://example.com/rss?token=", "https://example.com/rss?token=***"),
    # Nothing to hide: other parameters, a name without a value, "token" outside the query.
    (
        "https://example.com/rss?author=jane&category=tokenomics&key_figures=1",
        "https://example.com/rss?author=jane&category=tokenomics&key_figures=1",
    ),
    ("https://example.com/rss?token&x=1", "https://example.com/rss?token&x=1"),
    ("https://example.com/token=abc/feed", "https://example.com/token=abc/feed"),
    ("https://example.com/feed#token=abc", "https://example.com/feed#token=abc"),
]

# Error texts quoting a URL (a redirect target, a failing URL), and how they are stored and shown:
# each URL in them by the rule of REDACTED_URLS (`ingest.normalize.redact_text` and the SQL
# function `ingest.redacted_text`).
REDACTED_TEXTS = [
    (
        f"robots.txt: disallowed (redirect to https://reader:{SECRET}@example.com/p?token={SECRET})",
        "robots.txt: disallowed (redirect to https://example.com/p?token=***)",
    ),
    (
        f"invalid redirect location 'https://{SECRET}@example.com/f?a=1&api_key={SECRET}#x'",
        "invalid redirect location 'https://example.com/f?a=1&api_key=***#x'",
    ),
    (
        f"gave up after repeated failures; last: cannot fetch http://u:p@w@b.example/f?sig={SECRET}"
        f" nor https://c.example/g?X-Amz-Signature={SECRET};x=1",
        "gave up after repeated failures; last: cannot fetch http://b.example/f?sig=***"
        " nor https://c.example/g?X-Amz-Signature=***;x=1",
    ),
    (
        f'refused "https://example.com/rss?password={SECRET}&auth={SECRET}&session_id=1"',
        'refused "https://example.com/rss?password=***&auth=***&session_id=1"',
    ),
    (
        f"cannot fetch git+https://{SECRET}@example.com/f nor 9http://{SECRET}@example.com/g",
        "cannot fetch git+https://example.com/f nor 9http://example.com/g",
    ),
    # Nothing to hide: an address, a path with "@", a parameter of another name, no URL at all.
    ("mail editor@example.com", "mail editor@example.com"),
    (
        "redirect to https://example.com/path@2x/feed?category=tokenomics",
        "redirect to https://example.com/path@2x/feed?category=tokenomics",
    ),
    ("HTTP 503 Service Unavailable", "HTTP 503 Service Unavailable"),
]
