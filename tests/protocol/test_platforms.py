"""Per-platform hashes with the real Nix: a second platform through `extra-platforms`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import assert_fods_build_and_check, copy_fixture, fodhash, fods_of, snapshot
from remote_builder import RemoteBuilder

pytestmark = pytest.mark.nix

AARCH64 = ("--option", "extra-platforms", "aarch64-linux")


@pytest.fixture
def platforms(tmp_path: Path) -> Path:
    return copy_fixture("platforms", tmp_path)


def entries(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if "-linux\" =" in line
            or "-linux =" in line]


def test_update_adds_the_missing_entry_in_the_style_of_its_neighbour(platforms: Path) -> None:
    original = (platforms / "frontend.nix").read_text()
    result = fodhash("update", "frontend", "--platform", "all", cwd=platforms)
    assert result.returncode == 0, result.stderr
    after = (platforms / "frontend.nix").read_text()
    lines = entries(platforms / "frontend.nix")
    # Quoted like its neighbour, indented alike, and in order (the keys were sorted).
    assert [x.split(" =")[0] for x in lines] == ['"aarch64-linux"', '"x86_64-linux"']
    new_line = next(x for x in after.splitlines(keepends=True) if "aarch64-linux\" =" in x)
    old_line = next(x for x in original.splitlines(keepends=True) if "x86_64-linux\" =" in x)
    assert new_line.startswith(old_line[: len(old_line) - len(old_line.lstrip())] + '"')
    assert after.replace(new_line, "").count("\n") == original.count("\n")
    # Both entries are true: each platform's FOD rebuilds to its hash.
    assert_fods_build_and_check(fods_of(platforms / "frontend.nix"))
    assert_fods_build_and_check(fods_of(platforms / "frontend.nix", system="aarch64-linux"),
                                *AARCH64)


def test_check_matrix_and_a_plain_hash_that_differs_between_platforms(platforms: Path) -> None:
    before = snapshot(platforms)
    result = fodhash("check", "--all", "--platform", "all", "--json", cwd=platforms)
    assert result.returncode == 1
    assert snapshot(platforms) == before
    report = json.loads(result.stdout)
    assert report["matrix"] == {
        "wheels.nix:outputHash": {"aarch64-linux": "stale", "x86_64-linux": "stale"},
        "frontend.nix:outputHash": {"aarch64-linux": "missing", "x86_64-linux": "stale"},
    }
    differing = report["platform_dependent"]["wheels.nix:outputHash"]
    assert set(differing) == {"aarch64-linux", "x86_64-linux"}
    assert differing["aarch64-linux"] != differing["x86_64-linux"]

    table = fodhash("check", "--all", "--platform", "all", cwd=platforms)
    assert "aarch64-linux" in table.stdout and "x86_64-linux" in table.stdout
    assert "--split-platforms" in table.stdout


def test_split_platforms_rewrites_a_plain_hash_into_a_per_platform_attrset(platforms: Path) -> None:
    result = fodhash("update", "--split-platforms", "wheels", cwd=platforms)
    assert result.returncode == 0, result.stderr
    text = (platforms / "wheels.nix").read_text()
    assert ".${system}" in text and 'or (throw "python-wheels: no hash for ${system}")' in text
    assert [x.split(" =")[0] for x in entries(platforms / "wheels.nix")] == [
        "aarch64-linux", "x86_64-linux"]
    check = fodhash("check", "wheels", "--platform", "all", "--json", cwd=platforms)
    assert check.returncode == 0, check.stdout
    assert json.loads(check.stdout)["matrix"] == {
        "wheels.nix:outputHash": {"aarch64-linux": "ok", "x86_64-linux": "ok"}}
    # The file still evaluates, and throws for a system it has no entry for.
    darwin = subprocess.run(["nix-instantiate", "wheels.nix", "--argstr", "system",
                             "aarch64-darwin"], cwd=platforms, capture_output=True, text=True,
                            check=False)
    assert "python-wheels: no hash for aarch64-darwin" in darwin.stderr


def test_platform_without_a_builder_is_unverified(platforms: Path) -> None:
    with (platforms / "fodhash.toml").open("a") as config:
        config.write('\n[platforms.aarch64-darwin]\nnix-args = ["--argstr", "system", '
                     '"aarch64-darwin"]\n')
    # No darwin entry: missing, even though no machine here can tell its hash.
    missing = fodhash("check", "frontend", "--platform", "aarch64-darwin", "--json",
                      cwd=platforms)
    assert missing.returncode == 1
    site = next(s for s in json.loads(missing.stdout)["sites"]
                if s["site"] == "outputHash.aarch64-darwin")
    assert (site["status"], site["truth"]) == ("missing", None)
    assert "no machine here builds aarch64-darwin" in site["message"]

    # With an entry: it cannot be built here and nothing is cached, so it is unverified.
    frontend = platforms / "frontend.nix"
    entry = '      "aarch64-darwin" = "sha256-WmV5WDLjZahDl4MyjfG+U/doLTTyodN47oOmZiFc9iA=";\n'
    frontend.write_text(frontend.read_text().replace("    {\n", "    {\n" + entry))
    result = fodhash("check", "frontend", "--platform", "aarch64-darwin", "--json",
                     cwd=platforms)
    assert result.returncode == 0, result.stdout
    statuses = {s["site"]: s["status"] for s in json.loads(result.stdout)["sites"]}
    assert statuses["outputHash.aarch64-darwin"] == "unverified"
    # Its progress line (unknown to the protocol) says so too.
    assert "unverified frontend: frontend.nix:outputHash.aarch64-darwin (no machine here " \
        "builds aarch64-darwin" in result.stderr
    strict = fodhash("check", "frontend", "--platform", "aarch64-darwin", "--strict",
                     cwd=platforms)
    assert strict.returncode == 1


def test_update_for_a_platform_without_a_builder_says_why_and_fails(platforms: Path) -> None:
    """No machine here builds aarch64-darwin: every site says so, in check's words, nothing
    is written and the exit code is 1. Nix 2.8 stops at the first such FOD (naming only it);
    the other, which has no dependency, is not "a dependency failed to build"."""
    with (platforms / "fodhash.toml").open("a") as config:
        config.write('\n[platforms.aarch64-darwin]\nnix-args = ["--argstr", "system", '
                     '"aarch64-darwin"]\n')
    before = snapshot(platforms)
    result = fodhash("update", "--all", "--platform", "aarch64-darwin", "--json", cwd=platforms)
    assert result.returncode == 1, result.stderr
    assert snapshot(platforms) == before
    report = json.loads(result.stdout)
    sites = {s["site"]: s for s in report["sites"]}
    assert {s: sites[s]["status"] for s in sites} == {
        "outputHash": "unknown", "outputHash.aarch64-darwin": "unknown",
        "outputHash.x86_64-linux": "skipped"}  # another platform's entry
    for site in (sites["outputHash"], sites["outputHash.aarch64-darwin"]):
        assert site["message"].startswith("no machine here builds aarch64-darwin: give that "
                                          "platform `build-args` with a builder"), site
    assert report["counts"]["unknown"] == 2

    table = fodhash("update", "--all", "--platform", "aarch64-darwin", cwd=platforms)
    assert table.returncode == 1
    assert "dependency" not in table.stdout + table.stderr
    assert "no machine here builds aarch64-darwin" in table.stdout  # the table's note
    assert table.stderr.splitlines()[-1].startswith("2 sites left as they were: ")
    assert "(unknown: no true hash could be computed here, so the exit code is 1)" in \
        table.stderr.splitlines()[-1]


def test_unknown_platform_is_a_usage_error(platforms: Path) -> None:
    result = fodhash("check", "--all", "--platform", "riscv64-linux", cwd=platforms)
    assert result.returncode == 2
    assert "[platforms.riscv64-linux]" in result.stderr


def test_apply_results_from_another_machine_and_refuse_stale_ones(platforms: Path,
                                                                  tmp_path: Path) -> None:
    # "The aarch64 runner": computes its results and exports them.
    runner = copy_fixture("platforms", tmp_path / "runner")
    results = tmp_path / "aarch64-linux.json"
    exported = fodhash("check", "frontend", "--platform", "aarch64-linux", "--export",
                       str(results), cwd=runner)
    assert exported.returncode == 1  # missing here, but computed
    assert json.loads(results.read_text())["entries"]

    # "The merge job": applies them without building anything.
    applied = fodhash("apply", str(results), "--target", "frontend", cwd=platforms)
    assert applied.returncode == 0, applied.stderr
    assert [x.split(" =")[0] for x in entries(platforms / "frontend.nix")] == [
        '"aarch64-linux"', '"x86_64-linux"']
    check = fodhash("check", "frontend", "--platform", "aarch64-linux", "--cached-only",
                    cwd=platforms)
    assert check.returncode == 0, check.stdout

    # The lockfile changes: the result no longer matches; nothing is written.
    lock = platforms / "package-lock.json"
    lock.write_text(lock.read_text().replace("0.24.2", "0.25.0"))
    before = snapshot(platforms)
    refused = fodhash("apply", str(results), "--target", "frontend", cwd=platforms)
    assert refused.returncode == 1
    assert "refused, no file changed" in refused.stderr
    assert "before its lockfile changed" in " ".join(refused.stderr.split())
    assert snapshot(platforms) == before


def test_update_through_a_real_remote_builder(platforms: Path, remote_builder: RemoteBuilder,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """aarch64-linux builds go over SSH to a builder with its own store (Nix's --builders,
    no local jobs); the mismatch comes back in the remote-build form and is resolved."""
    build_args = json.dumps([*remote_builder.nix_args("aarch64-linux")])
    (platforms / "fodhash.toml").write_text(
        '[targets.frontend]\nfile = "frontend.nix"\n'
        '[platforms.aarch64-linux]\nnix-args = ["--argstr", "system", "aarch64-linux"]\n'
        f"build-args = {build_args}\n")
    for name, value in remote_builder.env().items():
        monkeypatch.setenv(name, value)
    result = fodhash("-v", "update", "frontend", "--platform", "aarch64-linux", cwd=platforms)
    assert result.returncode == 0, result.stderr
    assert "--builders" in result.stderr and "--max-jobs 0" in result.stderr
    line = next(x for x in (platforms / "frontend.nix").read_text().splitlines()
                if '"aarch64-linux" =' in x)
    # The same true hash the local extra-platforms build gives.
    local = copy_fixture("platforms", platforms.parent / "local")
    assert fodhash("update", "frontend", "--platform", "aarch64-linux", "--no-cache",
                   cwd=local).returncode == 0
    assert line in (local / "frontend.nix").read_text()
    # And the build really happened on the builder: its store holds the output.
    out = remote_builder.ssh("ls", "/nix/store")
    assert "frontend-deps" in out.stdout
