"""The docs cannot rot: every `fodhash` command in the `sh` blocks of README.md and docs/*.md
is either run here, on a copy of a bundled fixture, or listed below with the reason it
cannot be; and the docs point at nothing outside the repository."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import ROOT, copy_fixture

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_SH_BLOCK = re.compile(r"^( *)```sh\n(.*?)^\1```", re.DOTALL | re.MULTILINE)


def documented_commands() -> list[tuple[str, str]]:
    """(document, command) for each `fodhash ...` line of a `sh` block, comment stripped."""
    found = []
    for doc in DOCS:
        for _, block in _SH_BLOCK.findall(doc.read_text()):
            for line in block.splitlines():
                command = re.sub(r"\s+#\s.*$", "", line.strip())
                if command.startswith("fodhash"):
                    found.append((doc.name, command))
    return found


@dataclass(frozen=True)
class Run:
    fixture: str = "example"
    setup: tuple[str, ...] = ()  # shell lines run first, in the copy
    code: int = 0
    replace: tuple[tuple[str, str], ...] = ()  # placeholders in the doc -> fixture paths
    creates: str | None = None  # a file the command must write


PLATFORM = ('printf \'\\n[platforms.aarch64-linux]\\nnix-args = ["--argstr", "system", '
            '"aarch64-linux"]\\nbuild-args = ["--option", "extra-platforms", '
            '"aarch64-linux"]\\n\' >> fodhash.toml')
RUN: dict[str, Run] = {
    "fodhash --version": Run(),
    "fodhash update webui-deps": Run(setup=("fodhash update sources",)),
    "fodhash update path/to/file.nix": Run(replace=(("path/to/file.nix", "vendored.nix"),)),
    "fodhash update --all": Run(),
    "fodhash update --all --dry-run": Run(),
    "fodhash update webui-deps --platform aarch64-linux": Run(
        setup=(PLATFORM, "fodhash update --all")),
    "fodhash update --split-platforms wheels": Run(fixture="platforms"),
    "fodhash check --all": Run(setup=("fodhash update --all",)),
    "fodhash check --all --platform all": Run(fixture="platforms", code=1),  # all stale
    "fodhash check --all --export x86_64-linux.json": Run(code=1, creates="x86_64-linux.json"),
    "fodhash apply results-*.json": Run(
        setup=("fodhash check --all --export results-x86_64-linux.json || true",)),
    "fodhash apply --log ci.log": Run(
        setup=("nix-build test-build.nix -A vendored --keep-going > ci.log 2>&1 || true",)),
    "fodhash update --all --commit": Run(setup=(
        "git -c user.name=t -c user.email=t@t.invalid commit -qm example",),
        replace=(("fodhash update --all --commit",
                  "GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t.invalid GIT_COMMITTER_NAME=t "
                  "GIT_COMMITTER_EMAIL=t@t.invalid fodhash update --all --commit "
                  "&& git diff --quiet HEAD && git show --stat HEAD"),)),
    "fodhash update --all --patch fix.patch": Run(creates="fix.patch", replace=(
        ("fix.patch", "fix.patch && git diff --quiet && git apply --check fix.patch"),)),
    "fodhash list --json": Run(),
    "fodhash list": Run(),
    "fodhash init": Run(setup=("rm fodhash.toml",), creates="fodhash.toml"),
    "fodhash restore": Run(),
    'fodhash cache export "cache-$(nix-instantiate --eval --expr builtins.currentSystem '
    "--json | tr -d '\"').json\"": Run(setup=("fodhash update sources",),
                                       creates="cache-x86_64-linux.json"),
    "fodhash cache import cache-*.json": Run(
        setup=("fodhash update sources", "fodhash cache export cache-x86_64-linux.json")),
}
NOT_RUN = {
    "fodhash --install-completion": "writes to the shell's start-up files in the home folder",
    "fodhash apply --log - --platform aarch64-linux": "needs a log built on aarch64-linux",
    "fodhash cache info | clear | export FILE | import FILE...": "a summary of subcommands",
}


def test_every_documented_command_is_run_or_excused() -> None:
    commands = {command for _, command in documented_commands()}
    assert commands, "no fodhash command found in the docs"
    unknown = commands - set(RUN) - set(NOT_RUN)
    assert not unknown, f"documented but neither run nor excused here: {sorted(unknown)}"
    stale = (set(RUN) | set(NOT_RUN)) - commands
    assert not stale, f"no longer in the docs: {sorted(stale)}"


@pytest.mark.nix
@pytest.mark.parametrize("command", sorted(RUN))
def test_a_documented_command_runs_on_the_fixtures(command: str, tmp_path: Path) -> None:
    spec = RUN[command]
    repo = copy_fixture(spec.fixture, tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "fodhash"  # the command as a user types it
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m fodhash "$@"\n')
    wrapper.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    for line in spec.setup:
        done = subprocess.run(["bash", "-c", line], cwd=repo, env=env, capture_output=True,
                              text=True, check=False)
        assert done.returncode == 0, f"setup {line!r}: {done.stderr}"
    for placeholder, path in spec.replace:
        command = command.replace(placeholder, path)
    result = subprocess.run(["bash", "-c", command], cwd=repo, env=env, capture_output=True,
                            text=True, check=False)
    assert result.returncode == spec.code, result.stdout + result.stderr
    if spec.creates:
        assert (repo / spec.creates).is_file(), sorted(p.name for p in repo.iterdir())


_LINK = re.compile(r"\]\((?!https?://|#|mailto:)([^)#\s]+)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_the_docs_point_only_inside_the_repository(doc: Path) -> None:
    text = doc.read_text()
    outside = ("/work/", "shared/")  # the folders a developer's machine has beside it
    assert not any(folder in text for folder in outside), doc
    for target in _LINK.findall(text):
        path = (doc.parent / target).resolve()
        assert path.is_relative_to(ROOT) and path.exists(), f"{doc.name}: broken link {target}"


# Where the docs pin a ref of fodhash's own repository, in their code blocks: pre-commit's
# `rev:`, `git+https://.../OWNER/fodhash@REF`, `uses: OWNER/fodhash@REF`, the flake's
# `github:OWNER/fodhash/REF`. Prose may name a future tag; a code block is copied as it is.
_CODE_BLOCK = re.compile(r"^ *```[a-z]*\n(.*?)^ *```", re.DOTALL | re.MULTILINE)
_PINS = (re.compile(r"^\s*rev:\s*([^\s#]+)", re.MULTILINE),
         re.compile(r"OWNER/fodhash@([^\s\"'#]+)"),
         re.compile(r"github:OWNER/fodhash/([^\s\"'#]+)"))


def documented_pins() -> list[tuple[str, str]]:
    return [(doc.name, ref) for doc in DOCS for block in _CODE_BLOCK.findall(doc.read_text())
            for pattern in _PINS for ref in pattern.findall(block)]


@pytest.mark.skipif("FODHASH_TEST_NIX_SUITE" in os.environ,
                    reason="the Nix-version roots copy the work tree without its git history; "
                           "the host's suite checks the refs")
def test_every_pinned_ref_resolves_in_this_repository() -> None:
    """A `rev:` or `@ref` that names no commit here fails for every user who copies it
    (pre-commit: "pathspec 'v0.1.0' did not match any file(s) known to git")."""
    pins = documented_pins()
    assert len(pins) >= 5, pins  # the README's and docs/ci.md's pins are all found

    def resolves(name: str) -> bool:
        return subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"],
                              cwd=ROOT, capture_output=True, check=False).returncode == 0

    # A clone without a local branch of that name still has it as origin's.
    unresolved = [(doc, ref) for doc, ref in dict.fromkeys(pins)
                  if not resolves(ref) and not resolves(f"refs/remotes/origin/{ref}")]
    assert not unresolved, f"refs the repository does not have: {unresolved}"
