"""`fodhash apply --log`: the mismatches of recorded and fresh Nix logs, mapped to their sites
through sentinels and applied; unverified downloads refused. Against the real Nix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import FIXTURES, TRANSCRIPTS, copy_fixture, fodhash, snapshot

from fodhash.nix.mismatch import parse_mismatches

pytestmark = pytest.mark.nix

EXPECTED = json.loads((FIXTURES / "example" / "expected.json").read_text())


def _system() -> str:
    return subprocess.run(["nix-instantiate", "--eval", "--expr", "builtins.currentSystem"],
                          capture_output=True, text=True, check=True).stdout.strip().strip('"')


@pytest.mark.parametrize(("transcript", "attrs"), [
    ("nix-2.8-keep-going-two.txt", ["one", "two"]),
    ("nix-2.8-nix-build-plain.txt", ["flat"]),
    ("nix-2.8-internal-json.txt", ["json"]),
    ("nix-2.8-pty-colour.txt", ["pty"]),
])
def test_a_recorded_log_is_applied_to_the_sites_of_its_fods(
        transcript: str, attrs: list[str], tmp_path: Path) -> None:
    if _system() != "x86_64-linux":
        pytest.skip("the transcripts name the .drv paths of x86_64-linux")
    repo = copy_fixture("logs", tmp_path)
    log = TRANSCRIPTS / transcript
    gots = [m.got.sri for m in parse_mismatches(log.read_text(errors="replace"))]
    result = fodhash("apply", "--log", str(log), cwd=repo)
    assert result.returncode == 0, result.stderr
    text = (repo / "fods.nix").read_text()
    assert all(got in text for got in gots), text
    assert f"applied {len(attrs)} hash(es) from the log to 1 file(s)" in result.stderr
    built = subprocess.run(["nix-build", "fods.nix", "--no-out-link",
                            *[a for attr in attrs for a in ("-A", attr)]], cwd=repo,
                           capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr  # Nix agrees: each site now holds its true hash


def test_the_log_can_come_from_standard_input(tmp_path: Path) -> None:
    if _system() != "x86_64-linux":
        pytest.skip("the transcripts name the .drv paths of x86_64-linux")
    repo = copy_fixture("logs", tmp_path)
    log = (TRANSCRIPTS / "nix-2.8-keep-going-two.txt").read_text()
    result = subprocess.run([sys.executable, "-m", "fodhash", "apply", "--log", "-"], cwd=repo,
                            input=log, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "sha256-LIsI2lzmA5jh8Zrw5dzMdE3ydLgmq+WF6rpoxSVDSAY=" in (repo / "fods.nix").read_text()


def test_a_log_built_from_other_inputs_is_refused(tmp_path: Path) -> None:
    repo = copy_fixture("logs", tmp_path)
    fods = repo / "fods.nix"
    fods.write_text(fods.read_text().replace('"echo one > $out"', '"echo uno > $out"'))
    before = snapshot(repo)
    result = fodhash("apply", "--log", str(TRANSCRIPTS / "nix-2.8-keep-going-two.txt"), cwd=repo)
    assert result.returncode == 1
    assert "fodhash-one.drv: not a FOD of these files as they evaluate now" in result.stderr
    assert "no file changed" in result.stderr
    assert snapshot(repo) == before  # fodhash-two was fine, but it is all or nothing


def _nix_build(repo: Path, *args: str) -> str:
    """What a CI job's log holds: Nix's output of a failing build."""
    result = subprocess.run(["nix-build", "--no-out-link", "--keep-going", *args], cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            check=False)
    assert result.returncode != 0, result.stdout
    return result.stdout


def test_a_ci_log_of_fods_sharing_a_fake_and_a_name_maps_each_to_its_own_site(
        example: Path, tmp_path: Path) -> None:
    # vendored.nix: three fetchFromGitHub FODs, all named `source`, all with lib.fakeHash.
    log = tmp_path / "ci.log"
    log.write_text(_nix_build(example, "test-build.nix", "-A", "vendored"))
    assert len(parse_mismatches(log.read_text())) == 3
    result = fodhash("apply", "--log", str(log), cwd=example)
    assert result.returncode == 0, result.stderr
    text = (example / "vendored.nix").read_text()
    for value in EXPECTED["vendored.nix"].values():
        assert value in text
    assert "lib.fakeHash" not in text.split("in\n", 1)[1]
    check = fodhash("check", "vendored", cwd=example)
    assert check.returncode == 0, check.stdout


def test_a_download_that_was_not_verified_is_applied_only_when_asked(
        example: Path, tmp_path: Path) -> None:
    # sources.nix holds stale real hashes: the fetcher ran without TLS verification.
    log = tmp_path / "ci.log"
    log.write_text(_nix_build(example, "sources.nix", "-A", "client-go"))
    before = snapshot(example)
    refused = fodhash("apply", "--log", str(log), cwd=example)
    assert refused.returncode == 1
    message = " ".join(refused.stderr.split())
    assert "sources.nix:client-go.hash" in message
    assert "download without verifying TLS certificates" in message
    assert "--trust-unverified-downloads" in message
    assert snapshot(example) == before
    trusted = fodhash("apply", "--log", str(log), "--trust-unverified-downloads", cwd=example)
    assert trusted.returncode == 0, trusted.stderr
    assert "unverified" in trusted.stdout
    assert EXPECTED["sources.nix"]["client-go.hash"] in (example / "sources.nix").read_text()


def test_a_log_without_a_mismatch_is_a_usage_error(example: Path, tmp_path: Path) -> None:
    log = tmp_path / "ok.log"
    log.write_text("building '/nix/store/x-y.drv'...\n")
    result = fodhash("apply", "--log", str(log), cwd=example)
    assert result.returncode == 2 and "holds no hash mismatch" in result.stderr
    both = fodhash("apply", "x.json", "--log", str(log), cwd=example)
    assert both.returncode == 2 and "not both" in both.stderr
