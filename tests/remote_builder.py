"""A real remote Nix builder on loopback, for tests: `remote_builder` fixture and its data.

The recipe: Debian's OpenSSH server on a free port of
127.0.0.1, reachable only with a key pair made for the test, started in its own mount namespace
with an empty folder bind-mounted on /nix, so the "remote machine" has its own Nix store (Nix
creates /nix/store and /nix/var there on first use). Sharing the local store would deadlock on
the output path's lock. `NIX_CONFIG=extra-platforms = aarch64-linux` in the sessions lets the
builder accept aarch64-linux derivations too: a `/bin/sh` builder then simply runs natively.

Use the fixture `remote_builder` once tests/conftest.py has `pytest_plugins = ["remote_builder"]`
(or after `from remote_builder import remote_builder_fixture  # noqa: F401` in a test file), then
build with `env={**os.environ, **rb.env()}` and the arguments `rb.nix_args(system)`.
`running_builder()` starts one more, for a single test. Needs root (for the mount namespace), `unshare` and
`/usr/sbin/sshd`; when one is missing the fixture fails rather than skips: `make setup` installs them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = Path("/usr/sbin/sshd")
USER = "root"
HOST = "127.0.0.1"
SYSTEMS = ("x86_64-linux", "aarch64-linux")
# What the remote sessions see: Debian's nix-store is /usr/bin/nix-store.
SESSION_ENV = 'PATH=/usr/bin:/bin:/usr/sbin:/sbin "NIX_CONFIG=extra-platforms = aarch64-linux"'
START_TIMEOUT = 20.0
PR_SET_PDEATHSIG = 1
START_ATTEMPTS = 3  # a free port can be taken between finding it and sshd binding it


@dataclass(frozen=True)
class RemoteBuilder:
    """How to reach the builder: `--builders` spec, ssh options and key."""

    uri: str
    """The store URI Nix names in its messages: "ssh://root@127.0.0.1"."""
    port: int
    key: Path
    """The private key that logs in as root."""
    systems: tuple[str, ...]
    """The systems the builder accepts: ("x86_64-linux", "aarch64-linux")."""

    def builders(self, system: str = "x86_64-linux") -> str:
        """The `--builders` value: one machine, this system (or a comma-separated list), 1 job."""
        return f"{self.uri} {system} {self.key} 1 1"

    def ssh_options(self) -> list[str]:
        # LogLevel=ERROR: ssh would otherwise print "Warning: Permanently added
        # '[127.0.0.1]:PORT'" on each connection, which makes Nix's output depend on the port.
        return ["-p", str(self.port), "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]

    def env(self) -> dict[str, str]:
        """Variables to merge into the environment of the Nix command (ssh's options)."""
        return {"NIX_SSHOPTS": " ".join(self.ssh_options())}

    def nix_args(self, system: str = "x86_64-linux") -> list[str]:
        """Arguments that make Nix build everything on this builder, nothing locally."""
        return ["--max-jobs", "0", "--builders", self.builders(system)]

    def ssh(self, *command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a command on the builder (inside its mount namespace, with its own /nix)."""
        return subprocess.run(
            ["ssh", *self.ssh_options(), "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
             "-i", str(self.key), f"{USER}@{HOST}", *command],
            capture_output=True, text=True, timeout=timeout, check=False,
        )


def _require_tools() -> None:
    missing = [name for name in ("unshare", "ssh", "ssh-keygen", "mount") if shutil.which(name) is None]
    if not SSHD.is_file():
        missing.append(str(SSHD))
    if missing:
        pytest.fail(
            f"remote builder: {', '.join(missing)} not found; `apt-get install -y openssh-server` "
            "brings sshd, ssh and ssh-keygen (`make setup` installs it); unshare and mount are in "
            "util-linux and mount",
            pytrace=False,
        )
    if os.geteuid() != 0:
        pytest.fail("remote builder: needs root (a mount namespace, sshd as root)", pytrace=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fodhash-test", "-f", str(path)],
                   check=True, capture_output=True)


def _write_config(root: Path, port: int) -> Path:
    config = root / "sshd_config"
    config.write_text(
        f"Port {port}\n"
        f"ListenAddress {HOST}\n"
        f"HostKey {root / 'hostkey'}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UsePAM no\n"
        "StrictModes no\n"
        f"PidFile {root / 'sshd.pid'}\n"
        f"SetEnv {SESSION_ENV}\n"
    )
    return config


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the process that started it ends."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")


def _namespace(pid: int, kind: str = "mnt") -> str | None:
    """The namespace (`mnt`, `pid`) a process is in, e.g. "mnt:[4026532201]"; None if gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def _ns_pids(pid: int) -> list[int]:
    """A process's pid in each pid namespace it is in, outermost first (`NSpid:` in status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return []
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            return [int(field) for field in line.split()[1:]]
    return []


class _Server:
    """One sshd in its own mount and pid namespaces, and how to stop it with all it started.

    `unshare -m -p --kill-child` forks; the child (sh, then sshd by exec, with -D so it stays
    in the foreground) is process 1 of a new pid namespace. Every process sshd starts (the
    connection handlers, `nix-store --serve`) lives in that namespace, and when sshd ends the
    kernel kills and reaps them all: nothing is left behind, not even a zombie. If unshare
    dies first, --kill-child sends SIGKILL to sshd.
    """

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.sshd_pid: int | None = None
        """sshd's pid here (the pidfile holds 1: the pid inside its own namespace)."""
        config = _write_config(root, port)
        script = (f"mount --bind {root / 'remote-nix'} /nix && "
                  f"exec {SSHD} -D -f {config} -E {root / 'sshd.log'}")
        self.log = (root / "unshare.log").open("wb")
        # A session of its own keeps terminal signals meant for pytest away from it; if pytest
        # itself is killed (no teardown then), the kernel sends unshare SIGKILL.
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--pid", "--kill-child", "--",
             "sh", "-c", script],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent,  # noqa: PLW1509
            env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C"},
        )

    def diagnostics(self) -> str:
        parts = []
        for name in ("unshare.log", "sshd.log"):
            path = self.root / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text(errors='replace')}")
        return "\n".join(parts)

    def _find_sshd(self) -> int | None:
        """The pid, as seen here, of the process the pidfile names: unshare's child."""
        try:
            inside = int((self.root / "sshd.pid").read_text().split()[0])
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except (OSError, ValueError, IndexError):
            return None
        for child in (int(c) for c in children.split()):
            ns_pids = _ns_pids(child)
            if len(ns_pids) > 1 and ns_pids[-1] == inside:
                return child
        return None

    def wait_ready(self, builder: RemoteBuilder) -> str | None:
        """None once ssh with the key runs `nix-store --version` there, else why not."""
        deadline = time.monotonic() + START_TIMEOUT
        last = "sshd did not accept connections"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"unshare/sshd exited with status {self.proc.returncode}"
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    pass
            except OSError as error:
                last = f"port {self.port}: {error}"
                time.sleep(0.05)
                continue
            check = builder.ssh("nix-store", "--version", timeout=15)
            if check.returncode == 0 and "nix-store" in check.stdout:
                self.sshd_pid = self._find_sshd()
                if self.sshd_pid is None:
                    return "sshd's pid file does not name unshare's child"
                if _namespace(self.sshd_pid) == _namespace(os.getpid()):
                    return "sshd is not in a mount namespace of its own"
                return None
            last = f"ssh -i {builder.key} ... nix-store --version: exit {check.returncode}\n{check.stderr}"
            time.sleep(0.1)
        return f"timed out after {START_TIMEOUT:.0f} s: {last}"

    def stop(self) -> None:
        """Stop sshd (the pid in its pidfile), which ends its namespace; reap unshare.

        unshare blocks SIGTERM and SIGINT while it waits for sshd; if sshd does not end (or
        was never found), SIGKILL to unshare makes --kill-child send SIGKILL to sshd.
        """
        sshd = self.sshd_pid or self._find_sshd()
        if sshd is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(sshd, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _remove(root: Path) -> None:
    """Remove the folder, including store paths Nix made read-only."""

    def make_writable(func: Callable[[str], object], path: str, _exc: object) -> None:
        with contextlib.suppress(OSError):
            Path(path).parent.chmod(0o755)
            Path(path).chmod(0o755)
        func(path)

    if sys.version_info >= (3, 12):
        shutil.rmtree(root, onexc=make_writable)
    else:
        shutil.rmtree(root, onerror=make_writable)


@contextlib.contextmanager
def running_builder() -> Iterator[RemoteBuilder]:
    """Start the builder, yield how to reach it, and always stop it and remove its folder."""
    _require_tools()
    root = Path(tempfile.mkdtemp(prefix="fodhash-remote-builder-"))
    server: _Server | None = None
    try:
        _keygen(root / "hostkey")
        _keygen(root / "userkey")
        shutil.copy(root / "userkey.pub", root / "authorized_keys")
        (root / "remote-nix").mkdir()
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege separation dir
        failures = []
        for _ in range(START_ATTEMPTS):
            port = _free_port()
            builder = RemoteBuilder(uri=f"ssh://{USER}@{HOST}", port=port, key=root / "userkey",
                                    systems=SYSTEMS)
            server = _Server(root, port)
            problem = server.wait_ready(builder)
            if problem is None:
                break
            failures.append(f"{problem}\n{server.diagnostics()}")
            server.stop()
            server = None
        else:
            pytest.fail("remote builder did not start:\n" + "\n".join(failures), pytrace=False)
        yield builder
    finally:
        if server is not None:
            server.stop()
        _remove(root)


@pytest.fixture(scope="session", name="remote_builder")
def remote_builder_fixture() -> Iterator[RemoteBuilder]:
    """A remote Nix builder reached over ssh on 127.0.0.1, with its own empty Nix store.

    Session-wide: starting it takes a fraction of a second, but one sshd for all tests keeps
    the number of processes to clean up small. The remote store keeps what earlier builds
    left (Nix copies each build's inputs there itself), which tests must not depend on.
    """
    with running_builder() as builder:
        yield builder
