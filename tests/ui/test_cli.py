"""The command line itself: help screens, --version, shell completion (no Nix needed)."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from helpers import ROOT, fodhash, modules_loaded_by

COMMANDS = [[], ["update"], ["check"], ["apply"], ["restore"], ["list"], ["init"],
            ["cache"], ["cache", "info"], ["cache", "clear"], ["cache", "export"],
            ["cache", "import"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "fodhash")
def test_help_names_values_by_metavar_and_flags_alone(command: list[str], tmp_path: Path) -> None:
    result = fodhash(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # typer 0.2x printed Python types: `--all <bool>`, `targets... <list[str]>`, `<int range>`.
    assert not re.search(r"<[a-z][\w\[\], ]*>", result.stdout), result.stdout
    assert result.stdout.startswith(f"Usage: fodhash {' '.join(command)}".rstrip())
    for line in result.stdout.splitlines():
        if line.strip().startswith(("--all ", "--dry-run ", "--json ", "--help ")):
            assert re.match(r"\s+--[\w-]+\s{2,}\S", line), line  # no value after a flag


def test_update_help_keeps_brackets_and_names_every_value(tmp_path: Path) -> None:
    out = fodhash("update", "--help", cwd=tmp_path).stdout
    assert "every [platforms.*] in fodhash.toml" in " ".join(out.split())  # rich markup ate it
    assert "Usage: fodhash update [OPTIONS] [TARGET...]" in out
    for row in ("TARGET...", "--config PATH", "-j, --jobs N", "--timeout SECONDS",
                "--platform SYSTEM"):
        assert row in out


def test_version_comes_from_the_package_metadata(tmp_path: Path) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project.get("dynamic", [])
    result = fodhash("--version", cwd=tmp_path)
    assert result.stdout == f"fodhash {importlib.metadata.version('fodhash')}\n"
    assert importlib.metadata.version("fodhash") == project["version"]
    assert project["version"] not in (ROOT / "fodhash" / "__init__.py").read_text()


# What only a command needs: --version and --help never import it (docs/performance.md,
# "Start-up"). importlib.metadata: --version reads it only in a source checkout or an
# editable install (tests/project/test_packaging.py checks an installed wheel).
COMMAND_ONLY = ("rich", "pexpect", "diskcache", "tree_sitter", "tree_sitter_language_pack",
                "logging", "pydantic", "sqlite3", "fodhash.commands", "fodhash.files",
                "fodhash.protocol", "fodhash.nix", "fodhash.run", "fodhash.cache")
IMPORTED = modules_loaded_by("fodhash.cli")


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_version_and_help_import_nothing_a_command_needs(flag: str, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", IMPORTED, flag], cwd=tmp_path,
                            capture_output=True, text=True, check=False)
    modules = result.stderr.split()
    assert "fodhash.cli" in modules, result.stderr
    loaded = [m for m in modules if m.split(".")[0] in COMMAND_ONLY or m.startswith(
        tuple(f"{p}." for p in COMMAND_ONLY if "." in p)) or m in COMMAND_ONLY]
    assert loaded == []


def test_show_completion_prints_a_script_for_the_shell_it_runs_in(tmp_path: Path) -> None:
    # typer finds the shell among the parent processes (shellingham): run it from bash.
    result = subprocess.run(["bash", "-c", f"{sys.executable} -m fodhash --show-completion"],
                            cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "complete -o default -F _fodhash_completion fodhash" in result.stdout
    assert "_FODHASH_COMPLETE=complete_bash" in result.stdout


def test_the_completion_script_completes_commands_and_options(tmp_path: Path) -> None:
    def complete(words: str) -> list[str]:
        env = dict(os.environ, _FODHASH_COMPLETE="complete_bash", COMP_WORDS=words,
                   COMP_CWORD=str(len(words.split()) - 1))
        return subprocess.run([sys.executable, "-m", "fodhash"], env=env, cwd=tmp_path,
                              capture_output=True, text=True, check=True).stdout.split()

    assert complete("fodhash up") == ["update"]
    assert complete("fodhash update --dr") == ["--dry-run"]
    assert "export" in complete("fodhash cache ex")
