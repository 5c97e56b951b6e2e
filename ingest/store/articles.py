"""Feed entries and articles: what is known, what is new, and storing articles with their
duplicates and near-duplicates decided by the database's unique keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import psycopg
import structlog

from ingest.article import titled_alike
from ingest.errors import StoreError
from ingest.neardup import Fingerprint, choose_original, is_near_duplicate
from ingest.normalize import content_hash, redact_text
from ingest.store.base import REFUSED_VALUES, StoreBase, first_line, queries, wrap_exceptions
from ingest.types import Article

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """What an update of a stored article is weighed against (`ArticleStore.stored_versions`)."""

    chars: int
    """The length in characters of its text."""
    modified_at: datetime | None
    """The publisher's last update time of it, as stored (`news.articles.modified_at`)."""


@dataclass(slots=True)
class KnownEntries:
    """What the store knows of a poll's entries (`ArticleStore.known_entries_of`)."""

    done: dict[bytes, datetime | None] = field(default_factory=dict)
    """Entries whose article is stored (or was, until a prune), with the entry's update time
    stored with it."""
    waiting: dict[bytes, int] = field(default_factory=dict)
    """Entries waiting for another try at their page, with the tries so far: also an entry new
    to the feed whose link such an entry has (its guid changed since), with that one's tries."""
    update_attempts: dict[bytes, int] = field(default_factory=dict)
    """Entries done whose latest update's page failed for a passing reason, with the tries so
    far (`ArticleStore.defer_updates`)."""
    urls: dict[str, int | None] = field(default_factory=dict)
    """Links of the entries not done that are known (`known_urls`)."""
    listed: set[str] = field(default_factory=set)
    """Of `urls`, those whose article the feed lists already, under another entry."""
    other_story: set[bytes] = field(default_factory=set)
    """Entries done whose article is stored under another title than the entry's, and whose
    link does not lead to it: candidates for a guid reused for a new story (`dedup.reused`)."""


@dataclass(frozen=True, slots=True)
class StoredCounts:
    new: int
    existing: int
    duplicates: int = 0
    """Of the new ones, how many duplicate an earlier article's body."""

    @staticmethod
    def total(counts: Sequence[StoredCounts]) -> StoredCounts:
        return StoredCounts(
            new=sum(c.new for c in counts),
            existing=sum(c.existing for c in counts),
            duplicates=sum(c.duplicates for c in counts),
        )


WriteItem = tuple[int | None, Article, bytes | None]
"""An article to store: the feed that lists it (None: none), the article, and the hash of that
feed's entry for it (None: no entry to record)."""

Then = Callable[[psycopg.AsyncConnection[Any], list[StoredCounts]], Awaitable[None]]
"""What else a write does in its transaction, given each item's outcome in the order given: the
backfill's checkpoint, committed with the articles or not at all."""

_REFUSED = StoredCounts(0, 0)
_NEW = StoredCounts(1, 0)
_DUPLICATE = StoredCounts(1, 0, 1)
_EXISTING = StoredCounts(0, 1)


