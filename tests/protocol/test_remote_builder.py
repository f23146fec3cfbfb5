"""Fixed-output hash mismatches reported by a real remote builder (Nix 2.8 `--builders ssh://`).

The builder is the `remote_builder` fixture (tests/remote_builder.py): sshd on 127.0.0.1 with
its own Nix store. Nix then prefixes the mismatch with "build of '...drv' on 'ssh://...'
failed: ", and the aarch64-linux derivations it accepts build there, not here.

The transcript tests/transcripts/nix-2.8-remote-builder.txt is the output of
`test_remote_mismatch_transcript` (the build of `test_remote_mismatch`, stdout and stderr
together on a pipe, TERM=dumb, as tests/transcripts/record.py records the others). Recorded
with

    FODHASH_RECORD_TRANSCRIPTS=1 .venv/bin/pytest tests/protocol/test_remote_builder.py -k transcript

and on every other run compared byte for byte with a fresh build: the derivation, its path
and the got hash do not depend on the run, and ssh runs with LogLevel=ERROR so its
"Permanently added '[127.0.0.1]:PORT'" warning (the port is random) is not in the output.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import selectors
import subprocess
from pathlib import Path
from typing import IO

import pytest
from helpers import TRANSCRIPTS
from remote_builder import (
    RemoteBuilder,
    running_builder,
)

from fodhash.nix.mismatch import parse_mismatches, parse_unbuildable

pytestmark = pytest.mark.nix

FAKE = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
TRANSCRIPT = TRANSCRIPTS / "nix-2.8-remote-builder.txt"
RECORD = "FODHASH_RECORD_TRANSCRIPTS"

# `system` comes from an argument (`--argstr system aarch64-linux`); x86_64-linux, not
# builtins.currentSystem, by default so the .drv paths (and the transcript) are fixed.
FODS_NIX = r"""
{ system ? "x86_64-linux" }:
let
  fod = name: script: derivation {
    inherit name system;
    builder = "/bin/sh";
    args = [ "-c" ("PATH=/usr/bin:/bin; " + script) ];
    outputHashMode = "flat";
    outputHashAlgo = "sha256";
    outputHash = "FAKE";
  };
