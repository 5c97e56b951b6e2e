"""Near-duplicate detection on labeled pairs: precision, recall, similarities, fingerprint time.

What it measures and how to run it: bench/README.md (`neardup_bench.py`)."""

import argparse
import dataclasses
import json
import platform
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lib import ROOT

from ingest import neardup

LABELS = ("duplicate", "distinct")
SWEEP = tuple(round(0.30 + 0.05 * i, 2) for i in range(13))
NEAR, TARGET_PRECISION, TARGET_RECALL = 0.1, 0.98, 0.9
"""Pairs within NEAR of the threshold are listed."""
CONSTANTS = ("NUM_PERM", "BANDS", "ROWS", "SHINGLE_WORDS", "MIN_WORDS", "THRESHOLD")


@dataclass(frozen=True)
class Result:
    id: str
    category: str
    label: str
    clear: bool
    note: str
    words: tuple[int, int]
    similarity: float = 0.0
    """Estimated from the MinHash signatures; 0.0 when a text is too short to fingerprint."""
    jaccard: float = 0.0
    """Exact Jaccard similarity of the two word-shingle sets."""
    candidate: bool = False
    """At least one LSH band key in common."""
    near_duplicate: bool = False
    """`is_near_duplicate` alone, candidate or not."""

    @property
    def decision(self) -> bool:
        return self.candidate and self.near_duplicate

    @property
    def correct(self) -> bool:
        return self.decision == (self.label == "duplicate")


def load_pairs(path: Path) -> list[tuple[str, str, Result]]:
    """The labeled pairs: their two texts (files relative to the JSON file) and a Result with
    the label only."""
    pairs = []
    for raw in json.loads(path.read_text(encoding="utf-8")):
        a, b = ((path.parent / raw[side]).read_text(encoding="utf-8") for side in "ab")
        if raw["label"] not in LABELS:
            raise ValueError(f"{raw['id']}: label {raw['label']!r} not in {LABELS}")
        label = (raw["id"], raw["category"], raw["label"], raw.get("clear", True))
        pairs.append((a, b, Result(*label, raw.get("note", ""), (len(a.split()), len(b.split())))))
    return pairs


def shingles(text: str) -> set[str]:
    words, k = re.findall(r"\w+", text.casefold()), neardup.SHINGLE_WORDS
    return {" ".join(words[i : i + k]) for i in range(len(words) - k + 1)}


def judged(r: Result, fa: neardup.Fingerprint | None, fb: neardup.Fingerprint | None) -> Result:
    """`r` with similarity, candidacy and decision from these fingerprints."""
    if fa is None or fb is None:
        return dataclasses.replace(r, similarity=0.0, candidate=False, near_duplicate=False)
    return dataclasses.replace(
        r,
        similarity=neardup.similarity(fa.minhash, fb.minhash),
        candidate=any(x == y for x, y in zip(fa.bands, fb.bands, strict=True)),
        near_duplicate=neardup.is_near_duplicate(fa.minhash, fb.minhash),
    )


def evaluate(a: str, b: str, r: Result) -> Result:
    sa, sb = shingles(a), shingles(b)
    r = dataclasses.replace(r, jaccard=len(sa & sb) / len(sa | sb) if sa | sb else 0.0)
    return judged(r, neardup.fingerprint(a), neardup.fingerprint(b))


@dataclass(frozen=True)
class Scores:
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "precision": self.precision, "recall": self.recall}


def score(results: Iterable[Result], predict: Callable[[Result], bool]) -> Scores:
    seen = Counter((predict(r), r.label == "duplicate") for r in results)
    return Scores(seen[True, True], seen[True, False], seen[False, True], seen[False, False])


def decided_at(t: float) -> Callable[[Result], bool]:
    """The decision at threshold `t`: candidate AND estimated similarity >= t."""
    return lambda r: r.candidate and r.similarity >= t


def similar_at(t: float) -> Callable[[Result], bool]:
    return lambda r: r.similarity >= t


