"""Article quality benchmark: the project's extraction beside plain trafilatura.

What it measures, how it scores and how to run it: bench/README.md (`quality_bench.py`)."""

import argparse
import json
import sys
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import trafilatura
from lib import ROOT
from lib import corpora as c

from ingest.errors import ExtractError
from ingest.extract import extract_page

SYSTEMS = ("project", "plain")


def metadata_of(doc: Any, date: Any) -> dict[str, Any]:
    return {
        "title": doc.title,
        "author": doc.author,
        "published_at": date,
        "language": doc.language,
    }


def run_project(page: c.Page) -> c.Outcome:
    started, error = time.perf_counter(), None
    try:
        doc = extract_page(page.body, page.expected["url"])
        when = doc.metadata.published_at
        text, metadata = doc.text, metadata_of(doc.metadata, when.isoformat() if when else None)
    except ExtractError as e:
        text, metadata = "", {"extract_error": str(e)}
    except Exception:
        text, metadata, error = "", {}, traceback.format_exc(limit=3)
    return c.score(page, text, metadata, (time.perf_counter() - started) * 1000, error)


def run_plain(page: c.Page) -> c.Outcome:
    started, error = time.perf_counter(), None
    try:
        text = trafilatura.extract(page.body) or ""
        ms = (time.perf_counter() - started) * 1000
        doc = trafilatura.bare_extraction(page.body, with_metadata=True)
        fields = ("title", "author", "date", "language")
        metadata = dict(zip(c.FIELDS, (getattr(doc, f, None) for f in fields), strict=True))
    except Exception:
        text, metadata, error = "", {}, traceback.format_exc(limit=3)
        ms = (time.perf_counter() - started) * 1000
    return c.score(page, text, metadata, ms, error)


def project_result(body: bytes, url: str) -> c.Result:
    try:
        doc = extract_page(body, url)
    except ExtractError:
        return c.Result("", {})
    return c.Result(doc.text, metadata_of(doc.metadata, doc.metadata.published_at))


def plain_result(body: bytes, url: str) -> c.Result:
    """Plain trafilatura, comments excluded: the baseline every figure is compared with."""
    doc = trafilatura.bare_extraction(body, url=url, include_comments=False, with_metadata=True)
    if doc is None or isinstance(doc, dict):
        return c.Result("", {})
    return c.Result(doc.text or "", metadata_of(doc, doc.date))


RESULTS: dict[str, c.System] = {"project": project_result, "plain": plain_result}


def print_corpus(
    where: Path, pages: Sequence[c.Page], results: dict[str, dict[str, c.Outcome]],
    by_template: dict[str, dict[str, c.Tally]], totals: dict[str, c.Tally],
) -> None:  # fmt: skip
    groups = ("recall", "leakage", *c.FIELDS, "ms/page")
    sub = f"{'template':<21} {'pages':>5}" + "".join(f"  {'proj':>6}{'plain':>7}" for _ in groups)
    print(
        f"Article quality: {len(pages)} labelled pages, {len(by_template)} template styles"
        f" ({where})\n"
        "proj = ingest.extract.extract_page; plain = trafilatura.extract() defaults (metadata:\n"
        "bare_extraction(with_metadata=True) defaults); metadata cells count correct pages\n\n"
        + f"{'':<21} {'':>5}"
        + "".join(f"  {g:^13}" for g in groups)
        + f"\n{sub}\n"
        + "-" * len(sub)
    )

    def line(label: str, t: dict[str, c.Tally]) -> str:
        a, b = t["project"], t["plain"]
        cells = [f"{a.recall:6.3f}{b.recall:7.3f}", f"{a.leakage:6.3f}{b.leakage:7.3f}"]
        cells += [
            f"{f'{a.correct[f]}/{a.pages}':>6}{f'{b.correct[f]}/{b.pages}':>7}" for f in c.FIELDS
        ]
        cells.append(f"{a.mean('ms'):6.1f}{b.mean('ms'):7.1f}")
        return f"{label:<21} {a.pages:>5}" + "".join(f"  {x}" for x in cells)

    for template, t in sorted(by_template.items()):
        print(line(template, t))
    print("-" * len(sub) + "\n" + line("total", totals))
    a, b = totals["project"], totals["plain"]
    accuracy = "".join(
        f"  {a.correct[f] / a.pages:6.2f}{b.correct[f] / b.pages:7.2f}" for f in c.FIELDS
    )
    print(
        f"{'mean of pages':<21} {'':>5}  {a.mean('recall'):6.3f}{b.mean('recall'):7.3f}"
        f"  {a.mean('leakage'):6.3f}{b.mean('leakage'):7.3f}{accuracy}\n"
    )
    print(
        f"paragraphs found: project {a.total('found')}/{a.total('expected')}, plain"
        f" {b.total('found')}/{b.total('expected')}; boilerplate leaked: project"
        f" {a.total('leaked')}/{a.total('boilerplate')}, plain"
        f" {b.total('leaked')}/{b.total('boilerplate')}"
    )
    leak = c.ratio(b.leakage, a.leakage)
    leak_text = "n/a (neither leaks)" if leak is None else f"{leak:.2f}x"
    leak_text = "inf (the project leaks nothing)" if leak == float("inf") else leak_text
    print(
        f"leakage ratio plain/project: {leak_text} (target >= 5x);"
        f" project recall {a.recall:.3f} (target >= 0.99)\n"
    )
    print("per page: recall, leaked/boilerplate strings, metadata fields that are wrong")
    width = max(len(p.name) for p in pages)
    for page in pages:
        cells = []
        for o in results[page.name].values():
            wrong = ",".join(f for f in c.FIELDS if not o.correct[f]) or "-"
            cells.append(f"{o.recall:5.3f} {o.leaked:>2}/{o.boilerplate:<2} {wrong:<34}")
        print(f"  {page.name:<{width}}  proj {cells[0]} plain {cells[1].rstrip()}")


