"""Record what the real Nix on this machine prints for fixed-output hash mismatches.

Re-run with `.venv/bin/python tests/transcripts/record.py`: it writes tiny fixed-output
derivations to a temporary directory, runs Nix on them and saves the exact bytes Nix printed
(stdout and stderr combined, as the tool saw them) to `nix-<version>-<what>.txt` next to this
script. The `pty-` transcripts are read through a pseudo-terminal (pexpect), so they carry
colour and `\r\n` line endings. Builders print fixed text, so the got hashes and `.drv` paths
are the same on every run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pexpect  # type: ignore[import-untyped]

HERE = Path(__file__).resolve().parent
FAKE = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

FODS_NIX = r"""
let
  fod = { name, script, hash ? "FAKE", algo ? "sha256", mode ? "flat" }: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" ("PATH=/usr/bin:/bin; " + script) ];
    outputHashMode = mode;
    outputHashAlgo = algo;
    outputHash = hash;
  };
  plain = name: script: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" ("PATH=/usr/bin:/bin; " + script) ];
  };
in rec {
  flat = fod { name = "fodhash-flat"; script = "echo hi > $out"; };
  realise = fod { name = "fodhash-realise"; script = "echo realise > $out"; };
  pty = fod { name = "fodhash-pty"; script = "echo pty > $out"; };
  json = fod { name = "fodhash-json"; script = "echo building json; echo json > $out"; };
  flake = fod { name = "fodhash-flake"; script = "echo flake > $out"; };
  one = fod { name = "fodhash-one"; script = "echo one > $out"; };
  two = fod { name = "fodhash-two"; script = "echo two > $out"; };
  # Depends on both: with --keep-going Nix reports the dependency failure too.
  consumer = plain "fodhash-consumer" "echo ${one} ${two} > $out";
  keepGoing = [ one two consumer ];
  recursive512 = fod {
    name = "fodhash-recursive512"; algo = "sha512"; mode = "recursive";
    hash = "sha512-" + builtins.concatStringsSep "" (builtins.genList (_: "A") 86) + "==";
    script = "mkdir -p $out/sub; echo deep > $out/sub/file";
  };
  broken = plain "fodhash-broken" ''
    echo fetching tarball
    echo 'curl: (6) Could not resolve host: example.invalid' >&2
    exit 1
  '';
  brokenFod = fod { name = "fodhash-broken-fod"; script = "echo trying mirror; exit 3"; };
  mixed = [ broken (fod { name = "fodhash-mixed"; script = "echo mixed > $out"; }) ];
  saysGot = fod {
    name = "fodhash-says-got";
    script = ''
      echo "got: sha256-mOpuTyFvL7S2n/+bOkSELDhobKaF8/VdxIxdP7EQe+Q="
      echo "npm got 12.0.0"
      echo "   got:    sha256-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB="
      echo says-got > $out
    '';
  };
  emptyHash = fod { name = "fodhash-empty"; hash = ""; script = "echo empty > $out"; };
  emptyNoAlgo = derivation {
    name = "fodhash-empty-no-algo";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" "PATH=/usr/bin:/bin; echo x > $out" ];
    outputHashMode = "flat";
    outputHash = "";
  };
}
""".replace("FAKE", FAKE)


def env(**extra: str) -> dict[str, str]:
    result = dict(os.environ)
    # No binary cache: spares a 5 s network retry and keeps builds local.
    result["NIX_CONFIG"] = "substituters ="
    for key in ("NO_COLOR", "NIX_GET_COMPLETIONS"):
        result.pop(key, None)
    result.update(extra)
    return result


def exe(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} is not on PATH")
    return found


def run_pipe(cmd: list[str], cwd: Path) -> bytes:
    """Output as a program reading a pipe sees it: no colour, `\n` line endings."""
    proc = subprocess.run(
        [exe(cmd[0]), *cmd[1:]],
        cwd=cwd,
        env=env(TERM="dumb"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    return proc.stdout


def run_pty(cmd: list[str], cwd: Path) -> bytes:
    """Output as pexpect sees it: colour on, `\r\n` line endings, `nix build` line erasing."""
    child = pexpect.spawn(
        exe(cmd[0]),
        cmd[1:],
        cwd=str(cwd),
        env=env(TERM="xterm-256color"),
        dimensions=(50, 250),
        timeout=120,
    )
    data = bytes(child.read())
    child.close()
    return data


def instantiate(attr: str, cwd: Path) -> str:
    proc = subprocess.run(
        [exe("nix-instantiate"), "fods.nix", "-A", attr],
        cwd=cwd,
        env=env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip()


def legacy(attr: str, *flags: str) -> list[str]:
    return ["nix-build", "fods.nix", "-A", attr, "--no-out-link", *flags]


def new_cli(*args: str) -> list[str]:
    return [
        "nix",
        "--extra-experimental-features",
        "nix-command flakes",
        "build",
        "-f",
        "fods.nix",
        "--no-link",
        *args,
    ]


def record(cwd: Path) -> dict[str, bytes]:
    """Transcript name (after `nix-<version>-`) to the bytes Nix printed."""
    realise = ["nix-store", "--realise", instantiate("realise", cwd)]
    return {
        "nix-build-plain": run_pipe(legacy("flat"), cwd),
        "nix-store-realise-plain": run_pipe(realise, cwd),
        "keep-going-two": run_pipe(legacy("keepGoing", "--keep-going"), cwd),
        "pty-colour": run_pty(legacy("pty"), cwd),
        "internal-json": run_pipe(legacy("json", "--log-format", "internal-json"), cwd),
        "nix-build-flake": run_pipe(new_cli("flake"), cwd),
        "nix-build-flake-pty": run_pty(new_cli("flake"), cwd),
        # nix build 2.8-2.22 shows only the first failing top-level installable.
        "nix-build-flake-keep-going-two": run_pipe(new_cli("one", "two", "--keep-going"), cwd),
        "sha512-recursive": run_pipe(legacy("recursive512"), cwd),
        "builder-failed": run_pipe(legacy("broken"), cwd),
        "builder-failed-fod": run_pipe(legacy("brokenFod"), cwd),
        "builder-failed-flake": run_pipe(new_cli("broken"), cwd),
        "pty-builder-failed-flake": run_pty(new_cli("broken"), cwd),
        "keep-going-mismatch-and-failure": run_pipe(legacy("mixed", "--keep-going"), cwd),
        "pty-keep-going-mismatch-and-failure": run_pty(legacy("mixed", "--keep-going"), cwd),
        "internal-json-keep-going-mismatch-and-failure": run_pipe(
            legacy("mixed", "--keep-going", "--log-format", "internal-json"), cwd
        ),
        "log-says-got": run_pipe(legacy("saysGot"), cwd),
        "empty-hash-warning": run_pipe(legacy("emptyHash"), cwd),
        "empty-hash-no-algo": run_pipe(legacy("emptyNoAlgo"), cwd),
    }


def main() -> int:
    out = subprocess.run(
        [exe("nix-build"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    version = re.sub(r"^\D*", "", out.split()[-1])
    short = ".".join(version.split(".")[:2])
    with tempfile.TemporaryDirectory(prefix="fodhash-record-") as tmp:
        cwd = Path(tmp)
        (cwd / "fods.nix").write_text(FODS_NIX)
        transcripts = record(cwd)
    for what, data in transcripts.items():
        path = HERE / f"nix-{short}-{what}.txt"
        path.write_bytes(data)
        print(f"{path.name}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