def spread(values: Sequence[float]) -> dict[str, float] | None:
    median = statistics.median(values) if values else None
    return {"min": min(values), "median": median, "max": max(values)} if values else None


def fmt_ratio(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def fmt_spread(values: Sequence[float]) -> str:
    s = spread(values)
    return "-" if s is None else f"{s['min']:.2f} / {s['median']:.2f} / {s['max']:.2f}"


def candidate_probability(j: float) -> float:
    """Probability that two texts of shingle Jaccard similarity `j` share at least one band."""
    return float(1 - (1 - j**neardup.ROWS) ** neardup.BANDS)


def time_fingerprints(texts: Sequence[str], repeat: int) -> dict[str, Any]:
    """Median over texts of each text's median fingerprinting time, in milliseconds."""
    neardup.fingerprint(texts[0])  # warm-up: first-call allocations, caches
    per_text = []
    for text in texts:
        runs = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            neardup.fingerprint(text)
            runs.append((time.perf_counter() - t0) * 1000)
        per_text.append(statistics.median(runs))
    words = [len(t.split()) for t in texts]
    return {
        "texts": len(texts), "repeat": repeat, "ms_median": statistics.median(per_text),
        "ms_min": min(per_text), "ms_max": max(per_text), "words_median": statistics.median(words),
        "words_min": min(words), "words_max": max(words),
    }  # fmt: skip


def pair_line(r: Result) -> str:
    verdict, mark = "dup " if r.decision else "dist", "  " if r.correct else "XX"
    flags = ("cand" if r.candidate else "    ") + ("" if r.clear else " unclear")
    return (
        f"  {mark} {r.id:<30} {r.category:<19} {r.label:<9} -> {verdict}  est {r.similarity:.2f}"
        f"  exact {r.jaccard:.2f}  words {r.words[0]}/{r.words[1]}  {flags}"
    )


def report(results: list[Result], args: argparse.Namespace, timing: dict[str, Any]) -> list[str]:
    threshold, n_dup = neardup.THRESHOLD, sum(r.label == "duplicate" for r in results)
    constants = " ".join(f"{name}={getattr(neardup, name)}" for name in CONSTANTS)
    lines = [
        f"neardup bench: {len(results)} labeled pairs ({n_dup} duplicate, {len(results) - n_dup}"
        f" distinct) from {args.data}",
        f"constants: {constants}",
        f"decision = LSH candidate (>= 1 equal band) AND estimated similarity >= {threshold}; a"
        f" pair at Jaccard {threshold} is a candidate with probability"
        f" {candidate_probability(threshold):.2f}",
        "",
        f"{'category':<19} {'label':<9} {'pairs':>5} {'decided dup':>11} {'candidates':>10}"
        "   similarity min / median / max",
    ]
    seen: dict[tuple[str, str], list[Result]] = {}
    for r in results:
        seen.setdefault((r.category, r.label), []).append(r)
    for (category, label), rs in seen.items():
        lines.append(
            f"{category:<19} {label:<9} {len(rs):>5} {sum(r.decision for r in rs):>11}"
            f" {sum(r.candidate for r in rs):>10}   {fmt_spread([r.similarity for r in rs])}"
        )
    d, c = score(results, lambda r: r.decision), score(results, lambda r: r.candidate)
    lines += [
        "",
        "confusion matrix (decision)",
        f"  {'':<18} {'decided dup':>11} {'decided distinct':>16}",
        f"  {'label duplicate':<18} {d.tp:>11} {d.fn:>16}",
        f"  {'label distinct':<18} {d.fp:>11} {d.tn:>16}",
        f"decision:       precision {fmt_ratio(d.precision)}  recall {fmt_ratio(d.recall)}"
        f"   (target: precision >= {TARGET_PRECISION}, recall >= {TARGET_RECALL})",
        f"LSH candidates: precision {fmt_ratio(c.precision)}  recall {fmt_ratio(c.recall)}"
        f"   ({c.tp + c.fp} of {len(results)} pairs are candidates)",
        "",
        f"estimated similarity by label (threshold {threshold}), min / median / max",
    ]
    for label in LABELS:
        rs = [r for r in results if r.label == label]
        estimated, exact = (
            fmt_spread([r.similarity for r in rs]),
            fmt_spread([r.jaccard for r in rs]),
        )
        lines.append(f"  {label:<9} est   {estimated}   exact {exact}")
    lines.append("")
    wrong = [r for r in results if not r.correct]
    near = [r for r in results if r.correct and abs(r.similarity - threshold) <= NEAR]
    if args.pairs:
        lines += ["all pairs (XX = decision differs from the label)", *map(pair_line, results)]
    else:
        lines.append(f"misclassified: {len(wrong)}")
        lines += [x for r in wrong for x in (pair_line(r), f"       {r.note}")]
        lines += [f"correct but within {NEAR} of the threshold: {len(near)}", *map(pair_line, near)]
    lines.append("")
    if args.sweep:
        lines += [
            "threshold sweep: decision (candidate AND similarity >= t) | similarity >= t alone",
            f"  {'t':>5} {'P(cand)':>7}   {'precision':>9} {'recall':>7} {'fp':>3} {'fn':>3}"
            f"   | {'precision':>9} {'recall':>7} {'fp':>3} {'fn':>3}",
        ]
        for t in SWEEP:
            cells = [
                f"{fmt_ratio(s.precision):>9} {fmt_ratio(s.recall):>7} {s.fp:>3} {s.fn:>3}"
                for s in (score(results, decided_at(t)), score(results, similar_at(t)))
            ]
            mark = "  <- THRESHOLD" if abs(t - threshold) < 1e-9 else ""
            lines.append(
                f"  {t:>5.2f} {candidate_probability(t):>7.2f}   {cells[0]}   | {cells[1]}{mark}"
            )
        lines.append("")
    lines.append(
        f"fingerprint time per text: median {timing['ms_median']:.2f} ms (min"
        f" {timing['ms_min']:.2f}, max {timing['ms_max']:.2f}) over {timing['texts']} distinct"
        f" texts of {timing['words_min']}-{timing['words_max']} words (median"
        f" {timing['words_median']:.0f}), median of {timing['repeat']} runs each; Python"
        f" {platform.python_version()} on {platform.machine()}"
    )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="neardup_bench.py", description=__doc__)
    p.add_argument("--data", type=Path, default=ROOT / "tests" / "data" / "neardup" / "pairs.json")
    p.add_argument("--pairs", action="store_true", help="list every pair")
    p.add_argument("--sweep", action="store_true", help="precision/recall for t = 0.30..0.90")
    p.add_argument("--repeat", type=int, default=5, metavar="K", help="timing runs per text")
    p.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    try:
        pairs = load_pairs(args.data)
    except (OSError, ValueError, KeyError) as e:
        print(f"neardup_bench: cannot read the labeled pairs: {e!r}", file=sys.stderr)
        return 2
    results = [evaluate(*pair) for pair in pairs]
    timing = time_fingerprints(
        list(dict.fromkeys(t for a, b, _ in pairs for t in (a, b))), args.repeat
    )
    print("\n".join(report(results, args, timing)))
    if args.json:
        sweep = [
            {"threshold": t, "candidate_probability": candidate_probability(t)}
            | {"decision": score(results, decided_at(t)).as_dict()}
            | {"similarity_alone": score(results, similar_at(t)).as_dict()}
            for t in SWEEP
        ]
        out = {
            "data": str(args.data), "constants": {x: getattr(neardup, x) for x in CONSTANTS},
            "decision": score(results, lambda r: r.decision).as_dict(),
            "candidates": score(results, lambda r: r.candidate).as_dict(),
            "similarity": {x: spread([r.similarity for r in results if r.label == x])
                           for x in LABELS},
            "sweep": sweep, "timing": timing,
            "pairs": [asdict(r) | {"decision": r.decision, "correct": r.correct} for r in results],
        }  # fmt: skip
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
