"""Article quality benchmark: the project's extraction beside plain trafilatura.

    .venv/bin/python bench/quality_bench.py [--pages DIR] [--aeb DIR | --no-aeb] [--json FILE]

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

Part 2, the article-extraction benchmark (AEB: 181 real pages with human-written bodies, found at
`<repo>/../shared/aeb` or `--aeb DIR`), scored as its README describes: `\\w+` tokens, 4-gram
shingles counted as multisets, per-page true/false positives and false negatives normalized by
their sum, precision averaged over the pages with something predicted, recall over the pages with
something expected, F1 of the two averages. Rows: the project's `extract_page` text (an
ExtractError counts as an empty prediction), `trafilatura.extract` defaults, and
`trafilatura.extract(include_comments=False)`. Milliseconds per page are single-core wall times
(the project's figure includes its metadata and language detection), measured after an untimed
warm-up pass over the same pages, so one-off lazy loads (the language model; dateparser's
locale data, about 3 s the first time htmldate falls back to it) are excluded.

The exit status is non-zero only on errors: missing corpus, or an extractor raising anything but
ExtractError (those pages are listed).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
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

ROOT = Path(__file__).resolve().parent.parent
"""The repository (this file lives in <repo>/bench)."""

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

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


# --- AEB ----------------------------------------------------------------------------------------


def find_aeb(override: str | None) -> Path:
    where = Path(override) if override else ROOT.parent / "shared" / "aeb"
    if not (where / "ground-truth.json").is_file() or not any((where / "html").glob("*.html.gz")):
        hint = "" if override else " (pass --aeb DIR, or --no-aeb to skip it)"
        raise SystemExit(f"quality_bench: AEB corpus not found in {where}{hint}")
    return where.resolve()


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

    p = statistics.mean(precision(*m) for m in matches if m[0] + m[1] > 0)
    r = statistics.mean(recall(*m) for m in matches if m[0] + m[2] > 0)
    return {"f1": 2 * p * r / (p + r) if p + r else 0.0, "precision": p, "recall": r}


def _project_text(body: bytes, url: str) -> str:
    try:
        return extract_page(body, url).text
    except ExtractError:
        return ""


AEB_ROWS: list[tuple[str, Callable[[bytes, str], str]]] = [
    ("project extract_page", _project_text),
    ("trafilatura.extract defaults", lambda body, url: trafilatura.extract(body) or ""),
    (
        "trafilatura include_comments=False",
        lambda body, url: trafilatura.extract(body, include_comments=False) or "",
    ),
]


def run_aeb(where: Path, errors: list[str]) -> dict[str, Any]:
    truth = json.loads((where / "ground-truth.json").read_text(encoding="utf-8"))
    pages = [
        (key, gzip.decompress((where / "html" / f"{key}.html.gz").read_bytes()), item)
        for key, item in sorted(truth.items())
    ]
    # Untimed warm-up of the project's path (htmldate/dateparser and the language model load
    # lazily, once per process); trafilatura's own caches warm up along with it.
    for key, body, item in pages:
        with contextlib.suppress(Exception):  # reported by the timed pass below
            _project_text(body, item.get("url") or f"https://aeb.invalid/{key}")
    rows: dict[str, Any] = {}
    for name, extract in AEB_ROWS:
        matches, ms = [], []
        for key, body, item in pages:
            url = item.get("url") or f"https://aeb.invalid/{key}"
            started = time.perf_counter()
            try:
                text = extract(body, url)
            except Exception:
                errors.append(f"AEB {key} [{name}]: {traceback.format_exc(limit=3)}")
                text = ""
            ms.append((time.perf_counter() - started) * 1000)
            matches.append(shingle_match(item.get("articleBody", ""), text))
        rows[name] = {**aeb_scores(matches), "ms_per_page": statistics.mean(ms)}
    return {"pages": len(pages), "dir": str(where), "rows": rows}


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


def print_aeb(aeb: dict[str, Any]) -> None:
    print()
    print(f"AEB: {aeb['pages']} real pages ({aeb['dir']}), 4-gram shingle F1 as its README says")
    print(f"{'extractor':<36} {'F1':>6} {'prec.':>6} {'recall':>6} {'ms/page':>8}")
    for name, row in aeb["rows"].items():
        print(
            f"{name:<36} {row['f1']:6.3f} {row['precision']:6.3f} {row['recall']:6.3f} "
            f"{row['ms_per_page']:8.1f}"
        )


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", default=str(ROOT / "tests" / "data" / "pages"))
    parser.add_argument("--aeb", help="AEB directory (default <repo>/../shared/aeb)")
    parser.add_argument("--no-aeb", action="store_true", help="skip the AEB part")
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args(list(argv) if argv is not None else None)

    where = Path(args.pages)
    pages = load_corpus(where)
    aeb_dir = None if args.no_aeb else find_aeb(args.aeb)
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

    aeb = None
    if aeb_dir is not None:
        aeb = run_aeb(aeb_dir, errors)
        print_aeb(aeb)

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
            "aeb": aeb,
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
