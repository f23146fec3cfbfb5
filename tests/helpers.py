"""Helpers for tests: fixture copies, the real command line, file snapshots."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from fodhash.nix.derivations import read_closure, read_drv

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
TRANSCRIPTS = ROOT / "tests" / "transcripts"  # Nix's output, recorded (transcripts/record.py)


def copy_fixture(name: str, dest: Path, *, git: bool = True) -> Path:
    """A fresh copy of fixtures/NAME, as a git work tree (flakes need one)."""
    target = dest / name.replace("/", "-")
    shutil.copytree(FIXTURES / name, target)
    if git:
        subprocess.run(["git", "init", "-q"], cwd=target, check=True)
        subprocess.run(["git", "add", "-A"], cwd=target, check=True)
    return target


def tracked_copy(dest: Path) -> Path:
    """This checkout's tracked and untracked-but-not-ignored files (what a commit of the
    work tree would hold), copied to `dest`."""
    listing = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, check=True).stdout.decode()
    for name in filter(None, listing.split("\0")):
        if (ROOT / name).is_file():  # tracked files deleted in the work tree are listed too
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name, follow_symlinks=False)
    return dest


def fodhash(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a child process, as a user would."""
    return subprocess.run([sys.executable, "-m", "fodhash", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout, check=False)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file's bytes below root (outside .git)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(root).parts}


def copy_all_fixtures(dest: Path) -> Path:
    """All of fixtures/ (the shape files import ../example), as a git work tree."""
    target = dest / "fixtures"
    shutil.copytree(FIXTURES, target)
    subprocess.run(["git", "init", "-q"], cwd=target, check=True)
    subprocess.run(["git", "add", "-A"], cwd=target, check=True)
    return target


def fods_of(file: Path, *attrs: str, system: str | None = None) -> list[str]:
    """The fixed-output .drv files in the closure of FILE (or its -A attributes)."""
    flags = [a for attr in attrs for a in ("-A", attr)]
    flags += ["--argstr", "system", system] if system else []
    tops = subprocess.run(["nix-instantiate", str(file), *flags], capture_output=True, text=True,
                          check=True).stdout.split()
    return sorted(p for p, d in read_closure(tops).items() if d.output_hash is not None)


def assert_fods_build_and_check(fods: list[str], *nix_args: str) -> None:
    """Each FOD really builds, from scratch, to the hash now in its .drv.

    An output already in the store proves nothing (fodhash's own fake builds register it),
    so each output is deleted first and built again; Nix verifies the hash. Where Nix will
    not delete a path (it is in use), `--check` rebuilds it and compares instead.
    """
    assert fods, "no FOD to check"
    for fod in fods:
        outputs = list(read_drv(fod).output_paths)
        deleted = subprocess.run(["nix-store", "--delete", *outputs], capture_output=True,
                                 text=True, check=False).returncode == 0
        args = ["nix-store", "--realise", *nix_args, fod]
        built = subprocess.run(args, capture_output=True, text=True, check=False)
        assert built.returncode == 0, built.stderr
        if not deleted:
            check = subprocess.run([*args[:2], "--check", *args[2:]], capture_output=True,
                                   text=True, check=False)
            assert check.returncode == 0, check.stderr


def scratch_copies(cache: Path, repo: Path) -> list[Path]:
    """fodhash's scratch copies of `repo` under the cache directory `cache`."""
    return sorted((cache / "scratch").glob(f"*/tree-*/{repo.name}"))


def fod_nix(name: str, output_hash: str, script: str = "echo > $out", *,
            system: str = "builtins.currentSystem") -> str:
    """A flat FOD as one line of Nix: `derivation { ... }` named `name`, whose builder runs
    `script` (PATH=/usr/bin:/bin, as the fixtures' builders) and whose output hash is the
    literal `output_hash`; `system` is a Nix expression."""
    return (f'derivation {{ name = "{name}"; system = {system}; builder = "/bin/sh"; '
            f'args = [ "-c" "PATH=/usr/bin:/bin; {script}" ]; outputHashMode = "flat"; '
            f'outputHash = "{output_hash}"; }}\n')


def slow_fod(name: str, seconds: float) -> str:
    """A FOD whose builder sleeps `seconds`, then writes a single newline; its hash stale."""
    return fod_nix(name, "sha256-WmV5WDLjZahDl4MyjfG+U/doLTTyodN47oOmZiFc9iA=",
                   f"sleep {seconds}; echo > $out")


# The true hash of fod_nix's default output (a single newline), as fodhash writes it.
SLOW_TRUTH = "sha256-AbpHGcgLb+kRsJGnwFEktk7uzpZOCcBY74+YBdrKVGs="


def building_slowly(repo: Path, name: str, seconds: float, *args: str,
                    env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`fodhash update` of a FOD whose builder sleeps, returned once that build runs (its
    fake is in the scratch copy, never in the user's file)."""
    slow = repo / f"{name}.nix"
    slow.write_text(slow_fod(name, seconds))
    original = slow.read_bytes()
    env = env or dict(os.environ)
    proc = subprocess.Popen([sys.executable, "-m", "fodhash", "update", slow.name, *args],
                            cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    cache = Path(env["FODHASH_CACHE_DIR"])
    deadline = time.monotonic() + 30
    while not any(b"sha256-AAAA" in (c / slow.name).read_bytes()  # the fake: the build is on
                  for c in scratch_copies(cache, repo) if (c / slow.name).exists()):
        assert time.monotonic() < deadline and proc.poll() is None, "the build never started"
        assert slow.read_bytes() == original, "the user's file was written during the run"
        time.sleep(0.05)
    return proc


PINS_URL = "@PINS@"  # in fixtures/pins: where the pinned downloads are served from


def served_pins(dest: Path) -> Path:
    """A copy of fixtures/pins whose pins download from `file://` tarballs and files made
    here from its upstream/ folder (and nixpkgs-24.05, made from nixpkgs-23.11), as a git
    work tree.

    The served folder is world-readable: Nix's builtin fetchers may read as a build user.
    Each tarball holds one top-level folder, as release tarballs do; its mtimes are fixed,
    though the hash Nix computes (of the unpacked tree) does not depend on them.
    """
    repo = copy_fixture("pins", dest, git=False)
    served = dest / "served"
    served.mkdir()
    upstream = repo / "upstream"
    # niv's nixpkgs-24.05 is shell.nix's nixpkgs-23.11 but for its release.
    older, newer = upstream / "nixpkgs-23.11", upstream / "nixpkgs-24.05"
    newer.mkdir()
    (newer / "default.nix").write_text((older / "default.nix").read_text().replace(
        'release = "23.11";', 'release = "24.05";'))
    for entry in sorted(upstream.iterdir()):
        if entry.is_dir():
            with tarfile.open(served / f"{entry.name}.tar.gz", "w:gz") as tar:
                for path in sorted([entry, *entry.rglob("*")]):
                    info = tar.gettarinfo(str(path), arcname=str(path.relative_to(upstream)))
                    info.mtime, info.uid, info.gid, info.uname, info.gname = 1, 0, 0, "", ""
                    if path.is_file():
                        with path.open("rb") as handle:
                            tar.addfile(info, handle)
                    else:
                        tar.addfile(info)
        else:
            shutil.copy(entry, served / entry.name)
    shutil.rmtree(upstream)
    for path in [dest, served, *served.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    for path in repo.rglob("*"):
        if path.is_file() and PINS_URL.encode() in path.read_bytes():
            path.write_bytes(path.read_bytes().replace(PINS_URL.encode(),
                                                       served.as_uri().encode()))
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    return repo


def modules_loaded_by(module: str) -> str:
    """A Python script that runs `module`'s main with the arguments it is given, then prints
    (to stderr) the modules that were loaded: what a command line costs to start."""
    return f"""import sys
sys.argv = ["fodhash", *sys.argv[1:]]
from {module} import main
try:
    main()
except SystemExit:
    pass
print(" ".join(sorted(sys.modules)), file=sys.stderr)
"""