class ArticleStore(StoreBase):
    async def known_entries(
        self, feed_id: int, hashes: Sequence[bytes]
    ) -> tuple[dict[bytes, datetime | None], dict[bytes, int]]:
        """Of these entries of the feed: those done (their article is stored), with the entry's
        update time when stored; and those waiting for another try at their page, with the
        number of tries so far."""
        done, waiting, _ = await self.known_entries_and_urls(feed_id, hashes, [])
        return done, waiting

    async def known_entries_and_urls(
        self, feed_id: int, hashes: Sequence[bytes], links: Sequence[str]
    ) -> tuple[dict[bytes, datetime | None], dict[bytes, int], dict[str, int | None]]:
        """`known_entries`, and of the links of the entries not done (`links`: one per entry,
        in the order of `hashes`, or none), those known (`known_urls`). One round trip."""
        known = await self.known_entries_of(feed_id, hashes, links)
        return known.done, known.waiting, known.urls

    async def known_entries_of(
        self,
        feed_id: int,
        hashes: Sequence[bytes],
        links: Sequence[str],
        titles: Sequence[str | None] = (),
    ) -> KnownEntries:
        """`known_entries_and_urls`, and of the entries done, those whose article is another
        story than the entry now (`KnownEntries.other_story`), by their `titles` (one per
        entry, as an article stores it, or none). One round trip."""
        if links and len(links) != len(hashes):
            raise ValueError("known_entries_and_urls: one link per entry")
        if titles and len(titles) != len(hashes):
            raise ValueError("known_entries_of: one title per entry")
        params = {
            "feed_id": feed_id,
            "hashes": list(hashes),
            "urls": list(links),
            "titles": list(titles),
        }
        rows = await self._all("known_entries", params)
        known = KnownEntries()
        for r in rows:
            if r["url"] is not None:
                known.urls[r["url"]] = r["article_id"]
                if r["listed"]:
                    known.listed.add(r["url"])
            elif r["done"]:
                known.done[bytes(r["entry_hash"])] = r["entry_updated_at"]
                if r["attempts"]:
                    known.update_attempts[bytes(r["entry_hash"])] = int(r["attempts"])
                if r["other_story"]:
                    known.other_story.add(bytes(r["entry_hash"]))
            else:
                known.waiting[bytes(r["entry_hash"])] = int(r["attempts"])
        return known

    async def defer_entries(
        self,
        feed_id: int,
        hashes: Sequence[bytes],
        links: Sequence[str] = (),
        attempts: Sequence[int] = (),
        tried: Sequence[bool] = (),
    ) -> None:
        """Count one more failed try at these entries' pages; they are planned again next poll.
        `links` (their canonical links) and `attempts` (the tries each was planned with), one
        per entry or none: an entry new to the feed starts from those tries, and its link
        carries them to the same story listed again under another guid (`known_entries_of`).
        `tried`, one per entry or none (all tried): false for a page whose request was never
        sent (its host's Retry-After not over), which waits without a try counted."""
        if hashes:
            await self._all(
                "defer_entries",
                {
                    "feed_id": feed_id,
                    "hashes": list(hashes),
                    "links": list(links),
                    "attempts": list(attempts),
                    "tries": [int(t) for t in tried],
                },
            )

    async def defer_updates(self, feed_id: int, hashes: Sequence[bytes]) -> None:
        """Count one more failed try at the pages of these updated entries (their articles are
        stored): they are planned again as updates at the next poll, their tries carried."""
        if hashes:
            await self._all("defer_updates", {"feed_id": feed_id, "hashes": list(hashes)})

    async def known_urls(self, urls: Sequence[str]) -> dict[str, int | None]:
        """Of these URLs, those not to fetch: each with the id of the article stored under it,
        or None where that article was pruned (`ingest.known_url`, sql/0023)."""
        rows = await self._all("known_urls", {"urls": list(urls)})
        return {r["url"]: r["article_id"] for r in rows}

    async def link_entries(
        self,
        feed_id: int,
        links: Sequence[tuple[bytes, int]],
        updated_at: Mapping[bytes, datetime | None] | None = None,
    ) -> None:
        """Record entries of this feed that point at articles already stored (an article pruned
        meanwhile is not linked: see `link_feed_entry`), each with its entry's update time
        (`updated_at`, by entry hash; none where absent), as an entry stored is: an entry
        recorded without one it has would be taken for an update at the feed's next poll."""
        if not links:
            return
        q = queries()
        times = updated_at or {}
        async with wrap_exceptions(), self.pool.connection() as conn, conn.transaction():
            for entry_hash, article_id in links:
                await conn.execute(
                    q["link_feed_entry"],
                    {
                        "feed_id": feed_id,
                        "entry_hash": entry_hash,
                        "article_id": article_id,
                        "entry_updated_at": times.get(entry_hash),
                    },
                )
            ids = sorted({article_id for _, article_id in links})
            await conn.execute(q["adopt_articles"], {"feed_id": feed_id, "ids": ids})

    async def stored_versions(
        self, feed_id: int, hashes: Sequence[bytes]
    ) -> dict[bytes, StoredVersion]:
        """The stored version of these entries' articles, by entry hash (entries without an
        article left out): the length of its text, what an update from an entry's own text is
        measured against (`ingest.fulltext.update_words`), and its modified time, what an
        update must be later than to be newer (`ingest.dedup.newer_than_stored`)."""
        if not hashes:
            return {}
        rows = await self._all("stored_versions", {"feed_id": feed_id, "hashes": list(hashes)})
        return {
            bytes(r["entry_hash"]): StoredVersion(int(r["chars"]), r["modified_at"]) for r in rows
        }

    async def update_articles(
        self,
        feed_id: int,
        items: Sequence[tuple[Article, bytes]],
        unchanged: Mapping[bytes, datetime | None] | None = None,
    ) -> int:
        """Articles fetched again because their feed entry was updated: where the text changed,
        the stored version moves to the history table and the row is updated in place (its
        change is announced like an insert); the row is the one of the article's URL, else the
        one any of its other URL forms led to (`article_to_update`), and its `duplicate_of`
        follows the new text (`_place_updated`), written with it: one change row for the edit.
        A version no newer than the stored one by the publisher's times (the stored modified
        time no earlier than the article's) is not written: another feed listing the article
        reached that edit first.
        The entry's update time is recorded either way, so the page is not fetched again until
        the entry changes again; where the database refuses the new version, the stored one
        stays. `unchanged`: entries (by hash, with their update time) whose new version cannot
        be had (its page gone for good): their update time is recorded, their article left as
        it is. Returns how many articles changed (one an entry at most)."""
        return len(await self.updated_entries(feed_id, items, unchanged))

    async def updated_entries(
        self,
        feed_id: int,
        items: Sequence[tuple[Article, bytes]],
        unchanged: Mapping[bytes, datetime | None] | None = None,
    ) -> set[bytes]:
        """`update_articles`, returning the entries (their hashes) whose article changed."""
        if not items and not unchanged:
            return set()
        q = queries()
        changed: set[bytes] = set()
        async with wrap_exceptions(), self.pool.connection() as conn, conn.transaction():
            if items:
                await conn.execute(q["lock_article_writes"])
            for article, entry_hash in sorted(items, key=lambda item: item[0].url):
                try:
                    async with conn.transaction():
                        params = _article_params(article, feed_id)
                        params["urls"] = [article.url, *article.aliases]
                        params["entry_hash"] = entry_hash
                        cur = await conn.execute(q["article_to_update"], params)
                        for (article_id,) in await cur.fetchall():
                            params["id"] = article_id
                            params["duplicate_of"] = await _place_updated(conn, article_id, article)
                            cur = await conn.execute(q["update_article"], params)
                            if await cur.fetchall():
                                changed.add(entry_hash)
                except REFUSED_VALUES as e:
                    log.warning("article_refused", url=article.url[:500], error=first_line(e))
                await conn.execute(
                    q["touch_feed_entry"],
                    {
                        "feed_id": feed_id,
                        "entry_hash": entry_hash,
                        "entry_updated_at": article.updated_at,
                    },
                )
            for entry_hash, updated_at in (unchanged or {}).items():
                await conn.execute(
                    q["touch_feed_entry"],
                    {"feed_id": feed_id, "entry_hash": entry_hash, "entry_updated_at": updated_at},
                )
        return changed

    async def store_articles(
        self,
        feed_id: int | None,
        items: Sequence[tuple[Article, bytes | None]],
        *,
        without_text: bool = True,
        then: Then | None = None,
    ) -> StoredCounts:
        """`store_many` of one feed's articles, counted together."""
        written = await self.store_many(
            [(feed_id, a, k) for a, k in items], without_text=without_text, then=then
        )
        return StoredCounts.total(written)

    async def store_many(
        self, items: Sequence[WriteItem], *, without_text: bool = True, then: Then | None = None
    ) -> list[StoredCounts]:
        """Insert articles (of any feeds) with their URL aliases and feed-entry links in one
        short transaction: each item's outcome, in the order given (new, a duplicate, already
        stored, or refused: all zero). Idempotent: an article whose canonical URL is already
        stored is linked, not duplicated. Rows go in order of publication (of URL among equals):
        a story's earliest copy in the batch is inserted first, so that its later copies point
        at it as they are inserted, instead of being inserted as the story's original and
        re-pointed by the same transaction (two change rows for one new article). Writers take
        turns (`lock_article_writes`), so no order of rows can deadlock them. A row the
        database refuses fails no other: refused for what may be its text, with
        `without_text` (a feed entry is recorded even without text), it is stored without its
        text, the database's reason as its extraction error; otherwise (the backfill stores no
        article without text, a check or not-null constraint), or where even that is refused,
        it is logged and left out (its entry is tried again when its feed changes). `then`
        runs in the same transaction, last, given the outcomes in the order given."""
        if not items:
            return []
        order = sorted(range(len(items)), key=lambda i: _write_order(items[i][1]))
        ordered = [items[i] for i in order]

        def in_order(outcomes: Sequence[StoredCounts]) -> list[StoredCounts]:
            result = [_REFUSED] * len(items)
            for i, outcome in zip(order, outcomes, strict=True):
                result[i] = outcome
            return result

        last: Then | None = None
        if then is not None:
            checkpoint = then

            async def last(conn: psycopg.AsyncConnection[Any], done: list[StoredCounts]) -> None:
                await checkpoint(conn, in_order(done))

        for attempt in range(3):
            try:
                outcomes = await self._store_articles(ordered, without_text, last)
                break
            except StoreError as e:
                retryable = isinstance(
                    e.__cause__,
                    (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure),
                )
                if not retryable or attempt == 2:
                    raise
        else:
            raise AssertionError("unreachable")
        return in_order(outcomes)

    async def _store_articles(
        self, items: Sequence[WriteItem], without_text: bool, then: Then | None
    ) -> list[StoredCounts]:
        try:
            return await self._store_batch(items, then)
        except StoreError as e:
            if not isinstance(e.__cause__, REFUSED_VALUES):
                raise
        # A row the database refuses: row by row, so that one bad row spoils no other.
        return await self._store_one_by_one(items, without_text, then)

    async def _store_batch(
        self, items: Sequence[WriteItem], then: Then | None
    ) -> list[StoredCounts]:
        """The whole batch in one short transaction and a handful of round trips: one `_write`
        for each run of items none of which is a copy of another of its run."""
        # A copy (exact or near) of an item of the run starts a new run: its candidates are
        # looked up, and it is inserted, once the run before it is written and its takeovers
        # done (`_write`), so that it finds its story as it is. Items come in order of
        # publication, so a story's earliest copy in the batch is written first and takes the
        # story over; its later copies then point at it as they are inserted.
        runs: list[list[WriteItem]] = [[]]
        run: list[bytes] = []
        bodies: set[bytes] = set()
        for item in items:
            article, fp = item[1], item[1].fingerprint
            exact = article.copies_by_text and article.content_hash in bodies
            if exact or (
                fp is not None and any(is_near_duplicate(fp.minhash, other) for other in run)
            ):
                runs.append([])
                run, bodies = [], set()
            runs[-1].append(item)
            bodies.add(article.content_hash)
            if fp is not None:
                run.append(fp.minhash)
        async with wrap_exceptions(), self.pool.connection() as conn, conn.transaction():
            await conn.execute(queries()["lock_article_writes"])
            outcomes: list[StoredCounts] = []
            for batch in runs:
                outcomes += await _write(conn, batch)
            if then is not None:
                await then(conn, outcomes)
            return outcomes

    async def _store_one_by_one(
        self, items: Sequence[WriteItem], without_text: bool, then: Then | None
    ) -> list[StoredCounts]:
        """Each row in a savepoint of one transaction: a row the database refuses spoils no
        other, and each near-copy finds the original stored just before it."""
        outcomes: list[StoredCounts] = []
        async with wrap_exceptions(), self.pool.connection() as conn, conn.transaction():
            # Writers of articles take turns (see sql/0004: the change sequence must become
            # visible in order); taking the turn before any row lock avoids deadlocks.
            await conn.execute(queries()["lock_article_writes"])
            for item in items:
                outcomes.append(await _write_or_record(conn, item, without_text))
            if then is not None:
                await then(conn, outcomes)
        return outcomes


