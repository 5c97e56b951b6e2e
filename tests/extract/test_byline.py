"""ingest.byline: a byline string as the people who wrote the article."""

from __future__ import annotations

import pytest

from ingest.byline import authors, joined
from ingest.extract.metadata import strip_site_affixes


@pytest.mark.parametrize(
    ("value", "sites", "expected"),
    [
        ("By Jane Doe and John Smith", (), ("Jane Doe", "John Smith")),
        ("Jane Doe, Jane Doe", (), ("Jane Doe",)),
        ("Quelle: sid/dpa", (), ("sid", "dpa")),
        ("Elena Oberholzer (obe), Max Muster (mm)", (), ("Elena Oberholzer", "Max Muster")),
        ("Ludwig van Beethoven", (), ("Ludwig van Beethoven",)),
        ("【佐藤美咲】", (), ("佐藤美咲",)),
        ("人氣(", (), ()),
        ("*****Notes*****", (), ()),
        ("Jane Doe (AFP", (), ()),
        ("View all posts by Jane Doe", (), ("Jane Doe",)),
        ("Zeige alle Beiträge von Max Muster", (), ("Max Muster",)),
        ("Bradley M. Kuhn (http://ebb.org/bkuhn/)", (), ("Bradley M. Kuhn",)),
        ("Organization for Transformative Works", (), ("Organization for Transformative Works",)),
        # Labels, e-mail addresses and ids are not people.
        ("Themen bearbeiten", (), ()),
        ("この記事を書いた人", (), ()),
        ("Updated", (), ()),
        ("Last Updated", (), ()),
        ("Comments", (), ()),
        ("Advertisement", (), ()),
        ("Home", (), ()),
        ("Published by Jane Doe", (), ("Jane Doe",)),
        ("Homer Simpson", (), ("Homer Simpson",)),
        ("News Desk", (), ("News Desk",)),
        ("d.kuckelkorn@example.de", (), ()),
        ("105092", (), ()),
        # The site's own name is never an author.
        ("Jane Doe, Deutsche Welle (www.dw.com)", ("dw.com",), ("Jane Doe",)),
        ("mdr.de, Anna Schmidt", ("mdr.de",), ("Anna Schmidt",)),
        ("n-tv NACHRICHTEN", ("n-tv.de",), ()),
        ("LTO", ("LTO",), ()),
        (None, (), ()),
        # Names that look like lists or labels but are not.
        ("José Ortega y Gasset", (), ("José Ortega y Gasset",)),
        ("Kevin I Brown", (), ("Kevin I Brown",)),
        ("Alfred E Neuman", (), ("Alfred E Neuman",)),
        ("Von der Leyen", (), ("Von der Leyen",)),
        ("G.Rossi, M.Bianchi", (), ("G.Rossi", "M.Bianchi")),
        ("Иван Петров и Анна Смирнова", (), ("Иван Петров", "Анна Смирнова")),
        ("Text und Fotos: Jane Doe", (), ("Jane Doe",)),
        ("By", (), ()),
        ("Elena Oberholzer [obe]", (), ("Elena Oberholzer",)),
        # The last of a list joined with a comma and a conjunction (the serial comma).
        (
            "By Jane Doe, John Smith, and Mary Major",
            (),
            ("Jane Doe", "John Smith", "Mary Major"),
        ),
        ("Jane Doe, John Smith, & Mary Major", (), ("Jane Doe", "John Smith", "Mary Major")),
        (
            "Anna Müller, Peter Schmidt, und Eva Klein",
            (),
            ("Anna Müller", "Peter Schmidt", "Eva Klein"),
        ),
        # A job title set off by a comma is the role of the person before it, not a person.
        ("By Priya Raman, Political Correspondent", (), ("Priya Raman",)),
        ("By JANE DOE, Associated Press Correspondent", (), ("JANE DOE",)),
        ("Ada Writer", (), ("Ada Writer",)),
        ("Anna Schmidt, Korrespondentin", (), ("Anna Schmidt",)),
        (
            "Jane Doe, Senior Editor, and John Smith, Washington Bureau Chief",
            (),
            ("Jane Doe", "John Smith"),
        ),
        # A generational suffix after a comma is part of the name before it, not a person.
        ("Jane Doe, Jr.", (), ("Jane Doe Jr",)),
        ("John Smith, III, and Mary Major", (), ("John Smith III", "Mary Major")),
        # A single word after a full name is the place it was filed from (a dateline), a
        # degree or a zone, not a person; an agency signs with one word all the same, and
        # one-word names beside each other are names.
        ("Von Jana Müller, Berlin", (), ("Jana Müller",)),
        ("By Jane Doe, Washington", (), ("Jane Doe",)),
        ("JANE DOE, BERLIN, and John Smith, Paris", (), ("JANE DOE", "John Smith")),
        ("Иван Петров, Москва", (), ("Иван Петров",)),
        ("Jane Doe, Reuters", (), ("Jane Doe", "Reuters")),
        ("Priya Raman, PTI", (), ("Priya Raman", "PTI")),
        ("Siti Aminah, Bernama", (), ("Siti Aminah", "Bernama")),
        ("Kenji Sato, Jiji", (), ("Kenji Sato", "Jiji")),
        ("Jane Doe, M.Bianchi", (), ("Jane Doe", "M.Bianchi")),
        ("Doe, Smith", (), ("Doe", "Smith")),
        ("佐藤 美咲, 田中", (), ("佐藤 美咲", "田中")),
        # A date or time after a name is when it was written, not part of the name; before
        # a single word, it is as likely a label's ("Share", "Comments"), which stays no name.
        ("By Jane Doe on June 2, 2025", (), ("Jane Doe",)),
        ("Jane Doe 2 hours ago", (), ("Jane Doe",)),
        ("By Jane Doe — Updated 3 min ago", (), ("Jane Doe",)),
        ("By Jane Doe | Updated 3 min ago", (), ("Jane Doe",)),
        ("Jane Doe and John Smith Published 6:01 AM EDT", (), ("Jane Doe", "John Smith")),
        ("Von Jana Müller am 2. Juni 2025, 10:15 Uhr", (), ("Jana Müller",)),
        ("Par Jean Dupont le 02/06/2025", (), ("Jean Dupont",)),
        ("Jane Doe 2025-06-02", (), ("Jane Doe",)),
        ("dpa vor 5 Minuten", (), ("dpa",)),
        ("Share 2 hours ago", (), ()),
        ("Seite 1/2", (), ()),
        # A credit for photos, graphics or video names no author of the article.
        ("By Jane Doe; Photos by John Smith", (), ("Jane Doe",)),
        ("Text: Jane Doe, Fotos und Video: John Smith", (), ("Jane Doe",)),
        ("Jane Doe | Photography: John Smith and Mary Major", (), ("Jane Doe",)),
        ("By Jane Doe; Photos by John Smith/AP", (), ("Jane Doe",)),
        ("Photos: John Smith, Mary Major; Text: Jane Doe", (), ("Jane Doe",)),
        # RSS's `address (Name)`: the name in brackets is the person.
        ("jane@example.com (Jane Doe)", (), ("Jane Doe",)),
        (
            "jane@example.com (Jane Doe), john@example.com (John Smith)",
            (),
            ("Jane Doe", "John Smith"),
        ),
        ("Jane Doe (jane@example.com)", (), ("Jane Doe",)),
        # A place of several words after a full name is a dateline as a single word is, and
        # so is one given with a preposition ("in", "reporting from", "aus", "à", "en").
        ("By Jane Doe, New York", (), ("Jane Doe",)),
        ("Jane Doe, Hong Kong", (), ("Jane Doe",)),
        ("JANE DOE, LOS ANGELES", (), ("JANE DOE",)),
        ("Jane Doe, Rio de Janeiro", (), ("Jane Doe",)),
        ("Jane Doe, Washington, D.C.", (), ("Jane Doe",)),
        ("By Jane Doe, Sacramento, Calif.", (), ("Jane Doe",)),
        ("Jane Doe in New York", (), ("Jane Doe",)),
        ("Jane Doe in Kyiv and John Smith in Moscow", (), ("Jane Doe", "John Smith")),
        ("By Jane Doe reporting from Kyiv", (), ("Jane Doe",)),
        ("Von Jana Müller aus Berlin", (), ("Jana Müller",)),
        ("Par Jean Dupont à Paris", (), ("Jean Dupont",)),
        ("Por Juan Pérez en Ciudad de México", (), ("Juan Pérez",)),
        # The paper a person writes for, set off after the name, is no second author; an
        # agency still is one, and so is a publication that signs alone.
        ("Jane Doe, The Washington Post", (), ("Jane Doe",)),
        ("By Jane Doe and John Smith, Los Angeles Times", (), ("Jane Doe", "John Smith")),
        ("Jane Doe, USA TODAY", (), ("Jane Doe",)),
        ("Jane Doe, CBS News", (), ("Jane Doe",)),
        ("Jane Doe, Special to The Globe and Mail", (), ("Jane Doe",)),
        ("Jane Doe, for The Guardian", (), ("Jane Doe",)),
        ("The Washington Post", (), ("The Washington Post",)),
        ("Jane Doe, Associated Press", (), ("Jane Doe", "Associated Press")),
        ("Jane Doe, Mary Newsome", (), ("Jane Doe", "Mary Newsome")),
        ("Jan in 't Veld", (), ("Jan in 't Veld",)),
        # A byline written in capitals writes its conjunctions and prepositions in capitals
        # too: they part people and set off places as in lower case, by the same rules.
        ("BY JANE DOE AND JOHN SMITH", (), ("JANE DOE", "JOHN SMITH")),
        ("JANE DOE, JOHN SMITH, AND MARY MAJOR", (), ("JANE DOE", "JOHN SMITH", "MARY MAJOR")),
        ("ANNA MÜLLER UND PETER SCHMIDT", (), ("ANNA MÜLLER", "PETER SCHMIDT")),
        ("JANE DOE IN KYIV AND JOHN SMITH IN MOSCOW", (), ("JANE DOE", "JOHN SMITH")),
        ("BY JANE DOE IN NEW YORK", (), ("JANE DOE",)),
        ("VON JANA MÜLLER AUS BERLIN", (), ("JANA MÜLLER",)),
        ("KEVIN I BROWN", (), ("KEVIN I BROWN",)),
        ("JOSÉ ORTEGA Y GASSET", (), ("JOSÉ ORTEGA Y GASSET",)),
        ("JAN IN 'T VELD", (), ("JAN IN 'T VELD",)),
    ],
)
def test_authors(value: str | None, sites: tuple[str, ...], expected: tuple[str, ...]) -> None:
    """Each person once, in order, without decoration."""
    assert authors(value, site_names=sites) == expected


def test_joined_byline_and_people_agree() -> None:
    """A byline too long for the column keeps whole names only, and the same names."""
    people = tuple(f"Reporter Number{chr(65 + i % 26)}{chr(65 + i // 26)}" for i in range(40))
    byline, kept = joined(people, max_length=100)
    assert byline == ", ".join(kept)
    assert len(byline) <= 100
    assert kept == people[: len(kept)]


@pytest.mark.parametrize(
    ("title", "sites", "expected"),
    [
        (
            "Neue Grafikkarten vorgestellt - Golem.de",
            ("golem.de",),
            "Neue Grafikkarten vorgestellt",
        ),
        ("Golem.de | Neue Grafikkarten", ("golem.de",), "Neue Grafikkarten"),
        ("Streit in der Koalition - Scholz greift durch", ("zeit.de",), None),
    ],
)
def test_site_affixes(title: str, sites: tuple[str, ...], expected: str | None) -> None:
    """Only an affix that is one of the site's names is stripped."""
    assert strip_site_affixes(title, sites) == (expected or title)
