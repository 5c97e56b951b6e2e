"""Near-duplicate fingerprints: MinHash over word shingles, and LSH band keys that PostgreSQL
indexes to find candidates. Pure: text in, fingerprint out; the decision is a comparison of two
fingerprints against a documented threshold.

Why these numbers: with 128 hash functions split into 32 bands of 4 rows, two texts whose
shingle sets have Jaccard similarity J share at least one band with probability
1 - (1 - J^4)^32: 0.99 at J = 0.6, 0.87 at J = 0.5, 0.23 at J = 0.3. Candidates are then
confirmed by the similarity the signatures estimate (standard error about 0.04 at J = 0.5).
"""

from __future__ import annotations

import hashlib
from collections.abc import Set
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import TYPE_CHECKING

from ingest.coverage import words

if TYPE_CHECKING:
    import numpy as np

NUM_PERM = 128
BANDS = 32
ROWS = NUM_PERM // BANDS
SHINGLE_WORDS = 5
MIN_WORDS = 40
"""Texts shorter than this are left to the exact content hash: a few shared sentences would
make two short items look like copies. Words are `ingest.coverage.words`: `\\w+` runs, each
Chinese or Japanese character on its own, and each Thai, Lao, Khmer, Myanmar, Tibetan, Javanese
or Balinese letter with its signs (those scripts put no spaces between words, and a clause
between two punctuation marks taken for one word left a story some sixty shingles, five of
which each changed word took with it)."""
THRESHOLD = 0.5
"""Estimated Jaccard similarity of 5-word shingles at or above which two texts are copies of
one story (syndicated with another template, a line added, lightly edited)."""

_CHUNK = 1 << 14
"""Shingles hashed together in `fingerprint`: 16 MB of intermediate values at most."""


@cache
def _coefficients() -> tuple[np.ndarray, np.ndarray]:
    """Fixed coefficients: fingerprints must compare equal across processes, replicas and
    versions. numpy is imported here, not at module level: the main process compares
    fingerprints (pure Python below) but computes them only in the workers."""
    import numpy as np

    rng = np.random.Generator(np.random.PCG64(0x6E657773))
    a = rng.integers(1, 2**61 - 1, size=NUM_PERM, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 2**61 - 1, size=NUM_PERM, dtype=np.uint64)
    return a, b


@dataclass(frozen=True, slots=True)
class Fingerprint:
    minhash: bytes
    """NUM_PERM little-endian uint32 values."""
    bands: tuple[int, ...]
    """BANDS signed 64-bit keys (PostgreSQL bigint), one per band of ROWS values."""


def _shingle_hashes(text: str, tokens: list[str] | None = None) -> np.ndarray | None:
    import numpy as np

    if tokens is None:
        tokens = words(text)
    if len(tokens) < MIN_WORDS:
        return None
    # Each word encoded once, not once in each of the SHINGLE_WORDS shingles it is in: the same
    # UTF-8 bytes are hashed (only the order of the hashes differs, and only their minimum
    # counts), in seven eighths of the time.
    encoded = [token.encode("utf-8") for token in tokens]
    runs = zip(*(encoded[i:] for i in range(SHINGLE_WORDS)), strict=False)
    shingles = set(map(b" ".join, runs))
    blake2b = hashlib.blake2b
    digests = b"".join([blake2b(s, digest_size=8).digest() for s in shingles])
    return np.frombuffer(digests, dtype="<u8")


def fingerprint(text: str, tokens: list[str] | None = None) -> Fingerprint | None:
    """The fingerprint of an article body; None when it is too short to judge. `tokens`, when
    given, are `words(text)`, already computed by the caller."""
    import numpy as np

    hashes = _shingle_hashes(text, tokens)
    if hashes is None:
        return None
    a, b = _coefficients()
    # (a*x + b) mod 2^64, upper 32 bits: a multiply-shift hash family, one per permutation.
    # In place: one NUM_PERM x shingles array instead of three, _CHUNK shingles at a time (a
    # text of megabytes would otherwise need gigabytes). The shift is monotonic, so the
    # minimum's upper bits are the minimum of the upper bits: it runs on NUM_PERM values only.
    lowest = None
    with np.errstate(over="ignore"):
        for start in range(0, len(hashes), _CHUNK):
            values = np.multiply.outer(a, hashes[start : start + _CHUNK])
            values += b[:, None]
            least = values.min(axis=1)
            lowest = least if lowest is None else np.minimum(lowest, least)
    assert lowest is not None  # at least MIN_WORDS words, so shingles
    minhash = (lowest >> np.uint64(32)).astype("<u4").tobytes()
    width = ROWS * 4
    blake2b = hashlib.blake2b
    bands = tuple(
        int.from_bytes(
            blake2b(
                bytes([band]) + minhash[band * width : (band + 1) * width], digest_size=8
            ).digest(),
            "little",
            signed=True,
        )
        for band in range(BANDS)
    )
    return Fingerprint(minhash, bands)


