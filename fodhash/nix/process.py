"""Run Nix: one way to run a process (captured or streamed through pexpect), typed results."""

from __future__ import annotations

import contextlib
import grp
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from fodhash.errors import FodhashError, NixError, UsageError
from fodhash.nix.mismatch import strip_ansi

if TYPE_CHECKING:
    import pexpect

log = logging.getLogger(__name__)

# The `nix` command and flakes are experimental in the Nix versions fodhash supports;
# enabling them per call changes nothing else in the user's configuration.
EXPERIMENTAL = ("--extra-experimental-features", "nix-command flakes")
STOP_GRACE = 10.0  # seconds Nix gets to stop its builders before it is killed


class NixTimeout(FodhashError):
    """Nix ran longer than --timeout allowed; its process group was killed."""


# A timeout unwinds through the run's transaction, which puts every file back first.
RESTORED = ("every file fodhash touched holds its original bytes (hashes resolved before then "
            "are in the cache: a new run resumes from them)")


def timed_out(args: Sequence[str], left: float | None) -> str:
    return (f"the --timeout ran out ({left or 0:.1f} s were left of it) during "
            f"`{' '.join(args[:4])}{' ...' if len(args) > 4 else ''}`; Nix was stopped, and {RESTORED}")


@dataclass(frozen=True)
class ProcessResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str  # empty for a streamed run: a pty merges both streams into stdout
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 15) -> str:
        text = strip_ansi(self.stderr or self.stdout).replace("\r\n", "\n")
        kept = [line for line in text.splitlines() if line.strip()]
        return "\n".join(kept[-lines:])

    def describe(self) -> str:
        command = " ".join(self.args)
        return f"`{command}` exited with {self.returncode}:\n{self.tail()}"


def require(program: str) -> str:
    found = shutil.which(program)
    if found is None:
        raise UsageError(
            f"{program} is not on PATH: install Nix (Debian: `apt-get install nix-bin`, "
            "elsewhere https://nixos.org/download) and run again"
        )
    return found


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _stop(pid: int, exited: Callable[[float], bool]) -> None:
    """Stop Nix and everything it started.

    Nix runs each builder in a session of its own, out of reach of our process group, and
    kills them itself when interrupted; so interrupt it first, and SIGKILL the group only if
    it does not exit in time.
    """
    _signal_group(pid, signal.SIGTERM)
    if not exited(STOP_GRACE):
        _signal_group(pid, signal.SIGKILL)
        exited(STOP_GRACE)


def _popen_exited(proc: subprocess.Popen[str]) -> Callable[[float], bool]:
    def wait(seconds: float) -> bool:
        try:
            proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return False
        return True

    return wait


