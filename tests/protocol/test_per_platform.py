"""Hashes chosen per platform the ways real files choose them, with the real Nix:
`if stdenv.isDarwin then "…" else "…"` (fixtures/per-platform/tool.nix) and a map of systems
to hashes under a name of its own, `shas.${system}` (server.nix). aarch64-linux is built here
through `extra-platforms`; no configured platform takes the Darwin branch."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import (
    SLOW_TRUTH,
    assert_fods_build_and_check,
    copy_all_fixtures,
    fodhash,
    fods_of,
    snapshot,
)

pytestmark = pytest.mark.nix

AARCH64 = ("--option", "extra-platforms", "aarch64-linux")
TOOL_X86 = "sha256-mM1tK+tTA4p/m827Q/6CR2ByqorksZR51LBBC6zktZk="
TOOL_AARCH64 = "sha256-56ysoQAYCRUzmGjjDF4M1/HfGR0fdIIKzxmUL192oRs="
SERVER_X86 = "0037gw8ryvbmjh45w723xzdmj74lah8fc4sz9c70yd633z9646hb"
SERVER_AARCH64 = "0972i25phaa2zly4c9i1m5c4p9zf3z5lbhn79rmmyfzb8lqskwzy"
STALE_TOOL = "sha256-EkLbqYe6pKM6WnvVxXy5lu6eEGf5uk987+w1jTb14/Q="
STALE_SERVER = "1xypcmfd885j2nl1523rkm8hvw9s6yan42d8k8ai3khxy582kbc1"
DARWIN_BRANCH = "hash[stdenv.isDarwin]"
AARCH64_BRANCH = "hash[!stdenv.isDarwin && stdenv.hostPlatform.isAarch64]"
X86_BRANCH = "hash[!stdenv.isDarwin && !stdenv.hostPlatform.isAarch64 && stdenv.isLinux]"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_all_fixtures(tmp_path) / "per-platform"


def replaced(data: bytes, *pairs: tuple[str, str]) -> bytes:
    """`data` with each old text (found exactly once) replaced."""
    for old, new in pairs:
        assert data.count(old.encode()) == 1, old
        data = data.replace(old.encode(), new.encode())
    return data


def test_update_resolves_each_platforms_branch_and_entry(repo: Path) -> None:
    before = snapshot(repo)
    result = fodhash("update", "--all", "--platform", "all", cwd=repo)
    assert result.returncode == 0, result.stderr
    after = snapshot(repo)
    # Each platform's literal holds its true hash; every other byte is as it was. The
    # placeholder became a quoted SRI hash; the new map entry copies its neighbours' form.
    assert after["tool.nix"] == replaced(before["tool.nix"], ("lib.fakeHash\n", f'"{TOOL_AARCH64}"\n'),
                                         (STALE_TOOL, TOOL_X86))
    assert after["server.nix"] == replaced(
        before["server.nix"], (STALE_SERVER, SERVER_X86),
        ("    x86_64-linux", f'    aarch64-linux = "{SERVER_AARCH64}";\n    x86_64-linux'))
    assert {k: v for k, v in after.items() if k not in ("tool.nix", "server.nix")} == \
        {k: v for k, v in before.items() if k not in ("tool.nix", "server.nix")}
    # The Darwin branch is not guessed: the run says no platform of it takes that branch.
    assert "1 branch no platform of this run takes, left as written: tool.nix:17 " \
        f"{DARWIN_BRANCH}" in result.stderr
    # The hashes written are the ones that build, on each platform.
    for name in ("tool.nix", "server.nix"):
        assert_fods_build_and_check(fods_of(repo / name))
        assert_fods_build_and_check(fods_of(repo / name, system="aarch64-linux"), *AARCH64)


def test_one_platform_resolves_only_the_branch_it_takes(repo: Path) -> None:
    before = snapshot(repo)
    result = fodhash("update", "tool", "--platform", "aarch64-linux", "--json", cwd=repo)
    assert result.returncode == 0, result.stderr
    statuses = {s["site"]: (s["status"], s["message"]) for s in json.loads(result.stdout)["sites"]}
    assert statuses[AARCH64_BRANCH] == ("updated", "")
    assert statuses[X86_BRANCH][0] == statuses[DARWIN_BRANCH][0] == "skipped"
    assert statuses[X86_BRANCH][1].startswith("this platform takes another branch (this literal "
                                              "is chosen when !stdenv.isDarwin && ")
    assert snapshot(repo)["tool.nix"] == replaced(before["tool.nix"],
                                                  ("lib.fakeHash\n", f'"{TOOL_AARCH64}"\n'))


def test_check_gives_each_branch_to_the_platforms_that_take_it(repo: Path) -> None:
    before = snapshot(repo)
    stale = fodhash("check", "--all", "--platform", "all", "--json", cwd=repo)
    assert stale.returncode == 1
    assert snapshot(repo) == before
    report = json.loads(stale.stdout)
    assert report["matrix"] == {
        f"tool.nix:{AARCH64_BRANCH}": {"aarch64-linux": "stale"},
        f"tool.nix:{X86_BRANCH}": {"x86_64-linux": "stale"},
        "server.nix:shas": {"aarch64-linux": "missing", "x86_64-linux": "stale"},
    }
    assert [(u["site"], u["line"], u["condition"]) for u in report["untaken"]] == [
        (DARWIN_BRANCH, 17, "stdenv.isDarwin")]

    assert fodhash("update", "--all", "--platform", "all", cwd=repo).returncode == 0
    ok = fodhash("check", "--all", "--platform", "all", "--json", cwd=repo)
    assert ok.returncode == 0, ok.stdout
    assert {row: set(cells.values()) for row, cells in json.loads(ok.stdout)["matrix"].items()} \
        == {f"tool.nix:{AARCH64_BRANCH}": {"ok"}, f"tool.nix:{X86_BRANCH}": {"ok"},
            "server.nix:shas": {"ok"}}
    table = fodhash("check", "--all", "--platform", "all", cwd=repo)
    assert table.returncode == 0
    assert f"1 branch no platform of this run takes, left as written: tool.nix:17 {DARWIN_BRANCH}" \
        in table.stdout


def test_list_shows_every_branch_and_entry(repo: Path) -> None:
    listed = fodhash("list", "--json", cwd=repo)
    assert listed.returncode == 0, listed.stderr
    sites = [(s["site"], s["platform"]) for t in json.loads(listed.stdout)["targets"]
             for s in t["sites"]]
    assert sites == [(DARWIN_BRANCH, None), (AARCH64_BRANCH, None), (X86_BRANCH, None),
                     ("shas.aarch64-darwin", "aarch64-darwin"),
                     ("shas.x86_64-linux", "x86_64-linux")]


def test_a_system_map_passed_to_a_function_is_resolved_on_this_platform(tmp_path: Path) -> None:
    """`mkElectron "11.5.0" { SYSTEM = "…"; …; headers = "…"; }` as the whole file, bound to
    no name: this machine's entry gets its true hash; the other platform's entry and the
    `headers` hash beside them keep their bytes."""
    host = subprocess.run(["nix-instantiate", "--eval", "--expr", "builtins.currentSystem"],
                          capture_output=True, text=True, check=True).stdout.strip().strip('"')
    other = "aarch64-darwin" if host != "aarch64-darwin" else "x86_64-linux"
    repo = tmp_path / "repo"
    repo.mkdir()
    blob = repo / "electron.nix"
    blob.write_text(ELECTRON % (host, STALE_TOOL, other, TOOL_X86, STALE_SERVER))
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    before = blob.read_bytes()
    listed = fodhash("list", "electron.nix", "--json", cwd=repo)
    sites = json.loads(listed.stdout)["targets"][0]["sites"]
    assert [(s["site"], s["platform"]) for s in sites] == [
        (f"mkBlob.{host}", host), (f"mkBlob.{other}", other)]

    assert fodhash("check", "electron.nix", cwd=repo).returncode == 1
    result = fodhash("update", "electron.nix", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert blob.read_bytes() == replaced(before, (STALE_TOOL, SLOW_TRUTH))
    assert fodhash("check", "electron.nix", cwd=repo).returncode == 0
    assert_fods_build_and_check(fods_of(blob))


ELECTRON = """let
  mkBlob = version: hashes: derivation {
    name = "blob-${version}";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" "PATH=/usr/bin:/bin; echo > $out" ];
    outputHashMode = "flat";
    outputHash = hashes.${builtins.currentSystem};
  };
in
mkBlob "11.5.0" {
  %s = "%s";
  %s = "%s";
  headers = "%s";
}
"""
