#!/usr/bin/env python3
"""Run the test suite against newer Nix versions than the host's, each in a Debian root.

Why: this machine (Debian 12) has Nix 2.8; users run up to 2.34, whose messages and JSON
differ (docs/design.md, "Nix versions"). Debian's own registry serves trixie's nix-bin
(2.26) and sid's (the newest), so each lives in a root filesystem made with mmdebstrap
from Debian's packages, entered with chroot in a private mount namespace. A root is made
once and reused (delete its folder to get sid's newest Nix); each run copies the work
tree in afresh, reuses the root's virtualenv while pyproject.toml is unchanged, and runs
the whole suite there (tests/hashes/test_hashes.py runs nix-hash without the `nix` marker).

Usage: tests/nix-versions/run.py [SUITE ...] [--] [PYTEST ARGS ...]
       tests/nix-versions/run.py SUITE --shell [COMMAND ...]
  SUITE is trixie or sid (default: both, in that order); anything else goes to pytest,
  e.g. `run.py sid -x -k remote` or `run.py sid --lf`. --shell runs COMMAND (default: an
  interactive shell) in the root's copy of the project instead, with the tests' environment.
Environment: FODHASH_NIX_ROOTS (where the roots live, default /var/cache/fodhash/nix-roots),
  FODHASH_DEBIAN_MIRROR (default: the host's own Debian mirror). Tests see the root's Nix
  version as FODHASH_TEST_NIX_VERSION (e.g. 2.26.3) and its suite as FODHASH_TEST_NIX_SUITE.
Prints one line per version, e.g. `nix 2.26.3: 270 passed, 4 failed`; exits 1 when any
version had a failure or error (or its root could not be made), else 0.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

SUITES = ("trixie", "sid")
CHECKOUT = Path(__file__).resolve().parents[2]
ROOTS = Path(os.environ.get("FODHASH_NIX_ROOTS", "/var/cache/fodhash/nix-roots"))
# What the suite needs besides Nix: git (fixtures are git trees, flakes need one), python3
# and venv, ssh server and client (tests/remote_builder.py; sid's server no longer pulls in
# the client), procps (pgrep), mount and util-linux (unshare, mount in the builder test),
# e2fsprogs (chattr, in the immutable-file test).
PACKAGES = ("nix-bin", "ca-certificates", "git", "python3", "python3-venv", "make",
            "openssh-server", "openssh-client", "procps", "mount", "util-linux", "e2fsprogs")
# sid's Release file on the registry is past its one-week validity; apt refuses it otherwise.
APT_OPTIONS = ('Acquire::Check-Valid-Until "false"',)
READY = "etc/fodhash-nix-root"  # in a root: written last, holds the package list
PROJECT = "work/fodhash"  # the copy of the work tree inside a root
# Kept in the copy between runs: the virtualenv (slow to make), pytest's cache (so that
# --lf works) and Hypothesis' examples database, as in the host's checkout.
KEEP = {".venv", ".pytest_cache", ".hypothesis"}
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# The files pip reads its configuration from, on the host, copied to the same place in the
# root so that pip there uses the same index, certificates and constraints.
PIP_CONFIGS = (Path("/etc/pip.conf"), Path("/etc/xdg/pip"), Path.home() / ".config/pip",
               Path.home() / ".pip")
NIX_CONF = (
    "# Written by tests/nix-versions/run.py. No sandbox (it needs namespaces and build users);\n"
    "# builds run as root: nixbld users here would get the host's uids, and Nix kills every\n"
    "# process of its build user's uid, so builds here and on the host would kill each other.\n"
    "# Here, not only in NIX_CONFIG: the remote builder's nix-store --serve gets sshd's env.\n"
    "sandbox = false\n"
    "build-users-group =\n"
)


def log(message: str) -> None:
    print(f"nix-versions: {message}", file=sys.stderr, flush=True)


def host_mirror() -> str:
    """The Debian mirror the host's apt uses (the one this machine can reach)."""
    if os.environ.get("FODHASH_DEBIAN_MIRROR"):
        return os.environ["FODHASH_DEBIAN_MIRROR"]
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for source in sources:
        if not source.is_file() or not source.name.endswith((".list", ".sources")):
            continue
        for url in re.findall(r"^(?:URIs:|deb(?:\s+\[[^]]*\])?)\s+(\S+)", source.read_text(), re.M):
            if url.rstrip("/").endswith("/debian"):
                return url
    return "http://deb.debian.org/debian"


def mounted_below(path: Path) -> list[str]:
    """Mount points at or below path in this mount namespace (there must be none to delete it)."""
    prefix = str(path.resolve())
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if p == prefix or p.startswith(prefix + "/")]


def remove_tree(path: Path) -> None:
    if mounted_below(path):
        sys.exit(f"nix-versions: refusing to delete {path}: something is mounted below it")
    shutil.rmtree(path, ignore_errors=True)


