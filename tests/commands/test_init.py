"""`fodhash init`: a fodhash.toml learnt from the repository, which update and check use
unedited; against the real Nix."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest
from helpers import FIXTURES, copy_fixture, fod_nix, fodhash, snapshot

pytestmark = pytest.mark.nix

EXPECTED = json.loads((FIXTURES / "example" / "expected.json").read_text())


def test_init_on_the_example_writes_a_config_update_and_check_use(tmp_path: Path) -> None:
    repo = copy_fixture("example", tmp_path)
    (repo / "fodhash.toml").unlink()
    # A table of pins that no file reads: a site that no entry point uses.
    (repo / "nix" / "pins.nix").write_text(
        '{\n  hash = "sha256-EkLbqYe6pKM6WnvVxXy5lu6eEGf5uk987+w1jTb14/Q=";\n}\n')
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    before = snapshot(repo)
    result = fodhash("init", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert snapshot(repo) == before | {"fodhash.toml": (repo / "fodhash.toml").read_bytes()}
    config = tomllib.loads((repo / "fodhash.toml").read_text())
    assert config["targets"] == {
        "authentik": {"file": "authentik.nix"},
        "python-deps": {"file": "python-deps.nix"},
        "sources": {"file": "sources.nix"},
        "vendored": {"file": "vendored.nix"},
        "webui-deps": {"file": "webui-deps.nix"},
    }
    text = (repo / "fodhash.toml").read_text()
    assert "# webui-deps.nix:23  outputHash.aarch64-darwin  (aarch64-darwin's entry" in text
    assert '# [platforms.aarch64-darwin]' in text
    assert "nix/pins.nix:2 hash: no entry point" in text
    assert "not reached: nix/pins.nix:2" in result.stderr
    # The stand-in nixpkgs' own `outputHash = ""` (a fetcher's logic) is no site at all.
    assert "stubs.nix" not in text + result.stderr

    update = fodhash("update", "--all", cwd=repo)
    assert update.returncode == 0, update.stderr
    for file, sites in EXPECTED.items():
        for value in sites.values():
            assert value in (repo / file).read_text(), (file, value)
    check = fodhash("check", "--all", cwd=repo)
    assert check.returncode == 0, check.stdout + check.stderr

    again = fodhash("init", cwd=repo)
    assert again.returncode == 2 and "does not overwrite it (--force does)" in again.stderr
    assert fodhash("init", "--force", str(repo), cwd=tmp_path).returncode == 0


MKFOD = """{ name, hash, system ? "x86_64-linux" }:
derivation {
  inherit name system;
  builder = "/bin/sh";
  args = [ "-c" "PATH=/usr/bin:/bin; echo ${name} > $out" ];
  outputHashMode = "flat";
  outputHashAlgo = "sha256";
  outputHash = hash;
}
"""
STALE = "sha256-WmV5WDLjZahDl4MyjfG+U/doLTTyodN47oOmZiFc9iA="


def _callpackage_style(repo: Path) -> None:
    """Package files that are functions without defaults, reached through an attrset file,
    through the flake only, or not at all; and a `result` link and an ignored file."""
    files = {
        "nix/mkfod.nix": MKFOD,
        "pkgs/pkg.nix": f'{{ mkFod }}:\nmkFod {{ name = "pkg-src"; hash = "{STALE}"; }}\n',
        "pkgs/flake-only.nix": '{ mkFod }:\nmkFod { name = "flake-only-src"; hash = "";\n}\n',
        "pkgs/orphan.nix": f'{{ mkFod }}:\nmkFod {{ name = "orphan"; hash = "{STALE}"; }}\n',
        "all.nix": "let mkFod = import ./nix/mkfod.nix; in\n"
                   "{ pkg = import ./pkgs/pkg.nix { inherit mkFod; }; lib.x = 1; }\n",
        "flake.nix": "{ outputs = { self }: let mkFod = import ./nix/mkfod.nix; in {\n"
                     "  packages.x86_64-linux.flake-only = import ./pkgs/flake-only.nix "
                     "{ inherit mkFod; };\n}; }\n",
        "flake.lock": (FIXTURES / "example" / "flake.lock").read_text(),
        ".gitignore": "ignored.nix\n",
        "ignored.nix": f'{{ hash = "{STALE}"; }}\n',
    }
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    (repo / "result").symlink_to("/nix/store/00000000000000000000000000000000-nothing")


def test_init_finds_attrset_files_and_flake_outputs_and_names_what_it_cannot_reach(
        tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _callpackage_style(repo)
    result = fodhash("init", cwd=repo)
    assert result.returncode == 0, result.stderr
    config = tomllib.loads((repo / "fodhash.toml").read_text())
    assert config["targets"] == {
        "pkg": {"file": "pkgs/pkg.nix", "build": "all.nix"},
        "flake-only": {"file": "pkgs/flake-only.nix",
                       "flake": ".#packages.{system}.flake-only"},
    }
    assert "pkgs/orphan.nix:2 hash: its file is a function whose arguments have no defaults" \
        in result.stderr
    assert "ignored.nix" not in (repo / "fodhash.toml").read_text()
    subprocess.run(["git", "add", "fodhash.toml"], cwd=repo, check=True)
    update = fodhash("update", "--all", cwd=repo)
    assert update.returncode == 0, update.stderr
    assert STALE not in (repo / "pkgs/pkg.nix").read_text()
    assert 'hash = "sha256-' in (repo / "pkgs/flake-only.nix").read_text()
    assert STALE in (repo / "pkgs/orphan.nix").read_text()
    assert fodhash("check", "--all", cwd=repo).returncode == 0


def test_init_refuses_a_repository_without_hash_sites(tmp_path: Path) -> None:
    (tmp_path / "default.nix").write_text("{ a = 1; }\n")
    result = fodhash("init", cwd=tmp_path)
    assert result.returncode == 2 and "no hash site in any .nix file" in result.stderr
    assert not (tmp_path / "fodhash.toml").exists()


def test_init_writes_valid_toml_when_a_file_is_skipped_for_a_syntax_error(
        tmp_path: Path) -> None:
    """Nix's message for a syntax error quotes source lines: each is a comment line too."""
    (tmp_path / "pkg.nix").write_text(fod_nix("x", STALE))
    (tmp_path / "broken.nix").write_text("{ x = import ./pkg.nix;\n  y = ;\n}\n")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    result = fodhash("init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "fodhash.toml").read_text()
    assert "broken.nix" in text and "y = ;" in text
    assert tomllib.loads(text)["targets"] == {"pkg": {"file": "pkg.nix"}}
    assert fodhash("check", "--all", "--cached-only", cwd=tmp_path).returncode == 0
