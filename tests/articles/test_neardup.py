"""ingest.neardup: fingerprint properties (deterministic, normalization-blind, None when too
short) and the decision on the labeled pairs of tests/data/neardup (bench/neardup_bench.py
prints the same figures in detail)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.coverage import words
from ingest.neardup import (
    BANDS,
    MIN_WORDS,
    NUM_PERM,
    ROWS,
    THRESHOLD,
    Fingerprint,
    choose_original,
    fingerprint,
    is_near_duplicate,
    similarity,
)
from tests.support.paths import ROOT
from tests.support.stories import THAI_CARRIED, THAI_OTHER, THAI_STORY

DATA = ROOT / "tests" / "data" / "neardup"
TEXTS = DATA / "texts"


@dataclass(frozen=True, slots=True)
class Pair:
    id: str
    category: str
    label: str
    clear: bool
    a: str
    b: str


def _load_pairs() -> list[Pair]:
    return [
        Pair(
            id=raw["id"],
            category=raw["category"],
            label=raw["label"],
            clear=raw.get("clear", True),
            a=(DATA / raw["a"]).read_text(encoding="utf-8"),
            b=(DATA / raw["b"]).read_text(encoding="utf-8"),
        )
        for raw in json.loads((DATA / "pairs.json").read_text(encoding="utf-8"))
    ]


PAIRS = _load_pairs()


def _text(name: str) -> str:
    return (TEXTS / name).read_text(encoding="utf-8")


def _fp(text: str) -> Fingerprint:
    f = fingerprint(text)
    assert f is not None
    return f


def _decision(a: str, b: str) -> bool:
    """What the pipeline decides: the pair shares a band (the index finds it) and the
    signatures estimate a similarity at or above the threshold."""
    fa, fb = fingerprint(a), fingerprint(b)
    if fa is None or fb is None:
        return False
    candidate = any(x == y for x, y in zip(fa.bands, fb.bands, strict=True))
    return candidate and is_near_duplicate(fa.minhash, fb.minhash)


# --- shape and constants ----------------------------------------------------------------------


def test_constants_are_consistent() -> None:
    """The signature is cut into BANDS bands of ROWS values with nothing left over, and the
    threshold is a similarity."""
    assert BANDS * ROWS == NUM_PERM
    assert 0.0 < THRESHOLD <= 1.0


def test_fingerprint_shape() -> None:
    """NUM_PERM uint32 values and BANDS keys that fit a PostgreSQL bigint."""
    f = _fp(_text("port-strike.wire.txt"))
    assert len(f.minhash) == 4 * NUM_PERM
    assert len(f.bands) == BANDS
    assert all(-(2**63) <= key < 2**63 for key in f.bands)
    assert len(set(f.bands)) == BANDS, "each band is keyed by its index as well as its values"


# --- properties -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["port-strike.wire.txt", "bahnstreik.wire.de.txt", "greve.wire.fr.txt"]
)
def test_identical_text_is_similarity_one_and_all_bands_equal(name: str) -> None:
    """A text against itself (fingerprinted twice) estimates 1.0 and shares every band."""
    a, b = _fp(_text(name)), _fp(_text(name))
    assert similarity(a.minhash, b.minhash) == 1.0
    assert a.bands == b.bands
    assert is_near_duplicate(a.minhash, b.minhash)


def test_fingerprint_is_deterministic_across_calls() -> None:
    """The same text always gives the same fingerprint within a process."""
    text = _text("drought-farmers.txt")
    first = _fp(text)
    assert all(_fp(text) == first for _ in range(5))


def test_fingerprint_of_words_already_read_is_the_text_s() -> None:
    """A caller that has the text's words (`ingest.extract.page` does) hands them over: the
    fingerprint is the one of the text, read afresh."""
    for text in (_text("drought-farmers.txt"), "北京" * 60, "word " * MIN_WORDS):
        assert fingerprint(text, words(text)) == fingerprint(text)


def test_fingerprint_values_are_stable() -> None:
    """The values themselves are part of the stored data: articles stored by earlier versions
    keep their band keys, which new articles must still hit. A change of shingling, hashing or
    byte order fails this; such a change needs a migration that recomputes stored
    fingerprints."""
    text = " ".join(f"word{i % 97} news{i % 13} Zürich straße" for i in range(300))
    f = _fp(text)
    packed = f.minhash + b"".join(b.to_bytes(8, "little", signed=True) for b in f.bands)
    assert hashlib.sha256(packed).hexdigest() == (
        "a65f3920fb4d902b9e207a6b4f629aa066213e74231f15c7c61964ac450b00a9"
    )


def _fingerprint_in_subprocess(text: str, hash_seed: str) -> tuple[str, list[int]]:
    code = (
        "import json, sys\n"
        "from ingest.neardup import fingerprint\n"
        "f = fingerprint(sys.stdin.read())\n"
        "print(json.dumps([f.minhash.hex(), list(f.bands)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=text,
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONIOENCODING": "utf-8"},
        timeout=60,
        check=True,
    )
    minhash, bands = json.loads(done.stdout)
    return minhash, bands


def test_fingerprint_is_deterministic_across_processes() -> None:
    """Another interpreter, with another str hash seed, computes the same fingerprint:
    replicas and later versions must find the band keys stored by earlier ones."""
    text = _text("greve.wire.fr.txt")
    here = _fp(text)
    for seed in ("1", "4242"):
        minhash, bands = _fingerprint_in_subprocess(text, seed)
        assert bytes.fromhex(minhash) == here.minhash
        assert tuple(bands) == here.bands


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("   \n\n\t  ", id="blank"),
        pytest.param("... -- !!! ??? \u2014 \u00ab \u00bb", id="punctuation-only"),
        pytest.param(" ".join(f"w{i}" for i in range(MIN_WORDS - 1)), id="one-word-short"),
        pytest.param(
            "Police said a car was stolen from Linden Avenue overnight. Anyone with "
            "information is asked to call Ashby police station.",
            id="short-brief",
        ),
    ],
)
def test_too_short_text_has_no_fingerprint(text: str) -> None:
    """Fewer than MIN_WORDS words: None, left to the exact content hash."""
    assert fingerprint(text) is None


def test_min_words_is_enough() -> None:
    """Exactly MIN_WORDS words get a fingerprint."""
    assert fingerprint(" ".join(f"w{i}" for i in range(MIN_WORDS))) is not None


def _respaced(text: str) -> str:
    """Every run of whitespace replaced by another one: paragraphs rejoined into one line,
    words separated by tabs, non-breaking spaces and double spaces."""
    seps = ["  ", "\t", "\u00a0", "\n", " \n\n "]
    return "".join(word + seps[i % len(seps)] for i, word in enumerate(text.split())).strip()


@pytest.mark.parametrize(
    "name",
    ["transit-fares.txt", "radweg.de.txt", "piscine.fr.txt", "brief-weather-1.txt"],
)
@pytest.mark.parametrize(
    "change",
    [
        pytest.param(str.upper, id="upper"),
        pytest.param(str.lower, id="lower"),
        pytest.param(str.swapcase, id="swapcase"),
        pytest.param(_respaced, id="whitespace"),
        pytest.param(lambda t: "\n\n  " + _respaced(t).upper() + "  \n", id="both"),
    ],
)
def test_case_and_whitespace_changes_keep_the_fingerprint(
    name: str, change: Callable[[str], str]
) -> None:
    """Case and whitespace (including paragraph splitting) are not part of the fingerprint:
    texts differing only in them get equal fingerprints, in English, German and French."""
    text = _text(name)
    changed = change(text)
    assert changed != text
    assert _fp(changed) == _fp(text)


UNRELATED = [
    "port-strike.wire.txt",
    "wildfire.wire.txt",
    "vaccine-study.txt",
    "football-match.txt",
    "bahnstreik.wire.de.txt",
    "piscine.fr.txt",
    "brief-weather-2.txt",
]


@pytest.mark.parametrize(
    ("one", "other"),
    [(a, b) for i, a in enumerate(UNRELATED) for b in UNRELATED[i + 1 :]],
)
def test_unrelated_texts_have_low_similarity(one: str, other: str) -> None:
    """Stories with nothing in common estimate a similarity near zero and are not copies."""
    a, b = _fp(_text(one)), _fp(_text(other))
    assert similarity(a.minhash, b.minhash) <= 0.05
    assert not is_near_duplicate(a.minhash, b.minhash)


_REPORT = [
    "国家统计局今天发布数据显示，今年5月份全国规模以上工业增加值同比增长百分之五点六，比上月加快"
    "零点三个百分点。",
    "从环比看，5月份规模以上工业增加值比上月增长零点四七个百分点。",
    "分三大门类看，5月份采矿业增加值同比增长百分之三点一，制造业增长百分之六点零，电力、热力、"
    "燃气及水生产和供应业增长百分之四点三。",
    "国家统计局新闻发言人表示，当前外部环境依然复杂严峻，国内需求仍显不足，经济回升向好的基础"
    "还需巩固。",
    "发言人同时指出，随着各项宏观政策持续发力，生产需求稳步恢复，市场预期总体改善，经济运行有望"
    "保持稳中向好的态势。",
    "分经济类型看，5月份国有控股企业增加值同比增长百分之四点一；股份制企业增长百分之六点二，外商"
    "及港澳台投资企业增长百分之三点五；私营企业增长百分之五点四。",
    "分产品看，5月份全国六百二十种产品中有三百八十五种产品产量同比增长。发电量七千二百亿千瓦时，"
    "同比增长百分之二点三。",
    "1至5月份，全国规模以上工业增加值同比增长百分之六点二。5月份，规模以上工业企业产品销售率为"
    "百分之九十六点四，比上年同月下降零点二个百分点。",
    "分地区看，5月份东部地区增加值同比增长百分之五点九，中部地区增长百分之六点一，西部地区增长"
    "百分之五点二，东北地区增长百分之三点八。",
    "专家认为，高技术制造业保持较快增长，新动能持续壮大，工业经济结构继续优化升级，为全年目标的"
    "实现打下了良好基础。",
]
_RETAIL = (
    "新华社北京6月2日电 国家统计局今天发布数据显示，今年5月份社会消费品零售总额三万九千亿元，同比"
    "增长百分之三点七。其中，除汽车以外的消费品零售额同比增长百分之四点一。按经营单位所在地分，"
    "城镇消费品零售额同比增长百分之三点五，乡村消费品零售额增长百分之四点九。\n\n按消费类型分，"
    "餐饮收入四千六百亿元，同比增长百分之五点二；商品零售三万四千亿元，增长百分之三点五。1至5月"
    "份，全国网上零售额五万六千亿元，同比增长百分之十一点五。其中，实物商品网上零售额增长百分之"
    "十一点一，占社会消费品零售总额的比重为百分之二十四点五。\n\n国家统计局新闻发言人表示，消费"
    "市场总体保持恢复态势，服务消费增长较快，升级类商品销售向好，但居民消费意愿仍有待进一步提升。"
    "下阶段，要着力扩大国内需求，推动消费从疫后恢复转向持续扩大，更好发挥消费对经济发展的基础性"
    "作用。"
)


def test_a_chinese_story_is_shingled_by_its_characters() -> None:
    """Chinese has no spaces between words: each character is one (`ingest.coverage.words`),
    so a wire story carried by another site (its own dateline, a credit line, four words
    changed) is a copy, as in a spaced language, and another story of the same office's
    template (the same phrases, other figures) is not. Read in clauses (the `\\w+` runs between
    punctuation), each changed word took five of some sixty shingles with it."""
    wire = "新华社北京6月2日电 " + "".join(_REPORT[:5]) + "\n\n" + "".join(_REPORT[5:])
    edited = list(_REPORT)
    edited[1] = edited[1].replace("比上月", "较上月")
    edited[3] = edited[3].replace("依然", "仍然")
    edited[6] = edited[6].replace("同比增长", "同比上升")
    edited[8] = edited[8].replace("分地区看", "从地区看")
    carried = (
        "中新网6月2日电 "
        + "".join(edited[:5])
        + "\n\n"
        + "".join(edited[5:])
        + "\n\n（来源：中国新闻网）"
    )
    assert _decision(wire, carried)
    assert not _decision(wire, _RETAIL)
    assert similarity(_fp(wire).minhash, _fp(_RETAIL).minhash) <= 0.2


def test_a_thai_story_is_shingled_by_its_letters() -> None:
    """Thai has no spaces between words and writes vowels and tones as combining signs: each
    letter with its signs is a word (`ingest.coverage.words`), so a story of two paragraphs
    carried by another site (its own dateline and credit line, three words changed) is a copy,
    and another story is not. Read as the `\\w+` runs between two signs (67 "words", some a
    phrase long), the copy estimated 0.46, an original."""
    assert _decision(THAI_STORY, THAI_CARRIED)
    assert not _decision(THAI_STORY, THAI_OTHER)
    assert similarity(_fp(THAI_STORY).minhash, _fp(THAI_OTHER).minhash) <= 0.05


def test_similarity_of_mismatched_signatures_is_zero() -> None:
    """Signatures of different lengths (another NUM_PERM) or empty ones never match."""
    f = _fp(_text("port-strike.wire.txt"))
    assert similarity(f.minhash, f.minhash[:-4]) == 0.0
    assert similarity(b"", b"") == 0.0


def _values(signature: bytes) -> list[int]:
    return [int.from_bytes(signature[i : i + 4], "little") for i in range(0, len(signature), 4)]


def _edited(signature: bytes, edits: list[tuple[int, int]]) -> bytes:
    """`signature` with value i of each edit (i, bit) changed in that one bit only: the case
    a comparison of the values' bits together could miss."""
    values = _values(signature)
    for i, bit in edits:
        values[i % len(values)] ^= 1 << bit
    return b"".join(v.to_bytes(4, "little") for v in values)