def _child_exited(child: pexpect.spawn[str]) -> Callable[[float], bool]:
    def wait(seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while child.isalive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    return wait


def run(args: Sequence[str], *, cwd: Path | None = None, timeout: float | None = None,
        stdin: str | None = None) -> ProcessResult:
    """Run a command to completion, capturing both streams. Never raises on a non-zero exit.

    The child gets its own process group so that a timeout or Ctrl-C kills Nix and every
    builder it started. The environment passes through unchanged (NIX_PATH and the rest).
    """
    argv = (require(args[0]), *args[1:])
    log.debug("run: %s", " ".join(argv))
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                            text=True, errors="replace", start_new_session=True)
    try:
        stdout, stderr = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc.pid, _popen_exited(proc))
        raise NixTimeout(timed_out(args, timeout)) from None
    except BaseException:
        _stop(proc.pid, _popen_exited(proc))
        raise
    return ProcessResult(tuple(args), proc.returncode, stdout, stderr, time.monotonic() - start)


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def stream(args: Sequence[str], on_line: Callable[[str], None], *, cwd: Path | None = None,
           timeout: float | None = None) -> ProcessResult:
    """Run a command under a pseudo-terminal (pexpect), handing each output line to `on_line`
    while it runs. Returns the same type as `run`, with the merged output in `stdout`."""
    import pexpect  # noqa: PLC0415 - only builds stream; a warm run never pays for it

    argv = [require(args[0]), *args[1:]]
    log.debug("stream: %s", " ".join(argv))
    start = time.monotonic()
    deadline = None if timeout is None else start + timeout
    # A stop signal (Ctrl-C, SIGTERM, SIGHUP) landing while pexpect forks would run fodhash's
    # handler inside an at-fork callback, where Python (3.13 and later) prints and ignores the
    # KeyboardInterrupt it raises: the stop would be lost and the run go on. So stop signals
    # wait until the child exists (it unblocks them before it execs Nix), then arrive here.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)

    def unblock() -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    child = None
    chunks: list[str] = []
    try:
        try:
            child = pexpect.spawn(
                argv[0], argv[1:], cwd=str(cwd) if cwd else None, env=None, encoding="utf-8",
                codec_errors="replace", echo=False, dimensions=(50, 250),
                preexec_fn=unblock)
        finally:
            unblock()  # a stop that came meanwhile is raised here
        while True:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.01)
            index = child.expect(["\n", pexpect.EOF, pexpect.TIMEOUT], timeout=remaining)
            before = child.before if isinstance(child.before, str) else ""
            if index == 0:
                chunks.append(before + "\n")
                line = strip_ansi(before).rstrip("\r").rsplit("\r", 1)[-1]
                if line.strip():
                    on_line(line)
            elif index == 1:
                chunks.append(before)
                break
            else:
                raise NixTimeout(timed_out(args, timeout))
    finally:
        if child is not None:
            if child.isalive() and child.pid is not None:
                _stop(child.pid, _child_exited(child))
            child.delayafterclose = 0  # ptyprocess sleeps 0.1 s by default, per build call
            child.close(force=True)
    assert child is not None
    code = child.exitstatus if child.exitstatus is not None else 128 + (child.signalstatus or 0)
    return ProcessResult(tuple(args), code, "".join(chunks), "", time.monotonic() - start)


# ---- the Nix commands fodhash uses -------------------------------------------------------

@dataclass(frozen=True)
class Instantiation:
    """What to evaluate for a target: a file with -A attributes, or flake references."""

    cwd: Path
    file: Path | None = None
    attrs: tuple[str, ...] = ()
    flake_refs: tuple[str, ...] = ()
    nix_args: tuple[str, ...] = ()

    def command(self) -> list[str]:
        if self.flake_refs:
            return ["nix", *EXPERIMENTAL, "path-info", "--derivation", *self.nix_args,
                    *self.flake_refs]
        assert self.file is not None
        attrs = [arg for attr in self.attrs for arg in ("-A", attr)]
        return ["nix-instantiate", str(self.file), *attrs, *self.nix_args]


# importCargoLock's error for a git dependency that has no entry in `outputHashes`.
_NO_CARGO_HASH = re.compile(r"No hash was found while vendoring the git dependency (\S+?)\.(?:\s|$)")


def instantiate(what: Instantiation, timeout: float | None = None) -> list[str]:
    """Evaluate and write the .drv files, building nothing; the top-level .drv paths."""
    result = run(what.command(), cwd=what.cwd, timeout=timeout)
    if not result.ok:
        missing = _NO_CARGO_HASH.search(strip_ansi(result.stderr or result.stdout))
        hint = (f'\nAdd `"{missing[1]}" = lib.fakeHash;` (or `""`) to its `outputHashes` '
                "(of `cargoLock` or `importCargoLock`) and run fodhash again: it resolves "
                "the placeholder.") if missing else ""
        raise NixError(f"Nix could not evaluate it. {result.describe()}{hint}")
    return [line.split("!", 1)[0] for line in result.stdout.split() if line.endswith(".drv")]


def merge(whats: Sequence[Instantiation]) -> list[Instantiation]:
    """One instantiation per file (or per flake) and argument list, with all their attributes:
    fewer Nix processes, and Nix evaluates what the attributes share once."""
    merged: dict[tuple[object, ...], Instantiation] = {}
    for what in whats:
        # A whole file (no -A) instantiates only its top-level derivations: not mergeable
        # with -A attributes, which may be nested.
        group = (what.cwd, what.file, what.nix_args, bool(what.flake_refs), bool(what.attrs))
        known = merged.get(group)
        if known is None:
            merged[group] = what
        else:
            merged[group] = Instantiation(
                cwd=what.cwd, file=what.file, nix_args=what.nix_args,
                attrs=tuple(dict.fromkeys(known.attrs + what.attrs)),
                flake_refs=tuple(dict.fromkeys(known.flake_refs + what.flake_refs)))
    return list(merged.values())


