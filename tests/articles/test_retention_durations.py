"""ingest.retention.parse_duration: the ages `ingest prune --older-than` accepts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ingest.retention import parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", timedelta(days=90)),
        ("12h", timedelta(hours=12)),
        ("2w", timedelta(weeks=2)),
        ("45m", timedelta(minutes=45)),
        ("30s", timedelta(seconds=30)),
        (" 7D ", timedelta(days=7)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    """A whole number and one unit of s, m, h, d, w (any case, spaces around)."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "90", "d", "1.5d", "-3d", "3y", "1d2h", "0d", "99999999999w"])
def test_refused(text: str) -> None:
    """Anything else, zero (every article) and a length timedelta cannot hold are refused."""
    with pytest.raises(ValueError, match=repr(text)):
        parse_duration(text)
