"""Nothing lost: SIGKILL at any moment, a second writer, someone else's edit, symlinks.

The protocol runs in a scratch copy of the repository: the user's files change once, at the
end, so a kill at any moment leaves each original or correct with nothing to undo."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import FIXTURES, building_slowly, copy_fixture, fodhash, scratch_copies, snapshot

from fodhash.hashes.encoding import Algo
from fodhash.hashes.fakes import canonical_fake_text, sentinel
from fodhash.sites.nix_file import locate_in_bytes

pytestmark = pytest.mark.nix

EXPECTED = json.loads((FIXTURES / "example" / "expected.json").read_text())
# Every sentinel fodhash could write here, and the fakes: none may survive a crash.
FORBIDDEN = {sentinel(Algo.SHA256, i).sri for i in range(64)} | {
    canonical_fake_text(Algo.SHA256, bare=False)}
KILL_POINTS = int(os.environ.get("FODHASH_KILL_POINTS", "24"))
FIGURES = Path(os.environ.get("FODHASH_FIGURES", "/dev/null"))


def site_values(root: Path, name: str) -> dict[str, str]:
    path = root / name
    return {s.attrpath: s.text for s in locate_in_bytes(path, path.read_bytes())}


def start(repo: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "fodhash", "update", "--all", *args],
                            cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkill_at_any_moment_leaves_original_bytes_or_true_hashes(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch
                                                                    ) -> None:
    # How long a full cold run takes here, to spread the kill points over it.
    probe = copy_fixture("example", tmp_path / "probe")
    began = time.monotonic()
    assert fodhash("update", "--all", cwd=probe).returncode == 0
    duration = time.monotonic() - began

    original = snapshot(copy_fixture("example", tmp_path / "pristine"))
    files_checked = fakes_left = killed_mid_protocol = 0
    for point in range(KILL_POINTS):
        repo = copy_fixture("example", tmp_path / f"kill-{point}")
        # A fresh cache each time: every run goes through sentinels, fakes and builds.
        cache = tmp_path / f"cache-{point}"
        monkeypatch.setenv("FODHASH_CACHE_DIR", str(cache))
        proc = start(repo)
        time.sleep(duration * (point + 0.5) / KILL_POINTS)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # Killed while the scratch copy held sentinels or fakes?
        killed_mid_protocol += any(
            v in FORBIDDEN or v.startswith("sha256-AAAA")
            for copy in scratch_copies(cache, repo) for name in EXPECTED if (copy / name).exists()
            for v in site_values(copy, name).values())

        after = snapshot(repo)  # as the kill left it: nothing to restore
        for name, data in original.items():
            files_checked += 1
            if after[name] == data:
                continue
            # Otherwise only hash literals changed, each to its true hash.
            values, before = site_values(repo, name), site_values(tmp_path / "pristine" / "example", name)
            assert set(values) == set(before), name
            for attrpath, value in values.items():
                fakes_left += value in FORBIDDEN
                assert value in (before[attrpath], EXPECTED[name].get(attrpath)), (
                    f"kill point {point}: {name} {attrpath} holds {value}")
        # The next command removes the copy the killed run left behind.
        assert fodhash("restore", cwd=repo).returncode == 0
        assert not scratch_copies(cache, repo), "a killed run's scratch copy was left"
    assert fakes_left == 0
    assert killed_mid_protocol > 0, "no kill point caught a run with sentinels or fakes"
    FIGURES.write_text(json.dumps({
        "kill_points": KILL_POINTS, "files_checked": files_checked, "fakes_left": fakes_left,
        "killed_mid_protocol": killed_mid_protocol}))


def test_second_writer_waits_or_fails_with_no_wait(example: Path) -> None:
    first = building_slowly(example, "slow", 4)
    refused = fodhash("update", "sources", "--no-wait", cwd=example)
    assert refused.returncode == 1
    assert "another fodhash is working on" in refused.stderr
    waited = fodhash("update", "sources", cwd=example)
    assert "waiting for another fodhash" in waited.stderr
    assert waited.returncode == 0
    assert first.wait(timeout=60) == 0


def test_edit_by_someone_else_during_a_run_is_kept_and_reported(example: Path) -> None:
    proc = building_slowly(example, "slow2", 3)
    slow = example / "slow2.nix"
    theirs = b"# someone else's edit\n" + slow.read_bytes()
    slow.write_bytes(theirs)  # an editor saving: the file never held a fake
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "not written, it changed while fodhash ran" in err
    assert "The true hashes to write into it" in err and "outputHash" in err
    assert slow.read_bytes() == theirs


def test_symlink_inside_the_repository_is_edited_at_its_target(example: Path) -> None:
    (example / "pinned-sources.nix").write_bytes((example / "sources.nix").read_bytes())
    (example / "sources.nix").unlink()
    (example / "sources.nix").symlink_to("pinned-sources.nix")
    result = fodhash("update", "sources", cwd=example)
    assert result.returncode == 0, result.stderr
    assert (example / "sources.nix").is_symlink()
    text = (example / "pinned-sources.nix").read_text()
    assert EXPECTED["sources.nix"]["authentik.hash"] in text


def test_symlink_out_of_the_repository_is_refused(example: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.nix"
    outside.write_bytes((example / "sources.nix").read_bytes())
    (example / "sources.nix").unlink()
    (example / "sources.nix").symlink_to(outside)
    before = outside.read_bytes()
    result = fodhash("update", "sources", cwd=example)
    assert result.returncode == 2
    assert "through a symlink" in result.stderr and "outside the repository" in result.stderr
    assert outside.read_bytes() == before
    bare = fodhash("update", "sources.nix", cwd=example)
    assert bare.returncode == 2 and "outside the repository" in bare.stderr


def test_shell_metacharacters_never_reach_a_shell(example: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (example / "fodhash.toml").write_text(
        f'[targets."x; touch {marker}"]\nfile = "sources.nix"\n'
        f'[targets."$(touch {marker})"]\nfile = "sources.nix"\nattr = "$(touch {marker})"\n'
        f'build = "sources.nix"\nnix-args = ["--argstr", "x", "`touch {marker}`"]\n')
    before = snapshot(example)
    first = fodhash("update", f"x; touch {marker}", cwd=example)
    second = fodhash("update", f"$(touch {marker})", cwd=example)
    assert not marker.exists()
    assert first.returncode == 0, first.stderr  # an odd name is just a name
    assert second.returncode == 1
    assert re.search(r"attribute '\$\(touch .*' in selection path", second.stdout)
    assert snapshot(example) != before
