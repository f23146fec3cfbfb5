"""Reading the mismatch of a pin (a download Nix verifies while it evaluates), as Nix 2.8,
2.26 and 2.34 print it (tests/transcripts/record_pins.py recorded them in this project's
roots)."""

from __future__ import annotations

import pytest
from helpers import TRANSCRIPTS

from fodhash.hashes.encoding import parse_hash
from fodhash.nix.mismatch import parse_mismatches, parse_pin_mismatches

WRONG = parse_hash("0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73").hash
TREE = parse_hash("sha256-aMMGNwUX9zkF83bAJmeOJ6rJVNowMdKsSExSa/ChBiY=").hash
FILE = parse_hash("0zz3k5k3pccc6xhi4ygm4wcci2mzjlry8l32pi583zzf8jga5ca8").hash
GIT = "git+file:///tmp/pins/repo"


@pytest.mark.parametrize(("name", "source", "hashes"), [
    pytest.param("nix-2.8.0-eval-fetchtarball", "file:///tmp/pins/release.tar.gz", (WRONG, TREE)),
    pytest.param("nix-2.8.0-eval-fetchurl", "file:///tmp/pins/notes.txt", (WRONG, FILE)),
    pytest.param("nix-2.8.0-eval-fetchgit", f"{GIT}?rev=@REV@", (WRONG, TREE)),
    pytest.param("nix-2.26.3-eval-fetchtarball", "file:///tmp/pins/release.tar.gz", (WRONG, TREE)),
    pytest.param("nix-2.26.3-eval-fetchurl", "file:///tmp/pins/notes.txt", (WRONG, FILE)),
    pytest.param("nix-2.26.3-eval-fetchgit", f"{GIT}?exportIgnore=1&rev=@REV@", (WRONG, TREE)),
    pytest.param("nix-2.34.8-eval-fetchtarball", "file:///tmp/pins/release.tar.gz", (WRONG, TREE)),
    pytest.param("nix-2.34.8-eval-fetchurl", "file:///tmp/pins/notes.txt", (WRONG, FILE)),
    # 2.34's fetchGit calls the content's hash "expected" and the written one "got".
    pytest.param("nix-2.34.8-eval-fetchgit", f"{GIT}?exportIgnore=1&rev=@REV@", (TREE, WRONG)),
])
def test_pin_mismatch_of_every_version(name: str, source: str, hashes: tuple[object, object]) -> None:
    text = (TRANSCRIPTS / f"{name}.txt").read_text()
    [pin] = parse_pin_mismatches(text)
    assert pin.source == source
    assert pin.hashes == hashes
    assert parse_mismatches(text) == []  # never taken for a FOD's mismatch


def test_a_fods_mismatch_is_no_pin() -> None:
    for path in sorted(TRANSCRIPTS.glob("nix-*-nix-build-single.txt")):
        assert parse_pin_mismatches(path.read_text()) == [], path.name


def test_pin_mismatch_in_a_ci_log() -> None:
    """A log as CI shows it: timestamps in front, the indentation lost."""
    text = (TRANSCRIPTS / "nix-2.26.3-eval-fetchtarball.txt").read_text()
    logged = "\n".join(f"2026-12-03T04:00:00.1234567Z {line.strip()}" for line in text.splitlines())
    [pin] = parse_pin_mismatches(logged)
    assert pin.hashes == (WRONG, TREE)
