"""Near-duplicate detection on a labeled set of article pairs: precision, recall, similarities.

    .venv/bin/python bench/neardup_bench.py [--pairs] [--sweep] [--draws N] [--repeat K]
        [--data FILE] [--json FILE]

What it does. `tests/data/neardup/pairs.json` (or `--data FILE`) lists pairs of article texts,
each labeled `duplicate` (syndicated copies, light edits, one wire story as run by several
sites) or `distinct` (one event written up independently, follow-ups, shared boilerplate,
same-topic briefs, same-template stories). For each pair it computes the two fingerprints
(`ingest.neardup.fingerprint`), the similarity their MinHash signatures estimate, whether the
LSH bands make the pair a candidate (at least one equal band key: what the database index
finds) and the decision the pipeline takes: candidate AND `is_near_duplicate`.

How to read it. Per category: pairs, how many the decision and LSH call duplicates, and the
estimated similarity (min/median/max). Then the confusion matrix of the decision, precision
and recall of the decision and of LSH candidacy alone (positive = `duplicate`), the similarity
per label, and the pairs the decision gets wrong or that lie within 0.1 of the threshold, each
with the exact Jaccard similarity of its word shingles beside the estimate (computed here with
the module's documented tokenization: casefolded `\\w+` words, SHINGLE_WORDS per shingle), so
that an error reads as either estimation noise or a real lack of overlap. `--pairs` lists
every pair.

`--sweep` shows, for thresholds t from 0.30 to 0.90, the chance that a pair at Jaccard t shares
a band, then precision and recall of the decision (candidacy still required: for a pair near
a low t, being found is mostly luck of the bands) and of the similarity alone (as if every
pair were a candidate: the margin between the labels without that luck). `--draws N` redoes
the decisions with N other draws of the module's hash coefficients (fixed seeds, this process
only) and prints, per threshold, mean and worst precision and recall and the share of draws
meeting both targets, then how often each pair is decided against its label: the shipped
coefficients are one draw, and this says how much of the result is theirs.

Last, the time to fingerprint one text: each distinct text is fingerprinted K times (default
5, `--repeat`), its median taken, and the median, min and max over texts are printed with
their word counts. Figures are printed, never asserted (the quality target is pinned by
`tests/unit/test_neardup.py`); the exit status is non-zero only when the data cannot be read.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import platform
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
"""The repository (this file lives in <repo>/bench)."""

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ingest import neardup  # noqa: E402

DATA_DEFAULT = ROOT / "tests" / "data" / "neardup" / "pairs.json"
LABELS = ("duplicate", "distinct")
SWEEP = tuple(round(0.30 + 0.05 * i, 2) for i in range(13))
NEAR = 0.1
"""Pairs whose estimated similarity is within this of the threshold are listed."""
DRAW_SEED = 1000
"""First seed of the `--draws` coefficient draws (then DRAW_SEED + 1, ...)."""
TARGET_PRECISION, TARGET_RECALL = 0.98, 0.9


@dataclass(frozen=True, slots=True)
class Pair:
    id: str
    category: str
    label: str
    clear: bool
    note: str
    a: str
    b: str


@dataclass(frozen=True, slots=True)
class Result:
    id: str
    category: str
    label: str
    clear: bool
    note: str
    words: tuple[int, int]
    similarity: float
    """Estimated from the MinHash signatures; 0.0 when a text is too short to fingerprint."""
    jaccard: float
    """Exact Jaccard similarity of the two word-shingle sets."""
    candidate: bool
    """At least one LSH band key in common."""
    near_duplicate: bool
    """`is_near_duplicate` alone, candidate or not."""

    @property
    def decision(self) -> bool:
        return self.candidate and self.near_duplicate

    @property
    def correct(self) -> bool:
        return self.decision == (self.label == "duplicate")


def load_pairs(path: Path) -> list[Pair]:
    """The labeled pairs; `a` and `b` name text files relative to the JSON file."""
    pairs = []
    for raw in json.loads(path.read_text(encoding="utf-8")):
        texts = [(path.parent / raw[side]).read_text(encoding="utf-8") for side in "ab"]
        if raw["label"] not in LABELS:
            raise ValueError(f"{raw['id']}: label {raw['label']!r} not in {LABELS}")
        pairs.append(
            Pair(
                id=raw["id"],
                category=raw["category"],
                label=raw["label"],
                clear=raw.get("clear", True),
                note=raw.get("note", ""),
                a=texts[0],
                b=texts[1],
            )
        )
    return pairs


_WORD = re.compile(r"\w+")


def shingles(text: str) -> set[str]:
    words = _WORD.findall(text.casefold())
    k = neardup.SHINGLE_WORDS
    return {" ".join(words[i : i + k]) for i in range(len(words) - k + 1)}


def jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 0.0


def evaluate(pair: Pair) -> Result:
    fa, fb = neardup.fingerprint(pair.a), neardup.fingerprint(pair.b)
    if fa is None or fb is None:
        similarity, candidate, near = 0.0, False, False
    else:
        similarity = neardup.similarity(fa.minhash, fb.minhash)
        candidate = any(x == y for x, y in zip(fa.bands, fb.bands, strict=True))
        near = neardup.is_near_duplicate(fa.minhash, fb.minhash)
    return Result(
        id=pair.id,
        category=pair.category,
        label=pair.label,
        clear=pair.clear,
        note=pair.note,
        words=(len(pair.a.split()), len(pair.b.split())),
        similarity=similarity,
        jaccard=jaccard(pair.a, pair.b),
        candidate=candidate,
        near_duplicate=near,
    )


@dataclass(frozen=True, slots=True)
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
    tp = fp = fn = tn = 0
    for r in results:
        said, truth = predict(r), r.label == "duplicate"
        tp += said and truth
        fp += said and not truth
        fn += truth and not said
        tn += not said and not truth
    return Scores(tp, fp, fn, tn)


def decided_at(t: float) -> Callable[[Result], bool]:
    """The decision at threshold `t`: candidate AND estimated similarity >= t."""
    return lambda r: r.candidate and r.similarity >= t


def similar_at(t: float) -> Callable[[Result], bool]:
    """Estimated similarity >= t, candidate or not."""
    return lambda r: r.similarity >= t


def spread(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def fmt_ratio(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def fmt_spread(s: dict[str, float] | None) -> str:
    return "-" if s is None else f"{s['min']:.2f} / {s['median']:.2f} / {s['max']:.2f}"


def candidate_probability(j: float) -> float:
    """Probability that two texts of shingle Jaccard similarity `j` share at least one band."""
    return float(1 - (1 - j**neardup.ROWS) ** neardup.BANDS)


@contextlib.contextmanager
def drawn_coefficients(seed: int) -> Iterator[None]:
    """The module's hash coefficients (private `_A`, `_B`) replaced by another draw, in this
    process only, then restored. The shipped coefficients are one draw among many: how much
    of the labeled-set result is theirs, and how much the method's?"""
    if not hasattr(neardup, "_A") or not hasattr(neardup, "_B"):
        raise SystemExit("neardup_bench: --draws needs ingest.neardup._A and _B")
    saved = neardup._A, neardup._B
    rng = np.random.Generator(np.random.PCG64(seed))
    size = neardup.NUM_PERM
    neardup._A = rng.integers(1, 2**61 - 1, size=size, dtype=np.uint64) | np.uint64(1)
    neardup._B = rng.integers(0, 2**61 - 1, size=size, dtype=np.uint64)
    try:
        yield
    finally:
        neardup._A, neardup._B = saved


