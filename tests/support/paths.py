"""Where things are: the repository, and the test data beside the tests."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository's root (pyproject.toml, README.md, docs/, sql/, seeds/)."""

DATA = ROOT / "tests" / "data"
"""Feeds, pages, sitemaps and near-duplicate pairs written for the tests."""