def instantiate_all(whats: Sequence[Instantiation],
                    timeout: float | None = None) -> dict[Instantiation, list[str]]:
    """Instantiate several at once (each in its own Nix process, in parallel)."""
    if len(whats) == 1:
        return {whats[0]: instantiate(whats[0], timeout)}
    with ThreadPoolExecutor(max_workers=min(len(whats), os.cpu_count() or 2)) as pool:
        futures = {what: pool.submit(instantiate, what, timeout) for what in whats}
        return {what: future.result() for what, future in futures.items()}


def realise(drvs: Sequence[str], *, jobs: int, on_line: Callable[[str], None],
            nix_args: Sequence[str] = (), timeout: float | None = None) -> ProcessResult:
    """Build exactly these derivations, all at once, not stopping at the first failure."""
    args = ["nix-store", "--realise", "--keep-going", "--max-jobs", str(jobs),
            *nix_args, *drvs]
    return stream(args, on_line, timeout=timeout)


def leftovers(output_paths: Sequence[str]) -> list[str]:
    """What interrupted builds left beside these output paths. Nix builds a FOD's output at
    `<output path>.tmp` when it must move it after a hash mismatch (2.8) or as it writes it
    (2.26); interrupted there, it leaves the folder behind, and every later build of that
    output path (every fetcher's canonical fake is named `source`) fails ("creating directory
    '/nix/store/…-source.tmp': File exists" on 2.8, "reading from file …: Is a directory" on
    2.26) until it is gone."""
    return [f"{p}.tmp" for p in output_paths if os.path.lexists(f"{p}.tmp")]


def remove_leftovers(paths: Sequence[str]) -> bool:
    """Remove what an interrupted Nix left in the store, through Nix (the paths are not
    valid, so the garbage collector deletes them); True if it did."""
    result = run(["nix-store", "--delete", *paths])
    if result.ok:
        log.warning("removed %s, left in the Nix store by an interrupted build",
                    ", ".join(paths))
    else:
        log.warning("%s, left in the Nix store by an interrupted build, blocks this build; "
                    "remove it (nix-store --delete PATH) and run again:\n%s",
                    ", ".join(paths), result.tail())
    return result.ok


@cache
def build_slots() -> int | None:
    """How many builds Nix can run at once: the members of its build-users-group (each
    build takes one; past that, Nix polls "waiting for UID" every 5 s), or None for no
    limit fodhash should keep (builds as the user, or the setting unreadable)."""
    # `show-config` up to Nix 2.19 (an alias later), `config show` from 2.20.
    for command in (["show-config", "--json"], ["config", "show", "--json"]):
        result = run(["nix", *EXPERIMENTAL, *command])
        if result.ok:
            break
    else:
        return None
    try:
        group = json.loads(result.stdout).get("build-users-group", {}).get("value", "")
    except (ValueError, AttributeError):
        return None
    if not group:
        return None
    try:
        members = grp.getgrnam(group).gr_mem
    except KeyError:
        return None
    return len(members) or None


def build_log(drv: str, lines: int = 25) -> str:
    """The last lines of a build's log, as Nix stored it (`nix-store --read-log`).

    `nix-store --realise` prints builders' output unprefixed and interleaved, so the stored
    log is the one reliable place to find the lines of one failed build.
    """
    result = run(["nix-store", "--read-log", drv])
    if not result.ok:
        return ""
    return "\n".join(f"> {line}" for line in result.stdout.splitlines()[-lines:])


@cache  # one Nix per process: asked once
def version() -> str:
    result = run(["nix-store", "--version"])
    return result.stdout.strip().rsplit(" ", 1)[-1] if result.ok else "unknown"


@cache
def current_system() -> str:
    result = run(["nix-instantiate", "--eval", "--expr", "builtins.currentSystem", "--json"])
    if not result.ok:
        raise NixError(f"Nix could not tell the current system. {result.describe()}")
    return str(result.stdout.strip().strip('"'))