def host_paths_for_pip() -> tuple[list[Path], list[Path]]:
    """(files to copy, folders to bind read-only) so that pip in a root works as on the host.

    The configuration can name local indexes and wheel folders (file:///opt/pypi/simple,
    find-links = /opt/wheels) and a certificate or constraints file; PIP_* variables too.
    """
    files = [p for p in PIP_CONFIGS if p.exists()]
    texts = [f.read_text(errors="replace") for p in files for f in ([p] if p.is_file() else p.rglob("*"))
             if f.is_file()]
    texts += [v for k, v in os.environ.items() if k.startswith(("PIP_", "UV_"))]
    folders = []
    for text in texts:
        for found in re.findall(r"(?:file://)?(/[^\s'\",;]+)", text):
            path = Path(found)
            if path.name == "simple":  # an index's pages link to ../../files/...
                path = path.parent
            if path.is_dir() and not path.is_relative_to("/etc") and path not in folders:
                folders.append(path)
            elif path.is_file() and path not in files:
                files.append(path)
    return files, folders


def enter(root: Path, command: list[str], env: dict[str, str], binds: Sequence[Path] = (),
          **kwargs: object) -> subprocess.Popen[str]:
    """Start a command chrooted in root, in a mount namespace of its own.

    The root is bound onto itself so that / is a mount point in there (the remote-builder
    test's unshare --propagation fails otherwise); Nix needs /proc (/proc/self/exe) and /dev
    (a pseudo-terminal for every build, /dev/pts with it). Nothing mounted here outlives the
    namespace, nor is it seen outside it.
    """
    script = ('set -e; r=$1; shift; mount --bind "$r" "$r"; mount -t proc proc "$r/proc"; '
              'mount --rbind /dev "$r/dev"; ')
    for folder in binds:
        script += f'mkdir -p "$r{folder}"; mount --bind -o ro "{folder}" "$r{folder}"; '
    script += 'exec chroot "$r" "$@"'
    return subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--",
                             "sh", "-c", script, "sh", str(root), *command],
                            env=env, text=True, **kwargs)  # type: ignore[call-overload]


def run_in(root: Path, command: list[str], env: dict[str, str], binds: Sequence[Path] = ()) -> str:
    proc = enter(root, command, env, binds, stdout=subprocess.PIPE)
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: exit status {proc.returncode}")
    return out


def base_env() -> dict[str, str]:
    """The environment inside a root: a fresh root login plus what reaches the registries."""
    env = {"PATH": PATH, "HOME": "/root", "USER": "root", "LOGNAME": "root", "SHELL": "/bin/sh",
           "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
    if "TERM" in os.environ:
        env["TERM"] = os.environ["TERM"]
    # The registries are reached through a TLS-intercepting proxy: the host's bundle is
    # copied to the same path in the root, and every client is pointed at it.
    for name in ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "NIX_SSL_CERT_FILE", "GIT_SSL_CAINFO"):
        env[name] = str(CA_BUNDLE)
    env |= {k: v for k, v in os.environ.items() if k.startswith(("PIP_", "UV_"))}
    return env


def make_root(suite: str, root: Path) -> None:
    """Create the root with mmdebstrap if it is missing; add packages new to PACKAGES."""
    ready = root / READY
    if ready.is_file():
        missing = sorted(set(PACKAGES) - set(ready.read_text().split()))
        if missing:
            log(f"{suite}: installing {' '.join(missing)} in {root}")
            env = base_env()
            run_in(root, ["apt-get", "update", "-q"], env)
            run_in(root, ["apt-get", "install", "-y", "-q", *missing], env)
            ready.write_text("\n".join(PACKAGES) + "\n")
        return
    if shutil.which("mmdebstrap") is None:
        raise RuntimeError("mmdebstrap not found: apt-get install mmdebstrap")
    started = time.monotonic()
    mirror = host_mirror()
    log(f"{suite}: creating {root} from {mirror}")
    partial = root.with_name(root.name + ".partial")  # renamed only once complete
    remove_tree(partial)
    partial.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mmdebstrap", "--variant=apt", "--include=" + ",".join(PACKAGES),
                    *(f"--aptopt={option}" for option in APT_OPTIONS), suite, str(partial), mirror],
                   check=True, stdout=sys.stderr)
    (partial / READY).write_text("\n".join(PACKAGES) + "\n")
    remove_tree(root)
    partial.rename(root)
    log(f"{suite}: root created in {time.monotonic() - started:.0f} s")


def configure(root: Path) -> list[Path]:
    """Refresh what the root takes from the host; the folders to bind read-only for pip."""
    (root / "etc/nix").mkdir(exist_ok=True)
    (root / "etc/nix/nix.conf").write_text(NIX_CONF)
    for name in ("/etc/resolv.conf", "/etc/hosts"):
        shutil.copy(name, root / name[1:])
    files, folders = host_paths_for_pip()
    for path in [CA_BUNDLE, *files]:
        target = root / path.relative_to("/")
        if path.is_dir():
            shutil.copytree(path, target, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)  # the root's bundle may be a symlink
            shutil.copy(path, target)
    return folders


