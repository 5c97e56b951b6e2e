"""A byline as the people who wrote the article: one name each, in page order, without labels,
e-mail addresses, ids, or the site's own name when a person is named. Pure."""

from __future__ import annotations

import re

from ingest.normalize import clean_inline

# Separators between two people of one byline string.
_SPLIT = re.compile(r"\s*(?:[,;/|•·]|\s&\s|\s(?:and|und|et|y|e|og|och|en|i|und)\s)\s*", re.I)
# Decoration around a name: "By", "Von", "Quelle:", "Text:", "Autor:"... at the start; roles
# and initials in brackets ("Elena Oberholzer (obe)") anywhere.
_PREFIX = re.compile(
    r"^\s*(?:(?:by|von|par|por|di|door|av|af|przez|от|автор|written by|posted by|"
    r"quelle|source|text|autor|autorin|auteur|author|reporter|fotos?|photos?)\s*:?\s+)+",
    re.IGNORECASE,
)
_BRACKETED = re.compile(r"\s*[(\[（][^)\]）]{0,40}[)\]）]\s*")
_CJK_BRACKETS = str.maketrans("", "", "【】「」『』〔〕")
_EMAIL = re.compile(r"\S+@\S+")
_URL = re.compile(r"\(?https?://[^\s)]*\)?")
# News agencies sign in lower case or as acronyms; they are authors all the same.
AGENCIES = frozenset(
    {
        "afp",
        "ap",
        "apa",
        "ansa",
        "anp",
        "belga",
        "dpa",
        "dts",
        "efe",
        "epd",
        "kna",
        "kyodo",
        "pa",
        "reuters",
        "sid",
        "sda",
        "ats",
        "tass",
        "upi",
        "xinhua",
        "yonhap",
    }
)
# Interface labels that templates put where a byline goes.
_LABELS = re.compile(
    r"この記事を書いた人|この記事の筆者|すべて見る|もっと見る|記事一覧|"
    r"^(?:themen bearbeiten|mehr (?:zum autor|von)|alle artikel|view all posts|more by|"
    r"follow|folgen|profile|profil|staff|redaktion|editorial team|admin|administrator|"
    r"anonymous|unknown|guest|gast)\b",
    re.IGNORECASE,
)
_PARTICLES = frozenset(
    [
        "von",
        "van",
        "der",
        "den",
        "de",
        "del",
        "della",
        "di",
        "da",
        "dos",
        "du",
        "la",
        "le",
        "ten",
        "ter",
        "bin",
        "al",
        "el",
        "ibn",
        "zu",
        "y",
        "e",
    ]
)
_HOSTLIKE = re.compile(r"(?:https?://)?(?:www\.)?[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}\b", re.I)


def authors(
    value: str | None, *, site_names: tuple[str, ...] = (), site_fallback: bool = True
) -> tuple[str, ...]:
    """The people of a byline string, each once, in order. `site_names` are the site's own
    names (og:site_name, publisher, host): dropped when a person is named beside them, and
    the only name returned when nobody is (unless `site_fallback` is false)."""
    text = clean_inline(value, max_length=1000)
    if not text:
        return ()
    text = _EMAIL.sub(",", _URL.sub(" ", text.translate(_CJK_BRACKETS)))
    people: list[str] = []
    sites: list[str] = []
    for part in _SPLIT.split(text):
        name = _BRACKETED.sub(" ", _PREFIX.sub("", part)).strip(" ,;:|-–—.\"'")
        name = " ".join(name.split())
        if not _plausible(name):
            continue
        if _HOSTLIKE.search(part) or _is_site(name, site_names):
            sites.append(name)
        elif name.casefold() not in (p.casefold() for p in people):
            people.append(name)
    if people or not site_fallback:
        return tuple(people)
    return tuple(dict.fromkeys(sites))[:1]


def _plausible(name: str) -> bool:
    if not name or len(name) > 80 or _LABELS.search(name):
        return False
    if name.casefold() in AGENCIES:
        return True
    if any(ch.isdigit() for ch in name) or not any(ch.isalpha() for ch in name):
        return False
    words = name.split()
    if len(words) > 6:
        return False
    # In scripts with letter case, each word of a name starts with a capital ("Themen
    # bearbeiten" is a label), particles aside.
    cased = [w for w in words if w[0].isalpha() and w[0].upper() != w[0].lower()]
    lower = [w for w in cased if not w[0].isupper() and w.casefold() not in _PARTICLES]
    return not cased or (cased[0][0].isupper() and 2 * len(lower) < len(cased))


def _is_site(name: str, site_names: tuple[str, ...]) -> bool:
    if _HOSTLIKE.search(name):
        return True
    folded = name.casefold()
    for site in site_names:
        s = site.casefold().removeprefix("www.")
        label = s.split(".")[0]
        if folded in (s, label) or folded.startswith((s, label + " ", label + ".")):
            return True
    return False