def redecide(pairs: Sequence[Pair], results: Sequence[Result]) -> list[Result]:
    """`results` with similarity, candidacy and decision recomputed under the current
    coefficients (the exact Jaccard does not depend on them)."""
    cache: dict[str, neardup.Fingerprint | None] = {}

    def fp(text: str) -> neardup.Fingerprint | None:
        if text not in cache:
            cache[text] = neardup.fingerprint(text)
        return cache[text]

    out = []
    for pair, r in zip(pairs, results, strict=True):
        fa, fb = fp(pair.a), fp(pair.b)
        if fa is None or fb is None:
            out.append(dataclasses.replace(r, similarity=0.0, candidate=False))
            continue
        out.append(
            dataclasses.replace(
                r,
                similarity=neardup.similarity(fa.minhash, fb.minhash),
                candidate=any(x == y for x, y in zip(fa.bands, fb.bands, strict=True)),
                near_duplicate=neardup.is_near_duplicate(fa.minhash, fb.minhash),
            )
        )
    return out


def draws(pairs: Sequence[Pair], results: Sequence[Result], n: int) -> dict[str, Any]:
    """Precision and recall at each sweep threshold over `n` other coefficient draws, and
    how often each pair is decided against its label at THRESHOLD."""
    scores: dict[float, list[Scores]] = {t: [] for t in SWEEP}
    wrong: Counter[str] = Counter()
    for i in range(n):
        with drawn_coefficients(DRAW_SEED + i):
            drawn = redecide(pairs, results)
        for t in SWEEP:
            scores[t].append(score(drawn, decided_at(t)))
        wrong.update(r.id for r in drawn if not r.correct)
    rows = []
    for t, ss in scores.items():
        precisions = [s.precision if s.precision is not None else 1.0 for s in ss]
        recalls = [s.recall if s.recall is not None else 1.0 for s in ss]
        met = sum(
            p >= TARGET_PRECISION and r >= TARGET_RECALL
            for p, r in zip(precisions, recalls, strict=True)
        )
        rows.append(
            {
                "threshold": t,
                "precision_mean": statistics.mean(precisions),
                "precision_min": min(precisions),
                "recall_mean": statistics.mean(recalls),
                "recall_min": min(recalls),
                "targets_met": met / n,
            }
        )
    return {
        "draws": n,
        "first_seed": DRAW_SEED,
        "thresholds": rows,
        "wrong_at_threshold": {k: v / n for k, v in wrong.most_common()},
    }


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
        "texts": len(texts),
        "repeat": repeat,
        "ms_median": statistics.median(per_text),
        "ms_min": min(per_text),
        "ms_max": max(per_text),
        "words_median": statistics.median(words),
        "words_min": min(words),
        "words_max": max(words),
    }