def _write_order(article: Article) -> tuple[datetime, str]:
    """Where an article goes in a batch (`store_many`): by publication, then URL."""
    return article.published_at, article.url


async def _write_or_record(
    conn: psycopg.AsyncConnection[Any], item: WriteItem, without_text: bool
) -> StoredCounts:
    """`_write` of one item in a savepoint; where the database refuses the row for what may be
    its text (`_TEXT_REFUSALS`), with `without_text`, the record of the article without its
    text (`_without_text`), so that its entry is done with and says why; `_REFUSED` otherwise,
    or where that is refused too."""
    feed_id, article, entry_hash = item
    try:
        async with conn.transaction():
            return (await _write(conn, [item]))[0]
    except REFUSED_VALUES as e:
        refused = e
    if without_text and article.text and isinstance(refused, _TEXT_REFUSALS):
        try:
            async with conn.transaction():
                counts = (
                    await _write(conn, [(feed_id, _without_text(article, refused), entry_hash)])
                )[0]
        except REFUSED_VALUES as e:
            refused = e
        else:
            log.warning("article_text_refused", url=article.url[:500], error=first_line(refused))
            return counts
    log.warning("article_refused", url=article.url[:500], error=first_line(refused))
    return _REFUSED


_TEXT_REFUSALS = (psycopg.DataError, psycopg.errors.ProgramLimitExceeded)
"""Refusals that may be the text's (a NUL byte, a text too large to search). A check or
not-null constraint is not: none holds the text, and the record without it may pass one for
another reason (its title cut, no earlier copy of its story found and re-pointed), which would
drop the text of an article the database refused for something else."""

