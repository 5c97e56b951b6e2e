"""Near-duplicate detection on labeled pairs: precision, recall, similarities, fingerprint time.

What it measures and how to run it: bench/README.md (`neardup_bench.py`)."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
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

import numpy as np
from lib import ROOT

from ingest import neardup

DATA_DEFAULT = ROOT / "tests" / "data" / "neardup" / "pairs.json"
LABELS = ("duplicate", "distinct")
SWEEP = tuple(round(0.30 + 0.05 * i, 2) for i in range(13))
NEAR = 0.1
"""Pairs whose estimated similarity is within this of the threshold are listed."""
DRAW_SEED = 1000
"""First seed of the `--draws` coefficient draws (then DRAW_SEED + 1, ...)."""
TARGET_PRECISION, TARGET_RECALL = 0.98, 0.9
Fingerprints = Callable[[str], neardup.Fingerprint | None]


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
        fields = (raw["id"], raw["category"], raw["label"], raw.get("clear", True))
        pairs.append(Pair(*fields, raw.get("note", ""), *texts))
    return pairs


_WORD = re.compile(r"\w+")


def shingles(text: str) -> set[str]:
    words = _WORD.findall(text.casefold())
    k = neardup.SHINGLE_WORDS
    return {" ".join(words[i : i + k]) for i in range(len(words) - k + 1)}


def jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 0.0


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


def evaluate(pair: Pair) -> Result:
    words = (len(pair.a.split()), len(pair.b.split()))
    r = Result(pair.id, pair.category, pair.label, pair.clear, pair.note, words, 0.0,
               jaccard(pair.a, pair.b), False, False)  # fmt: skip
    return judged(r, neardup.fingerprint(pair.a), neardup.fingerprint(pair.b))


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
    seen = Counter((predict(r), r.label == "duplicate") for r in results)
    return Scores(seen[True, True], seen[True, False], seen[False, True], seen[False, False])


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


def drawn_fingerprints(seed: int, hashes: dict[str, Any]) -> Fingerprints:
    """Fingerprints by the method `ingest.neardup` describes (blake2b of 5-word shingles, one
    multiply-shift hash (a*x + b mod 2^64, upper 32 bits) per permutation, blake2b band keys of
    ROWS values) with coefficients drawn from `seed`: the module's own are one such draw, and
    private. `hashes` caches each text's shingle hashes, which do not depend on the draw."""
    rng = np.random.Generator(np.random.PCG64(seed))
    a = rng.integers(1, 2**61 - 1, size=neardup.NUM_PERM, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 2**61 - 1, size=neardup.NUM_PERM, dtype=np.uint64)
    width = neardup.ROWS * 4

    def fingerprint(text: str) -> neardup.Fingerprint | None:
        if text not in hashes:
            words = _WORD.findall(text.casefold())
            found = shingles(text) if len(words) >= neardup.MIN_WORDS else set()
            digests = [hashlib.blake2b(s.encode(), digest_size=8).digest() for s in found]
            hashes[text] = np.frombuffer(b"".join(digests), dtype="<u8") if found else None
        if hashes[text] is None:
            return None
        with np.errstate(over="ignore"):
            values = np.multiply.outer(a, hashes[text])
            values += b[:, None]
        minhash = (values.min(axis=1) >> np.uint64(32)).astype("<u4").tobytes()
        keys = [minhash[i * width : (i + 1) * width] for i in range(neardup.BANDS)]
        bands = tuple(
            int.from_bytes(
                hashlib.blake2b(bytes([i]) + k, digest_size=8).digest(), "little", signed=True
            )
            for i, k in enumerate(keys)
        )
        return neardup.Fingerprint(minhash, bands)

    return fingerprint


def draws(pairs: Sequence[Pair], results: Sequence[Result], n: int) -> dict[str, Any]:
    """Precision and recall at each sweep threshold over `n` other coefficient draws, and
    how often each pair is decided against its label at THRESHOLD."""
    scores: dict[float, list[Scores]] = {t: [] for t in SWEEP}
    wrong: Counter[str] = Counter()
    hashes: dict[str, Any] = {}
    for i in range(n):
        fp = drawn_fingerprints(DRAW_SEED + i, hashes)
        drawn = [judged(r, fp(p.a), fp(p.b)) for p, r in zip(pairs, results, strict=True)]
        for t in SWEEP:
            scores[t].append(score(drawn, decided_at(t)))
        wrong.update(r.id for r in drawn if not r.correct)
    rows = []
    for t, ss in scores.items():
        ps = [s.precision if s.precision is not None else 1.0 for s in ss]
        rs = [s.recall if s.recall is not None else 1.0 for s in ss]
        met = sum(p >= TARGET_PRECISION and r >= TARGET_RECALL for p, r in zip(ps, rs, strict=True))
        rows.append(
            {"threshold": t, "precision_mean": statistics.mean(ps), "precision_min": min(ps)}
        )
        rows[-1] |= {
            "recall_mean": statistics.mean(rs),
            "recall_min": min(rs),
            "targets_met": met / n,
        }
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
    p = argparse.ArgumentParser(prog="neardup_bench.py", description=__doc__)
    p.add_argument("--data", type=Path, default=DATA_DEFAULT, help="labeled pairs (JSON)")
    p.add_argument("--pairs", action="store_true", help="list every pair")
    p.add_argument("--sweep", action="store_true", help="precision/recall for t = 0.30..0.90")
    p.add_argument("--repeat", type=int, default=5, metavar="K", help="timing runs per text")
    p.add_argument("--draws", type=int, default=0, metavar="N", help="N other coefficient draws")
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
        constants = ("NUM_PERM", "BANDS", "ROWS", "SHINGLE_WORDS", "MIN_WORDS", "THRESHOLD")
        sweep = [
            {"threshold": t, "candidate_probability": candidate_probability(t)}
            | {"decision": score(results, decided_at(t)).as_dict()}
            | {"similarity_alone": score(results, similar_at(t)).as_dict()}
            for t in SWEEP
        ]
        out = {
            "data": str(args.data),
            "constants": {name: getattr(neardup, name) for name in constants},
            "decision": score(results, lambda r: r.decision).as_dict(),
            "candidates": score(results, lambda r: r.candidate).as_dict(),
            "similarity": {
                label: spread([r.similarity for r in results if r.label == label])
                for label in LABELS
            },
            "sweep": sweep,
            "timing": timing,
            "draws": drawn,
            "pairs": [asdict(r) | {"decision": r.decision, "correct": r.correct} for r in results],
        }
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