def copy_project(root: Path) -> Path:
    """The work tree as it is now (tracked and untracked-but-not-ignored files), in the root.

    Everything there but KEEP is replaced. It is made a git tree with all files
    added, since tests/project/test_hooks.py lists the checkout's files with git ls-files.
    """
    project = root / PROJECT
    project.mkdir(parents=True, exist_ok=True)
    for entry in project.iterdir():
        if entry.name not in KEEP:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=CHECKOUT, capture_output=True, check=True).stdout.decode()
    for name in sorted(set(filter(None, listing.split("\0")))):
        source = CHECKOUT / name
        if source.is_file():  # tracked files deleted in the work tree are listed too
            (project / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, project / name)
    return project


def install_venv(root: Path, project: Path, env: dict[str, str], binds: list[Path]) -> None:
    """`pip install -e '.[dev]'` in the root's copy, unless done for this pyproject.toml."""
    stamp = project / ".venv/.installed"
    wanted = hashlib.sha256((project / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text().strip() == wanted:
        return
    started = time.monotonic()
    shutil.rmtree(project / ".venv", ignore_errors=True)
    inside = "/" + PROJECT
    run_in(root, ["python3", "-m", "venv", f"{inside}/.venv"], env, binds)
    pip = [f"{inside}/.venv/bin/pip", "install", "-qq"]  # -qq: errors only (the host's local indexes warn)
    run_in(root, [*pip, "--upgrade", "pip"], env, binds)
    run_in(root, ["sh", "-c", f"cd {inside} && exec {' '.join(pip)} -e '.[dev]'"], env, binds)
    stamp.write_text(wanted + "\n")
    log(f"virtualenv installed in {time.monotonic() - started:.0f} s")


def summarize(lines: list[str]) -> str | None:
    """pytest's final counts, passed and failed first: "270 passed, 4 failed, 1 skipped"."""
    for line in reversed(lines):
        # "=== 4 failed, 270 passed in 160.00s (0:02:40) ===", without the = under -q
        match = re.fullmatch(r"=*\s*((?:\d+ \w+,? ?)+) in [\d.]+s\b.*", line.strip())
        if match:
            counts = dict((word, int(n)) for n, word in re.findall(r"(\d+) (\w+)", match.group(1)))
            order = ["passed", "failed", "error", "errors"]
            words = order + sorted(set(counts) - set(order))
            return ", ".join(f"{counts[w]} {w}" for w in words if w in counts)
    return None


def run_suite(suite: str, pytest_args: list[str], shell: list[str] | None = None) -> tuple[str, bool]:
    """Make or reuse the root, copy the project in, run pytest: (summary line, passed)."""
    root = ROOTS / suite
    ROOTS.mkdir(parents=True, exist_ok=True)
    with (ROOTS / f"{suite}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one run per root at a time
        make_root(suite, root)
        binds = configure(root)
        env = base_env()
        version_line = run_in(root, ["nix-store", "--version"], env).strip()
        version = version_line.split()[-1]
        project = copy_project(root)
        run_in(root, ["git", "-C", "/" + PROJECT, "init", "-q"], env)
        run_in(root, ["git", "-C", "/" + PROJECT, "add", "-A"], env)
        install_venv(root, project, env, binds)
        # As `make test` on the host: no binary cache is reachable, so none is tried.
        env |= {"NIX_CONFIG": os.environ.get("NIX_CONFIG", "substituters ="),
                "FODHASH_TEST_NIX_VERSION": version, "FODHASH_TEST_NIX_SUITE": suite}
        if shell is not None:
            proc = enter(root, ["sh", "-c", f'cd /{PROJECT} && exec "$@"', "sh", *(shell or ["bash"])],
                         env, binds)
            status = proc.wait()
            return f"nix {version}: --shell exited with status {status}", status == 0
        log(f"{suite}: {version_line}: running pytest {' '.join(pytest_args)}")
        started = time.monotonic()
        proc = enter(root, ["sh", "-c", f'cd /{PROJECT} && exec .venv/bin/pytest "$@"', "pytest",
                            *pytest_args], env, binds, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:  # shown as it comes, kept for the counts
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line)
        proc.wait()
        log(f"{suite}: pytest took {time.monotonic() - started:.0f} s")
        counts = summarize(lines) or f"pytest exited with status {proc.returncode}, no summary"
        return f"nix {version}: {counts}", proc.returncode == 0


def main(argv: list[str]) -> int:
    suites = []
    while argv and argv[0] in SUITES:
        suites.append(argv.pop(0))
    shell = None
    if argv[:1] == ["--shell"]:
        shell, argv = argv[1:], []
    if argv[:1] == ["--"]:
        argv.pop(0)
    if os.geteuid() != 0:
        sys.exit("nix-versions: needs root (mmdebstrap, chroot, mount namespaces)")
    results = []
    for suite in suites or SUITES:
        try:
            results.append(run_suite(suite, argv, shell))
        except (RuntimeError, subprocess.CalledProcessError, OSError) as error:
            results.append((f"{suite}: could not run: {error}", False))
    print()
    for line, _ in results:
        print(line)
    return 0 if all(ok for _, ok in results) else 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
