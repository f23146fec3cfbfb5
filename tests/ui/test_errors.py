"""Bad input and failures: a clear message, the documented exit code, every file untouched."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import fod_nix, fodhash, snapshot


def fod(name: str, script: str) -> str:
    """A file of one FOD, stale, whose builder runs `script`, for any `--argstr system`."""
    return "{ system ? builtins.currentSystem }:\n" + fod_nix(
        name, "sha256-WmV5WDLjZahDl4MyjfG+U/doLTTyodN47oOmZiFc9iA=", script, system="system")


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.write_text(text)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    write(tmp_path, "ok.nix", fod("ok", "echo ok > $out"))
    write(tmp_path, "fodhash.toml", '[targets.ok]\nfile = "ok.nix"\n')
    return tmp_path


@pytest.mark.parametrize(
    ("args", "files", "message"),
    [
        pytest.param(["nope"], {}, "unknown target 'nope'; targets: ok", id="unknown-target"),
        pytest.param(["missing.nix"], {}, "missing.nix: no such file", id="missing-file"),
        pytest.param(["bad.nix"], {"bad.nix": "{ hash = \"sha256-x\"; "}, "bad.nix:1:",
                     id="syntax-error"),
        pytest.param(["none.nix"], {"none.nix": "{ a = 1; }\n"}, "no hash site found",
                     id="no-site"),
        pytest.param(["sel"], {"fodhash.toml": '[targets.sel]\nfile = "ok.nix"\nsite = "x"\n'},
                     "site 'x' matches no hash site", id="selector-matches-nothing"),
        pytest.param(["two"], {"two.nix": '{ a.hash = "" ; b.hash = ""; }\n',
                               "fodhash.toml": '[targets.two]\nfile = "two.nix"\nsite = "hash"\n'},
                     "is ambiguous, it matches a.hash, b.hash", id="selector-matches-several"),
        pytest.param(["x"], {"fodhash.toml": "[targets.x\n"}, "not valid TOML", id="bad-toml"),
        pytest.param(["x"], {"fodhash.toml": '[targets.x]\nfile = "ok.nix"\nfiel = 1\n'},
                     "unknown key(s) fiel", id="unknown-key"),
        pytest.param(["x"], {"fodhash.toml": '[targets.x]\nfile = "../outside.nix"\n'},
                     "outside the repository", id="outside-repository"),
        pytest.param(["bin.nix"], {"bin.nix": "\0\1\2"}, "binary file", id="binary-file"),
        pytest.param(["latin1.nix"], {"latin1.nix": b'{ hash = "caf\xe9"; }'},
                     "is not valid UTF-8", id="non-utf8-file"),
        pytest.param(["big.nix"], {"big.nix": b"{ a = 1; }\n" + b"# padding\n" * 3_600_000},
                     "too large for a Nix file", id="very-large-file"),
        pytest.param(["dir.nix"], {"dir.nix/x": ""}, "is a directory", id="directory"),
        pytest.param(["dangling.nix"], {"dangling.nix": Path("nowhere.nix")},
                     "dangling.nix: no such file", id="dangling-symlink"),
        pytest.param(["x"], {"fodhash.toml": '[targets.x]\nfile = 3\n'},
                     "`file` must be a string", id="wrong-type-in-config"),
        pytest.param(["x"], {"fodhash.toml": '[targets.x]\nfile = "ok.nix"\nflake = ".#a"\n'
                             'attr = "b"\n'}, "has `flake` and `build`/`attr`", id="flake-and-attr"),
        pytest.param(["x.nix"], {"x.nix": '{ hash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" }'},
                     "x.nix:1:", id="missing-semicolon"),
        pytest.param(["--platform", "mips-linux", "ok"], {}, "[platforms.mips-linux]",
                     id="unknown-platform"),
        pytest.param([], {}, "name a target", id="nothing-named"),
        pytest.param(["--all", "ok"], {}, "--all selects every target; it does not combine "
                     "with naming target(s) (ok)", id="target-after-all"),
        pytest.param(["x"], {"fodhash.toml": '[targets.x]\nfile = "ok.nix"\n'
                             'nix-args = "--arg foo 1"\n'},
                     "`nix-args` of x must be a list of strings, one per argument (for "
                     "'--arg foo 1', write [\"--arg\", \"foo\", \"1\"])", id="nix-args-string"),
        pytest.param(["ok"], {"fodhash.toml": '[targets.ok]\nfile = "ok.nix"\n'
                              '[platforms.aarch64-linux]\nbuild-args = "--keep-going"\n'},
                     "`build-args` of platform aarch64-linux must be a list of strings",
                     id="platform-build-args-string"),
        pytest.param(["x"], {"entry.nix": "{ x = import ./ok.nix {};\n  y = ;\n}\n",
                             "fodhash.toml": '[targets.x]\nfile = "ok.nix"\n'
                                             'build = "entry.nix"\nattr = "x"\n'},
                     "entry.nix:2:7: Nix syntax error: unexpected ';'",
                     id="syntax-error-in-an-entry-point-without-a-site"),
        pytest.param(["x"], {"flake.nix": "{ outputs = ; }\n",
                             "fodhash.toml": '[targets.x]\nfile = "ok.nix"\nflake = ".#x"\n'},
                     "flake.nix:1:13: Nix syntax error", id="syntax-error-in-flake-nix"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(repo: Path, args: list[str],
                                                   files: dict[str, str | bytes | Path],
                                                   message: str) -> None:
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            path.symlink_to(content)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    before = snapshot(repo)
    result = fodhash("update", *args, cwd=repo)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in " ".join(result.stderr.split()), result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(repo) == before


@pytest.mark.parametrize("command", ["check", "list"])
def test_an_entry_point_with_a_syntax_error_is_refused_by_every_command(
        repo: Path, command: str) -> None:
    write(repo, "entry.nix", "{ x = import ./ok.nix {};\n  y = ;\n}\n")
    write(repo, "fodhash.toml", '[targets.x]\nfile = "ok.nix"\nbuild = "entry.nix"\n'
                                'attr = "x"\n')
    result = fodhash(command, "x", cwd=repo)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "entry.nix:2:7: Nix syntax error: unexpected ';'" in result.stderr


def test_check_refuses_a_target_after_all(repo: Path) -> None:
    result = fodhash("check", "--all", "ok", cwd=repo)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--all selects every target" in result.stderr


def test_nix_not_on_path(repo: Path) -> None:
    before = snapshot(repo)
    result = subprocess.run([sys.executable, "-m", "fodhash", "update", "ok"], cwd=repo,
                            env={**os.environ, "PATH": str(repo)}, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 2
    assert "nix-instantiate is not on PATH" in result.stderr
    assert snapshot(repo) == before


@pytest.mark.nix
def test_evaluation_error_is_reported_and_files_restored(repo: Path) -> None:
    write(repo, "eval.nix", fod("e", "true").replace(
        "derivation {", 'assert throw "evaluation failed on purpose"; derivation {'))
    before = snapshot(repo)
    result = fodhash("update", "eval.nix", cwd=repo)
    assert result.returncode == 1
    # A site that failed, reported with the others (its details in the report, on stdout).
    assert "Nix could not evaluate it" in result.stdout
    assert "evaluation failed on purpose" in result.stdout
    assert snapshot(repo) == before


@pytest.mark.nix
def test_builder_failure_shows_its_log_and_restores(repo: Path) -> None:
    write(repo, "fail.nix", fod("fail", "echo compiler exploded; exit 3"))
    before = snapshot(repo)
    result = fodhash("update", "fail.nix", cwd=repo)
    assert result.returncode == 1
    assert "the builder failed" in result.stdout
    assert "compiler exploded" in result.stdout
    assert snapshot(repo) == before


@pytest.mark.nix
def test_resolved_and_failed_sites_in_one_run(repo: Path) -> None:
    write(repo, "mixed.nix", """{ system ? builtins.currentSystem }:
