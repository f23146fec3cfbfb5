"""constraints.txt, the versions `make setup` installs, covers pyproject.toml: every
dependency (and every dev one) is pinned there, inside its range (docs/performance.md,
"Reproducible dependencies")."""

from __future__ import annotations

import re
import tomllib

from helpers import ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

LOCK = ROOT / "constraints.txt"


def pins() -> dict[str, Version]:
    found: dict[str, Version] = {}
    for raw in LOCK.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)", line)
        assert match, f"constraints.txt: not a pin: {raw!r}"
        name = canonicalize_name(match[1])
        assert name not in found, f"constraints.txt pins {name} twice"
        found[name] = Version(match[2])
    return found


def requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    return [Requirement(r) for r in [*project["dependencies"], *extras.get("dev", [])]]


def test_every_dependency_of_pyproject_is_pinned_inside_its_range() -> None:
    locked = pins()
    reqs = requirements()
    assert reqs
    for req in reqs:
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} (pyproject.toml) is not in constraints.txt"
        assert req.specifier.contains(locked[name], prereleases=True), (
            f"constraints.txt pins {name}=={locked[name]}, outside pyproject.toml's {req}")


def test_the_lock_holds_no_package_of_this_repository_and_make_setup_uses_it() -> None:
    assert "fodhash" not in pins()  # the editable install is this checkout, never a pin
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"pip install .*-c constraints\.txt -e '\.\[dev\]'", makefile)
    assert re.search(r"^\$\(VENV\)/\.installed: .*constraints\.txt", makefile, re.M)


def test_the_locked_typer_does_not_bring_pydantic() -> None:
    """typer 0.29 requires pydantic and imports it for every command (0.3 s a run): the
    lock and pyproject.toml's bound keep it out."""
    locked = pins()
    assert locked[canonicalize_name("typer")] < Version("0.29")
    assert "pydantic" not in locked and "pydantic-core" not in locked
