"""Nix's version, the system and the build users are asked once per Nix installation and
configuration (fodhash.nix.facts), not once per run: real Nix, the real command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import copy_fixture

from fodhash.nix import calls, facts

pytestmark = pytest.mark.nix

QUESTIONS = ("builtins.currentSystem", "nix-store --version", "show-config")


def asked(log: str) -> list[str]:
    """The questions about Nix itself that a -v run started a Nix process for."""
    runs = [line for line in log.splitlines() if line.startswith("fodhash: run: ")]
    return [q for q in QUESTIONS for line in runs if q in line]


def check(repo: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fodhash", "-v", "check", "--json", "sources"],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=600,
                          check=False)


def test_a_second_run_asks_nix_nothing_about_itself(tmp_path: Path) -> None:
    repo = copy_fixture("example", tmp_path)
    env = dict(os.environ)
    first = check(repo, env)
    assert first.returncode == 1, first.stderr  # sources.nix holds stale hashes
    assert "builtins.currentSystem" in asked(first.stderr)
    assert "nix-store --version" in asked(first.stderr)
    # Asked ahead, while the command loads, and taken from there: each once.
    assert sorted(asked(first.stderr)) == sorted(QUESTIONS), first.stderr
    second = check(repo, env)
    assert second.returncode == 1, second.stderr
    assert asked(second.stderr) == []
    # The same answers, from the folder: the JSON report names this Nix and system.
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert (two["nix"], two["system"]) == (one["nix"], one["system"])
    assert two["nix"] == calls._version() and two["system"] == calls._current_system()


def test_another_configuration_is_asked_again(tmp_path: Path) -> None:
    """`system` in NIX_CONFIG changes builtins.currentSystem: a remembered answer of the
    other configuration would be wrong."""
    repo = copy_fixture("example", tmp_path)
    env = dict(os.environ)
    check(repo, env)
    env["NIX_CONFIG"] = env.get("NIX_CONFIG", "") + "\nsystem = aarch64-linux"
    other = subprocess.run([sys.executable, "-m", "fodhash", "-v", "list", "--json"], cwd=repo,
                           env=env, capture_output=True, text=True, timeout=600, check=False)
    assert "builtins.currentSystem" in asked(other.stderr), other.stderr
    assert '"aarch64-linux"' in other.stdout


def test_in_process_the_folder_answers_and_a_broken_file_is_asked_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(facts, "_answers", {})
    facts.forget()
    facts.keep_in(tmp_path)
    try:
        system = calls.current_system()
        stored = json.loads((tmp_path / facts.FILE).read_text())
        assert stored["facts"]["system"] == system and stored["key"] == facts.key()
        facts.forget()
        monkeypatch.setattr(calls, "_current_system", lambda: pytest.fail("asked again"))
        assert calls.current_system() == system
        (tmp_path / facts.FILE).write_text("{not json")
        facts.forget()
        monkeypatch.setattr(calls, "_current_system", lambda: "asked-again")
        assert calls.current_system() == "asked-again"
    finally:
        facts.keep_in(None)
        facts.forget()
