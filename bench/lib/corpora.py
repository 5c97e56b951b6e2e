"""The page corpora and how extraction is scored against them: the labelled pages of
`tests/data/pages` (recall, leakage, metadata per field), the AEB, Mozilla Readability's pages
and trafilatura's evaluation set under `<repo>/../shared` (4-gram shingles or must-have
strings, split by site into dev and val). bench/README.md (`quality_bench.py`) gives the
rules."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import re
import statistics
import time
import traceback
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import lxml.html
import tld

from lib import ROOT

FIELDS = ("title", "author", "published_at", "language")
EXTRACTORS = ("project", "plain")
_WS = re.compile(r"\s+")
_NAME_SEP = re.compile(r"\s*(?:[,;&]|\band\b)\s*")
_TOKEN = re.compile(r"\w+")


# --- comparison ---------------------------------------------------------------------------------


def norm(text: str | None) -> str:
    return _WS.sub(" ", unicodedata.normalize("NFC", text or "")).strip()


def author_names(value: str | None) -> list[str]:
    return [n for n in _NAME_SEP.split(norm(value)) if n]


def parse_when(value: Any) -> datetime | None:
    """An ISO 8601 string, date or datetime as an aware UTC datetime to the second; a value
    without a time of day is midnight UTC, one without an offset is taken to be UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        when = datetime(value.year, value.month, value.day)
    else:
        try:
            when = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.replace(microsecond=0)


def language_code(value: str | None) -> str | None:
    code = norm(value).lower().replace("_", "-").split("-")[0]
    return code or None


def field_ok(name: str, got: Any, expected: Any) -> bool:
    if name == "title":
        return bool(got) and norm(got) == norm(expected)
    if name == "author":
        return bool(author_names(got)) and author_names(got) == author_names(expected)
    if name == "published_at":
        ours = parse_when(got)
        return ours is not None and ours == parse_when(expected)
    if name == "language":
        return language_code(got) is not None and language_code(got) == language_code(expected)
    raise ValueError(name)


# --- corpus -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    name: str
    body: bytes
    expected: dict[str, Any]

    @property
    def template(self) -> str:
        return str(self.expected["template"])


def load_corpus(where: Path) -> list[Page]:
    pages = []
    for exp in sorted(where.glob("*.expected.json")):
        name = exp.name.removesuffix(".expected.json")
        expected = json.loads(exp.read_text(encoding="utf-8"))
        pages.append(Page(name, (where / f"{name}.html").read_bytes(), expected))
    if not pages:
        raise SystemExit(f"quality_bench: no NAME.expected.json pages in {where}")
    return pages


@dataclass
class Outcome:
    """One extractor on one page."""

    found: int
    expected: int
    leaked: int
    boilerplate: int
    missing: list[str]
    leaks: list[str]
    metadata: dict[str, Any]
    correct: dict[str, bool]
    ms: float
    error: str | None = None

    @property
    def recall(self) -> float:
        return self.found / self.expected if self.expected else 1.0

    @property
    def leakage(self) -> float:
        return self.leaked / self.boilerplate if self.boilerplate else 0.0


def score(page: Page, text: str, metadata: dict[str, Any], ms: float, error: str | None) -> Outcome:
    flat = norm(text)
    paragraphs = [norm(p) for p in page.expected["paragraphs"]]
    boilerplate = [norm(b) for b in page.expected["boilerplate"]]
    missing = [p for p in paragraphs if p not in flat]
    leaks = [b for b in boilerplate if b in flat]
    wanted = page.expected["metadata"]
    return Outcome(
        found=len(paragraphs) - len(missing),
        expected=len(paragraphs),
        leaked=len(leaks),
        boilerplate=len(boilerplate),
        missing=missing,
        leaks=leaks,
        metadata=metadata,
        correct={f: field_ok(f, metadata.get(f), wanted.get(f)) for f in FIELDS},
        ms=ms,
        error=error,
    )


@dataclass
class Tally:
    pages: int = 0
    found: int = 0
    expected: int = 0
    leaked: int = 0
    boilerplate: int = 0
    correct: Counter[str] = field(default_factory=Counter)
    recalls: list[float] = field(default_factory=list)
    leakages: list[float] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)

    def add(self, o: Outcome) -> None:
        self.pages += 1
        self.found += o.found
        self.expected += o.expected
        self.leaked += o.leaked
        self.boilerplate += o.boilerplate
        self.correct.update(f for f, ok in o.correct.items() if ok)
        self.recalls.append(o.recall)
        self.leakages.append(o.leakage)
        self.ms.append(o.ms)

    @property
    def recall(self) -> float:
        return self.found / self.expected if self.expected else 1.0

    @property
    def leakage(self) -> float:
        return self.leaked / self.boilerplate if self.boilerplate else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "recall": self.recall,
            "leakage": self.leakage,
            "paragraphs_found": self.found,
            "paragraphs_expected": self.expected,
            "boilerplate_leaked": self.leaked,
            "boilerplate_total": self.boilerplate,
            "mean_page_recall": statistics.mean(self.recalls) if self.recalls else None,
            "mean_page_leakage": statistics.mean(self.leakages) if self.leakages else None,
            "metadata_correct": {f: self.correct[f] for f in FIELDS},
            "metadata_accuracy": {f: self.correct[f] / self.pages for f in FIELDS}
            if self.pages
            else {},
            "ms_per_page": statistics.mean(self.ms) if self.ms else None,
        }


