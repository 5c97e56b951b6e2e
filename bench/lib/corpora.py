"""The page corpora and how extraction is scored against them: the labelled pages of
`tests/data/pages` (recall, leakage, metadata per field) and the real-page corpora under
`<repo>/../shared` (the AEB, Mozilla Readability's pages, trafilatura's evaluation set: 4-gram
shingles or must-have strings, split by site into dev and val). bench/README.md
(`quality_bench.py`) gives the rules."""

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
SHARED = ROOT.parent / "shared"
CORPORA = ("aeb", "readability", "trafilatura-eval")
READABILITY_FIELDS = dict(zip(FIELDS, ("title", "byline", "publishedTime", "lang"), strict=True))
"""Readability's metadata fields, by the bench's names."""
_NAIVE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?$")


def norm(text: str | None) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text or "")).strip()


def author_names(value: str | None) -> list[str]:
    return [n for n in re.split(r"\s*(?:[,;&]|\band\b)\s*", norm(value)) if n]


def parse_when(value: Any) -> datetime | None:
    """An ISO 8601 string, date or datetime as an aware UTC datetime to the second; a value
    without a time of day is midnight UTC, one without an offset is taken to be UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    try:
        iso = str(value).strip().replace("Z", "+00:00")
        when = value if isinstance(value, datetime) else datetime.fromisoformat(iso)
    except ValueError:
        return None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.replace(microsecond=0)


def language_code(value: str | None) -> str | None:
    return norm(value).lower().replace("_", "-").split("-")[0] or None


def field_ok(name: str, got: Any, expected: Any) -> bool:
    if name == "title":
        return bool(got) and norm(got) == norm(expected)
    if name == "author":
        return bool(author_names(got)) and author_names(got) == author_names(expected)
    if name == "published_at":
        return parse_when(got) is not None and parse_when(got) == parse_when(expected)
    if name == "language":
        return language_code(got) is not None and language_code(got) == language_code(expected)
    raise ValueError(name)


def published_ok(got: Any, expected: Any) -> bool:
    """Within a minute of the expected time. An expected time without an offset is the page's
    wall clock: right when it is within a minute of the stored UTC time shifted by a whole
    quarter hour of at most 14 hours (some offset). A date alone: the same calendar day."""
    ours, text = parse_when(got), str(expected or "").strip()
    if ours is None or not text:
        return False
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
    """Readability's expectations: its byline keeps "By" and roles; compare the names."""
    if name == "published_at":
        return published_ok(got, expected)
    if name == "author":
        want = author_names(re.sub(r"^\s*by\s+", "", norm(expected), flags=re.IGNORECASE))
        return bool(want) and author_names(got) == want
    return field_ok(name, got, expected)


# --- the labelled pages -------------------------------------------------------------------------


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
    flat, wanted = norm(text), page.expected["metadata"]
    paragraphs = [norm(p) for p in page.expected["paragraphs"]]
    boilerplate = [norm(b) for b in page.expected["boilerplate"]]
    missing, leaks = [p for p in paragraphs if p not in flat], [b for b in boilerplate if b in flat]
    correct = {f: field_ok(f, metadata.get(f), wanted.get(f)) for f in FIELDS}
    return Outcome(len(paragraphs) - len(missing), len(paragraphs), len(leaks), len(boilerplate),
                   missing, leaks, metadata, correct, ms, error)  # fmt: skip


@dataclass
class Tally:
    outcomes: list[Outcome] = field(default_factory=list)

    def add(self, o: Outcome) -> None:
        self.outcomes.append(o)

    def total(self, name: str) -> int:
        return sum(getattr(o, name) for o in self.outcomes)

    @property
    def pages(self) -> int:
        return len(self.outcomes)

    @property
    def correct(self) -> Counter[str]:
        return Counter(f for o in self.outcomes for f, ok in o.correct.items() if ok)

    @property
    def recall(self) -> float:
        return self.total("found") / self.total("expected") if self.total("expected") else 1.0

    @property
    def leakage(self) -> float:
        return (
            self.total("leaked") / self.total("boilerplate") if self.total("boilerplate") else 0.0
        )

    def mean(self, name: str) -> float:
        return statistics.mean(getattr(o, name) for o in self.outcomes)

    def summary(self) -> dict[str, Any]:
        n, correct = self.pages, self.correct
        return {
            "pages": n, "recall": self.recall, "leakage": self.leakage,
            "paragraphs_found": self.total("found"), "paragraphs_expected": self.total("expected"),
            "boilerplate_leaked": self.total("leaked"),
            "boilerplate_total": self.total("boilerplate"),
            "mean_page_recall": self.mean("recall") if n else None,
            "mean_page_leakage": self.mean("leakage") if n else None,
            "metadata_correct": {f: correct[f] for f in FIELDS},
            "metadata_accuracy": {f: correct[f] / n for f in FIELDS} if n else {},
            "ms_per_page": self.mean("ms") if n else None,
        }  # fmt: skip