def pair_line(r: Result) -> str:
    verdict = "dup " if r.decision else "dist"
    mark = "  " if r.correct else "XX"
    flags = ("cand" if r.candidate else "    ") + ("" if r.clear else " unclear")
    return (
        f"  {mark} {r.id:<30} {r.category:<19} {r.label:<9} -> {verdict}  "
        f"est {r.similarity:.2f}  exact {r.jaccard:.2f}  words {r.words[0]}/{r.words[1]}  {flags}"
    )


def report(
    results: list[Result],
    args: argparse.Namespace,
    timing: dict[str, Any],
    drawn: dict[str, Any] | None,
) -> None:
    threshold = neardup.THRESHOLD
    n_dup = sum(r.label == "duplicate" for r in results)
    print(
        f"neardup bench: {len(results)} labeled pairs ({n_dup} duplicate, "
        f"{len(results) - n_dup} distinct) from {args.data}"
    )
    print(
        f"constants: NUM_PERM={neardup.NUM_PERM} BANDS={neardup.BANDS} ROWS={neardup.ROWS} "
        f"SHINGLE_WORDS={neardup.SHINGLE_WORDS} MIN_WORDS={neardup.MIN_WORDS} "
        f"THRESHOLD={threshold}"
    )
    print(
        f"decision = LSH candidate (>= 1 equal band) AND estimated similarity >= {threshold}; "
        f"a pair at Jaccard {threshold} is a candidate with probability "
        f"{candidate_probability(threshold):.2f}"
    )
    print()

    print(
        f"{'category':<19} {'label':<9} {'pairs':>5} {'decided dup':>11} {'candidates':>10}"
        "   similarity min / median / max"
    )
    seen: dict[tuple[str, str], list[Result]] = {}
    for r in results:
        seen.setdefault((r.category, r.label), []).append(r)
    for (category, label), rs in seen.items():
        print(
            f"{category:<19} {label:<9} {len(rs):>5} {sum(r.decision for r in rs):>11} "
            f"{sum(r.candidate for r in rs):>10}   "
            f"{fmt_spread(spread([r.similarity for r in rs]))}"
        )
    print()

    d = score(results, lambda r: r.decision)
    c = score(results, lambda r: r.candidate)
    print("confusion matrix (decision)")
    print(f"  {'':<18} {'decided dup':>11} {'decided distinct':>16}")
    print(f"  {'label duplicate':<18} {d.tp:>11} {d.fn:>16}")
    print(f"  {'label distinct':<18} {d.fp:>11} {d.tn:>16}")
    print(
        f"decision:       precision {fmt_ratio(d.precision)}  recall {fmt_ratio(d.recall)}"
        f"   (target: precision >= {TARGET_PRECISION}, recall >= {TARGET_RECALL})"
    )
    print(
        f"LSH candidates: precision {fmt_ratio(c.precision)}  recall {fmt_ratio(c.recall)}"
        f"   ({c.tp + c.fp} of {len(results)} pairs are candidates)"
    )
    print()

    print(f"estimated similarity by label (threshold {threshold}), min / median / max")
    for label in LABELS:
        rs = [r for r in results if r.label == label]
        print(
            f"  {label:<9} est   {fmt_spread(spread([r.similarity for r in rs]))}"
            f"   exact {fmt_spread(spread([r.jaccard for r in rs]))}"
        )
    print()

    wrong = [r for r in results if not r.correct]
    near = [r for r in results if r.correct and abs(r.similarity - threshold) <= NEAR]
    if args.pairs:
        print("all pairs (XX = decision differs from the label)")
        for r in results:
            print(pair_line(r))
    else:
        print(f"misclassified: {len(wrong)}")
        for r in wrong:
            print(pair_line(r))
            print(f"       {r.note}")
        print(f"correct but within {NEAR} of the threshold: {len(near)}")
        for r in near:
            print(pair_line(r))
    print()

    if args.sweep:
        print("threshold sweep: decision (candidate AND similarity >= t) | similarity >= t alone")
        print(
            f"  {'t':>5} {'P(cand)':>7}   {'precision':>9} {'recall':>7} {'fp':>3} {'fn':>3}"
            f"   | {'precision':>9} {'recall':>7} {'fp':>3} {'fn':>3}"
        )
        for t in SWEEP:
            s = score(results, decided_at(t))
            a = score(results, similar_at(t))
            mark = "  <- THRESHOLD" if abs(t - threshold) < 1e-9 else ""
            print(
                f"  {t:>5.2f} {candidate_probability(t):>7.2f}   "
                f"{fmt_ratio(s.precision):>9} {fmt_ratio(s.recall):>7} {s.fp:>3} {s.fn:>3}"
                f"   | {fmt_ratio(a.precision):>9} {fmt_ratio(a.recall):>7} {a.fp:>3} {a.fn:>3}"
                f"{mark}"
            )
        print()

    if drawn is not None:
        print(
            f"other hash-coefficient draws: {drawn['draws']} (seeds {drawn['first_seed']}.."
            f"{drawn['first_seed'] + drawn['draws'] - 1}); decision = candidate AND similarity >= t"
        )
        print(
            f"  {'t':>5}   {'precision mean / min':>20}   {'recall mean / min':>17}"
            "   draws meeting both targets"
        )
        for row in drawn["thresholds"]:
            mark = "  <- THRESHOLD" if abs(row["threshold"] - threshold) < 1e-9 else ""
            print(
                f"  {row['threshold']:>5.2f}   {row['precision_mean']:>11.3f} / "
                f"{row['precision_min']:.3f}   {row['recall_mean']:>9.3f} / "
                f"{row['recall_min']:.3f}   {row['targets_met']:>8.1%}{mark}"
            )
        wrong_at = drawn["wrong_at_threshold"]
        print(f"  pairs decided against their label at {threshold}, share of draws:")
        print(
            "    "
            + (", ".join(f"{k} {v:.1%}" for k, v in wrong_at.items()) if wrong_at else "none")
        )
        print()

    print(
        f"fingerprint time per text: median {timing['ms_median']:.2f} ms "
        f"(min {timing['ms_min']:.2f}, max {timing['ms_max']:.2f}) over {timing['texts']} "
        f"distinct texts of {timing['words_min']}-{timing['words_max']} words "
        f"(median {timing['words_median']:.0f}), median of {timing['repeat']} runs each; "
        f"Python {platform.python_version()} on {platform.machine()}"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Precision and recall of near-duplicate detection on labeled pairs."
    )
    p.add_argument("--data", type=Path, default=DATA_DEFAULT, help="labeled pairs (JSON)")
    p.add_argument("--pairs", action="store_true", help="list every pair")
    p.add_argument("--sweep", action="store_true", help="precision/recall for t = 0.30..0.90")
    p.add_argument("--repeat", type=int, default=5, metavar="K", help="timing runs per text")
    p.add_argument(
        "--draws",
        type=int,
        default=0,
        metavar="N",
        help="also evaluate N other draws of the hash coefficients (about 0.1 s each)",
    )
    p.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if args.draws < 0:
        p.error("--draws must not be negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        pairs = load_pairs(args.data)
    except (OSError, ValueError, KeyError) as e:
        print(f"neardup_bench: cannot read the labeled pairs: {e!r}", file=sys.stderr)
        return 2
    results = [evaluate(p) for p in pairs]
    texts = list(dict.fromkeys(t for p in pairs for t in (p.a, p.b)))
    timing = time_fingerprints(texts, args.repeat)
    drawn = draws(pairs, results, args.draws) if args.draws else None
    report(results, args, timing, drawn)

    if args.json:
        d = score(results, lambda r: r.decision)
        c = score(results, lambda r: r.candidate)
        out = {
            "data": str(args.data),
            "constants": {
                name: getattr(neardup, name)
                for name in ("NUM_PERM", "BANDS", "ROWS", "SHINGLE_WORDS", "MIN_WORDS")
            }
            | {"THRESHOLD": neardup.THRESHOLD},
            "decision": d.as_dict(),
            "candidates": c.as_dict(),
            "similarity": {
                label: spread([r.similarity for r in results if r.label == label])
                for label in LABELS
            },
            "sweep": [
                {
                    "threshold": t,
                    "candidate_probability": candidate_probability(t),
                    "decision": score(results, decided_at(t)).as_dict(),
                    "similarity_alone": score(results, similar_at(t)).as_dict(),
                }
                for t in SWEEP
            ],
            "timing": timing,
            "draws": drawn,
            "pairs": [asdict(r) | {"decision": r.decision, "correct": r.correct} for r in results],
        }
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
