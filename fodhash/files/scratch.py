"""Where the protocol runs: a scratch copy of the repository, so the user's tree is written once.

Sentinels and fakes are written only into the copy; the user's files change at the end, each
by one atomic replace (fodhash.files.writeback). A crash at any moment leaves every file of the
user original or correct, with nothing to undo.

The copy must evaluate exactly as the original (same derivations, so the same cache keys):
- it keeps the repository's folder name (`./.` takes its store name from it);
- it holds every file of the work tree, hard-linked (a file is replaced, never written
  through, when the protocol edits it, so a link never carries an edit back), or reflinked
  or copied where a link cannot be made (another file system, a file not ours to link);
- its `.git` is a copy of the repository's (hard-linked, objects borrowed through
  `objects/info/alternates`), so a git-based flake sees the same tracked files with the
  same uncommitted changes;
- `flake.lock` is copied, not linked: Nix may rewrite it in place.

A repository that reaches itself by absolute path would evaluate the original from the
copy; fodhash detects that (fodhash.files.place, fodhash.protocol.evaluate.check_copy) and
falls back to editing in place.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from fodhash.config import Target
from fodhash.files.dirs import cache_dir
from fodhash.files.patch import ScratchError

# Files Nix may write in place inside a repository: never shared with the original.
_NEVER_LINKED = frozenset({"flake.lock"})
FICLONE = 0x40049409  # linux/fs.h: share the extents of a file (btrfs, XFS, bcachefs)


class WorkspaceError(ScratchError):
    """The scratch copy could not be made (disk full, permissions)."""


def scratch_root() -> Path:
    return cache_dir() / "scratch"


def _reflink_or_copy(src: str, dst: str) -> None:
    try:
        with open(src, "rb") as source, open(dst, "wb") as target:
            fcntl.ioctl(target.fileno(), FICLONE, source.fileno())
        shutil.copystat(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _link(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError as error:
        if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EACCES):
            raise
        _reflink_or_copy(src, dst)


def _populate(src: Path, dst: Path, skip: set[Path]) -> int:
    """Mirror the tree at `src` into `dst`: folders made, files linked, symlinks recreated
    with the same target text. Returns the number of files."""
    count = 0
    for folder, dirs, files in os.walk(src):
        here = Path(folder)
        there = dst / here.relative_to(src)
        for name in list(dirs):
            path = here / name
            if path in skip:
                dirs.remove(name)
            elif path.is_symlink():  # os.walk lists links to folders with the folders
                dirs.remove(name)
                os.symlink(os.readlink(path), there / name)
            else:
                (there / name).mkdir(mode=path.stat().st_mode & 0o7777)
        for name in files:
            path = here / name
            if path in skip:
                continue
            if path.is_symlink():
                os.symlink(os.readlink(path), there / name)
            elif name in _NEVER_LINKED:
                shutil.copy2(path, there / name)
            else:
                _link(str(path), str(there / name))
            count += 1
    return count


def _git_dir(root: Path) -> Path | None:
    """The repository's git folder: `.git`, or where a `.git` file (worktree, submodule)
    points."""
    dot = root / ".git"
    if dot.is_dir():
        return dot
    if dot.is_file():
        text = dot.read_text(errors="replace").strip()
        if text.startswith("gitdir:"):
            target = Path(text.removeprefix("gitdir:").strip())
            return (root / target).resolve() if not target.is_absolute() else target
    return None


def _copy_git(root: Path, copy: Path) -> None:
    git = _git_dir(root)
    if git is None:
        return
    dest = copy / ".git"
    dest.mkdir()
    common = git / "commondir"
    objects = git / "objects"
    _populate(git, dest, skip={objects})
    if common.is_file():  # a linked worktree: objects and refs live in the common folder
        (dest / "commondir").write_text(str((git / common.read_text().strip()).resolve()) + "\n")
    elif objects.is_dir():
        (dest / "objects" / "info").mkdir(parents=True)
        (dest / "objects" / "info" / "alternates").write_text(f"{objects.resolve()}\n")


@dataclass
class Workspace:
    """Scratch copies of the repository at `root`, one per tree of the protocol (the
    sentinel tree, the fake trees: fodhash.protocol), each under `run` with the
    repository's folder name. A copy is made on first need (`materialize`): a run that finds
    nothing changed evaluates the user's tree as it is and never pays for one."""

    root: Path
    run: Path
    files: dict[int, int] = field(default_factory=dict)  # tree -> files in its copy, once made

    @property
    def ready(self) -> bool:
        """Whether the sentinel tree's copy (the one written back from) exists."""
        return 0 in self.files

    def copy(self, tree: int = 0) -> Path:
        return self.run / f"tree-{tree}" / self.root.name

    def materialize(self, tree: int = 0) -> bool:
        """Make the tree's copy if it is not there: not made yet, or made and then deleted
        (a user cleaning ~/.cache, a CI cache step). True if made now: it then holds the
        user's bytes, and what the run wrote there must be written again."""
        copy = self.copy(tree)
        if tree in self.files and copy.is_dir():
            return False
        try:
            if tree in self.files:  # deleted, perhaps not to the end yet
                shutil.rmtree(copy, ignore_errors=True)
            copy.mkdir(parents=True)
            skip = {self.run.parent.resolve(), self.root / ".git"}
            self.files[tree] = _populate(self.root, copy, skip)
            _copy_git(self.root, copy)
        except OSError as error:
            where = f" ({error.filename})" if error.filename else ""
            raise WorkspaceError(
                f"cannot make the scratch copy of {self.root} under {self.run.parent}: "
                f"{error.strerror}{where}; free some space (or set FODHASH_CACHE_DIR "
                "elsewhere) and run again; no file of yours was changed") from None
        return True

    def lost(self) -> bool:
        """Whether a copy made was deleted since (with the cache folder)."""
        return any(not self.copy(tree).is_dir() for tree in self.files)

    def discard(self) -> None:
        """Remove the copies once their results are read: their hard links must not count
        as the user's (a file with several links is refused), and the space is freed early."""
        for tree in self.files:
            shutil.rmtree(self.copy(tree), ignore_errors=True)

    def path(self, path: Path, tree: int = 0) -> Path:
        """Where `path` (in the user's repository) is in a tree's copy."""
        for candidate in (Path(os.path.abspath(path)), path.resolve()):
            if candidate.is_relative_to(self.root):
                return self.copy(tree) / candidate.relative_to(self.root)
        # Never the user's own path: what the protocol writes must land in a copy.
        raise WorkspaceError(f"{path} is outside the repository {self.root}")

    def target(self, target: Target, tree: int = 0) -> Target:
        what = target.instantiation
        return replace(
            target,
            file=self.path(target.file, tree),
            instantiation=replace(what, cwd=self.path(what.cwd, tree),
                                  file=self.path(what.file, tree) if what.file else None),
        )


def sweep() -> None:
    """Remove the copies of runs that have ended (a killed run leaves its copy behind)."""
    base = scratch_root()
    if not base.is_dir():
        return
    for lock in base.glob("*.lock"):
        try:
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a live run's
        else:
            shutil.rmtree(lock.with_suffix(""), ignore_errors=True)
            lock.unlink(missing_ok=True)
        finally:
            os.close(fd)


@contextlib.contextmanager
def workspace(root: Path) -> Iterator[Workspace]:
    """A scratch copy of `root` (made on first need), removed when the block ends, or by
    the next run's sweep if this one is killed."""
    base = scratch_root()
    run = base / uuid.uuid4().hex[:16]
    try:
        base.mkdir(parents=True, exist_ok=True)
        lock = os.open(run.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise WorkspaceError(f"cannot make a scratch copy under {base}: {error.strerror}; "
                             "no file of yours was changed") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield Workspace(root, run)
    finally:
        shutil.rmtree(run, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            run.with_suffix(".lock").unlink()
        os.close(lock)
