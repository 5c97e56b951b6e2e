"""What a pass of the pipeline reports: each feed's outcome, what its entries came to, and the
pass's totals (printed by `ingest run --once`, logged by the service)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.types import FullText, PollStatus


@dataclass(frozen=True, slots=True)
class FeedOutcome:
    feed_id: int
    status: PollStatus
    new: int = 0
    skipped: int = 0
    page_errors: int = 0
    deferred: int = 0
    updated: int = 0
    from_feed: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class EntriesOutcome:
    new: int
    skipped: int
    page_errors: int
    deferred: int
    updated: int = 0
    from_feed: int = 0
    """Stored from a full-text feed's own text, without fetching the page."""
    full_text: FullText | None = None
    """The feed's full-text state after this poll."""


@dataclass(slots=True)
class RunSummary:
    feeds: int = 0
    ok: int = 0
    not_modified: int = 0
    failed: int = 0
    held: int = 0
    """Feeds whose request was not sent, their host's Retry-After not over (not failures)."""
    new_articles: int = 0
    updated: int = 0
    """Articles updated in place (an entry edited after it was stored)."""
    skipped: int = 0
    page_errors: int = 0
    from_feed: int = 0
    outcomes: list[FeedOutcome] = field(default_factory=list)

    def add(self, outcome: FeedOutcome) -> None:
        self.feeds += 1
        self.outcomes.append(outcome)
        if outcome.status == "ok":
            self.ok += 1
        elif outcome.status == "not_modified":
            self.not_modified += 1
        elif outcome.status == "held":
            self.held += 1
        else:
            self.failed += 1
        self.new_articles += outcome.new
        self.updated += outcome.updated
        self.skipped += outcome.skipped
        self.page_errors += outcome.page_errors
        self.from_feed += outcome.from_feed
