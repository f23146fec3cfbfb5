"""Running a process (captured, or streamed through pexpect), stopping it, typed results."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fodhash.errors import FodhashError, UsageError
from fodhash.nix.mismatch import strip_ansi

if TYPE_CHECKING:
    import pexpect

log = logging.getLogger(__name__)

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


def _child_exited(child: pexpect.spawn[str], poll: float = 0.05) -> Callable[[float], bool]:
    def wait(seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while child.isalive():
            if time.monotonic() > deadline:
                return False
            time.sleep(poll)
        return True

    return wait


def run(args: Sequence[str], *, cwd: Path | None = None, timeout: float | None = None,
        stdin: str | None = None, env: Mapping[str, str] | None = None) -> ProcessResult:
    """Run a command to completion, capturing both streams. Never raises on a non-zero exit.

    The child gets its own process group so that a timeout or Ctrl-C kills Nix and every
    builder it started. The environment passes through unchanged (NIX_PATH and the rest),
    with `env` set on top of it.
    """
    return start(args, cwd=cwd, stdin=stdin is not None, env=env).wait(timeout, stdin)


def start(args: Sequence[str], *, cwd: Path | None = None, stdin: bool = False,
          env: Mapping[str, str] | None = None) -> Started:
    """Start a command as `run` does and return at once: its result is `wait`'s."""
    argv = (require(args[0]), *args[1:])
    log.debug("run: %s", " ".join(argv))
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                            text=True, errors="replace", start_new_session=True,
                            env=None if env is None else {**os.environ, **env})
    return Started(tuple(args), proc, time.monotonic())


@dataclass(frozen=True)
class Started:
    """A command started by `start`, running until `wait` or `stop`."""

    args: tuple[str, ...]
    proc: subprocess.Popen[str]
    began: float

    def wait(self, timeout: float | None = None, stdin: str | None = None) -> ProcessResult:
        """Its result, once it exits; on a timeout or any interruption it is stopped."""
        try:
            stdout, stderr = self.proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise NixTimeout(timed_out(self.args, timeout)) from None
        except BaseException:
            self.stop()
            raise
        return ProcessResult(self.args, self.proc.returncode, stdout, stderr,
                             time.monotonic() - self.began)

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """Stop it and everything it started, if it still runs (as on a timeout)."""
        if self.proc.poll() is None:
            _stop(self.proc.pid, _popen_exited(self.proc))
        with contextlib.suppress(OSError, ValueError):
            self.proc.communicate(timeout=STOP_GRACE)  # reap it, close its pipes


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
                # Nix closed the terminal as it exits; the kernel reaps it a moment later.
                # Wait for that, finely, rather than stop an exiting process.
                _child_exited(child, poll=0.001)(STOP_GRACE)
                break
            else:
                raise NixTimeout(timed_out(args, timeout))
    finally:
        if child is not None:
            if child.isalive() and child.pid is not None:
                _stop(child.pid, _child_exited(child))
            # close() sleeps the PtyProcess's delayafterclose (0.1 s by default: per build
            # call), not the attribute of the same name on the pexpect object; the child is
            # reaped or stopped by now, so there is nothing to wait for.
            child.ptyproc.delayafterclose = 0  # type: ignore[attr-defined]  # not in the stubs
            child.close(force=True)
    assert child is not None
    code = child.exitstatus if child.exitstatus is not None else 128 + (child.signalstatus or 0)
    return ProcessResult(tuple(args), code, "".join(chunks), "", time.monotonic() - start)
