"""Retention periods as the command line writes them (`90d`, `12h`, `2w`): pure parsing, used by
`ingest prune`."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+)\s*([smhdw])")


def parse_duration(text: str) -> timedelta:
    """A whole number and a unit: s(econds), m(inutes), h(ours), d(ays) or w(eeks), e.g. `90d`.
    Raises ValueError for anything else, and for zero (which would mean every article)."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"not a duration like 90d, 12h or 2w: {text!r}")
    seconds = int(match[1]) * _UNITS[match[2]]
    if seconds == 0:
        raise ValueError(f"must be longer than zero: {text!r}")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"too long: {text!r}") from None
