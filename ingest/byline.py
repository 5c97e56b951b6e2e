"""A byline as the people who wrote the article: one name each, in page order, without labels,
e-mail addresses, ids, or the site's own name. Also what counts as one of the site's own names.
Pure."""

from __future__ import annotations

import re

from ingest.normalize import clean_inline

# Separators that always part two people, and conjunctions that part them only when each
# side is a full name of two words or more ("Jane Doe and John Smith", but "José Ortega y
# Gasset", "Mac & i", "Tom & Jerry" stay whole). Conjunctions are lower case: "Kevin I Brown"
# has a middle initial, not a Catalan "i". A byline written in capitals ("BY JANE DOE AND
# JOHN SMITH") writes them in capitals (`_CAPS`).
_HARD = re.compile(r"\s*[,;/|•·]\s*")
_CONJUNCTIONS = r"&|\+|and|und|et|y|e|og|och|en|i|és|oraz|и"
_SOFT = re.compile(rf"\s+(?:{_CONJUNCTIONS})\s+")
# The conjunction of a list's last name after a comma ("Jane Doe, John Smith, and Mary Major").
_LEADING_SOFT = re.compile(rf"^(?:{_CONJUNCTIONS})\s+")
# A generational suffix set off by a comma ("Jane Doe, Jr."): part of the name before it.
_GENERATION = re.compile(r"(?:jr|sr|ii|iii|iv)\.?", re.IGNORECASE)
# A single capitalised word set off after a full name ("Von Jana Müller, Berlin", "By Jane
# Doe, Washington"): the dateline the story was filed from, or a degree ("PhD"), not a person,
# who is named by two words or more. Agencies sign with one word all the same; scripts without
# letter case write a full name as one word.
_ONE_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*\.?")
# Decoration before a name: "By", "Von", "Autor:", "Text und Fotos:", WordPress's author link
# ("View all posts by", "Zeige alle Beiträge von")... A label ending in a
# colon ("Quelle:", "Text und Fotos:") goes whatever its words.
PREFIX = re.compile(
    r"^\s*(?:[^:]{1,30}:\s+|(?:by|von|par|por|di|door|av|af|przez|от|автор|written by|"
    r"view all posts by|zeige alle beiträge von|posted by|published by|reported by|text|"
    r"autor|autorin|auteur|author|reporter)\s+)",
    re.IGNORECASE,
)
_PREFIX_WORDS = frozenset(
    {"by", "von", "par", "por", "di", "door", "av", "af", "text", "autor", "author", "quelle"}
)
# A credit for the pictures, graphics or video beside the article ("Photos by John Smith",
# "Fotos und Video: John Smith"): they took no part in writing it, so are no authors, nor are
# the people and agencies after them up to a label of their own ("Photos by John Smith/AP;
# Text: Jane Doe"). A label that also names the text ("Text und Fotos: Jane Doe") is the
# writer's.
_CREDITED = (
    r"(?:photo(?:graph)?s?|photography|pictures?|images?|(?:info)?graphics?|illustrations?|"
    r"videos?|vidéos?|footage|cartoons?|camera|fotos?|fotografie|bild(?:er)?|grafik(?:en)?|"
    r"illustrationen|kamera)"
)
_CREDIT = re.compile(
    rf"^{_CREDITED}(?:(?:\s*[&+]\s*|\s+(?:and|und|et|y|e)\s+){_CREDITED})*"
    r"(?::|\s+(?:by|von|par|por|di|door|av|af)\s)",
    re.IGNORECASE,
)
# A date or time written after a name ("Jane Doe 2 hours ago", "By Jane Doe on June 2, 2025",
# "Von Jana Müller am 2. Juni 2025", "— Updated 6:01 AM"), with its label and preposition: when
# the byline was written, and its digits would make the name none (`_plausible`). Month names
# are English only, where the month comes before the day; elsewhere the day comes first and a
# day, a word and a year make a date in any language.
_MONTHS = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_WHEN = re.compile(
    r"\s+(?:[-–—@]\s+)?"
    r"(?:(?:(?:last\s+)?(?:updated|published|posted|modified)|aktualisiert|veröffentlicht|"
    r"erschienen|stand|publié|mis à jour)\s*:?\s+)?"
    r"(?:(?:on|am|um|vom|le|el|il|op|at|den|du)\s+)?"
    r"(?:(?:mon|tues|wednes|thurs|fri|satur|sun)day,?\s+)?"
    r"(?:\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}-\d{2}-\d{2}|\d{1,2}:\d{2}"
    r"|\d{1,2}\.?\s+(?:de\s+)?[^\W\d_]{3,}\.?,?\s+(?:de\s+)?\d{4}"
    rf"|(?:{_MONTHS})\.?\s+\d{{1,2}}"
    r"|\d+\s*(?:s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?|months?|"
    r"y|yrs?|years?)\s+ago"
    r"|vor\s+\d+\s+(?:sekunden?|minuten?|stunden?|tag(?:en)?|wochen?|monat(?:en)?|jahr(?:en)?))"
    r"\b",
    re.IGNORECASE,
)
_BRACKETED = re.compile(r"\s*[(\[（【][^)\]）】]{0,40}[)\]）】]\s*")
_CJK_BRACKETS = str.maketrans("", "", "【】「」『』〔〕")
_EMAIL = re.compile(r"\S+@\S+")
# RSS's `author` form, an address and the name in brackets ("jane@example.com (Jane Doe)"),
# which templates copy from their feed into the page: the name is the person.
_EMAIL_NAME = re.compile(r"(?<![^\s(),;])[^\s(),;@]+@[^\s(),;@]+\s*\(([^()@]{1,80})\)")
_URL = re.compile(r"\(?https?://[^\s)]*\)?")
# A host name as a byline ("mdr.de", "www.dw.com"): lower-case labels and a letters-only TLD,
# not preceded by a word character ("G.Rossi" is a person, "Golem.de" is judged by the site's
# names instead).
_HOSTLIKE = re.compile(r"(?<![\w.])(?:www\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,24}(?![\w.])")
# News agencies sign in lower case or as acronyms; they are authors all the same.
AGENCIES = frozenset(
    {
        "aap", "afp", "ani", "ansa", "anp", "antara", "ap", "apa", "ats", "belga", "bernama",
        "bta", "cna", "ctk", "dpa", "dts", "efe", "epd", "hina", "ians", "interfax", "irna",
        "jiji", "kna", "kyodo", "lusa", "mena", "mti", "ntb", "pa", "pap", "pna", "pti",
        "reuters", "ritzau", "sda", "sid", "stt", "tasr", "tass", "ukrinform", "unian", "upi",
        "vna", "wafa", "xinhua", "yonhap",
    }
)  # fmt: skip
# Interface labels that templates put where a byline goes.
_LABELS = re.compile(
    r"この記事を書いた人|この記事の筆者|すべて見る|もっと見る|記事一覧|"
    r"^(?:themen bearbeiten|mehr (?:zum autor|von)|alle artikel|view all posts|more by|"
    r"follow|folgen|profile|profil|staff|redaktion|editorial team|admin|administrator|"
    r"anonymous|unknown|guest|gast)\b",
    re.IGNORECASE,
)
# Words of the page's furniture that stand alone where a byline goes ("Updated", "Share",
# "Comments", "Advertisement"): no person. Whole bylines only: "Home" is no name, a "Homer" is.
_LABEL_WORDS = re.compile(
    r"(?:last\s+)?(?:updated|published|posted|modified)|shares?|comments?|subscribe|"
    r"advertisement|anzeige|werbung|sponsored|newsletter|menu|home|opinion|startseite|teilen|"
    r"kommentare",
    re.IGNORECASE,
)
_PARTICLES = frozenset(
    "von van der den de del della di da dos du la le ten ter bin al el ibn zu y e".split()  # noqa: SIM905
)
# The last word of a job title set off by a comma ("Priya Raman, Political Correspondent",
# "Anna Schmidt, Korrespondentin", "Washington Bureau Chief"): a role, not a person. No word
# that is also a surname ("Writer"); lower-case titles fail the test of capitals
# (`_plausible`) already.
_ROLES = frozenset(
    {
        "analyst",
        "chief",
        "columnist",
        "contributor",
        "correspondent",
        "correspondante",
        "corresponsal",
        "critic",
        "editor",
        "journalist",
        "journaliste",
        "korrespondent",
        "korrespondentin",
        "periodista",
        "photographer",
        "producer",
        "redakteur",
        "redakteurin",
        "reporter",
        "reporterin",
    }
)
# Places of several words that datelines name after a byline ("By Jane Doe, New York"): the
# cities the AP Stylebook lets stand alone, other large cities and regions often filed from,
# and countries and states of several words. Written out rather than taken from a gazetteer:
# GeoNames' lists run to 180 MB and name many places after people ("Benito Juárez").
_PLACES = frozenset(
    re.split(
        r"\s*\|\s*",
        """
    abu dhabi|addis ababa|buenos aires|cape town|capitol hill|dar es salaam|des moines|
    el paso|fort lauderdale|fort worth|gaza city|gaza strip|guatemala city|ho chi minh city|
    hong kong|jersey city|kansas city|kuala lumpur|kuwait city|las vegas|long beach|
    los angeles|mexico city|ciudad de méxico|new delhi|new orleans|new york|new york city|
    oklahoma city|panama city|quebec city|rio de janeiro|salt lake city|san antonio|
    san diego|san francisco|san jose|san josé|san juan|san salvador|santa fe|santo domingo|
    são paulo|sao paulo|silicon valley|st. louis|st louis|st. paul|st. petersburg|
    tel aviv|the hague|vatican city|wall street|washington d.c|west bank|frankfurt am main|
    den haag|sri lanka|new zealand|south africa|south korea|north korea|south sudan|
    saudi arabia|united states|united kingdom|united arab emirates|costa rica|puerto rico|
    el salvador|sierra leone|burkina faso|ivory coast|czech republic|dominican republic|
    new jersey|new mexico|new hampshire|north carolina|south carolina|north dakota|
    south dakota|rhode island|west virginia|british columbia|nova scotia|new south wales|
    northern ireland|la paz|phnom penh|middle east|east jerusalem|beverly hills|palo alto|
    mountain view|baton rouge|little rock|palm beach|west palm beach|san bernardino|
    santa barbara|santa monica|santa clara|colorado springs|corpus christi|ann arbor
    """.strip(),
    )
)
# A place written after a name with the preposition of a dateline ("Jane Doe in New York",
# "Jana Müller aus Berlin", "Jean Dupont à Paris"), lower case: "Jan in 't Veld" is a name.
_PREPOSITIONS = r"in|reporting from|aus|à|en"
_FILED_FROM = re.compile(rf"\s+(?:{_PREPOSITIONS})\s+(?=[^\W\d_])")
# The same words in capitals, as a byline written in capitals has them: where a piece has no
# lower-case letter, its "AND" parts two people and its "IN" sets off a place as "and" and "in"
# do elsewhere (`_in_capitals`).
_CAPS = {
    _SOFT: re.compile(rf"\s+(?:{_CONJUNCTIONS.upper()})\s+"),
    _LEADING_SOFT: re.compile(rf"^(?:{_CONJUNCTIONS.upper()})\s+"),
    _FILED_FROM: re.compile(rf"\s+(?:{_PREPOSITIONS.upper()})\s+(?=[^\W\d_])"),
}
# An abbreviated state or country after a dateline ("Washington, D.C.", "Sacramento, Calif.")
_ABBREVIATED = re.compile(r"(?:[^\W\d_]\.){2,3}|[A-Z][a-z]{1,4}\.")
# The paper a person writes for, set off after the name ("Jane Doe, The Washington Post",
# "Los Angeles Times", "Special to The Globe and Mail"): its last word, or words before it.
_PAPERS = frozenset(
    {
        "times", "tribune", "herald", "gazette", "chronicle", "journal", "magazine",
        "telegraph", "inquirer", "examiner", "today", "daily", "newspaper", "news", "zeitung",
    }
)  # fmt: skip
_WRITES_FOR = re.compile(r"(?:the|special to|for|für|pour|para)\s", re.IGNORECASE)
_MAX_NAME = 80
# Characters no name holds once its bracketed parts are gone: an unbalanced bracket is a label
# cut at its count ("人氣(" of "人氣( 23925 )"), asterisks and markup are decoration.
_NOT_IN_NAMES = re.compile(r"[()\[\]{}<>*=#（）]")


