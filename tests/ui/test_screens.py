"""fodhash.entry answers `--version` and `--help` without loading typer (docs/performance.md,
"Start-up"): the help screens it prints are typer's own, made by `make help-screens` into
fodhash/ui/screens.py, and must stay what typer prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import fodhash, modules_loaded_by

from fodhash import cli
from fodhash.ui.screens import SCREENS

# fodhash.cli's main, as the console script called it before fodhash.entry: typer answers.
THROUGH_TYPER = """import sys
sys.argv = ["fodhash", *sys.argv[1:]]
from fodhash.cli import main
main()
"""
# fodhash.entry's main, then the modules it loaded.
LOADED = modules_loaded_by("fodhash.entry")


def _run(args: list[str], cwd: Path, columns: int) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS=str(columns))
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def test_the_screens_are_made_from_the_commands_as_they_are() -> None:
    assert cli.help_screens() == SCREENS, "a help text changed: run `make help-screens`"
    assert {"", "update", "check", "cache", "cache export"} <= SCREENS.keys()


@pytest.mark.parametrize("words", sorted(SCREENS), ids=lambda w: w or "fodhash")
def test_each_screen_is_what_typer_prints_on_a_wide_terminal(words: str, tmp_path: Path) -> None:
    args = [*words.split(), "--help"]
    ours = _run([sys.executable, "-m", "fodhash", *args], tmp_path, 132)
    typers = _run([sys.executable, "-c", THROUGH_TYPER, *args], tmp_path, 132)
    assert (ours.returncode, ours.stdout) == (typers.returncode, typers.stdout) == (0, SCREENS[words])


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["cache", "import", "--help"]])
def test_version_and_help_on_a_wide_terminal_never_load_typer(args: list[str], tmp_path: Path) -> None:
    result = _run([sys.executable, "-c", LOADED, *args], tmp_path, 80)
    modules = result.stderr.split()
    assert "fodhash.entry" in modules, result.stderr
    assert [m for m in modules if m.split(".")[0] in ("typer", "click", "rich")] == []
    assert "fodhash.cli" not in modules


def test_a_narrow_terminal_gets_typer_and_its_narrower_screen(tmp_path: Path) -> None:
    result = _run([sys.executable, "-c", LOADED, "update", "--help"], tmp_path, 60)
    assert "typer" in result.stderr.split()
    assert result.stdout != SCREENS["update"]
    assert result.stdout.startswith("Usage: fodhash update")
    assert max(len(line) for line in result.stdout.splitlines()) <= 60


def test_anything_else_goes_to_typer(tmp_path: Path) -> None:
    # An unknown command's --help, --version among other options, completion: typer answers.
    unknown = fodhash("nosuch", "--help", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "No such command 'nosuch'" in unknown.stderr
    both = fodhash("-v", "--version", cwd=tmp_path)
    assert both.returncode == 0
    assert both.stdout.startswith("fodhash ")
