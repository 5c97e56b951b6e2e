"""Article quality benchmark: the project's extraction beside plain trafilatura.

What it measures, how it scores and how to run it: bench/README.md (`quality_bench.py`)."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import trafilatura
from lib import ROOT
from lib.corpora import (
    CORPORA,
    EXTRACTORS,
    FIELDS,
    READABILITY_FIELDS,
    SHARED,
    Outcome,
    Page,
    Result,
    Runs,
    Sample,
    Tally,
    corpus_table,
    fmt_ratio,
    json_ratio,
    load_corpus,
    load_samples,
    lost_pages,
    metadata_table,
    ratio,
    run_systems,
    score,
)

from ingest.errors import ExtractError
from ingest.extract import extract_page


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
        runs = run_systems(samples, errors, SYSTEMS)
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
                "leakage_ratio": json_ratio(
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