def authors(value: str | None, *, site_names: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The people of a byline string, each once, in order. `site_names` are the site's own
    names (og:site_name, publisher, host): never an author."""
    text = clean_inline(value, max_length=1000)
    if not text:
        return ()
    text = _undated(_EMAIL.sub(",", _EMAIL_NAME.sub(r",\1,", _URL.sub(" ", text))))
    people: list[str] = []
    seen: set[str] = set()
    added = False  # whether the piece before gave the last person
    credit = False  # whether the pieces are a credit's (`_CREDIT`) until one with a label
    for i, piece in enumerate(_HARD.split(text)):
        if added and _GENERATION.fullmatch(piece):
            seen.discard(people[-1].casefold())
            people[-1] = f"{people[-1]} {piece.rstrip('.')}"
            seen.add(people[-1].casefold())
            continue
        after_name = added and len(people[-1].split()) > 1
        if after_name and (_place(piece) or _paper(piece)):
            continue  # the place or paper of the name before: the next piece follows it still
        added = False
        credit = bool(_CREDIT.match(piece)) or (credit and not PREFIX.match(piece))
        if credit or _HOSTLIKE.search(piece):
            continue
        for part in _split_soft(_as_written(_LEADING_SOFT, piece).sub("", piece) if i else piece):
            name = _name(_filed_by(part))
            if name is None or is_site_name(name, site_names) or name.casefold() in seen:
                continue
            seen.add(name.casefold())
            people.append(name)
            added = True
    return tuple(people)


def joined(people: tuple[str, ...], max_length: int = 500) -> tuple[str, tuple[str, ...]]:
    """The `, `-joined byline of `people` and the people it holds: whole names only, as many
    as fit in `max_length` characters, so that the two always agree."""
    kept: list[str] = []
    for person in people:
        if len(", ".join([*kept, person])) > max_length:
            break
        kept.append(person)
    return ", ".join(kept), tuple(kept)


def is_site_name(value: str, site_names: tuple[str, ...]) -> bool:
    """Whether `value` is one of the site's own names: equal (case-insensitively) to one of
    them, to a host among them without `www.`, or to that host's first label ("golem" of
    golem.de), or that name followed by more words ("n-tv NACHRICHTEN" on n-tv.de)."""
    folded = value.casefold().strip().removeprefix("www.")
    for site in site_names:
        name = site.casefold().strip().removeprefix("www.")
        if not name:
            continue
        label = name.split(".")[0] if "." in name else name
        if folded in (name, label) or folded.startswith((name + " ", label + " ")):
            return True
    return False


def not_only_site_name(title: str | None, site_names: tuple[str, ...]) -> str | None:
    """`title` unless it is one of the site's names and nothing else (`Golem.de`, `golem`):
    a template that titles every page with the site's name names no headline."""
    if not title:
        return None
    folded = title.casefold().strip().removeprefix("www.")
    for site in site_names:
        name = site.casefold().strip().removeprefix("www.")
        if name and folded in (name, name.split(".")[0]):
            return None
    return title


