"""`fodhash list` on the example repository, against the real Nix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import FIXTURES, fodhash

pytestmark = pytest.mark.nix

EXPECTED = json.loads((FIXTURES / "example" / "expected.json").read_text())
KINDS = {
    ("sources", "authentik.hash"): "source",
    ("webui-deps", "outputHash.x86_64-linux"): "fod",
    ("python-deps", "outputHash"): "fod",
    ("authentik", "ui.npmDepsHash"): "npm-deps",
    ("authentik", "server.vendorHash"): "go-vendor",
    ("vendored", "icons.hash"): "source",
}


def _listed(repo: Path, *args: str) -> dict[tuple[str, str], dict[str, Any]]:
    result = fodhash("list", "--json", *args, cwd=repo)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["version"] == 1 and doc["system"] == "x86_64-linux"
    return {(t["name"], s["site"]): s | {"target": t} for t in doc["targets"] for s in t["sites"]}


def test_list_shows_targets_sites_and_what_the_cache_knows(example: Path) -> None:
    before = _listed(example)
    assert len(before) == 13  # 12 sites of 7 targets; authentik's vendorHash is in two
    for key, kind in KINDS.items():
        assert before[key]["kind"] == kind
    assert all(s["cache"] == "unknown" for s in before.values())  # nothing resolved yet
    icons = before[("vendored", "icons.hash")]
    assert (icons["encoding"], icons["literal"]) == ("placeholder", "pkgs.lib.fakeHash")
    assert "placeholder" in icons["message"]
    darwin = before[("webui-deps", "outputHash.aarch64-darwin")]
    assert (darwin["platform"], darwin["file"], darwin["line"]) == (
        "aarch64-darwin", "webui-deps.nix", 23)
    assert darwin["target"]["build"] == "test-build.nix"
    assert darwin["target"]["attr"] == ["webui-deps"]
    assert before[("python-deps-flake", "outputHash")]["target"]["flake"] == [".#python-deps"]

    assert fodhash("check", "sources", cwd=example).returncode == 1  # fills the cache
    stale = _listed(example, "sources")
    assert set(stale) == {("sources", "authentik.hash"), ("sources", "client-go.hash")}
    assert stale[("sources", "authentik.hash")]["cache"] == "differs"
    assert stale[("sources", "authentik.hash")]["cached"] == EXPECTED["sources.nix"]["authentik.hash"]

    assert fodhash("update", "--all", cwd=example).returncode == 0
    after = _listed(example)
    unknown = {k for k, s in after.items() if s["cache"] != "equal"}
    assert unknown == {("webui-deps", "outputHash.aarch64-darwin")}  # not evaluated here
    assert all(len(s["keys"]) == 1 for k, s in after.items() if k not in unknown)


def test_list_prints_a_table(example: Path) -> None:
    result = fodhash("list", "vendored", cwd=example)
    assert result.returncode == 0, result.stderr
    assert "source (hash)" in result.stdout and "lib.fakeHash" in result.stdout
    assert "vendored: icons.hash: a placeholder" in result.stdout