_TITLE_KEPT = 300
"""Characters of the title an article stored without its text keeps (`_without_text`)."""


def _without_text(article: Article, refused: Exception) -> Article:
    """What is stored of an article whose row the database refused: the record without its
    text, with the database's reason as its extraction error. Text search cannot index a text
    of some megabytes of distinct words (PostgreSQL's tsvector holds 1 MB), and a row refused
    for it would be fetched and refused again on every poll. The title is cut for the same
    reason (it is searched too)."""
    title = article.title[:_TITLE_KEPT] if article.title else article.title
    return replace(
        article,
        title=title,
        text="",
        content_hash=content_hash(""),
        fingerprint=None,
        extraction_error=f"the database refused its text: {first_line(refused)}",
    )


async def _write(
    conn: psycopg.AsyncConnection[Any], items: Sequence[WriteItem]
) -> list[StoredCounts]:
    """The one row-writer: near-copy candidates of every article, then the inserts, then URL
    aliases and feed entries, each as one pipelined `executemany`, inside the caller's
    transaction (which holds the article-writes lock). Each item's outcome, in order."""
    q = queries()
    params = [_article_params(article, feed_id) for feed_id, article, _ in items]
    fingerprints = [article.fingerprint for _, article, _ in items]
    cur = conn.cursor()
    exact = [(i, _exact_params(a, None)) for i, (_, a, _) in enumerate(items) if a.copies_by_text]
    if exact:
        await cur.executemany(q["exact_candidates"], [p for _, p in exact], returning=True)
        for i, _ in exact:
            params[i]["exact_of"] = _exact_original(items[i][1], await cur.fetchall())
            cur.nextset()
    lookups = [
        (i, {"bands": _bigint_array(fp.bands), "url": items[i][1].url})
        for i, fp in enumerate(fingerprints)
        if fp is not None
    ]
    if lookups:
        await cur.execute(q["probe_band_index"])
        await cur.executemany(
            q["near_duplicate_candidates"], [p for _, p in lookups], returning=True
        )
        for i, _ in lookups:
            fp = fingerprints[i]
            assert fp is not None
            params[i]["near_duplicate_of"] = _original(fp, items[i][1], await cur.fetchall())
            cur.nextset()
        await cur.execute(q["probe_band_index_done"])
    await cur.executemany(q["insert_article"], params, returning=True)
    inserted: list[tuple[int, int | None] | None] = []
    takeovers: list[dict[str, int]] = []
    for _ in items:
        row = await cur.fetchone()
        inserted.append((row[0], row[2]) if row is not None else None)
        if row is not None and row[1] is None and row[2] is not None:
            takeovers.append({"new": row[0], "old": row[2]})
        cur.nextset()
    # One story at a time: two articles of one batch may both be earlier than its original.
    for takeover in takeovers:
        await cur.execute(q["repoint_duplicates"], takeover)
    conflicts = [a.url for (_, a, _), row in zip(items, inserted, strict=True) if row is None]
    ids: dict[str, int] = {}
    if conflicts:
        await cur.execute(q["article_ids_by_url"], {"urls": conflicts})
        ids = {url: article_id for url, article_id in await cur.fetchall()}
    urls: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    outcomes: list[StoredCounts] = []
    adopting: dict[int, set[int]] = {}
    for (feed_id, article, entry_hash), row in zip(items, inserted, strict=True):
        if row is not None:
            article_id = row[0]
            outcomes.append(_NEW if row[1] is None else _DUPLICATE)
        elif article.url in ids:
            article_id = ids[article.url]
            outcomes.append(_EXISTING)
            if feed_id is not None:
                adopting.setdefault(feed_id, set())
        else:  # deleted concurrently; nothing to link
            outcomes.append(_EXISTING)
            continue
        urls.append({"article_id": article_id, "urls": [article.url, *article.aliases]})
        if feed_id is not None and entry_hash is not None:
            entries.append(
                {
                    "feed_id": feed_id,
                    "hashes": [entry_hash],
                    "article_id": article_id,
                    "entry_updated_at": article.updated_at,
                }
            )
    if urls:
        await cur.executemany(q["add_article_urls"], urls)
    if entries:
        await cur.executemany(q["add_feed_entries"], entries)
    # A feed that lists an article stored before (with no feed) becomes its first feed.
    for e in entries:
        if e["feed_id"] in adopting:
            adopting[e["feed_id"]].add(e["article_id"])
    for feed_id, adopted in sorted(adopting.items()):
        if adopted:
            await cur.execute(q["adopt_articles"], {"feed_id": feed_id, "ids": sorted(adopted)})
    return outcomes