def _place(piece: str) -> bool:
    """Whether `piece`, set off after a full name, is a place or a title (`_ONE_WORD`), a
    place of several words (`_PLACES`) or an abbreviated one (`_ABBREVIATED`) rather than a
    person."""
    if not piece[:1].isupper():
        return False
    folded = piece.rstrip(".").casefold()
    if _ONE_WORD.fullmatch(piece) is not None:
        return folded not in AGENCIES
    return folded in _PLACES or _ABBREVIATED.fullmatch(piece) is not None


def _paper(piece: str) -> bool:
    """Whether `piece`, set off after a full name, is the paper that person writes for
    (`_PAPERS`, `_WRITES_FOR`) rather than a second author."""
    words = piece.split()
    return len(words) > 1 and (bool(_WRITES_FOR.match(piece)) or words[-1].casefold() in _PAPERS)


def _filed_by(part: str) -> str:
    """`part` without the place it was filed from (`_FILED_FROM`) after a name of two words
    or more: "Jane Doe in New York" is Jane Doe."""
    match = _as_written(_FILED_FROM, part).search(part)
    if match is None:
        return part
    name, place = PREFIX.sub("", part[: match.start()]), part[match.end() :]
    words = place.split()
    if (
        len(name.split()) > 1
        and len(words) <= 4
        and all(w[:1].isupper() or w in _PARTICLES for w in words)
    ):
        return part[: match.start()]
    return part