let fod = { name, script, hash }: derivation {
  inherit name system; builder = "/bin/sh"; args = [ "-c" "PATH=/usr/bin:/bin; ${script}" ];
  outputHashMode = "flat"; outputHash = hash;
}; in {
  good = fod { name = "good"; script = "echo good > $out";
               hash = "sha256-WmV5WDLjZahDl4MyjfG+U/doLTTyodN47oOmZiFc9iA="; };
  bad = fod { name = "bad"; script = "exit 1";
              hash = "sha256-WmV5WDLjZahDl4MyjfG+U/doLTTyodN47oOmZiFc9iA="; };
}
""")
    original = (repo / "mixed.nix").read_text()
    result = fodhash("update", "mixed.nix", cwd=repo)
    assert result.returncode == 1
    after = (repo / "mixed.nix").read_text()
    # The good site holds its true hash, the bad one its original text: nothing else moved.
    old, new = original.splitlines(), after.splitlines()
    changed = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
    assert len(changed) == 1 and "WmV5WDLj" in old[changed[0]] and "WmV5WDLj" not in new[changed[0]]
    assert old[changed[0] - 1].startswith("  good =")


def _start_slow(repo: Path, *extra: str) -> tuple[subprocess.Popen[str], bytes]:
    write(repo, "slow.nix", fod("slow", "echo slow-builder; sleep 47.5"))
    original = (repo / "slow.nix").read_bytes()
    proc = subprocess.Popen([sys.executable, "-m", "fodhash", "update", "slow.nix", *extra],
                            cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Wait until the build runs. The fake it builds with is only ever in fodhash's scratch
    # copy: the user's file keeps its bytes all along.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert (repo / "slow.nix").read_bytes() == original, "the user's file was written"
        if _builder_running():
            return proc, original
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the slow build never started")


def _builder_running() -> bool:
    result = subprocess.run(["pgrep", "-f", "sleep 47.5"], capture_output=True, check=False)
    return result.returncode == 0


@pytest.mark.nix
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_during_build_restores_files_and_kills_nix(repo: Path, sig: int) -> None:
    proc, original = _start_slow(repo)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert (repo / "slow.nix").read_bytes() == original
    time.sleep(0.5)
    assert not _builder_running(), "the builder outlived fodhash"


@pytest.mark.nix
def test_timeout_kills_nix_and_restores(repo: Path) -> None:
    write(repo, "slow.nix", fod("slow", "echo slow-builder; sleep 47.5"))
    before = snapshot(repo)
    started = time.monotonic()
    result = fodhash("update", "slow.nix", "--timeout", "3", cwd=repo)
    assert time.monotonic() - started < 40
    assert result.returncode == 1
    assert "timeout" in result.stderr
    # What is left of the timeout is rounded, and the message says what the files hold.
    assert not re.search(r"\d\.\d{2,}", result.stderr), result.stderr
    assert "every file fodhash touched holds its original bytes" in " ".join(result.stderr.split())
    assert snapshot(repo) == before
    assert not _builder_running()


def test_a_config_in_a_subfolder_names_files_of_the_whole_git_repository(tmp_path: Path) -> None:
    """fodhash.toml in `sub/` may name `../default.nix` (inside the git work tree), but not a
    file outside the work tree."""
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    write(repo, "default.nix", fod("top", "echo top > $out"))
    write(tmp_path, "outside.nix", fod("out", "echo out > $out"))
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    write(repo, "sub/fodhash.toml", '[targets.top]\nfile = "../default.nix"\n')
    updated = fodhash("update", "top", cwd=repo / "sub")
    assert updated.returncode == 0, updated.stderr
    assert "../default.nix" in updated.stdout
    assert "sha256-AAAA" not in (repo / "default.nix").read_text()
    write(repo, "sub/fodhash.toml", '[targets.out]\nfile = "../../outside.nix"\n')
    refused = fodhash("update", "out", cwd=repo / "sub")
    assert refused.returncode == 2
    assert f"outside the repository {repo.resolve()} (its git work tree)" in refused.stderr
