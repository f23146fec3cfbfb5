"""`fodhash update --commit` and `--patch FILE` with real git and the real Nix, on a copy of
the example repository committed as a user's repository with work of the user's own in
progress: a staged change, an unstaged change and an untracked file, none of which fodhash
may touch."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from helpers import FIXTURES, copy_fixture, fodhash, snapshot

pytestmark = pytest.mark.nix

EXPECTED = json.loads((FIXTURES / "example" / "expected.json").read_text())["vendored.nix"]
IDENTITY = {"GIT_AUTHOR_NAME": "u", "GIT_AUTHOR_EMAIL": "u@fodhash.invalid",
            "GIT_COMMITTER_NAME": "u", "GIT_COMMITTER_EMAIL": "u@fodhash.invalid"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "commit.gpgsign=false", *args], cwd=repo, text=True,
                          capture_output=True, check=True, env={**os.environ, **IDENTITY}).stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example, committed, then the user's work in progress on top."""
    for name, value in IDENTITY.items():
        monkeypatch.setenv(name, value)  # fodhash's own `git commit` needs an identity
    root = copy_fixture("example", tmp_path)
    git(root, "commit", "-q", "-m", "the example")
    (root / "README.md").write_text((root / "README.md").read_text() + "staged\n")
    git(root, "add", "README.md")
    (root / "expected.json").write_text((root / "expected.json").read_text() + "\n")
    (root / "notes.txt").write_text("untracked\n")
    return root


def work_in_progress(root: Path) -> tuple[str, str, str]:
    return (git(root, "diff", "--cached", "--name-only"), git(root, "diff", "--name-only"),
            git(root, "ls-files", "--others", "--exclude-standard"))


def assert_vendored_true(data: str) -> None:
    for true in EXPECTED.values():
        assert f'"{true}"' in data
    assert "fakeHash" not in data


def assert_message_lists_every_site(text: str) -> None:
    assert text.startswith(f"fodhash: update {len(EXPECTED)} stale hashes\n\n"), text
    for attrpath, true in EXPECTED.items():
        line = re.search(rf"^- vendored\.nix:(\d+) {re.escape(attrpath)} \(vendored\): "
                         rf"(\S+) -> {re.escape(true)}$", text, re.MULTILINE)
        assert line, f"{attrpath} is not in the message:\n{text}"
        assert line[2].endswith("fakeHash"), line[0]


def test_commit_commits_exactly_the_changed_files(repo: Path) -> None:
    before = work_in_progress(repo)
    assert before == ("README.md\n", "expected.json\n", "notes.txt\n")
    head = git(repo, "rev-parse", "HEAD")
    result = fodhash("update", "vendored", "--commit", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert git(repo, "rev-parse", "HEAD^") == head, "not one new commit on top"
    assert git(repo, "show", "--name-only", "--format=", "HEAD") == "vendored.nix\n"
    assert_vendored_true(git(repo, "show", "HEAD:vendored.nix"))
    assert_message_lists_every_site(git(repo, "log", "-1", "--format=%B"))
    # The user's work is as it was: staged, unstaged, untracked; nothing else differs.
    assert work_in_progress(repo) == before
    assert "staged" in git(repo, "show", ":README.md")
    assert git(repo, "diff", "HEAD", "--name-only", "--", "vendored.nix") == ""


def test_commit_refuses_a_file_with_changes_of_the_users(repo: Path) -> None:
    """Committing vendored.nix would carry the user's own uncommitted edit of it."""
    vendored = repo / "vendored.nix"
    vendored.write_text(vendored.read_text() + "# mine\n")
    head = git(repo, "rev-parse", "HEAD")
    result = fodhash("update", "vendored", "--commit", cwd=repo)
    assert result.returncode == 1, result.stderr
    assert "not committed" in result.stderr and "vendored.nix" in result.stderr
    assert git(repo, "rev-parse", "HEAD") == head
    text = vendored.read_text()
    assert_vendored_true(text)  # updated all the same, the user's line kept
    assert text.endswith("# mine\n")


def test_patch_leaves_the_files_and_holds_the_change(repo: Path, tmp_path: Path) -> None:
    before = snapshot(repo)
    patch = tmp_path / "fodhash.patch"
    result = fodhash("update", "vendored", "--patch", str(patch), cwd=repo)
    assert result.returncode == 0, result.stderr
    assert snapshot(repo) == before, "--patch changed a file"
    text = patch.read_text()
    assert re.findall(r"^diff --git a/(\S+)", text, re.MULTILINE) == ["vendored.nix"]
    # `git apply` takes it, in the work tree with the user's work in progress...
    subprocess.run(["git", "apply", "--check", str(patch)], cwd=repo, check=True)
    # ...and `git am` commits it in a clone, with the message --commit writes.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    git(clone, "am", "-q", str(patch))
    assert_vendored_true((clone / "vendored.nix").read_text())
    assert_message_lists_every_site(git(clone, "log", "-1", "--format=%B"))
    assert git(clone, "show", "--name-only", "--format=", "HEAD") == "vendored.nix\n"


def test_patch_of_nothing_stale_is_empty(repo: Path, tmp_path: Path) -> None:
    assert fodhash("update", "vendored", cwd=repo).returncode == 0
    patch = tmp_path / "fodhash.patch"
    result = fodhash("update", "vendored", "--patch", str(patch), cwd=repo)
    assert result.returncode == 0, result.stderr
    assert patch.read_text() == ""
    assert "nothing is stale" in result.stderr


def test_commit_of_nothing_stale_makes_no_commit(repo: Path) -> None:
    assert fodhash("update", "vendored", "--commit", cwd=repo).returncode == 0
    head = git(repo, "rev-parse", "HEAD")
    result = fodhash("update", "vendored", "--commit", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert "nothing to commit" in result.stderr
    assert git(repo, "rev-parse", "HEAD") == head


@pytest.mark.parametrize("args", [["--commit", "--dry-run"], ["--patch", "p", "--commit"],
                                  ["--patch", "p", "--dry-run"]])
def test_exclusive_options(repo: Path, args: list[str]) -> None:
    result = fodhash("update", "vendored", *args, cwd=repo)
    assert result.returncode == 2, result.stderr
    assert "combine" in result.stderr or "choose one" in result.stderr, result.stderr
    assert not (repo / "p").exists()
