"""Helpers for tests: fixture copies, the real command line, file snapshots."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


def copy_fixture(name: str, dest: Path, *, git: bool = True) -> Path:
    """A fresh copy of fixtures/NAME, as a git work tree (flakes need one)."""
    target = dest / name.replace("/", "-")
    shutil.copytree(FIXTURES / name, target)
    if git:
        subprocess.run(["git", "init", "-q"], cwd=target, check=True)
        subprocess.run(["git", "add", "-A"], cwd=target, check=True)
    return target


def fodhash(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a child process, as a user would."""
    return subprocess.run([sys.executable, "-m", "fodhash", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout, check=False)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file's bytes below root (outside .git)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(root).parts}