_SIGNATURES = st.binary(min_size=4 * NUM_PERM, max_size=4 * NUM_PERM)
_EDITS = st.lists(st.tuples(st.integers(0, NUM_PERM - 1), st.integers(0, 31)), max_size=NUM_PERM)


@given(_SIGNATURES, _EDITS)
def test_similarity_is_the_share_of_equal_values(
    signature: bytes, edits: list[tuple[int, int]]
) -> None:
    """The similarity is the share of values equal value by value, a value differing in any
    one of its 32 bits counted as differing."""
    other = _edited(signature, edits)
    equal = sum(x == y for x, y in zip(_values(signature), _values(other), strict=True))
    assert similarity(signature, other) == equal / NUM_PERM


def _original_value_by_value(
    mine: bytes,
    candidates: list[tuple[int, bytes | None, int | None, str | None]],
    site: str | None,
    apart: set[int],
) -> int | None:
    """`choose_original`'s rule, comparing the signatures value by value."""
    rows = [
        (i, original or i, [x == y for x, y in zip(_values(mine), _values(m), strict=True)], s)
        for i, m, original, s in candidates
        if m is not None and len(m) == len(mine)
    ]
    held: dict[int, list[bool]] = {}
    for _, root, equal, s in rows:
        if s == site:
            held[root] = [a or b for a, b in zip(held.get(root, [False] * NUM_PERM), equal)]
    matches = []
    for i, root, equal, _ in rows:
        if i in apart or sum(equal) < THRESHOLD * NUM_PERM:
            continue
        others = [any(h[v] for r, h in held.items() if r != root) for v in range(NUM_PERM)]
        kept = sum(e and not o for e, o in zip(equal, others, strict=True))
        counted = NUM_PERM - sum(equal) + kept
        if counted and kept / counted >= THRESHOLD:
            matches.append(root)
    return min(matches, default=None)


