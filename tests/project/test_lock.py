"""constraints.txt, the versions the tests pass with: it pins every package the project and its
`dev` extra need (however deep), each pin within pyproject.toml's range, the environment running
the tests has exactly those versions (`make install` reads the file), and the image installs
with it. Run `make lock` after changing a dependency."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support.paths import ROOT

LOCK = ROOT / "constraints.txt"
HINT = "run `make lock` after changing a dependency, then `make install`"


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for n, line in enumerate(LOCK.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)", line)
        assert match, f"constraints.txt:{n}: not `name==version`: {line!r}"
        name = canonicalize_name(match[1])
        assert name not in pins, f"constraints.txt:{n}: {name} pinned twice"
        pins[name] = Version(match[2])
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [
        Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    ]


def _needed() -> set[str]:
    """Every distribution the project and its dev extra need on this interpreter, following
    each installed distribution's own requirements (with their markers and extras)."""
    needed: set[str] = set()
    todo = _declared()
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        extras = requirement.extras
        key = name + ("[" + ",".join(sorted(extras)) + "]" if extras else "")
        if key in needed:
            continue
        needed.add(key)
        needed.add(name)
        for text in metadata.requires(name) or []:
            inner = Requirement(text)
            if inner.marker is None or any(
                inner.marker.evaluate({"extra": extra}) for extra in (extras or {""})
            ):
                todo.append(inner)
    return {n for n in needed if "[" not in n}


def test_every_package_the_project_needs_is_pinned() -> None:
    missing = sorted(_needed() - set(_pins()))
    assert not missing, f"not pinned in constraints.txt: {missing}; {HINT}"


def test_each_pin_is_within_the_range_pyproject_declares() -> None:
    pins = _pins()
    outside = [
        f"{r.name}=={pins[canonicalize_name(r.name)]} (pyproject.toml: {r.specifier})"
        for r in _declared()
        if not r.specifier.contains(pins[canonicalize_name(r.name)], prereleases=True)
    ]
    assert not outside, f"pins outside pyproject.toml's ranges: {outside}; {HINT}"


@pytest.mark.parametrize("name", sorted(_pins()))
def test_the_tests_run_with_the_pinned_version(name: str) -> None:
    installed = Version(metadata.version(name))
    assert installed == _pins()[name], (
        f"{name} {installed} is installed, constraints.txt pins {_pins()[name]}: "
        "run `make install` (it reads constraints.txt)"
    )


def test_the_image_installs_the_pinned_versions() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^COPY [^\n]*\bconstraints\.txt\b", dockerfile, re.MULTILINE)
    installs = re.findall(r"pip install [^\n\\]*", dockerfile)
    assert installs
    assert all("-c constraints.txt" in i for i in installs), installs