async def _place_updated(
    conn: psycopg.AsyncConnection[Any], article_id: int, article: Article
) -> int | None:
    """The `duplicate_of` of an article whose text is being replaced in place by `article`'s:
    the story is the one of its new text, as if it were stored now. Copies that no longer match
    the new text (same body, or a near-duplicate) leave it as a story of their own, the
    earliest published of them its original (as when their original is pruned); the article,
    with the copies that still match it, then joins the story its new text copies (or takes it
    over, when published before that story's original), else is an original. The other rows
    are written here, only those whose `duplicate_of` changes, so only they are announced; the
    article's is returned, for the UPDATE of its text (`update_article`) to write with it, so
    that its edit is one change, not one for the text and another for the story."""
    q = queries()
    cur = conn.cursor()
    await cur.execute(q["updated_article_story"], {"id": article_id})
    rows = await cur.fetchall()
    me = next(r for r in rows if not r[5])
    fp = article.fingerprint

    def matches(body: bytes, minhash: bytes | None) -> bool:
        if article.copies_by_text and bytes(body) == article.content_hash:
            return True
        return fp is not None and minhash is not None and is_near_duplicate(fp.minhash, minhash)

    copies = sorted((r for r in rows if r[5]), key=lambda r: (r[1], r[0]))
    kept = [r[0] for r in copies if matches(r[2], r[3])]
    left = [r[0] for r in copies if not matches(r[2], r[3])]
    if left:
        await cur.execute(q["set_duplicate_of"], {"ids": left[:1], "original": None})
        await cur.execute(q["set_duplicate_of"], {"ids": left[1:], "original": left[0]})

    root = None
    if article.copies_by_text:
        await cur.execute(q["exact_candidates"], _exact_params(article, article_id))
        root = _exact_original(article, await cur.fetchall())
    if root is None and fp is not None:
        params = {"bands": _bigint_array(fp.bands), "url": article.url}
        await cur.execute(q["probe_band_index"])
        await cur.execute(q["near_duplicate_candidates"], params)
        candidates = [r for r in await cur.fetchall() if r[0] != article_id and r[2] != article_id]
        await cur.execute(q["probe_band_index_done"])
        root = _original(fp, article, candidates)
    story = None
    if root is not None:
        await cur.execute(q["story_original"], {"id": root})
        story = await cur.fetchone()
    if story is None:
        return None
    if (me[1], article_id) < (story[1], story[0]):
        await cur.execute(q["take_story_over"], {"root": story[0], "new": article_id})
        return None
    await cur.execute(q["set_duplicate_of"], {"ids": kept, "original": story[0]})
    return int(story[0])


