"""Fetch tests talk to loopback servers only: the tripwire refuses (and records) any connection
that would leave 127.0.0.0/8, whatever the code under test does."""

from __future__ import annotations

import pytest

from tests.support.network import Tripwire


@pytest.fixture(autouse=True)
def _loopback_only(tripwire: Tripwire) -> Tripwire:
    return tripwire
