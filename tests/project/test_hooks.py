"""The hooks of .pre-commit-hooks.yaml, run by the real pre-commit and the real prek.

The hook repository is a git repository holding this checkout's current files (tracked and
untracked-but-not-ignored), so the hooks under test are the ones in the work tree, committed
or not. The user repository is a copy of fixtures/example, first made consistent with
`fodhash update --all`, whose .pre-commit-config.yaml points at the hook repository by path
and commit. Each tool installs the hook environment (a pip or uv install of fodhash into its
home) once per test session; the homes live in a session temp folder, never in ~/.cache.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import ROOT, copy_fixture, fodhash

pytestmark = pytest.mark.nix

TOOLS = ["pre-commit", "prek"]
HOME_VARIABLE = {"pre-commit": "PRE_COMMIT_HOME", "prek": "PREK_HOME"}
# The virtualenv's bin: pre-commit, prek and uv. prek creates Python environments with uv;
# it uses the uv installed next to it (or on PATH) and otherwise tries to download one
# (GitHub, PyPI's JSON API, mirrors) before falling back to `pip install uv`.
BIN = Path(sys.executable).parent
IDENTITY = ("-c", "user.name=fodhash tests", "-c", "user.email=tests@fodhash.invalid",
            "-c", "commit.gpgsign=false")
LOCKFILE = "upstream/authentik/uv.lock"
# A change of uv.lock changes the authentik source tree (both fetches of it) and the uv
# dependencies FOD; the web and Go dependencies do not read it.
STALE_AFTER_LOCKFILE = {"sources.nix", "authentik.nix", "python-deps.nix"}
SUMMARY = re.compile(r"\d+ site\(s\): .*; (\d+) evaluations?, (\d+) FOD build\(s\)")


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *IDENTITY, *args], cwd=cwd, capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A git repository with this checkout's current files, and the ref the README's
    `.pre-commit-config.yaml` pins (the branch `main` until a release is tagged)."""
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, check=True).stdout.decode()
    repo = tmp_path_factory.mktemp("hook-repo")
    for name in sorted(set(filter(None, listing.split("\0")))):
        source = ROOT / name
        if source.is_file():  # tracked files deleted in the work tree are listed too
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    assert (repo / ".pre-commit-hooks.yaml").is_file()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "fodhash as it is in the work tree")
    # Pinned as the README tells users to (a branch, or a tag the release process made).
    rev = re.search(r"^ +rev: (\S+)", (ROOT / "README.md").read_text(), re.MULTILINE)
    assert rev, "the README's pre-commit snippet has no rev:"
    if rev[1].startswith("v"):
        _git(repo, "tag", "-a", rev[1], "-m", f"fodhash {rev[1]}")
    return repo, rev[1]


@pytest.fixture(scope="session")
def tool_homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """PRE_COMMIT_HOME and PREK_HOME, shared by every test of the session."""
    return {tool: tmp_path_factory.mktemp(f"{tool}-home") for tool in TOOLS}


