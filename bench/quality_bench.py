"""Article quality benchmark: the project's extraction beside plain trafilatura.

    .venv/bin/python bench/quality_bench.py [--pages DIR] [--corpora LIST] [--shared DIR]
                                            [--part dev|val|all] [--json FILE]

Part 1, the labelled corpus (`tests/data/pages/NAME.html` + `NAME.expected.json`, or `--pages
DIR`). Each page is run through (a) `ingest.extract.extract_page(body, url)` and (b) plain
`trafilatura.extract(body)` with its defaults, plus `trafilatura.bare_extraction(body,
with_metadata=True)` with its defaults for plain trafilatura's metadata. Texts are compared after
NFC and whitespace normalization (every run of whitespace becomes one space):

  recall     fraction of the expected paragraphs (body paragraphs, list items, subheadings,
             table cells) whose normalized text is a substring of the normalized extracted text
  leakage    fraction of the page's boilerplate strings (comments, commenter names, widget and
             ad texts, newsletter prompts, related titles, captions...) found in that text
  metadata   per field: title equal after whitespace normalization; author equal as a list of
             names (split on "," ";" "&" " and ", so only the separator convention is forgiven);
             published_at equal to the second (a date without a time counts as midnight UTC);
             language equal on its primary subtag ("en-GB" == "en"). A missing value is wrong.

Figures are pooled: recall = paragraphs found / paragraphs expected over the pages of a template
(or all pages), leakage likewise over boilerplate strings; the total line also gives the mean of
the per-page figures. The leakage ratio is plain / project (higher is better for the project).
The issue's targets are recall >= 0.99 and a ratio >= 5; they are printed, never asserted.

Part 2, the real-page corpora labelled by other projects (AEB, Mozilla Readability's test pages,
trafilatura's evaluation set, under `<repo>/../shared` or `--shared DIR`), each split by site
into a development part and a validation part, the project beside plain trafilatura: see
bench/README.md for the scoring, and `--part` / `--corpora` to run a subset.

The exit status is non-zero only on errors: missing corpus, or an extractor raising anything but
ExtractError (those pages are listed).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import json
import re
import statistics
import sys
import time
import traceback
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
"""The repository (this file lives in <repo>/bench)."""

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import lxml.html  # noqa: E402
import tld  # noqa: E402
import trafilatura  # noqa: E402

from ingest.errors import ExtractError  # noqa: E402
from ingest.extract import extract_page  # noqa: E402

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


def run_project(page: Page) -> Outcome:
    started = time.perf_counter()
    error = None
    try:
        doc = extract_page(page.body, page.expected["url"])
        text = doc.text
        meta = doc.metadata
        metadata = {
            "title": meta.title,
            "author": meta.author,
            "published_at": meta.published_at.isoformat() if meta.published_at else None,
            "language": meta.language,
        }
    except ExtractError as e:
        text, metadata = "", {"extract_error": str(e)}
    except Exception:
        text, metadata, error = "", {}, traceback.format_exc(limit=3)
    ms = (time.perf_counter() - started) * 1000
    return score(page, text, metadata, ms, error)


def run_plain(page: Page) -> Outcome:
    started = time.perf_counter()
    error = None
    try:
        text = trafilatura.extract(page.body) or ""
        ms = (time.perf_counter() - started) * 1000
        doc = trafilatura.bare_extraction(page.body, with_metadata=True)
        metadata = {
            "title": getattr(doc, "title", None),
            "author": getattr(doc, "author", None),
            "published_at": getattr(doc, "date", None),
            "language": getattr(doc, "language", None),
        }
    except Exception:
        text, metadata, error = "", {}, traceback.format_exc(limit=3)
        ms = (time.perf_counter() - started) * 1000
    return score(page, text, metadata, ms, error)


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


def _json_ratio(value: float | None) -> float | str | None:
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


def project_result(body: bytes, url: str) -> Result:
    try:
        doc = extract_page(body, url)
    except ExtractError:
        return Result("", {})
    meta = doc.metadata
    return Result(
        doc.text,
        {
            "title": meta.title,
            "author": meta.author,
            "published_at": meta.published_at,
            "language": meta.language,
        },
    )


def plain_result(body: bytes, url: str) -> Result:
    """Plain trafilatura, comments excluded: the baseline every figure is compared with."""
    doc = trafilatura.bare_extraction(body, url=url, include_comments=False, with_metadata=True)
    if doc is None or isinstance(doc, dict):
        return Result("", {})
    return Result(
        doc.text or "",
        {
            "title": doc.title,
            "author": doc.author,
            "published_at": doc.date,
            "language": doc.language,
        },
    )


SYSTEMS: dict[str, Callable[[bytes, str], Result]] = {
    "project": project_result,
    "plain": plain_result,
}


@dataclass
class Runs:
    """Per system, per sample (in the samples' order)."""

    scores: dict[str, list[Score]]
    ms: dict[str, list[float]]
    metadata: dict[str, list[dict[str, Any]]]


def run_systems(
    samples: Sequence[Sample],
    errors: list[str],
    systems: dict[str, Callable[[bytes, str], Result]] = SYSTEMS,
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


def print_metadata(table: dict[str, Any]) -> None:
    print()
    print("Metadata on the Readability corpus: pages right / pages where Readability has the field")
    systems = [k for k in next(iter(next(iter(table.values())).values())) if k != "pages"]
    head = f"{'part':<20}" + "".join(f"  {f:<{10 * len(systems)}}" for f in READABILITY_FIELDS)
    print(head)
    print(
        f"{'':<20}"
        + "".join("  " + "".join(f"{s:<10}" for s in systems) for _ in READABILITY_FIELDS)
    )
    for label, row in table.items():
        cells = []
        for f in READABILITY_FIELDS:
            cells.append("".join(f"{row[f][s]:>3}/{row[f]['pages']:<6}" for s in systems))
        print(f"{label:<20}" + "".join(f"  {c}" for c in cells))
    print("title: equal after whitespace; author: the same names in order (a leading 'By' of")
    print("Readability's byline dropped); published_at: within a minute (a time without an offset")
    print("in any offset of whole quarter hours), or the same day; language: primary subtag.")


def print_table(table: dict[str, Any], systems: Sequence[str]) -> None:
    print()
    print("Real-page corpora, split by site (dev: decide on it; val: report it)")
    head = f"{'corpus/part':<22} {'pages':>5} {'sites':>5}"
    for name in systems:
        head += f"  {name + ' F1 (P / R)':<24} {'<0.5':>4} {'ms':>5}"
    print(head)
    print("-" * len(head))
    for label, row in table.items():
        line = f"{label:<22} {row['pages']:>5} {row['sites']:>5}"
        for name in systems:
            r = row[name]
            cell = f"{r['f1']:.3f} ({r['precision']:.3f} / {r['recall']:.3f})"
            line += f"  {cell:<24} {r['below_half']:>4} {r['ms_mean']:5.1f}"
        print(line)
    print("F1 of the mean page precision and recall (aeb, readability: 4-gram shingles), or of")
    print("the pooled must-have/must-not strings (trafilatura-eval); <0.5: pages with recall")
    print("below one half; ms: mean wall milliseconds per page on one core, after a warm-up.")


def print_lost(samples: Sequence[Sample], runs: Runs, systems: Sequence[str]) -> None:
    for name in systems:
        if name == "plain":
            continue
        lost = lost_pages(samples, runs, name)
        print()
        print(f"{name}: {len(lost)} page(s) below half recall where plain keeps more than 0.8")
        for s, mine, base in lost:
            print(
                f"  {s.corpus:<17} {s.part} {s.key[:48]:<48} recall {mine.recall:.2f} "
                f"({mine.chars} chars) vs plain {base.recall:.2f} ({base.chars} chars)"
            )


# --- report -------------------------------------------------------------------------------------


def _frac(tally: Tally, f: str) -> str:
    return f"{tally.correct[f]}/{tally.pages}"


def print_corpus(
    where: Path,
    pages: Sequence[Page],
    results: dict[str, dict[str, Outcome]],
    by_template: dict[str, dict[str, Tally]],
    totals: dict[str, Tally],
) -> None:
    n_templates = len(by_template)
    print(f"Article quality: {len(pages)} labelled pages, {n_templates} template styles ({where})")
    print("proj = ingest.extract.extract_page; plain = trafilatura.extract() defaults (metadata:")
    print("bare_extraction(with_metadata=True) defaults); metadata cells count correct pages")
    print()
    groups = ("recall", "leakage", *FIELDS, "ms/page")
    top = f"{'':<21} {'':>5}" + "".join(f"  {g:^13}" for g in groups)
    sub = f"{'template':<21} {'pages':>5}" + "".join(f"  {'proj':>6}{'plain':>7}" for _ in groups)
    print(top)
    print(sub)
    print("-" * len(sub))

    def line(label: str, t: dict[str, Tally]) -> str:
        a, b = t["project"], t["plain"]
        cells = [
            f"{a.recall:6.3f}{b.recall:7.3f}",
            f"{a.leakage:6.3f}{b.leakage:7.3f}",
            *(f"{_frac(a, f):>6}{_frac(b, f):>7}" for f in FIELDS),
            f"{statistics.mean(a.ms):6.1f}{statistics.mean(b.ms):7.1f}",
        ]
        return f"{label:<21} {a.pages:>5}" + "".join(f"  {c}" for c in cells)

    for template, t in sorted(by_template.items()):
        print(line(template, t))
    print("-" * len(sub))
    print(line("total", totals))
    a, b = totals["project"], totals["plain"]
    accuracy = "".join(
        f"  {a.correct[f] / a.pages:6.2f}{b.correct[f] / b.pages:7.2f}" for f in FIELDS
    )
    print(
        f"{'mean of pages':<21} {'':>5}  {statistics.mean(a.recalls):6.3f}"
        f"{statistics.mean(b.recalls):7.3f}  {statistics.mean(a.leakages):6.3f}"
        f"{statistics.mean(b.leakages):7.3f}{accuracy}"
    )
    print()
    print(
        f"paragraphs found: project {a.found}/{a.expected}, plain {b.found}/{b.expected}; "
        f"boilerplate leaked: project {a.leaked}/{a.boilerplate}, plain {b.leaked}/{b.boilerplate}"
    )
    print(
        f"leakage ratio plain/project: {fmt_ratio(ratio(b.leakage, a.leakage))} "
        f"(target >= 5x); project recall {a.recall:.3f} (target >= 0.99)"
    )
    print()
    print("per page: recall, leaked/boilerplate strings, metadata fields that are wrong")
    width = max(len(p.name) for p in pages)
    for page in pages:
        cells = []
        for ex in EXTRACTORS:
            o = results[page.name][ex]
            wrong = ",".join(f for f in FIELDS if not o.correct[f]) or "-"
            cells.append(f"{o.recall:5.3f} {o.leaked:>2}/{o.boilerplate:<2} {wrong:<34}")
        print(f"  {page.name:<{width}}  proj {cells[0]} plain {cells[1].rstrip()}")


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", default=str(ROOT / "tests" / "data" / "pages"))
    parser.add_argument(
        "--corpora",
        default=",".join(CORPORA),
        help=f"comma-separated real-page corpora, of {', '.join(CORPORA)}; '' for none",
    )
    parser.add_argument("--shared", default=str(SHARED), help="where aeb/ and corpora/ are")
    parser.add_argument("--part", choices=("dev", "val", "all"), default="all")
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args(list(argv) if argv is not None else None)

    where = Path(args.pages)
    pages = load_corpus(where)
    names = [n for n in args.corpora.split(",") if n]
    unknown = set(names) - set(CORPORA)
    if unknown:
        parser.error(f"unknown corpora: {', '.join(sorted(unknown))}")
    samples = [s for s in load_samples(names, Path(args.shared)) if args.part in ("all", s.part)]
    errors: list[str] = []

    # Warm-up, not timed: imports, the language model, and the lazy loads that some pages
    # trigger once per process (htmldate falling back to dateparser loads its locale data,
    # about 3 s for the Japanese page). The timed pass then measures the steady state.
    for page in pages:
        run_project(page)
        run_plain(page)

    results: dict[str, dict[str, Outcome]] = {}
    by_template: dict[str, dict[str, Tally]] = {}
    totals = {ex: Tally() for ex in EXTRACTORS}
    for page in pages:
        outcome = {"project": run_project(page), "plain": run_plain(page)}
        results[page.name] = outcome
        slot = by_template.setdefault(page.template, {ex: Tally() for ex in EXTRACTORS})
        for ex, o in outcome.items():
            slot[ex].add(o)
            totals[ex].add(o)
            if o.error:
                errors.append(f"{page.name} [{ex}]: {o.error}")
    print_corpus(where, pages, results, by_template, totals)

    table: dict[str, Any] = {}
    lost: dict[str, list[str]] = {}
    metadata: dict[str, Any] = {}
    if samples:
        runs = run_systems(samples, errors)
        table = corpus_table(samples, runs)
        print_table(table, list(SYSTEMS))
        print_lost(samples, runs, list(SYSTEMS))
        lost = {
            name: [f"{s.corpus}/{s.key}" for s, _, _ in lost_pages(samples, runs, name)]
            for name in SYSTEMS
            if name != "plain"
        }
        metadata = metadata_table(samples, runs)
        if metadata:
            print_metadata(metadata)

    if args.json:
        report = {
            "trafilatura": trafilatura.__version__,
            "corpus": {
                "dir": str(where),
                "pages": {
                    name: {"template": next(p.template for p in pages if p.name == name)}
                    | {ex: asdict(o) for ex, o in outcome.items()}
                    for name, outcome in results.items()
                },
                "templates": {
                    t: {ex: tally.summary() for ex, tally in slot.items()}
                    for t, slot in by_template.items()
                },
                "totals": {ex: tally.summary() for ex, tally in totals.items()},
                "leakage_ratio": _json_ratio(
                    ratio(totals["plain"].leakage, totals["project"].leakage)
                ),
            },
            "corpora": table,
            "lost": lost,
            "metadata": metadata,
            "errors": errors,
        }
        Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        print(f"\nwrote {args.json}")

    if errors:
        print(f"\n{len(errors)} error(s):", file=sys.stderr)
        for e in errors:
            print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