def ratio(plain: float, project: float) -> float | None:
    if project > 0:
        return plain / project
    return None if plain == 0 else float("inf")


# --- the real-page corpora ----------------------------------------------------------------------


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
        """ "dev" or "val", fixed by the site key alone (`site_part`)."""
        return site_part(self.site)


def site_part(site: str) -> str:
    """ "dev" or "val" for a site key (`site_key`): decide on the first, report both."""
    return "dev" if hashlib.sha256(site.encode()).digest()[0] % 2 == 0 else "val"


def site_key(url: str) -> str:
    """`https://www.bbc.co.uk/news/x` -> "bbc": the registered domain without its suffix."""
    host = (urlsplit(url).hostname or "").lower()
    return (tld.get_fld(f"http://{host}", fail_silently=True) or host).split(".")[0] or host


def gunzip(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes())


def load_aeb(where: Path) -> list[Sample]:
    truth = json.loads((where / "ground-truth.json").read_text(encoding="utf-8"))
    return [
        Sample("aeb", key, item.get("url") or f"https://aeb.invalid/{key}",
               site_key(item.get("url") or f"https://aeb{key}.invalid/"),
               gunzip(where / "html" / f"{key}.html.gz"), truth=item.get("articleBody", ""))
        for key, item in sorted(truth.items())
    ]  # fmt: skip


def load_readability(where: Path) -> list[Sample]:
    samples = []
    for page in sorted(p for p in where.iterdir() if (p / "source.html.gz").is_file()):
        site = re.sub(r"-\d+$", "", page.name)
        truth = lxml.html.fromstring(gunzip(page / "expected.html.gz")).itertext()
        samples.append(Sample(
            "readability", page.name, f"https://{site}.example/{page.name}", site,
            gunzip(page / "source.html.gz"), truth=" ".join(t for t in truth if t.strip()),
            metadata=json.loads(gunzip(page / "expected-metadata.json.gz")),
        ))  # fmt: skip
    return samples


def load_trafilatura_eval(where: Path) -> list[Sample]:
    data = json.loads((where / "evaldata.json").read_text(encoding="utf-8"))
    return [
        Sample("trafilatura-eval", item["file"], url, site_key(url),
               gunzip(where / "pages" / f"{item['file']}.gz"), with_=tuple(item.get("with") or ()),
               without=tuple(item.get("without") or ()))
        for url, item in sorted(data.items())
    ]  # fmt: skip


LOADERS: dict[str, tuple[str, Callable[[Path], list[Sample]]]] = {
    "aeb": ("aeb", load_aeb),
    "readability": ("corpora/readability", load_readability),
    "trafilatura-eval": ("corpora/trafilatura-eval", load_trafilatura_eval),
}


def load_samples(names: Iterable[str], shared: Path = SHARED) -> list[Sample]:
    samples: list[Sample] = []
    for name in names:
        sub, loader = LOADERS[name]
        if not (shared / sub).is_dir():
            raise SystemExit(f"quality_bench: corpus {name} not found in {shared / sub}")
        samples += loader(shared / sub)
    return samples


@dataclass(frozen=True)
class Score:
    """One system on one page: shingle (tp, fp, fn) fractions, or string counts; the page's
    recall (shingles, or must-have strings found) and the text's length."""

    tp: float
    fp: float
    fn: float
    recall: float
    chars: int


def score_text(sample: Sample, text: str) -> Score:
    if sample.corpus == "trafilatura-eval":
        flat, n = norm(text), len(sample.with_)
        found = sum(norm(s) in flat for s in sample.with_)
        leaked = sum(norm(s) in flat for s in sample.without)
        return Score(found, leaked, n - found, found / n if n else 1.0, len(text))
    # 4-grams of \w+ tokens as multisets (a text shorter than 4 tokens is one short shingle);
    # tp, fp, fn divided by their sum so that every page weighs the same.
    tokens = (re.findall(r"\w+", sample.truth or ""), re.findall(r"\w+", text or ""))
    t, p = (Counter(tuple(w[i : i + 4]) for i in range(max(1, len(w) - 3)) if w) for w in tokens)
    tp, fp, fn = sum((t & p).values()), sum((p - t).values()), sum((t - p).values())
    total = tp + fp + fn
    tp, fp, fn = (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)
    return Score(tp, fp, fn, tp / (tp + fn) if tp + fn else 1.0, len(text))