@given(
    _SIGNATURES,
    st.lists(
        st.tuples(
            _EDITS,
            st.sampled_from([None, 1, 2, 3]),
            st.sampled_from(["site.example", "other.example", None]),
            st.booleans(),
        ),
        max_size=8,
    ),
    st.lists(st.integers(0, NUM_PERM - 1), max_size=NUM_PERM),
    st.sampled_from(["site.example", None]),
)
def test_choose_original_is_the_rule_value_by_value(
    signature: bytes,
    rows: list[tuple[list[tuple[int, int]], int | None, str | None, bool]],
    template: list[int],
    site: str | None,
) -> None:
    """The original chosen is the one the rule gives comparing each candidate's values with the
    article's one by one: near-duplicates by their share of equal values, less the values other
    stories of the site hold (a template: the values of `template`, which no candidate's edits
    change), candidates `apart` left out, and a signature of another length no candidate."""
    candidates: list[tuple[int, bytes | None, int | None, str | None]] = [
        (n + 1, _edited(signature, [(i, b) for i, b in edits if i not in template]), original, s)
        for n, (edits, original, s, _) in enumerate(rows)
    ]
    candidates.append((len(rows) + 1, signature[:-4], None, site))
    apart = {n + 1 for n, (*_, away) in enumerate(rows) if away}
    expected = _original_value_by_value(signature, candidates, site, apart)
    assert choose_original(Fingerprint(signature, ()), candidates, site, apart) == expected


