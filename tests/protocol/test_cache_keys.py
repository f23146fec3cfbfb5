"""The cache key changes exactly when what the FOD depends on changes (real Nix, fixtures)."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import FIXTURES, copy_all_fixtures, copy_fixture, fodhash, snapshot

from fodhash.cache.store import ResultCache

pytestmark = pytest.mark.nix

EXPECTED = json.loads((FIXTURES / "example" / "expected.json").read_text())


def keys(repo: Path, *args: str) -> dict[str, list[str]]:
    result = fodhash("update", *args, "--json", cwd=repo)
    assert result.returncode == 0, result.stderr
    return {f'{s["file"]}:{s["site"]}': s["keys"] for s in json.loads(result.stdout)["sites"]}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def test_key_ignores_own_hash_other_sites_and_unrelated_files(example: Path) -> None:
    base = keys(example, "--all")
    python = "python-deps.nix:outputHash"
    assert base[python] and len(base[python][0]) == 64

    # The site's own hash: stale again. Same key, so the cache answers without a build.
    edit(example / "python-deps.nix", EXPECTED["python-deps.nix"]["outputHash"],
         "sha256-jqOT0/KDBIIQqqPz6t3P9Rpe+dSmPs0tGPyV9qW4vGk=")
    # Another site, and a file nothing reads.
    edit(example / "vendored.nix", EXPECTED["vendored.nix"]["icons.hash"], "")
    (example / "NOTES.md").write_text("unrelated\n")
    after = keys(example, "--all")
    assert after == base


@pytest.mark.parametrize(
    ("file", "old", "new", "changed", "unchanged"),
    [
        pytest.param("upstream/authentik/uv.lock", 'name = "django"', 'name = "djangoo"',
                     ["sources.nix:authentik.hash", "python-deps.nix:outputHash"],
                     ["sources.nix:client-go.hash"], id="lockfile-content"),
        pytest.param("python-deps.nix", "set -eu", "set -eux",
                     ["python-deps.nix:outputHash"],
                     ["sources.nix:authentik.hash", "webui-deps.nix:outputHash.x86_64-linux"],
                     id="builder-script"),
        pytest.param("sources.nix", 'version = "2025.2.1"', 'version = "2025.2.2"',
                     ["sources.nix:authentik.hash", "python-deps.nix:outputHash",
                      "webui-deps.nix:outputHash.x86_64-linux"],
                     ["sources.nix:client-go.hash", "authentik.nix:src.hash"],
                     id="source-and-upstream-fod-hash"),
    ],
)
def test_key_follows_what_the_fod_depends_on(example: Path, file: str, old: str, new: str,
                                             changed: list[str], unchanged: list[str]) -> None:
    base = keys(example, "--all")
    edit(example / file, old, new)
    after = keys(example, "--all")
    for site in changed:
        assert after[site] != base[site], site
    for site in unchanged:
        assert after[site] == base[site], site


def test_key_follows_the_system(tmp_path: Path) -> None:
    shapes = copy_all_fixtures(tmp_path)  # the shape files import ../example
    (shapes / "fodhash.toml").write_text(
        '[targets.native]\nfile = "shapes/platforms.nix"\nsite = "outputHash.x86_64-linux"\n'
        '[targets.i686]\nfile = "shapes/platforms.nix"\nsite = "outputHash.i686-linux"\n'
        'nix-args = ["--argstr", "system", "i686-linux"]\n')
    native = keys(shapes, "native")["shapes/platforms.nix:outputHash.x86_64-linux"]
    i686 = keys(shapes, "i686")["shapes/platforms.nix:outputHash.i686-linux"]
    assert native and i686 and native != i686
    with ResultCache() as cache:
        platforms = {cache.get(k).platform for k in native + i686 if cache.get(k)}
    assert platforms == {"x86_64-linux", "i686-linux"}


def test_concurrent_runs_share_the_cache_safely(tmp_path: Path) -> None:
    repos = [copy_fixture("example", tmp_path / str(i)) for i in range(2)]
    before = snapshot(repos[0])

    def update(repo: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "fodhash", "update", "--all"], cwd=repo,
                              capture_output=True, text=True, check=False, timeout=600)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(update, repos))
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    assert snapshot(repos[0]) == snapshot(repos[1]) != before
    with ResultCache() as cache:
        entries = cache.entries()
    resolved = sum(len(v) for v in EXPECTED.values())
    assert len(entries) == resolved  # both wrote the same keys; none lost or doubled
    assert {e.platform for e in entries} == {"x86_64-linux"}
