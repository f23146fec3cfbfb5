"""Closures kept by their roots (fodhash.cache.closures): what the fast path reads instead
of the .drv files of a closure it read before. Real derivations, from real Nix."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import fod_nix

from fodhash.cache import closures
from fodhash.nix.derivations import Derivation, read_closure

pytestmark = pytest.mark.nix


# A FOD (read whole) and a derivation that consumes it (read up to its inputs).
CLOSURE = f"""
let fod = {fod_nix("fod", "sha256-ZALx1bsx+dCUMFQyJuh4stSjgt4WoxT3UuHHh3NamCc=", "echo fod > $out")};
in derivation {{ name = "app"; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ "-c" "cat ${{fod}} > $out" ]; }}
"""


@pytest.fixture
def graph(tmp_path: Path) -> tuple[list[str], dict[str, Derivation]]:
    file = tmp_path / "closure.nix"
    file.write_text(CLOSURE)
    roots = subprocess.run(["nix-instantiate", str(file)], capture_output=True, text=True,
                           check=True).stdout.split()
    return roots, read_closure(roots)


def _whole(graph: dict[str, Derivation]) -> dict[str, tuple[object, ...]]:
    # Derivation's equality leaves out `complete` and `input_outputs`: compare them too.
    return {p: (d, d.complete, d.input_outputs) for p, d in graph.items()}


def test_a_kept_closure_is_the_closure_read(graph: tuple[list[str], dict[str, Derivation]]) -> None:
    roots, read = graph
    assert any(d.output_hash is not None for d in read.values())  # FODs, read whole
    assert any(not d.complete for d in read.values())  # and others, read to their inputs
    assert closures.load(roots) is None
    closures.store(roots, read)
    kept = closures.load(list(reversed(roots)))  # the roots in any order
    assert kept is not None
    assert _whole(kept) == _whole(read)


def test_a_damaged_or_foreign_file_is_read_as_absent(graph: tuple[list[str], dict[str, Derivation]]) -> None:
    roots, read = graph
    closures.store(roots, read)
    [file] = closures.folder().glob("*.json")
    file.write_text(file.read_text()[:100])
    assert closures.load(roots) is None
    file.write_text('{"version": 999, "roots": [], "derivations": []}')
    assert closures.load(roots) is None


def test_only_the_newest_are_kept(graph: tuple[list[str], dict[str, Derivation]]) -> None:
    _, read = graph
    for n in range(closures.KEEP + 3):
        closures.store([f"/nix/store/{n:032d}-x.drv"], read)
    assert len(list(closures.folder().glob("*.json"))) == closures.KEEP
    assert closures.load(["/nix/store/" + "0" * 32 + "-x.drv"]) is None  # the oldest went
    assert closures.load([f"/nix/store/{closures.KEEP + 2:032d}-x.drv"]) is not None


def test_a_folder_that_cannot_be_made_keeps_nothing(
        graph: tuple[list[str], dict[str, Derivation]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    roots, read = graph
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("FODHASH_CACHE_DIR", str(blocker))  # the cache "folder" is a file
    closures.store(roots, read)
    assert closures.load(roots) is None