# --- the labeled set --------------------------------------------------------------------------


def test_labeled_set_is_what_it_claims() -> None:
    """At least 60 pairs, unique ids, both labels, texts of 150-900 words, German and French
    among them, and every category of the issue present."""
    assert len(PAIRS) >= 60
    assert len({p.id for p in PAIRS}) == len(PAIRS)
    assert {p.label for p in PAIRS} == {"duplicate", "distinct"}
    for p in PAIRS:
        for text in (p.a, p.b):
            assert 150 <= len(text.split()) <= 900, p.id
    assert {p.category for p in PAIRS} >= {
        "syndicated",
        "light-edit",
        "wire-several-sites",
        "same-event",
        "follow-up",
        "boilerplate",
        "brief-same-topic",
        "same-template",
    }
    assert any(p.id.endswith("-de") for p in PAIRS)
    assert any(p.id.endswith("-fr") for p in PAIRS)


def test_labeled_set_precision_and_recall() -> None:
    """On the labeled pairs the decision reaches precision >= 0.98 and recall >= 0.9 (the
    issue's target; fixed data and fixed hash coefficients make this deterministic)."""
    tp = fp = fn = 0
    for p in PAIRS:
        said, truth = _decision(p.a, p.b), p.label == "duplicate"
        tp += said and truth
        fp += said and not truth
        fn += truth and not said
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn)
    assert precision >= 0.98, f"precision {precision:.3f} (tp={tp} fp={fp})"
    assert recall >= 0.9, f"recall {recall:.3f} (tp={tp} fn={fn})"


@pytest.mark.parametrize("pair", [pytest.param(p, id=p.id) for p in PAIRS if p.clear])
def test_labeled_pair(pair: Pair) -> None:
    """Each unambiguous pair is decided as labeled: copies are linked, distinct stories are
    not. (Pairs marked `"clear": false` count only toward precision and recall.)"""
    assert _decision(pair.a, pair.b) is (pair.label == "duplicate")
