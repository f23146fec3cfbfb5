"""Where a command's protocol reads and writes: a scratch copy of the repository, or, for a
repository that cannot be evaluated from a copy, the user's own files under a journal.

A command holds one Place for its whole run: every session (platform) reads the files as
the previous one left them, and `changes()` gives, at the end, each user file's bytes as
first read and as they must end.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fodhash.config import Target, find_root
from fodhash.errors import FodhashError
from fodhash.files.journal import Journal
from fodhash.files.lock import locked
from fodhash.files.patch import Recorder, ScratchError, atomic_write
from fodhash.files.scratch import Workspace, sweep, workspace
from fodhash.files.writeback import Change
from fodhash.sites.read import read_source


class Unfaithful(FodhashError):
    """The scratch copy does not evaluate as the repository does (found here before any
    evaluation, or by fodhash.protocol.evaluate.check_copy after the first)."""


@dataclass
class Place:
    root: Path
    journal: Journal
    workspace: Workspace | None  # None: in place
    say: Callable[[str], None]
    originals: dict[Path, bytes] = field(default_factory=dict)  # user path -> first bytes read
    # User path -> what the sentinel tree's copy holds after the last session: the run's
    # memory is here, not in the copy, which may be deleted under it (see `materialize`).
    finals: dict[Path, bytes] = field(default_factory=dict)
    # A path as the run names it -> the user's file it named when first read (a symlink put
    # in its place during the run must not move what the run keeps to another file).
    reals: dict[Path, Path] = field(default_factory=dict)

    @property
    def in_copy(self) -> bool:
        return self.workspace is not None

    @property
    def trees(self) -> int:
        """How many trees the protocol gets (fodhash.protocol.rounds): the sentinel tree and the
        fake tree in copies; the user's files alone in place."""
        return 2 if self.workspace else 1

    @property
    def recorder(self) -> Recorder | None:
        """In place, every write is journalled first; in the copy nothing needs undoing."""
        return None if self.workspace else self.journal

    def source(self, path: Path, tree: int = 0) -> Path:
        """Where the protocol writes the user's file `path` in a tree."""
        return self.workspace.path(path, tree) if self.workspace else path

    def read(self, path: Path) -> bytes:
        """The file as this run sees it: as an earlier session left it (`keep`), else the
        copy's once it is made, else the user's (the same bytes)."""
        real = self.reals.setdefault(path, Path(os.path.realpath(path)))
        if real in self.finals:
            return self.finals[real]
        ready = self.workspace is not None and self.workspace.ready
        data = read_source(self.source(path) if ready else path)
        self.originals.setdefault(real, data)
        return data

    def keep(self, finals: dict[Path, bytes]) -> None:
        """What a session (or a split) left in the sentinel tree: the next session reads it,
        a copy made again holds it, and the write back writes it."""
        if self.workspace is not None:
            self.finals.update({self.reals.get(p) or Path(os.path.realpath(p)): data
                                for p, data in finals.items()})

    def materialize(self) -> list[int]:
        """Make the copies that are not there: the protocol is about to write (its first
        sentinel, or the forms of a round). A copy deleted since it was made (with the cache
        folder) is made again, holding what earlier sessions left; the trees made now are
        returned (what this session wrote there must be written again)."""
        if self.workspace is None:
            return []
        made = [tree for tree in range(self.trees) if self.workspace.materialize(tree)]
        for tree in made:
            for path, data in self.finals.items():
                if data != self.originals.get(path):
                    write_copy(self.source(path, tree), data)
        return made

    def lost(self) -> bool:
        """Whether a scratch copy was deleted under the run (it is made again before the
        next write, but Nix may have been reading it)."""
        return self.workspace is not None and self.workspace.lost()

    def target(self, target: Target, tree: int = 0) -> Target:
        return self.workspace.target(target, tree) if self.workspace else target

    def fall_back(self, reason: str) -> None:
        """Edit in place from now on (the copy's edits are dropped with it)."""
        self.say(f"fodhash edits the files in place: {reason}; a journal undoes its edits if "
                 "it is killed (fodhash restore)")
        self.workspace = None
        self.originals.clear()
        self.finals.clear()
        self.reals.clear()

    def changes(self) -> list[Change]:
        """Each file read, from its first bytes to what the run keeps for it (never read
        back from the copy, which may be gone); the copy is discarded then (the run is
        over). In place the files hold their final bytes already: nothing is left to write."""
        if self.workspace is None or not self.workspace.ready:
            return []
        changes = [Change(path, original, self.finals.get(path, original))
                   for path, original in self.originals.items()]
        self.workspace.discard()
        return changes

    def check_sources(self, sources: dict[Path, bytes]) -> None:
        """Before any evaluation: a file that names the repository by absolute path would
        read the user's files from the copy."""
        if self.workspace is None:
            return
        needle = str(self.root).encode()
        for path, data in sources.items():
            if needle in data:
                raise Unfaithful(f"{path} names the repository by its absolute path ({self.root})")


def write_copy(path: Path, data: bytes) -> None:
    try:
        atomic_write(path, data, durable=False)  # a scratch copy's
    except OSError as error:
        raise ScratchError(f"cannot write {path}: {error.strerror}; every file of yours "
                           "holds its original bytes") from None


@contextlib.contextmanager
def open_place(start: Path, *, wait: bool, say: Callable[[str], None],
               copy: bool = True) -> Iterator[Place]:
    """Hold the lock of the repository holding `start` for a command: undo what a killed
    in-place run left first, then give the command its place (a scratch copy, or in place
    if `copy` is False)."""
    root = find_root(start)
    with locked(root, wait=wait, say=say):
        sweep()
        journal = Journal(root)
        restored, left = journal.replay()
        for path in restored:
            say(f"restored {path} to its original bytes: an earlier fodhash run was killed")
        for path in left:
            say(f"left {path} as it is: an earlier fodhash run was killed while editing it, "
                "and it has changed since")
        if not copy:
            yield Place(root, journal, None, say)
            return
        with workspace(root) as space:
            yield Place(root, journal, space, say)