in {
  hi = fod "fodhash-remote-builder" "echo hi > $out";
  system = fod "fodhash-remote-system" "echo $system > $out";
}
""".replace("FAKE", FAKE)


def sha256_sri(content: bytes) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(content).digest()).decode()


def nix_env(builder: RemoteBuilder | None = None) -> dict[str, str]:
    """As record.py runs Nix: no binary cache, output on a pipe without colour."""
    env = {**os.environ, "NIX_CONFIG": "substituters =", "TERM": "dumb"}
    env.pop("NO_COLOR", None)
    if builder is not None:
        env.update(builder.env())
    return env


def instantiate(tmp_path: Path, attr: str, *args: str) -> str:
    fods = tmp_path / "fods.nix"
    fods.write_text(FODS_NIX)
    return subprocess.run(["nix-instantiate", str(fods), "-A", attr, *args], env=nix_env(),
                          capture_output=True, text=True, check=True).stdout.strip()


def realise(drv: str, builder: RemoteBuilder | None, system: str = "x86_64-linux") -> tuple[int, str]:
    """Exit status and output (stdout and stderr as one stream) of `nix-store --realise`."""
    flags = builder.nix_args(system) if builder is not None else []
    proc = subprocess.run(["nix-store", "--realise", drv, "--keep-going", *flags], env=nix_env(builder),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120, check=False)
    return proc.returncode, proc.stdout.decode()


def test_builder_has_its_own_store(remote_builder: RemoteBuilder, tmp_path: Path) -> None:
    drv = instantiate(tmp_path, "hi")
    assert Path(drv).exists()
    remote = remote_builder.ssh(f"test ! -e {drv} && echo own")
    assert remote.stdout.strip() == "own", remote.stderr
    assert remote_builder.systems == ("x86_64-linux", "aarch64-linux")
    assert remote_builder.uri == "ssh://root@127.0.0.1"
    assert remote_builder.nix_args("aarch64-linux") == [
        "--max-jobs", "0", "--builders",
        f"ssh://root@127.0.0.1 aarch64-linux {remote_builder.key} 1 1",
    ]


def test_remote_mismatch(remote_builder: RemoteBuilder, tmp_path: Path) -> None:
    drv = instantiate(tmp_path, "hi")
    status, output = realise(drv, remote_builder)
    assert status != 0
    assert f"building '{drv}' on 'ssh://root@127.0.0.1'" in output
    assert (f"error: build of '{drv}' on 'ssh://root@127.0.0.1' failed: "
            f"hash mismatch in fixed-output derivation '{drv}':") in output
    got = sha256_sri(b"hi\n")
    assert got == "sha256-mOpuTyFvL7S2n/+bOkSELDhobKaF8/VdxIxdP7EQe+Q="
    mismatches = parse_mismatches(output)
    assert [(m.path, m.got.sri) for m in mismatches] == [(drv, got)]
    assert mismatches[0].specified is not None and mismatches[0].specified.is_fake


@pytest.mark.nix_transcript("2.8")
def test_remote_mismatch_transcript(remote_builder: RemoteBuilder, tmp_path: Path) -> None:
    _, output = realise(instantiate(tmp_path, "hi"), remote_builder)
    if os.environ.get(RECORD) == "1":
        TRANSCRIPT.write_bytes(output.encode())
    assert TRANSCRIPT.read_bytes().decode() == output


def test_aarch64_builds_on_the_remote(remote_builder: RemoteBuilder, tmp_path: Path) -> None:
    arm = instantiate(tmp_path, "system", "--argstr", "system", "aarch64-linux")
    intel = instantiate(tmp_path, "system", "--argstr", "system", "x86_64-linux")
    assert arm != intel

    # This machine cannot build it itself ...
    status, output = realise(arm, None)
    assert status != 0
    assert parse_unbuildable(output) == {arm: "aarch64-linux"}  # in every version's words

    # ... the builder can, and the system is in what it wrote.
    found = {}
    for drv, system in ((arm, "aarch64-linux"), (intel, "x86_64-linux")):
        status, output = realise(drv, remote_builder, system)
        assert status != 0
        assert f"error: build of '{drv}' on 'ssh://root@127.0.0.1' failed: hash mismatch" in output
        [mismatch] = parse_mismatches(output)
        assert mismatch.path == drv
        found[system] = mismatch.got.sri
    assert found == {"aarch64-linux": sha256_sri(b"aarch64-linux\n"),
                     "x86_64-linux": sha256_sri(b"x86_64-linux\n")}


def _in_namespaces(namespaces: set[str]) -> set[tuple[int, str]]:
    """The processes in these namespaces, each as (pid, start time): namespace ids and pids
    are both reused once free, the pair is not."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if {os.readlink(entry / "ns" / kind) for kind in ("mnt", "pid")} & namespaces:
                    found.add((int(entry.name), _started(int(entry.name))))
    return found


def _started(pid: int) -> str:
    try:
        # Field 22, counted after the command name, which may contain spaces.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "gone"


def _describe(pid: int) -> str:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError as error:
        return f"{pid}: {error}"
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    return f"{pid} {fields.get('State')} ppid {fields.get('PPid')} {cmdline!r}"


def _readline(stream: IO[str], timeout: float = 15) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        assert selector.select(timeout), f"nothing to read after {timeout} s"
    return stream.readline()


def test_stopping_leaves_nothing_behind() -> None:
    """A second builder, with a session still running when it stops: sshd, the session's
    processes and the folder are all gone afterwards."""
    with running_builder() as builder:
        root = builder.key.parent
        session = subprocess.Popen(
            ["ssh", *builder.ssh_options(), "-o", "BatchMode=yes", "-i", str(builder.key),
             "root@127.0.0.1", "echo $(readlink /proc/self/ns/mnt /proc/self/ns/pid); exec sleep 300"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1,
        )
        try:
            assert session.stdout is not None
            remote = set(_readline(session.stdout).split())
            assert os.readlink("/proc/self/ns/mnt") not in remote  # not the store of this machine
            running = _in_namespaces(remote)
            assert len(running) >= 3  # sshd, its session, sleep
        except BaseException:
            session.kill()
            session.wait()
            raise
    try:
        assert session.wait(timeout=10) != 0  # the server side went away
    finally:
        if session.poll() is None:
            session.kill()
            session.wait()
    assert not root.exists()
    left = [pid for pid, started in running if _started(pid) == started]
    assert left == [], [_describe(pid) for pid in left]