def _apart(article: Article, site: str, title: str | None) -> bool:
    """Whether a stored article of `site` titled `title` is another story than `article`
    whatever their texts: an article of the same site titled otherwise (`titled_alike`). A
    site's pages that share their text and not their headline (a paywall or subscription
    notice, all its pages show where the story should be; the placeholder its feed gives every
    entry) show the site's template, not one story: taken for copies, every later story of the
    site would be hidden under its first. Another site's copy may be retitled, and so may a
    story a site stores again under a new link (its headline edited with its slug), as long as
    the headlines stay alike."""
    return site == article.site and not titled_alike(article.title, title)


def _exact_params(article: Article, article_id: int | None) -> dict[str, Any]:
    """The parameters of the exact_candidates query, for `article` (being updated: its id)."""
    return {"content_hash": article.content_hash, "site": article.site, "id": article_id}


def _exact_original(article: Article, rows: Sequence[Any]) -> int | None:
    """The original of the earliest article of exact_candidates' rows (id, root, site, title)
    with `article`'s body that is of its story (`_apart`)."""
    story = [(r[0], r[1]) for r in rows if not _apart(article, r[2], r[3])]
    return min(story)[1] if story else None


def _original(fingerprint: Fingerprint, article: Article, rows: Sequence[Any]) -> int | None:
    """`choose_original` over rows of the near_duplicate_candidates query (id, minhash,
    duplicate_of, site, title), for `article`; articles of another story than it whatever
    their texts (`_apart`) are no candidates."""
    candidates = [(r[0], bytes(r[1]) if r[1] is not None else None, r[2], r[3]) for r in rows]
    apart = {r[0] for r in rows if _apart(article, r[3], r[4])}
    return choose_original(fingerprint, candidates, article.site, apart)


