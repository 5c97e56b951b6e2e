"""The human summary `ingest backfill` prints at the end."""

from __future__ import annotations

from ingest.backfill.options import BackfillOptions
from ingest.backfill.progress import BackfillReport
from ingest.normalize import redact_text, redact_url
from ingest.store.backfill import RunCounts


def summary_lines(report: BackfillReport, options: BackfillOptions) -> list[str]:
    """The human summary printed at the end: the run's totals (all its invocations together),
    and what this invocation did on a line of its own, labelled so."""
    c, t = report.counts, report.tally
    head = f"backfill {report.run_id} of {redact_url(options.label)}"
    if report.resumed:
        head += " (resumed)"
    lines = [head]
    if options.since or options.until or options.limit:
        parts = []
        if options.since:
            parts.append(f"since {options.since.isoformat()}")
        if options.until:
            parts.append(f"before {options.until.isoformat()}")
        if options.limit:
            parts.append(f"limit {options.limit}")
        lines.append("  " + ", ".join(parts))
    feeds, sitemaps = c.source_total("feed"), c.source_total("sitemap")
    lines.append(
        f"  sources: {feeds + sitemaps} ({feeds} feed pages, {sitemaps} sitemaps), "
        f"{c.source_total(state='failed')} failed"
        + (f", {n} skipped" if (n := c.source_total(state="skipped")) else "")
        + (f" ({why})" if (why := _skipped_sources(c, options)) else "")
        + (f"; {c.other_sites} on other sites skipped" if c.other_sites else "")
        + (
            f"; {c.beyond_sitemaps} sitemaps beyond --max-sitemaps {options.max_sitemaps} skipped"
            if c.beyond_sitemaps
            else ""
        )
        + (
            f"; {c.before_since} sitemaps last modified before --since skipped"
            if c.before_since
            else ""
        )
    )
    skipped = c.url_total("skipped")
    why = ", ".join(
        f"{n} {label}"
        for label, n in (
            ("out of range", c.url_total("skipped", "range")),
            ("undated", c.url_total("skipped", "undated")),
            ("beyond --limit", c.url_total("skipped", "limit")),
            ("already known", c.url_total("skipped", "known") + c.url_total("skipped", "to_link")),
            ("pruned", c.url_total("skipped", "pruned")),
            ("not articles", c.url_total("skipped", "not_article")),
        )
        if n
    )
    lines.append(
        f"  urls: {c.url_total()} found; {c.url_total('done', 'new')} stored, "
        f"{c.url_total('done', 'existing')} already stored, {skipped} skipped"
        + (f" ({why})" if why else "")
        + f", {c.url_total('failed')} failed, {c.url_total('pending')} pending"
    )
    rate = t.fetched / report.elapsed if report.elapsed > 0 else 0.0
    lines.append(
        f"  this invocation: {t.fetched} pages fetched, {t.stored} stored, {t.skipped} skipped as "
        f"known, {t.not_articles} not articles, {t.failed} failed in {report.elapsed:.1f}s"
        f" ({rate:.1f} pages/s)"
    )
    for url, error in report.failures:
        # Recorded so already (`BackfillStore`), but not by the versions before that rule: a
        # run they began shows its failures by it too.
        lines.append(f"  failed: {redact_url(url)}: {redact_text(error) if error else error}")
    if not report.finished and not options.dry_run:
        lines.append("  not finished: run the same command again to continue")
    return lines


def _skipped_sources(c: RunCounts, options: BackfillOptions) -> str:
    """Why the run's skipped sources were: the feed pages skipped are those beyond the cap on
    a paged history, the sitemaps those an index dates before the newest URLs under --limit."""
    parts = []
    if pages := c.source_total("feed", "skipped"):
        parts.append(f"{pages} feed pages beyond --max-pages {options.max_pages}")
    if sitemaps := c.source_total("sitemap", "skipped"):
        older = (
            f"older than the --limit {options.limit} newest URLs"
            if options.limit is not None
            else "last modified before --since"
        )
        parts.append(f"{sitemaps} sitemaps {older}")
    return ", ".join(parts)