@dataclass
class UserRepo:
    path: Path
    tool: str
    env: dict[str, str]

    def run(self, *command: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """A command in the repository, its stdout and stderr interleaved as a user sees them."""
        return subprocess.run(list(command), cwd=self.path, env=self.env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                              check=False)

    def git(self, *args: str) -> str:
        result = self.run("git", *args)
        assert result.returncode == 0, result.stdout
        return result.stdout

    def commit(self, message: str) -> subprocess.CompletedProcess[str]:
        """`git commit`, which runs the installed hook."""
        return self.run("git", "commit", "-m", message)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def hook(self, hook_id: str) -> subprocess.CompletedProcess[str]:
        """The hook run by hand on every file, with its output shown even when it passes."""
        return self.run(str(BIN / self.tool), "run", hook_id, "--all-files", "--verbose")

    def change_lockfile(self) -> None:
        with (self.path / LOCKFILE).open("a") as lock:
            lock.write('\n[[package]]\nname = "pyyaml"\nversion = "6.0.2"\n'
                       'source = { registry = "https://pypi.org/simple" }\n')
        self.git("add", LOCKFILE)


def _user_repo(tmp_path: Path, tool: str, hook_id: str, hook_repo: tuple[Path, str],
               home: Path) -> UserRepo:
    if not (BIN / tool).exists():
        pytest.skip(f"{tool} is not installed in {BIN} (pip install -e '.[dev]')")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") and k != "SKIP"}
    env.pop("GITHUB_ACTIONS", None)  # plain messages, not workflow annotations
    global_config = tmp_path / "gitconfig"
    global_config.touch()
    env |= {
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', os.defpath)}",
        HOME_VARIABLE[tool]: str(home),
        # No user or system git configuration (core.hooksPath, signing, templates) applies.
        "GIT_CONFIG_GLOBAL": str(global_config),
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    repo = UserRepo(copy_fixture("example", tmp_path), tool, env)
    repo.git("config", "user.name", "fodhash tests")
    repo.git("config", "user.email", "tests@fodhash.invalid")
    path, rev = hook_repo
    (repo.path / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {path}\n    rev: {rev}\n    hooks:\n      - id: {hook_id}\n")
    # Consistent first (the fixture's hashes are all stale), committed before any hook exists.
    update = fodhash("update", "--all", cwd=repo.path)
    assert update.returncode == 0, update.stderr
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "example, every hash true")
    install = repo.run(str(BIN / tool), "install")
    assert install.returncode == 0, install.stdout
    return repo


@pytest.mark.parametrize("tool", TOOLS)
def test_check_hook_blocks_a_stale_commit_and_passes_after_update(
        tmp_path: Path, tool: str, hook_repo: tuple[Path, str], tool_homes: dict[str, Path]) -> None:
    repo = _user_repo(tmp_path, tool, "fodhash-check", hook_repo, tool_homes[tool])
    before = repo.head()

    # (a) The lockfile changes, the hashes do not: the commit is blocked, naming each stale
    # site and the command that fixes it; the hook changed no file.
    repo.change_lockfile()
    blocked = repo.commit("bump the Python lockfile")
    assert blocked.returncode != 0, blocked.stdout
    assert repo.head() == before
    out = blocked.stdout
    assert re.search(r"python-deps\.nix:\d+: outputHash is stale: .*; run `fodhash update python-deps`",
                     out), out
    assert re.search(r"sources\.nix:\d+: authentik\.hash is stale: .*; run `fodhash update sources`",
                     out), out
    assert "outputHash.x86_64-linux is stale" not in out and "vendorHash is stale" not in out
    assert repo.git("status", "--porcelain").splitlines() == [f"M  {LOCKFILE}"]

    # (b) After `fodhash update` (and staging its changes) the commit passes.
    update = fodhash("update", "--all", cwd=repo.path)
    assert update.returncode == 0, update.stderr
    assert set(repo.git("diff", "--name-only").split()) == STALE_AFTER_LOCKFILE
    repo.git("add", "-A")
    passed = repo.commit("bump the Python lockfile, with its hashes")
    assert passed.returncode == 0, passed.stdout
    assert repo.head() != before
    assert re.search(r"fodhash check\.+Passed", passed.stdout), passed.stdout

    # (c) The cache is warm: the hook on the unchanged repository builds nothing.
    again = repo.hook("fodhash-check")
    assert again.returncode == 0, again.stdout
    summary = SUMMARY.search(again.stdout)
    assert summary, again.stdout
    assert summary.group(2) == "0", summary.group(0)
    assert repo.git("status", "--porcelain") == ""
    if tool == "prek":  # it used the uv next to it, and fetched none of its own
        assert not (tool_homes[tool] / "tools" / "uv").exists()


@pytest.mark.parametrize("tool", TOOLS)
def test_update_hook_fixes_the_hashes_and_fails_until_they_are_staged(
        tmp_path: Path, tool: str, hook_repo: tuple[Path, str], tool_homes: dict[str, Path]) -> None:
    repo = _user_repo(tmp_path, tool, "fodhash-update", hook_repo, tool_homes[tool])
    before = repo.head()

    repo.change_lockfile()
    failed = repo.commit("bump the Python lockfile")
    assert failed.returncode != 0, failed.stdout
    assert repo.head() == before
    assert "files were modified by this hook" in failed.stdout, failed.stdout
    # The true hashes are in the work tree, not yet staged.
    assert set(repo.git("diff", "--name-only").split()) == STALE_AFTER_LOCKFILE
    check = fodhash("check", "--all", cwd=repo.path)
    assert check.returncode == 0, check.stdout + check.stderr
    summary = SUMMARY.search(check.stderr)
    assert summary and summary.group(2) == "0", check.stderr  # the hook's builds are cached

    repo.git("add", "-A")
    passed = repo.commit("bump the Python lockfile, with its hashes")
    assert passed.returncode == 0, passed.stdout
    assert repo.head() != before
    assert re.search(r"fodhash update\.+Passed", passed.stdout), passed.stdout
    assert repo.git("status", "--porcelain") == ""