def choose_original(
    fingerprint: Fingerprint,
    candidates: list[tuple[int, bytes | None, int | None, str | None]],
    site: str | None = None,
    apart: Set[int] = frozenset(),
) -> int | None:
    """Of candidate articles (id, minhash, duplicate_of, site) sharing a band with `fingerprint`
    (an article of `site`), the original of the earliest one that is a near-duplicate: copies of
    copies point at the first article of the story, never at another copy. Candidates of
    `apart` (by id) are no copies of it whatever their text (another story of its site, titled
    otherwise: `ingest.store.articles`), but their values still tell its site's template.

    A value of the signature that the new article shares with a candidate and also with an
    article of another story of its own site is no evidence of a copy (`template_rows`): it
    comes from what the site prints under every story (a newsletter appeal, a disclaimer, the
    "About" paragraph of its press releases), which its extraction kept. Two briefs of 100
    words under one 195-word footer estimate a similarity near 0.5 on the footer alone, and
    each of the site's briefs after the first would join the first one's story. The similarity
    with each candidate is estimated on the other values."""
    values = len(fingerprint.minhash) // 4
    mine, lowest = int.from_bytes(fingerprint.minhash, "little"), _lowest_bits(values)
    rows = [
        (article_id, original or article_id, minhash, s)
        for article_id, minhash, original, s in candidates
        if minhash is not None and len(minhash) == len(fingerprint.minhash)
    ]
    # Leaving values out only lowers a similarity: the template is looked at for the
    # candidates that are near-duplicates by all their values, which are few. A candidate is
    # read as the values it shares with the fingerprint (`_shared`).
    near = [
        (root, equal)
        for article_id, root, minhash, _ in rows
        if article_id not in apart
        and (equal := _shared(mine, minhash, lowest)).bit_count() >= THRESHOLD * values
    ]
    if not near:
        return None
    by_story = template_rows(
        [(root, _shared(mine, minhash, lowest)) for _, root, minhash, s in rows if s == site]
    )
    held, twice = 0, 0  # the values some story of the site holds, and two stories or more
    for values_held in by_story.values():
        twice |= held & values_held
        held |= values_held
    matches = []
    for root, equal in near:
        # The values the site's other stories hold (the template where any does).
        others = twice | (held & ~by_story.get(root, 0))
        kept = (equal & ~others).bit_count()  # equal, and held by no other story
        counted = values - equal.bit_count() + kept
        if counted and kept / counted >= THRESHOLD:
            matches.append(root)
    return min(matches, default=None)


def template_rows(site_rows: list[tuple[int, int]]) -> dict[int, int]:
    """For each story (by original id) of `site_rows` (articles of its own site: story, the
    values of the signature it shares, as `_shared` gives them), the values its articles
    hold."""
    stories: dict[int, int] = {}
    for root, equal in site_rows:
        stories[root] = stories.get(root, 0) | equal
    return stories


def similarity(a: bytes, b: bytes) -> float:
    """Jaccard similarity estimated from two MinHash signatures (fraction of equal values)."""
    if len(a) != len(b) or not a or len(a) % 4:
        return 0.0
    values = len(a) // 4
    return _shared(int.from_bytes(a, "little"), b, _lowest_bits(values)).bit_count() / values


def _shared(mine: int, other: bytes, lowest: int) -> int:
    """The values a signature (`mine`, read as a little-endian number) shares with `other`, of
    its length, as bits (`lowest`: `_lowest_bits` of their values): the lowest bit of each
    4-byte value of their XOR, once every bit of the value is gathered into it (shifts of 1 to
    31 bits in all, none reaching the next value's lowest bit), is set where they differ. A
    third of the time a comparison value by value takes: the writer compares each article
    with those of its batch, and with up to 200 candidates."""
    x = mine ^ int.from_bytes(other, "little")
    x |= x >> 16
    x |= x >> 8
    x |= x >> 4
    x |= x >> 2
    x |= x >> 1
    return lowest & ~x


@lru_cache(maxsize=4)
def _lowest_bits(values: int) -> int:
    """The lowest bit of each of `values` little-endian 4-byte values."""
    return int.from_bytes(b"\x01\0\0\0" * values, "little")


def is_near_duplicate(a: bytes, b: bytes) -> bool:
    return similarity(a, b) >= THRESHOLD