def _undated(text: str) -> str:
    """`text` up to the first date or time (`_WHEN`) that follows a name: the rest is that
    time and what goes with it (the year, a time zone, "Uhr"), no author. The name before it
    must be one of two words or more, or an agency: a single word before a date is as likely
    a label ("Share 2 hours ago", "Comments 3 min ago"), which the date's digits keep from
    being taken for a name."""
    for match in _WHEN.finditer(text):
        name = _name(_HARD.split(text[: match.start()])[-1])
        if name and (len(name.split()) > 1 or name.casefold() in AGENCIES):
            return text[: match.start()]
    return text


def _in_capitals(text: str) -> bool:
    """Whether `text`, without its label ("By", "Von"), has letters with case and none in
    lower case: a byline written in capitals."""
    name = PREFIX.sub("", text)
    return any(ch.isupper() for ch in name) and not any(ch.islower() for ch in name)


def _as_written(pattern: re.Pattern[str], text: str) -> re.Pattern[str]:
    """`pattern`, or its words in capitals (`_CAPS`) where `text` is written in capitals."""
    return _CAPS[pattern] if _in_capitals(text) else pattern


def _split_soft(piece: str) -> list[str]:
    parts = _as_written(_SOFT, piece).split(piece)
    if len(parts) > 1 and all(len(p.split()) >= 2 and p.casefold() not in _PLACES for p in parts):
        return parts
    return [piece]


