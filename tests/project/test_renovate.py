"""The Renovate `postUpgradeTasks` snippet of docs/ci.md, run as a self-hosted Renovate runs
it after an upgrade: each command through a shell in the repository (allowed only if it
matches one of `allowedPostUpgradeCommands`), then the changed files that match
`fileFilters` go into Renovate's commit. With the real fodhash and Nix, that commit must
hold every fixed hash, and nothing stale may be left behind."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, copy_fixture, fodhash

pytestmark = pytest.mark.nix

_JSON = re.compile(r"^```json\n(.*?)^```", re.DOTALL | re.MULTILINE)


def snippets() -> tuple[list[str], dict[str, object]]:
    """(allowedPostUpgradeCommands, postUpgradeTasks) as docs/ci.md gives them."""
    blocks = [json.loads(b) for b in _JSON.findall((ROOT / "docs" / "ci.md").read_text())]
    (allowed,) = [b["allowedPostUpgradeCommands"] for b in blocks if "allowedPostUpgradeCommands" in b]
    (tasks,) = [b["postUpgradeTasks"] for b in blocks if "postUpgradeTasks" in b]
    return allowed, tasks


def matches(pattern: str, path: str) -> bool:
    """minimatch, as Renovate matches fileFilters: `**/` is any folders (or none)."""
    regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*")
    return re.fullmatch(regex, path) is not None


def test_minimatch_stand_in() -> None:
    assert matches("**/*.nix", "a.nix") and matches("**/*.nix", "x/y/a.nix")
    assert not matches("**/*.nix", "a.nix.orig") and not matches("*.nix", "x/a.nix")


def test_post_upgrade_tasks_commit_every_fixed_hash(tmp_path: Path) -> None:
    allowed, tasks = snippets()
    assert tasks["executionMode"] == "branch"
    repo = copy_fixture("example", tmp_path)  # every hash stale, as after a bump
    # Renovate's environment has fodhash (and Nix) on PATH.
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                                   os.environ["PATH"]])}
    for command in tasks["commands"]:
        assert any(re.search(rule, command) for rule in allowed), command
        done = subprocess.run(["sh", "-c", command], cwd=repo, capture_output=True, text=True,
                              check=False, env=env)
        assert done.returncode == 0, done.stderr
    changed = subprocess.run(["git", "diff", "--name-only"], cwd=repo, capture_output=True,
                             text=True, check=True).stdout.split()
    assert changed, "the example's stale hashes were not fixed"
    committed = [p for p in changed if any(matches(f, p) for f in tasks["fileFilters"])]
    assert committed == changed, "a fixed file would be left out of Renovate's commit"
    # What Renovate pushes (the bump plus those files, which are all the changed ones)
    # checks out as true.
    result = fodhash("check", "--all", cwd=repo)
    assert result.returncode == 0, result.stdout + result.stderr