def _article_params(a: Article, feed_id: int | None) -> dict[str, Any]:
    return {
        "url": a.url,
        "original_url": a.original_url,
        "feed_id": feed_id,
        "guid": a.guid,
        "site": a.site,
        "title": a.title,
        "text": a.text,
        "author": a.author,
        "authors": list(a.authors),
        "tags": list(a.tags),
        "published_at": a.published_at,
        "published_source": a.published_source,
        "modified_at": a.updated_at,
        "language": a.language,
        "image_url": a.image_url,
        "summary": a.summary,
        "content_hash": a.content_hash,
        "exact_of": None,
        "text_source": a.text_source,
        "extraction_error": (
            redact_text(a.extraction_error) if a.extraction_error is not None else None
        ),
        "fetched_at": a.fetched_at,
        "near_duplicate_of": None,
        "minhash": a.fingerprint.minhash if a.fingerprint else None,
        "lsh_bands": _bigint_array(a.fingerprint.bands) if a.fingerprint else None,
    }


def _bigint_array(values: Sequence[int]) -> str:
    """`values` in PostgreSQL's text form of a `bigint[]` (`{1,-2}`), a literal its statement
    types (a column, a cast): psycopg's list adapter looks at every element's type and writes
    them one by one, four times the time for the 32 band keys an article is written and looked
    up with."""
    return "{" + ",".join(map(str, values)) + "}"