def _name(part: str) -> str | None:
    stripped = PREFIX.sub("", part)
    # "Von der Leyen" is a name, not "Von" + "der Leyen".
    if stripped[:1].islower() and stripped.split(" ", 1)[0].casefold() in _PARTICLES:
        stripped = part
    text = _BRACKETED.sub(" ", stripped.translate(_CJK_BRACKETS))
    name = " ".join(text.split()).strip(" ,;:|-–—.\"'")
    return name if _plausible(name) else None


def _plausible(name: str) -> bool:
    if not name or len(name) > _MAX_NAME or _LABELS.search(name) or _NOT_IN_NAMES.search(name):
        return False
    if _LABEL_WORDS.fullmatch(name):
        return False
    folded = name.casefold()
    if folded in AGENCIES:
        return True
    if folded in _PREFIX_WORDS:
        return False
    if any(ch.isdigit() for ch in name) or not any(ch.isalpha() for ch in name):
        return False
    words = name.split()
    if len(words) > 6 or words[-1].casefold().removesuffix("s") in _ROLES:
        return False
    # In scripts with letter case a name starts with a capital, and most of its words do
    # ("Themen bearbeiten" is a label; "Organization for Transformative Works" is a name).
    cased = [w for w in words if w[0].isalpha() and w[0].upper() != w[0].lower()]
    lower = [w for w in cased if not w[0].isupper() and w.casefold() not in _PARTICLES]
    return not cased or (cased[0][0].isupper() and 2 * len(lower) < len(cased))
