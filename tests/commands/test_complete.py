"""Shell completion of target names and --platform values from fodhash.toml, through the
real completion entry point a shell's completion script calls (bash's and zsh's)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import FIXTURES, copy_fixture


def complete(words: str, cwd: Path, shell: str = "bash") -> list[str]:
    """What the completion script of `shell` gets for the last word of `words` (bash passes
    the words and the index of the one completed; zsh the line)."""
    env = {**os.environ, "_FODHASH_COMPLETE": f"complete_{shell}"}
    if shell == "bash":
        env |= {"COMP_WORDS": words, "COMP_CWORD": str(len(words.split(" ")) - 1)}
    else:
        env |= {"_TYPER_COMPLETE_ARGS": words}
    done = subprocess.run([sys.executable, "-c", "from fodhash.cli import main; main()"],
                          cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and not done.stderr, done.stderr
    return done.stdout.split()


EXAMPLE_TARGETS = ["authentik", "authentik-server", "python-deps", "python-deps-flake",
                   "sources", "vendored", "webui-deps"]


@pytest.mark.parametrize("command", ["update", "check", "list"])
def test_targets_of_fodhash_toml(command: str) -> None:
    assert complete(f"fodhash {command} ", FIXTURES / "example") == EXAMPLE_TARGETS
    assert complete(f"fodhash {command} python", FIXTURES / "example") == [
        "python-deps", "python-deps-flake"]
    assert complete(f"fodhash {command} webui-deps auth", FIXTURES / "example") == [
        "authentik", "authentik-server"]


def test_apply_target_option() -> None:
    assert complete("fodhash apply --target ven", FIXTURES / "example") == ["vendored"]


def test_a_path_completes_nix_files() -> None:
    assert complete("fodhash update nix/", FIXTURES / "example") == ["nix/stubs.nix"]


@pytest.mark.parametrize("command", ["update", "check"])
def test_platforms_of_fodhash_toml(command: str) -> None:
    folder = FIXTURES / "platforms"
    assert complete(f"fodhash {command} --platform ", folder) == [
        "all", "aarch64-linux", "x86_64-linux"]
    assert complete(f"fodhash {command} --platform a", folder) == ["all", "aarch64-linux"]
    # One system, where `all` is not accepted.
    assert complete("fodhash list --platform ", folder) == ["aarch64-linux", "x86_64-linux"]
    assert complete("fodhash cache export x.json --platform x", folder) == ["x86_64-linux"]


def test_zsh_gets_the_same_names() -> None:
    assert complete("fodhash update python", FIXTURES / "example", "zsh") != []
    out = " ".join(complete("fodhash update python", FIXTURES / "example", "zsh"))
    assert "python-deps" in out and "python-deps-flake" in out and "webui" not in out


def test_config_option_is_followed(tmp_path: Path) -> None:
    """The targets of the fodhash.toml named by --config, not of the folder's."""
    repo = copy_fixture("platforms", tmp_path, git=False)
    config = os.path.relpath(repo / "fodhash.toml", FIXTURES / "example")
    assert complete(f"fodhash update --config {config} ", FIXTURES / "example") == [
        "frontend", "wheels"]


def test_no_or_broken_config_completes_quietly(tmp_path: Path) -> None:
    assert complete("fodhash update ", tmp_path) == []
    (tmp_path / "fodhash.toml").write_text("[targets.x\n")
    (tmp_path / "a.nix").write_text("{}")
    assert complete("fodhash update ", tmp_path) == ["a.nix"]
    assert complete("fodhash check --platform ", tmp_path) == ["all"]
