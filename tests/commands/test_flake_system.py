"""A flake target written with `{system}` (`flake = ".#packages.{system}.blob"`, as the README
documents it): every command evaluates it for its platform, and a platform the flake has no
output for is reported for that target alone. Against the real Nix."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import SLOW_TRUTH, fod_nix, fodhash

pytestmark = pytest.mark.nix

FAKE = "sha256-" + "A" * 43 + "="  # lib.fakeHash: a log's mismatch for it is trusted

BLOB = "{ system }:\n" + fod_nix("blob", FAKE, system="system")
# Packages for this machine only: no aarch64-linux output.
FLAKE = """{
  outputs = { self }: {
    packages.x86_64-linux.blob = import ./blob.nix { system = "x86_64-linux"; };
  };
}
"""
CONFIG = '[targets.blob]\nfile = "blob.nix"\nflake = ".#packages.{system}.blob"\n'


def _system() -> str:
    return subprocess.run(["nix-instantiate", "--eval", "--expr", "builtins.currentSystem"],
                          capture_output=True, text=True, check=True).stdout.strip().strip('"')


@pytest.fixture
def flake(tmp_path: Path) -> Path:
    if _system() != "x86_64-linux":
        pytest.skip("the flake has packages for x86_64-linux only")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "blob.nix").write_text(BLOB)
    (repo / "flake.nix").write_text(FLAKE)
    (repo / "fodhash.toml").write_text(CONFIG)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)  # a flake sees tracked files
    return repo


def test_list_expands_system_in_a_flake_reference(flake: Path) -> None:
    result = fodhash("list", "--json", cwd=flake)
    assert result.returncode == 0, result.stdout + result.stderr
    target = json.loads(result.stdout)["targets"][0]
    assert target["flake"] == [".#packages.x86_64-linux.blob"]
    assert [s["message"] for s in target["sites"]] == ["a placeholder: no hash to look up"]


def test_apply_log_expands_system_in_a_flake_reference(flake: Path) -> None:
    built = subprocess.run(["nix", "--extra-experimental-features", "nix-command flakes",
                            "build", "--no-link", ".#packages.x86_64-linux.blob"], cwd=flake,
                           capture_output=True, text=True, check=False)
    assert built.returncode != 0 and "hash mismatch" in built.stderr, built.stderr
    log = flake / "ci.log"
    log.write_text(built.stderr)
    result = fodhash("apply", "--log", str(log), cwd=flake)
    assert result.returncode == 0, result.stderr
    assert f'outputHash = "{SLOW_TRUTH}";' in (flake / "blob.nix").read_text()


WHEELS = "{ system ? builtins.currentSystem }:\n" + fod_nix("wheels", FAKE, system="system")


def test_platform_all_covers_this_machine_and_a_platform_a_target_lacks_fails_alone(
        flake: Path) -> None:
    """Only aarch64-linux has a table: `--platform all` is this machine and aarch64-linux.
    The flake has no aarch64-linux package: that target fails on that platform alone, and
    every other cell of the matrix is computed."""
    (flake / "wheels.nix").write_text(WHEELS)
    (flake / "fodhash.toml").write_text(
        CONFIG + '[targets.wheels]\nfile = "wheels.nix"\n'
        '[platforms.aarch64-linux]\nnix-args = ["--argstr", "system", "aarch64-linux"]\n'
        'build-args = ["--option", "extra-platforms", "aarch64-linux"]\n')
    subprocess.run(["git", "add", "-A"], cwd=flake, check=True)
    result = fodhash("check", "--all", "--platform", "all", "--json", cwd=flake)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["matrix"] == {
        "blob.nix:outputHash": {"x86_64-linux": "stale", "aarch64-linux": "failed"},
        "wheels.nix:outputHash": {"x86_64-linux": "stale", "aarch64-linux": "stale"}}
    failed = next(s for s in report["sites"] if s["status"] == "failed")
    assert (failed["target"], failed["system"]) == ("blob", "aarch64-linux")
    # Nix's own message, for that platform alone.
    assert "did not evaluate" in failed["message"] and "aarch64-linux" in failed["message"]
    assert "packages.aarch64-linux.blob" in failed["message"]
    truths = {(s["target"], s["system"]): s["truth"] for s in report["sites"]}
    assert truths[("blob", "x86_64-linux")] == SLOW_TRUTH
    assert truths[("wheels", "aarch64-linux")] == SLOW_TRUTH
