"""Generated English text: sentences of words drawn, with their frequencies, from the English
texts of tests/data/neardup. Two texts are near-duplicates only when made so with `edit`."""

import functools
import random
import re

from lib import ROOT


@functools.cache
def vocabulary() -> tuple[list[str], list[str]]:
    """The words, lower-case unless only ever capitalised (names), and the names."""
    words: list[str] = []
    for path in sorted((ROOT / "tests" / "data" / "neardup" / "texts").glob("*.txt")):
        if not re.search(r"\.(de|fr)\.txt$", path.name):
            words += re.findall(r"[A-Za-z][A-Za-z'-]*[A-Za-z]|[A-Za-z]|\d+", path.read_text())
    lower = {w for w in words if w.islower()}
    words = [w.lower() if w.lower() in lower else w for w in words]
    return words, sorted({w for w in words if w[0].isupper() and w.isalpha()})


class TextMaker:
    def __init__(self, rng: random.Random) -> None:
        self.rng, (self.words, self.names) = rng, vocabulary()

    def title(self, lo: int = 6, hi: int = 13) -> str:
        t = " ".join(self.rng.choice(self.words) for _ in range(self.rng.randint(lo, hi)))
        return t[0].upper() + t[1:]

    def paragraph(self, words: int, lo: int = 8, hi: int = 26) -> str:
        """Sentences of lo-hi words, to at least `words` words."""
        out: list[str] = []
        while sum(s.count(" ") + 1 for s in out) < words:
            out.append(self.title(lo, hi) + ".")
        return " ".join(out)

    def text(self, words: int) -> str:
        """Paragraphs of 40-110 words, to at least `words` words."""
        paras = []
        while words > 0:
            paras.append(self.paragraph(n := min(words, self.rng.randint(40, 110))))
            words -= n
        return "\n\n".join(paras)

    def edit(self, text: str) -> str:
        """A copy with about one sentence in ten rewritten and a dateline added."""
        paras = []
        for para in text.split("\n\n"):
            new = (self.title(8, 26) if self.rng.random() < 0.1 else s for s in para.split(". "))
            paras.append(". ".join(new))
        return f"{self.rng.choice(self.names).upper()} (Wire) - " + "\n\n".join(paras)