def print_corpora(samples: Sequence[c.Sample], runs: c.Runs, table: dict[str, Any],
                  metadata: dict[str, Any]) -> None:  # fmt: skip
    head = f"{'corpus/part':<22} {'pages':>5} {'sites':>5}"
    head += "".join(f"  {name + ' F1 (P / R)':<24} {'<0.5':>4} {'ms':>5}" for name in SYSTEMS)
    print(
        f"\nReal-page corpora, split by site (dev: decide on it; val: report it)\n{head}\n"
        + "-" * len(head)
    )
    for label, row in table.items():
        line = f"{label:<22} {row['pages']:>5} {row['sites']:>5}"
        for r in (row[name] for name in SYSTEMS):
            cell = f"{r['f1']:.3f} ({r['precision']:.3f} / {r['recall']:.3f})"
            line += f"  {cell:<24} {r['below_half']:>4} {r['ms_mean']:5.1f}"
        print(line)
    print(
        "F1 of the mean page precision and recall (aeb, readability: 4-gram shingles), or of\n"
        "the pooled must-have/must-not strings (trafilatura-eval); <0.5: pages with recall\n"
        "below one half; ms: mean wall milliseconds per page on one core, after a warm-up."
    )
    lost = c.lost_pages(samples, runs, "project")
    print(f"\nproject: {len(lost)} page(s) below half recall where plain keeps more than 0.8")
    for s, mine, base in lost:
        print(
            f"  {s.corpus:<17} {s.part} {s.key[:48]:<48} recall {mine.recall:.2f} ({mine.chars}"
            f" chars) vs plain {base.recall:.2f} ({base.chars} chars)"
        )
    if not metadata:
        return
    fields, width = c.READABILITY_FIELDS, 10 * len(SYSTEMS)
    print(
        "\nMetadata on the Readability corpus: pages right / pages where Readability has the"
        " field\n"
        + f"{'part':<20}" + "".join(f"  {f:<{width}}" for f in fields) + f"\n{'':<20}"
        + "".join("  " + "".join(f"{s:<10}" for s in SYSTEMS) for _ in fields)
    )  # fmt: skip
    for label, row in metadata.items():
        cells = ("".join(f"{row[f][s]:>3}/{row[f]['pages']:<6}" for s in SYSTEMS) for f in fields)
        print(f"{label:<20}" + "".join(f"  {x}" for x in cells))
    print(
        "title: equal after whitespace; author: the same names in order (a leading 'By' of\n"
        "Readability's byline dropped); published_at: within a minute (a time without an offset\n"
        "in any offset of whole quarter hours), or the same day; language: primary subtag."
    )


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", default=str(ROOT / "tests" / "data" / "pages"))
    corpora = ", ".join(c.CORPORA)
    parser.add_argument("--corpora", default=",".join(c.CORPORA), help=f"of {corpora}; '' for none")
    parser.add_argument("--shared", default=str(c.SHARED), help="where aeb/ and corpora/ are")
    parser.add_argument("--part", choices=("dev", "val", "all"), default="all")
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args(list(argv) if argv is not None else None)
    where = Path(args.pages)
    pages = c.load_corpus(where)
    names = [n for n in args.corpora.split(",") if n]
    if set(names) - set(c.CORPORA):
        parser.error(f"unknown corpora: {', '.join(sorted(set(names) - set(c.CORPORA)))}")
    samples = [s for s in c.load_samples(names, Path(args.shared)) if args.part in ("all", s.part)]
    errors: list[str] = []
    # Warm-up, not timed: imports, the language model, and the lazy loads that some pages
    # trigger once per process (htmldate falling back to dateparser loads its locale data,
    # about 3 s for the Japanese page). The timed pass then measures the steady state.
    for page in pages:
        run_project(page)
        run_plain(page)
    results: dict[str, dict[str, c.Outcome]] = {}
    by_template: dict[str, dict[str, c.Tally]] = {}
    totals = {ex: c.Tally() for ex in SYSTEMS}
    for page in pages:
        results[page.name] = {"project": run_project(page), "plain": run_plain(page)}
        slot = by_template.setdefault(page.template, {ex: c.Tally() for ex in SYSTEMS})
        for ex, o in results[page.name].items():
            slot[ex].add(o)
            totals[ex].add(o)
            errors += [f"{page.name} [{ex}]: {o.error}"] if o.error else []
    print_corpus(where, pages, results, by_template, totals)
    table: dict[str, Any] = {}
    lost: dict[str, list[str]] = {}
    metadata: dict[str, Any] = {}
    if samples:
        runs = c.run_systems(samples, errors, RESULTS)
        table, metadata = c.corpus_table(samples, runs), c.metadata_table(samples, runs)
        print_corpora(samples, runs, table, metadata)
        lost = {
            "project": [f"{s.corpus}/{s.key}" for s, _, _ in c.lost_pages(samples, runs, "project")]
        }
    if args.json:
        leak = c.ratio(totals["plain"].leakage, totals["project"].leakage)
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
                    t: {ex: x.summary() for ex, x in s.items()} for t, s in by_template.items()
                },
                "totals": {ex: x.summary() for ex, x in totals.items()},
                "leakage_ratio": "inf" if leak == float("inf") else leak,
            },
            "corpora": table, "lost": lost, "metadata": metadata, "errors": errors,
        }  # fmt: skip
        Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        print(f"\nwrote {args.json}")
    if errors:
        print(f"\n{len(errors)} error(s):", *errors, sep="\n", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
