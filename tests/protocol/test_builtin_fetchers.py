"""FODs of Nix's builtin fetchers (`import <nix/fetchurl.nix>`): their system is `builtin`,
the same derivation on every platform, so one result holds for all. Against the real Nix,
offline: the download is a file:// URL."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import fodhash

pytestmark = pytest.mark.nix

PAYLOAD = b"the same bytes on every platform\n"
FAKE = "sha256-" + "A" * 43 + "="

FETCH = """{ system ? builtins.currentSystem }:
import <nix/fetchurl.nix> {
  url = "file://%s";
  hash = "%s";
}
"""
CONFIG = """[targets.payload]
file = "fetch.nix"

[platforms.aarch64-linux]
nix-args = ["--argstr", "system", "aarch64-linux"]
build-args = ["--option", "extra-platforms", "aarch64-linux"]
"""


@pytest.fixture
def served() -> Iterator[Path]:
    """The download, where Nix's builtin fetcher can read it: it fetches as a build user,
    and pytest's temporary folders are private to this user."""
    folder = Path(tempfile.mkdtemp(prefix="fodhash-served-"))
    folder.chmod(0o755)
    (folder / "payload.txt").write_bytes(PAYLOAD)
    (folder / "payload.txt").chmod(0o644)
    yield folder / "payload.txt"
    shutil.rmtree(folder)


@pytest.fixture
def repo(tmp_path: Path, served: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "fetch.nix").write_text(FETCH % (served, FAKE))
    (repo / "fodhash.toml").write_text(CONFIG)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    return repo


def test_a_builtin_fod_is_built_once_for_every_platform(repo: Path) -> None:
    result = fodhash("check", "--all", "--platform", "all", "--no-cache", "--json", cwd=repo)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["counts"]["failed"] == 0, [s["message"] for s in report["sites"]]
    assert report["matrix"] == {"fetch.nix:hash": {"aarch64-linux": "stale",
                                                   "x86_64-linux": "stale"}}
    assert len({s["truth"] for s in report["sites"]}) == 1
    assert report["stats"]["builds"] == 1  # the second platform's answer is the first's


def test_apply_an_export_of_builtin_fods_and_cache_info(repo: Path, tmp_path: Path) -> None:
    results = tmp_path / "r.json"
    exported = fodhash("check", "--all", "--export", str(results), cwd=repo)
    assert exported.returncode == 1, exported.stderr
    assert [e["platform"] for e in json.loads(results.read_text())["entries"]] == ["builtin"]

    applied = fodhash("apply", str(results), cwd=repo)
    assert applied.returncode == 0, applied.stderr
    assert FAKE not in (repo / "fetch.nix").read_text()
    for platform in ("x86_64-linux", "aarch64-linux"):
        check = fodhash("check", "--all", "--platform", platform, "--cached-only", "--strict",
                        cwd=repo)
        assert check.returncode == 0, check.stdout + check.stderr
    built = subprocess.run(["nix-build", "--no-out-link", "fetch.nix"], cwd=repo,
                           capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr  # Nix agrees

    # Not listed as a platform: its entries hold on every one.
    info = fodhash("cache", "info", cwd=repo)
    assert "any (Nix's builtin fetchers)" in info.stdout
    assert not any(line.split()[:1] == ["builtin"] for line in info.stdout.splitlines())
