"""Pins read without Nix (fodhash/sites/pins.py, fodhash/sites/target.py): which sites may be
one, which JSON pin files a target reads through the files it imports, their cache keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import FIXTURES

from fodhash.sites.json_file import locate_json
from fodhash.sites.nix_file import locate_in_bytes
from fodhash.sites.pins import maybe_pin, names_source, pin_key
from fodhash.sites.target import imports, json_read, references

PINS = FIXTURES / "pins"


def test_niv_and_npins_json_are_read_through_imports() -> None:
    default = PINS / "default.nix"
    assert imports(default, default.read_bytes()) == [PINS / "nix/sources.nix",
                                                      PINS / "npins/default.nix"]
    assert references(default, default.read_bytes()) == []  # not by default.nix itself
    # niv: `sourcesFile ? ./sources.json`, read by `fromJSON (readFile sourcesFile)`.
    niv = PINS / "nix/sources.nix"
    assert references(niv, niv.read_bytes()) == [PINS / "nix/sources.json"]
    assert json_read(default, default.read_bytes(), PINS) == [PINS / "nix/sources.json",
                                                             PINS / "npins/sources.json"]


def test_imports_outside_the_repository_are_not_followed(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (tmp_path / "outside.nix").write_text("builtins.fromJSON (builtins.readFile ./x.json)\n")
    (tmp_path / "x.json").write_text('{"hash": ""}\n')
    (repo / "default.nix").write_text("import ../outside.nix\n")
    source = (repo / "default.nix").read_bytes()
    assert json_read(repo / "default.nix", source, repo) == []


@pytest.mark.parametrize(("text", "pin"), [
    pytest.param('builtins.fetchTarball { url = "u"; sha256 = "@"; }', True, id="fetchTarball"),
    pytest.param('fetchTarball { url = "u"; sha256 = "@"; }', True, id="bare-fetchTarball"),
    pytest.param('(builtins.fetchurl { url = "u"; sha256 = "@"; })', True, id="fetchurl"),
    pytest.param('builtins.fetchGit { url = "u"; rev = "r"; narHash = "@"; }', True, id="fetchGit"),
    pytest.param('pkgs.fetchzip { url = "u"; hash = "@"; }', False, id="a-FOD-fetcher"),
    pytest.param('{ src = { hash = "@"; }; }', False, id="no-call"),
])
def test_pin_shaped(text: str, pin: bool) -> None:
    value = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    source = text.replace("@", value).encode()
    [site] = locate_in_bytes(Path("/repo/default.nix"), source)
    assert maybe_pin(site, source) is pin


def test_narhash_is_a_site_only_given_to_fetchgit_or_fetchtree() -> None:
    value = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    source = (f'{{ a = builtins.fetchTree {{ type = "git"; url = "u"; narHash = "{value}"; }};\n'
              f'  b = {{ narHash = "{value}"; }}; }}\n').encode()
    assert [s.attrpath for s in locate_in_bytes(Path("/repo/x.nix"), source)] == ["a.narHash"]


def test_json_pin_names_its_url_in_its_own_object() -> None:
    source = (PINS / "nix/sources.json").read_bytes()
    greeting, nixpkgs = locate_json(PINS / "nix/sources.json", source)
    assert names_source(greeting, source, "@PINS@/greeting.txt")
    assert not names_source(nixpkgs, source, "@PINS@/greeting.txt")
    assert names_source(nixpkgs, source, "@PINS@/nixpkgs-24.05.tar.gz")


def test_pin_key_follows_the_file_but_not_its_literal() -> None:
    source = (PINS / "shell.nix").read_bytes()
    [site] = locate_in_bytes(PINS / "shell.nix", source)
    other = source.replace(site.text.encode(), b"0" * 52)
    [moved] = locate_in_bytes(PINS / "shell.nix", other)
    assert pin_key(site, source) == pin_key(moved, other)
    changed = source.replace(b"nixpkgs-23.11", b"nixpkgs-24.05")
    [again] = locate_in_bytes(PINS / "shell.nix", changed)
    assert pin_key(again, changed) != pin_key(site, source)
