"""Shared test set-up: no test touches the user's cache or home, Nix runs offline."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from helpers import copy_all_fixtures, copy_fixture

pytest_plugins = ["remote_builder"]  # a real remote Nix builder on loopback, for the tests


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("FODHASH_CACHE_DIR", str(cache))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache / "xdg"))
    # No binary cache is reachable here; without this each Nix call retries for 5 s.
    monkeypatch.setenv("NIX_CONFIG", os.environ.get("NIX_CONFIG", "substituters ="))
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Path]:
    yield copy_fixture("example", tmp_path)


@pytest.fixture
def shapes(tmp_path: Path) -> Iterator[Path]:
    yield copy_all_fixtures(tmp_path) / "shapes"




@cache
def nix_version() -> str:
    """The version of the Nix under test, e.g. 2.26.3 (`nix-store --version`)."""
    out = subprocess.run(["nix-store", "--version"], capture_output=True, text=True,
                         check=False).stdout
    return out.strip().rsplit(" ", 1)[-1]


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test tied to one Nix version's recorded output runs on that version only."""
    marker = item.get_closest_marker("nix_transcript")
    if marker is not None:
        wanted = str(marker.args[0])
        version = nix_version()
        if version != wanted and not version.startswith(wanted + "."):
            pytest.skip(f"compares with Nix {wanted}'s transcript; this is Nix {version}")