def ratio(plain: float, project: float) -> float | None:
    if project > 0:
        return plain / project
    return None if plain == 0 else float("inf")


def json_ratio(value: float | None) -> float | str | None:
    return "inf" if value == float("inf") else value


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return "n/a (neither leaks)"
    if value == float("inf"):
        return "inf (the project leaks nothing)"
    return f"{value:.2f}x"


# --- shingle scoring ---------------------------------------------------------------------------


def shingles(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    """4-grams of \\w+ tokens as a multiset; a text shorter than n tokens is one short shingle."""
    tokens = _TOKEN.findall(text or "")
    return Counter(tuple(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1)) if tokens)


def shingle_match(truth: str, prediction: str) -> tuple[float, float, float]:
    """True positives, false positives, false negatives over the shingle multisets, divided by
    their sum so that every page weighs the same."""
    t, p = shingles(truth), shingles(prediction)
    tp = sum((t & p).values())
    fp = sum((p - t).values())
    fn = sum((t - p).values())
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)


def aeb_scores(matches: Sequence[tuple[float, float, float]]) -> dict[str, float]:
    def precision(tp: float, fp: float, fn: float) -> float:
        if fp == fn == 0:
            return 1.0
        return 0.0 if tp == fp == 0 else tp / (tp + fp)

    def recall(tp: float, fp: float, fn: float) -> float:
        if fp == fn == 0:
            return 1.0
        return 0.0 if tp == fn == 0 else tp / (tp + fn)

    p = statistics.mean([precision(*m) for m in matches if m[0] + m[1] > 0] or [0.0])
    r = statistics.mean([recall(*m) for m in matches if m[0] + m[2] > 0] or [0.0])
    return {"f1": 2 * p * r / (p + r) if p + r else 0.0, "precision": p, "recall": r}


# --- real-page corpora ----------------------------------------------------------------------------
#
# Three corpora labelled by other projects, each split by site into a development part and a
# validation part (no site in both, the same site key in every corpus): decide on `dev`, report
# both. `aeb` and `readability` are scored by 4-gram shingles as the AEB's README says;
# `trafilatura-eval` by its must-have/must-not strings, pooled as trafilatura's own evaluation
# does (precision = found must-haves / (found must-haves + found must-nots)).

SHARED = ROOT.parent / "shared"
CORPORA = ("aeb", "readability", "trafilatura-eval")


@dataclass(frozen=True)
class Sample:
    corpus: str
    key: str
    url: str
    site: str
    body: bytes
    truth: str = ""
    with_: tuple[str, ...] = ()
    without: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def part(self) -> str:
        return split_of(self.site)


def site_key(url: str) -> str:
    """`https://www.bbc.co.uk/news/x` -> "bbc": the registered domain without its suffix."""
    host = (urlsplit(url).hostname or "").lower()
    fld = tld.get_fld(f"http://{host}", fail_silently=True) or host
    return fld.split(".")[0] or host


def split_of(site: str) -> str:
    """ "dev" or "val", fixed by the site key alone."""
    return "dev" if hashlib.sha256(site.encode()).digest()[0] % 2 == 0 else "val"


def html_text(fragment: bytes | str) -> str:
    tree = lxml.html.fromstring(fragment)
    return " ".join(t for t in tree.itertext() if t.strip())


def load_aeb(where: Path) -> list[Sample]:
    truth = json.loads((where / "ground-truth.json").read_text(encoding="utf-8"))
    return [
        Sample(
            "aeb",
            key,
            item.get("url") or f"https://aeb.invalid/{key}",
            site_key(item.get("url") or f"https://aeb{key}.invalid/"),
            gzip.decompress((where / "html" / f"{key}.html.gz").read_bytes()),
            truth=item.get("articleBody", ""),
        )
        for key, item in sorted(truth.items())
    ]


_NUMBERED = re.compile(r"-\d+$")


