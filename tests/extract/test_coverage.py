"""ingest.coverage: the share of a reference text that another text holds."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.coverage import _WORD, Reference, coverage, words

STORY = "the council met on tuesday and agreed the plan for the river bank after a long debate"


@pytest.mark.parametrize(
    ("text", "reference", "expected"),
    [
        (STORY, STORY, 1.0),
        ("", STORY, 0.0),
        (STORY, "", 1.0),
        ("Nothing in common at all here today", STORY, 0.0),
        (STORY.upper(), STORY, 1.0),
        # Half of the reference's 4-grams: the first sentence of two.
        ("one two three four five", "one two three four five six seven eight nine ten", 2 / 7),
    ],
)
def test_coverage(text: str, reference: str, expected: float) -> None:
    """Shares of the reference's word 4-grams, case-folded."""
    assert coverage(text, reference) == pytest.approx(expected)


def test_repeated_paragraph_weighs_twice() -> None:
    """A reference that says a paragraph twice is not all held by one copy of it: of its 17
    word 4-grams, the copy holds 7 (3 more straddle the two copies)."""
    paragraph = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do"
    assert coverage(paragraph, f"{paragraph} {paragraph}") == pytest.approx(7 / 17)


def test_unspaced_scripts_count_each_character() -> None:
    """Japanese and Chinese text has a word per character; Korean keeps its spaced words."""
    assert words("新幹線 ok") == ["新", "幹", "線", "ok"]
    assert words("한국어 문장") == ["한국어", "문장"]
    assert coverage("新幹線の延伸開業", "新幹線の延伸開業から一年") > 0.4


def test_a_thai_or_lao_letter_is_a_word_with_its_signs() -> None:
    """Thai and Lao put no spaces between words and write their vowels and tones as combining
    signs (not `\\w`): each letter with the signs above and below it is one word, as a Chinese
    character is, not the runs between two signs."""
    assert words("กรุงเทพฯ 2 ok") == ["ก", "รุ", "ง", "เ", "ท", "พ", "ฯ", "2", "ok"]
    assert words("ນະຄອນຫຼວງ") == ["ນ", "ະ", "ຄ", "ອ", "ນ", "ຫຼ", "ວ", "ງ"]
    assert words("ราคาน้ำมัน") == ["ร", "า", "ค", "า", "น้", "ำ", "มั", "น"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("ខ្មែរ ១៩", ["ខ្", "មែ", "រ", "១", "៩"], id="khmer"),
        pytest.param("မြန်မာ ၂၀", ["မြ", "န်", "မာ", "၂", "၀"], id="myanmar"),
        pytest.param("བོད་ཀྱི་ ༢", ["བོ", "ད", "ཀྱི", "༢"], id="tibetan"),
    ],
)
def test_a_khmer_myanmar_or_tibetan_letter_is_a_word_with_its_signs(
    text: str, expected: list[str]
) -> None:
    """Khmer, Myanmar and Tibetan put no spaces between words either (Tibetan marks its
    syllables, not its words) and write their vowels, medials and stacked letters as combining
    signs: each letter (or digit) with the signs after it is one word, as in Thai and Lao, not
    the `\\w+` runs between two signs, now a letter, now half a phrase."""
    assert words(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("ꦥꦿꦧꦺꦴꦮꦺꦴ ꧑꧒", ["ꦥꦿ", "ꦧꦺꦴ", "ꦮꦺꦴ", "꧑", "꧒"], id="javanese"),
        pytest.param("ᬧ᭄ᬭᬯᬶᬯᬶ ᭑", ["ᬧ᭄", "ᬭ", "ᬯᬶ", "ᬯᬶ", "᭑"], id="balinese"),
    ],
)
def test_a_javanese_or_balinese_letter_is_a_word_with_its_signs(
    text: str, expected: list[str]
) -> None:
    """Javanese and Balinese script put no spaces between words either, and write their
    vowels, medials and the virama that stacks a letter (Javanese's pangkon, Balinese's
    adeg-adeg) as combining signs: each letter (or digit) with the signs after it is one
    word, as in Khmer, not the `\\w+` runs between two signs (`ꦥꦿꦧꦺꦴꦮꦺꦴ` was `ꦥ`, `ꦧ`, `ꦮ`)."""
    assert words(text) == expected


def test_a_word_of_the_scripts_of_india_goes_on_through_its_signs() -> None:
    """Devanagari, Bengali, Tamil, Sinhala... write most vowels and the virama as combining
    signs, which `\\w` does not match: a word goes on through them, and through a joiner after
    one (a conjunct's form), instead of falling apart into letters. Persian's non-joiner,
    after no such sign, still parts two words as before."""
    assert words("नई दिल्ली में") == ["नई", "दिल्ली", "में"]
    assert words("ঢাকায় தமிழ்நாடு") == ["ঢাকায়", "தமிழ்நாடு"]
    assert words("ශ්\u200dරී ලංකාව") == ["ශ්\u200dරී", "ලංකාව"]
    assert words("می\u200cخواهم") == ["می", "خواهم"]
    assert coverage("नई दिल्ली में सरकार ने कहा", "दिल्ली में सरकार ने") == 1.0


# Letters, digits, punctuation and spaces of several scripts, with the characters `words` reads
# apart from `\w+` runs: Chinese and Japanese, Thai, Lao, Khmer, Myanmar, Tibetan, Javanese and
# Balinese letters and signs, the letters, signs and joiners of the scripts of India, and capitals
# whose case-folding is longer.
_MIXED = [
    *"aZ9_-. ,\nßİẞﬁ",
    *"é\u0301Ω",
    *"新の",
    *"กุ",
    *"ນຫຼ",
    *"दि\u094d\u200d\u200cম",
    *"ខ\u17d2មែ",
    *"မြ",
    *"བོ",
    *"ꦥꦿ꧀",
    *"ᬧ᭄ᬶ",
]


@given(st.text(alphabet=st.sampled_from(_MIXED)))
def test_words_are_the_matches_of_the_one_pattern(text: str) -> None:
    """A text without the characters read apart is split as `\\w+` runs, in less time: the
    words are still those of the one pattern, in every mix of scripts."""
    assert words(text) == _WORD.findall(text.casefold())


@given(
    st.lists(st.sampled_from("ab"), max_size=30),
    st.lists(st.sampled_from("abc"), max_size=30),
)
def test_held_by_counts_the_4_grams_both_texts_have(text: list[str], reference: list[str]) -> None:
    """The share of the reference's 4-grams the text holds, each counted as often as both have
    it (`Counter.__and__`), whatever the repeats (a text of fewer than four words is one gram)."""

    def grams(tokens: list[str]) -> Counter[tuple[str, ...]]:
        if len(tokens) < 4:
            return Counter([tuple(tokens)] if tokens else [])
        return Counter(zip(tokens, tokens[1:], tokens[2:], tokens[3:], strict=False))

    held = Reference(" ".join(reference)).held_by(text)
    expected = (
        (grams(reference) & grams(text)).total() / grams(reference).total() if reference else 1.0
    )
    assert held == expected