def corpus_scores(corpus: str, scores: Sequence[Score]) -> dict[str, float]:
    """The AEB's F1 (of the mean page precision and recall) or, for trafilatura's set, the
    pooled must-have / must-not counts."""
    if not scores:
        return {"f1": float("nan"), "precision": float("nan"), "recall": float("nan")}
    if corpus == "trafilatura-eval":
        tp, fp, fn = (sum(getattr(s, k) for s in scores) for k in ("tp", "fp", "fn"))
        p, r = tp / (tp + fp) if tp + fp else 1.0, tp / (tp + fn) if tp + fn else 1.0
    else:
        exact = [s.fp == s.fn == 0 for s in scores]
        ps = [
            1.0 if e else s.tp / (s.tp + s.fp)
            for s, e in zip(scores, exact, strict=True)
            if s.tp + s.fp > 0
        ]
        rs = [
            1.0 if e else s.tp / (s.tp + s.fn)
            for s, e in zip(scores, exact, strict=True)
            if s.tp + s.fn > 0
        ]
        p, r = statistics.mean(ps or [0.0]), statistics.mean(rs or [0.0])
    return {"f1": 2 * p * r / (p + r) if p + r else 0.0, "precision": p, "recall": r}


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


System = Callable[[bytes, str], Result]


def run_systems(
    samples: Sequence[Sample], errors: list[str], systems: dict[str, System], warm: int = 25
) -> Runs:
    """Every system on every sample, interleaved page by page so that a slow spell of the
    machine hits them alike; the first `warm` pages of each corpus run once untimed first."""
    seen: Counter[str] = Counter()
    for s in samples:
        seen[s.corpus] += 1
        for extract in systems.values() if seen[s.corpus] <= warm else ():
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


def parts(samples: Sequence[Sample], corpus: str) -> Iterable[tuple[str, list[int]]]:
    """("dev", indexes), ("val", ...), ("all", ...) of one corpus's samples."""
    for part in ("dev", "val", "all"):
        yield (
            part,
            [i for i, s in enumerate(samples) if s.corpus == corpus and part in ("all", s.part)],
        )


def corpus_table(samples: Sequence[Sample], runs: Runs) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for corpus in dict.fromkeys(s.corpus for s in samples):
        for part, idx in parts(samples, corpus):
            row = table[f"{corpus}/{part}"] = {
                "pages": len(idx),
                "sites": len({samples[i].site for i in idx}),
            }
            for name, scores in runs.scores.items():
                ms = [runs.ms[name][i] for i in idx]
                row[name] = corpus_scores(corpus, [scores[i] for i in idx]) | {
                    "below_half": sum(scores[i].recall < 0.5 for i in idx),
                    "ms_median": statistics.median(ms) if idx else 0,
                    "ms_mean": statistics.mean(ms) if idx else 0,
                }  # fmt: skip
    return table


def lost_pages(
    samples: Sequence[Sample], runs: Runs, system: str, baseline: str = "plain"
) -> list[tuple[Sample, Score, Score]]:
    """Pages where `system` keeps less than half of the article while `baseline` keeps more
    than 0.8 of it: the article thrown away."""
    pairs = zip(samples, runs.scores[system], runs.scores[baseline], strict=True)
    return [(s, mine, base) for s, mine, base in pairs if mine.recall < 0.5 and base.recall > 0.8]


def metadata_table(samples: Sequence[Sample], runs: Runs) -> dict[str, Any]:
    """Fields right on the Readability corpus, per system and part: pages where Readability's
    expectation has the field, and how many of those each system gets right."""
    table: dict[str, Any] = {}
    for part, idx in parts(samples, "readability"):
        row = table[f"readability/{part}"] = {} if idx else None
        for name, theirs in READABILITY_FIELDS.items() if idx else ():
            have = [i for i in idx if samples[i].metadata.get(theirs)]
            row[name] = {"pages": len(have)} | {
                system: sum(metadata_ok(name, got[i].get(name), samples[i].metadata[theirs])
                            for i in have)
                for system, got in runs.metadata.items()
            }  # fmt: skip
    return {k: v for k, v in table.items() if v is not None}


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


def aeb_bodies(aeb: Path) -> dict[str, str]:
    """The AEB's ground truth: each page's article body, by page id."""
    truth = json.loads((aeb / "ground-truth.json").read_text(encoding="utf-8"))
    return {key: item.get("articleBody", "") for key, item in truth.items()}


def aeb_page(aeb: Path, page_id: str) -> bytes:
    return gunzip(aeb / "html" / f"{page_id.split('~')[0]}.html.gz")