def load_readability(where: Path) -> list[Sample]:
    samples = []
    for page in sorted(p for p in where.iterdir() if (p / "source.html.gz").is_file()):
        site = _NUMBERED.sub("", page.name)
        meta = json.loads(gzip.decompress((page / "expected-metadata.json.gz").read_bytes()))
        samples.append(
            Sample(
                "readability",
                page.name,
                f"https://{site}.example/{page.name}",
                site,
                gzip.decompress((page / "source.html.gz").read_bytes()),
                truth=html_text(gzip.decompress((page / "expected.html.gz").read_bytes())),
                metadata=meta,
            )
        )
    return samples


def load_trafilatura_eval(where: Path) -> list[Sample]:
    data = json.loads((where / "evaldata.json").read_text(encoding="utf-8"))
    return [
        Sample(
            "trafilatura-eval",
            item["file"],
            url,
            site_key(url),
            gzip.decompress((where / "pages" / f"{item['file']}.gz").read_bytes()),
            with_=tuple(item.get("with") or ()),
            without=tuple(item.get("without") or ()),
        )
        for url, item in sorted(data.items())
    ]


LOADERS: dict[str, tuple[str, Callable[[Path], list[Sample]]]] = {
    "aeb": ("aeb", load_aeb),
    "readability": ("corpora/readability", load_readability),
    "trafilatura-eval": ("corpora/trafilatura-eval", load_trafilatura_eval),
}


def load_samples(names: Iterable[str], shared: Path = SHARED) -> list[Sample]:
    samples: list[Sample] = []
    for name in names:
        sub, loader = LOADERS[name]
        where = shared / sub
        if not where.is_dir():
            raise SystemExit(f"quality_bench: corpus {name} not found in {where}")
        samples += loader(where)
    return samples


@dataclass(frozen=True)
class Score:
    """One system on one page: shingle (tp, fp, fn) fractions, or string counts."""

    tp: float
    fp: float
    fn: float
    recall: float
    """The page's recall: shingles, or must-have strings found."""
    chars: int


def score_text(sample: Sample, text: str) -> Score:
    if sample.corpus == "trafilatura-eval":
        flat = norm(text)
        found = sum(norm(s) in flat for s in sample.with_)
        leaked = sum(norm(s) in flat for s in sample.without)
        n = len(sample.with_)
        return Score(found, leaked, n - found, found / n if n else 1.0, len(text))
    tp, fp, fn = shingle_match(sample.truth, text)
    return Score(tp, fp, fn, tp / (tp + fn) if tp + fn else 1.0, len(text))


def corpus_scores(corpus: str, scores: Sequence[Score]) -> dict[str, float]:
    if not scores:
        return {"f1": float("nan"), "precision": float("nan"), "recall": float("nan")}
    if corpus == "trafilatura-eval":
        tp = sum(s.tp for s in scores)
        fp = sum(s.fp for s in scores)
        fn = sum(s.fn for s in scores)
        p = tp / (tp + fp) if tp + fp else 1.0
        r = tp / (tp + fn) if tp + fn else 1.0
        return {"f1": 2 * p * r / (p + r) if p + r else 0.0, "precision": p, "recall": r}
    return aeb_scores([(s.tp, s.fp, s.fn) for s in scores])


@dataclass(frozen=True)
class Result:
    text: str
    metadata: dict[str, Any]


@dataclass
class Runs:
    """Per system, per sample (in the samples' order)."""

    scores: dict[str, list[Score]]
    ms: dict[str, list[float]]
    metadata: dict[str, list[dict[str, Any]]]


def run_systems(
    samples: Sequence[Sample],
    errors: list[str],
    systems: dict[str, Callable[[bytes, str], Result]],
    warm: int = 25,
) -> Runs:
    """Every system on every sample, interleaved page by page so that a slow spell of the
    machine hits them alike; the first `warm` pages of each corpus run once untimed first."""
    seen: Counter[str] = Counter()
    for s in samples:
        seen[s.corpus] += 1
        if seen[s.corpus] <= warm:
            for extract in systems.values():
                with contextlib.suppress(Exception):
                    extract(s.body, s.url)
    runs = Runs({n: [] for n in systems}, {n: [] for n in systems}, {n: [] for n in systems})
    for s in samples:
        for name, extract in systems.items():
            started = time.perf_counter()
            try:
                result = extract(s.body, s.url)
            except Exception:
                errors.append(f"{s.corpus} {s.key} [{name}]: {traceback.format_exc(limit=3)}")
                result = Result("", {})
            runs.ms[name].append((time.perf_counter() - started) * 1000)
            runs.scores[name].append(score_text(s, result.text))
            runs.metadata[name].append(result.metadata)
    return runs


def corpus_table(samples: Sequence[Sample], runs: Runs) -> dict[str, Any]:
    scores, ms = runs.scores, runs.ms
    table: dict[str, Any] = {}
    for corpus in dict.fromkeys(s.corpus for s in samples):
        for part in ("dev", "val", "all"):
            idx = [
                i
                for i, s in enumerate(samples)
                if s.corpus == corpus and (part == "all" or s.part == part)
            ]
            table[f"{corpus}/{part}"] = {
                "pages": len(idx),
                "sites": len({samples[i].site for i in idx}),
                **{
                    name: {
                        **corpus_scores(corpus, [scores[name][i] for i in idx]),
                        "below_half": sum(scores[name][i].recall < 0.5 for i in idx),
                        "ms_median": statistics.median(ms[name][i] for i in idx) if idx else 0,
                        "ms_mean": statistics.mean(ms[name][i] for i in idx) if idx else 0,
                    }
                    for name in scores
                },
            }
    return table


def lost_pages(
    samples: Sequence[Sample], runs: Runs, system: str, baseline: str = "plain"
) -> list[tuple[Sample, Score, Score]]:
    """Pages where `system` keeps less than half of the article while `baseline` keeps more
    than 0.8 of it: the article thrown away."""
    return [
        (s, runs.scores[system][i], runs.scores[baseline][i])
        for i, s in enumerate(samples)
        if runs.scores[system][i].recall < 0.5 and runs.scores[baseline][i].recall > 0.8
    ]


_NAIVE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?$")


def published_ok(got: Any, expected: Any) -> bool:
    """Within a minute of the expected time. An expected time without an offset is the page's
    wall clock: right when it is within a minute of the stored UTC time shifted by a whole
    quarter hour of at most 14 hours (some offset). A date alone: the same calendar day."""
    ours = parse_when(got)
    if ours is None or not expected:
        return False
    text = str(expected).strip()
    if len(text) == 10:
        return ours.date().isoformat() == text
    theirs = parse_when(text)
    if theirs is None:
        return False
    delta = abs((ours - theirs).total_seconds())
    if not _NAIVE_TIME.match(text):
        return delta <= 60
    return delta <= 14 * 3600 + 60 and min(delta % 900, 900 - delta % 900) <= 60


def metadata_ok(name: str, got: Any, expected: Any) -> bool:
    if name == "published_at":
        return published_ok(got, expected)
    if name == "author":
        # Readability keeps "By" and roles in its byline; compare the names it contains.
        want = author_names(re.sub(r"^\s*by\s+", "", norm(expected), flags=re.IGNORECASE))
        return bool(want) and author_names(got) == want
    return field_ok(name, got, expected)


# Readability's metadata fields, by the bench's names.
READABILITY_FIELDS = {
    "title": "title",
    "author": "byline",
    "published_at": "publishedTime",
    "language": "lang",
}


def metadata_table(samples: Sequence[Sample], runs: Runs) -> dict[str, Any]:
    """Fields right on the Readability corpus, per system and part: pages where Readability's
    expectation has the field, and how many of those each system gets right."""
    table: dict[str, Any] = {}
    for part in ("dev", "val", "all"):
        idx = [
            i
            for i, s in enumerate(samples)
            if s.corpus == "readability" and (part == "all" or s.part == part)
        ]
        if not idx:
            continue
        row: dict[str, Any] = {}
        for name, theirs in READABILITY_FIELDS.items():
            have = [i for i in idx if samples[i].metadata.get(theirs)]
            row[name] = {"pages": len(have)} | {
                system: sum(
                    metadata_ok(
                        name, runs.metadata[system][i].get(name), samples[i].metadata[theirs]
                    )
                    for i in have
                )
                for system in runs.metadata
            }
        table[f"readability/{part}"] = row
    return table


def find_aeb(override: str | None) -> Path:
    """The AEB corpus directory: `override`, else `<repo>/../shared/aeb`."""
    where = Path(override) if override else SHARED / "aeb"
    if not any((where / "html").glob("*.html.gz")):
        hint = "" if override else " (pass --aeb DIR to point at it)"
        raise SystemExit(f"bench: AEB corpus not found: expected {where}/html/<id>.html.gz{hint}")
    return where.resolve()


def aeb_ids(aeb: Path, limit: int | None, copies: int = 1) -> list[str]:
    """The first `limit` page ids in sorted order, then `copies - 1` more rounds of them as
    "<id>~<k>": the same pages under other URLs, so that fixed costs weigh less."""
    ids = sorted(p.name.removesuffix(".html.gz") for p in (aeb / "html").glob("*.html.gz"))
    return [i if k == 0 else f"{i}~{k}" for k in range(copies) for i in ids[:limit]]


def aeb_page(aeb: Path, page_id: str) -> bytes:
    return gzip.decompress((aeb / "html" / f"{page_id.split('~')[0]}.html.gz").read_bytes())
